// The supervisor's side of the TLS material (common/tls/bundle.h): it reads
// every certificate, key and client-CA file the configuration names, checks
// them with OpenSSL, and owns the session-ticket keys. Workers only ever see
// the resulting bytes (TLS_MATERIAL, common/ipc/protocol.h).
//
// Session tickets (TLS 1.2 and 1.3; there is no shared session-ID cache, so
// TLS 1.2 session-ID resumption is not offered): the supervisor generates
// each key with RAND_bytes. Every kTicketKeyRotation a new key becomes the one
// that encrypts; the previous kTicketKeysKept - 1 keys still decrypt. A ticket
// issued just before a rotation must stay decryptable for its whole lifetime,
// so the lifetime announced to clients is at most (kTicketKeysKept - 1)
// rotations: 1 h rotation, 2 previous keys, 2 h lifetime.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/config/loader.h"
#include "common/config/model.h"
#include "common/tls/bundle.h"

namespace huginn::supervisor {

inline constexpr std::chrono::seconds kTicketKeyRotation{3600};
inline constexpr size_t kTicketKeysKept = 3;  // the current key + 2 previous
inline constexpr uint32_t kTicketLifetimeSecs = 7200;
static_assert(kTicketLifetimeSecs <= (kTicketKeysKept - 1) * kTicketKeyRotation.count());
static_assert(kTicketKeysKept <= tls::kMaxTicketKeys);

// Every file the configuration names ([tls] cert_path/key_path, each domain's
// cert_path/key_path/client_ca_path), each once, in configuration order.
std::vector<std::string> tls_material_paths(const config::Config& cfg);

// Reads (at most tls::kMaxPemSize bytes each; regular files, symlinks
// followed) and checks every file of tls_material_paths(): a certificate file
// is a PEM chain whose certificates all parse; a key file holds at least one
// private key matching the first certificate of the cert_path it is paired
// with (a file with several keys is fine: some key must match, checked with
// X509_check_private_key); a client-CA file holds at least one certificate
// and nothing malformed. Every problem is reported, each naming the file and
// the config key that names it (position of its [tls] / [[domains]] table).
// `files` gets the exact bytes of every file (also on partial failure).
std::vector<config::ConfigError> read_tls_files(const config::Config& cfg, std::vector<tls::PemFile>* files);

// One fresh key: 16-byte name, AES-256 key, HMAC-SHA256 key, all RAND_bytes.
bool generate_ticket_key(tls::TicketKey* out, std::string* error);

// The shared ticket keys: keys()[0] encrypts, the rest only decrypt.
class TicketKeyRing {
 public:
  // Makes a new current key and drops keys beyond kTicketKeysKept.
  bool rotate(std::string* error);
  const std::vector<tls::TicketKey>& keys() const { return keys_; }

 private:
  std::vector<tls::TicketKey> keys_;
};

// read_tls_files() + ticket keys (none when session_resumption is disabled,
// and then ticket_lifetime_secs = 0) + serial. `cfg` must have [tls].
std::vector<config::ConfigError> build_tls_bundle(const config::Config& cfg,
                                                  const std::vector<tls::TicketKey>& ticket_keys,
                                                  uint64_t serial, tls::Bundle* out);

}  // namespace huginn::supervisor
