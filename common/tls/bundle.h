// The TLS material the supervisor hands to workers: the exact bytes of every
// certificate, key and client-CA file the configuration names, plus the
// session-ticket keys shared by all workers. Workers never open key files;
// they build their SSL_CTXs from a Bundle (worker/tls/context.h).
//
// Transport: encode() produces the payload of a sealed memfd that travels with
// the TLS_MATERIAL control message (common/ipc/protocol.h). decode() is pure,
// bounds-checks every length before allocating, and rejects trailing bytes.
//
// Layout (little-endian):
//   u32 magic 'HTLS', u32 format version (1), u64 serial,
//   u32 ticket_lifetime_secs,
//   u16 n_files, n x { u16 path_len, path, u32 pem_len, pem },
//   u16 n_keys,  n x { 16 name, 32 aes_key, 32 hmac_key }
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace huginn::tls {

inline constexpr size_t kMaxBundleFiles = 1024;
inline constexpr size_t kMaxPathLength = 4096;
inline constexpr size_t kMaxPemSize = 1024 * 1024;          // one file
inline constexpr size_t kMaxBundleSize = 64 * 1024 * 1024;  // whole encoding
inline constexpr size_t kMaxTicketKeys = 8;

// One file the configuration names (cert_path, key_path, client_ca_path, or
// [tls] cert_path/key_path), keyed by the path exactly as written in the config.
struct PemFile {
  std::string path;
  std::string pem;
  bool operator==(const PemFile&) const = default;
};

// RFC 5077-style ticket key: 16-byte name, AES-256-CBC key, HMAC-SHA256 key.
struct TicketKey {
  std::array<uint8_t, 16> name{};
  std::array<uint8_t, 32> aes_key{};
  std::array<uint8_t, 32> hmac_key{};
  bool operator==(const TicketKey&) const = default;
};

struct Bundle {
  uint64_t serial = 0;  // increases with every bundle the supervisor makes
  uint32_t ticket_lifetime_secs = 0;
  std::vector<PemFile> files;
  // ticket_keys[0] encrypts new tickets; the others only decrypt (previous
  // keys kept during rotation). Empty = session resumption disabled.
  std::vector<TicketKey> ticket_keys;

  const PemFile* find(std::string_view path) const {
    for (const auto& f : files)
      if (f.path == path) return &f;
    return nullptr;
  }
  bool operator==(const Bundle&) const = default;
};

// "" when `b` can be encoded and decoded back (counts, path and PEM sizes
// within the limits above, no empty or duplicate path), else the reason.
// encode() of a bundle that fails check() is not decodable.
std::string check(const Bundle& b);
std::string encode(const Bundle& b);
// nullopt + *error on any malformed input.
std::optional<Bundle> decode(std::string_view bytes, std::string* error);

}  // namespace huginn::tls
