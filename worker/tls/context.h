// The TLS server contexts of one worker, built from the configuration and the
// supervisor's tls::Bundle (PEM bytes + shared ticket keys; workers never open
// files). Immutable once built; held by shared_ptr so that a connection keeps
// its SSL_CTX alive (OpenSSL reference counts) when a newer set replaces this
// one (certificate hot reload).
//
// Layout:
//   * a base SSL_CTX without a certificate: every SSL starts on it, so it is
//     OpenSSL's `session_ctx` (ticket callback, session cache mode, options,
//     protocol versions and ticket count are read from it);
//   * one SSL_CTX per distinct (cert_path, key_path, client_ca_path): the
//     certificate with its chain, and for mTLS the verify store, mode and CA
//     names. The ClientHello callback picks one by SNI and switches the SSL to
//     it with SSL_set_SSL_CTX, then copies verify mode and depth onto the SSL
//     (SSL_set_SSL_CTX does not), and sets a session-id context that depends
//     only on the selection (same in every worker) so that a session resumes
//     only where it was made for: a session of a non-mTLS certificate can never
//     resume on an mTLS domain and skip the client certificate.
//
// Certificate selection by SNI (independent of HTTP routing): exact host →
// one-label wildcard ("*.example.com" matches "a.example.com", not
// "a.b.example.com" nor "example.com") → default certificate ([tls]
// cert_path/key_path if set, else the catch-all domain's). No/unknown SNI
// without a default, or any such SNI with sni_strict, aborts the handshake
// with the unrecognized_name alert. Domains without a certificate take no part
// in the selection.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config/model.h"
#include "common/sys/c_handle.h"
#include "common/tls/bundle.h"

namespace huginn::worker::tls {

using SslCtxPtr = sys::CHandle<SSL_CTX, SSL_CTX_free>;
using SslPtr = sys::CHandle<SSL, SSL_free>;

// What the ClientHello callback chose for one SSL; readable after the hello
// was processed (ContextSet::selection()).
struct Selection {
  bool done = false;
  std::string sni;  // lowercased, no trailing dot; empty = none sent
  // The domain whose certificate was chosen: an SNI match, or the catch-all
  // domain when its certificate is the default; null = [tls] cert_path.
  const config::Domain* domain = nullptr;
  const std::string* cert_path = nullptr;  // effective certificate path (points into the config)
  bool mtls = false;                       // a client certificate was required
  std::string reject_reason;               // set when the callback aborted the handshake
};

class ContextSet {
 public:
  // nullptr + *error when a certificate, key or CA cannot be loaded from the
  // bundle or OpenSSL refuses an option. `cfg->tls` must be set.
  static std::shared_ptr<const ContextSet> build(std::shared_ptr<const config::Config> cfg,
                                                 std::shared_ptr<const huginn::tls::Bundle> bundle,
                                                 std::string* error);
  ~ContextSet();
  ContextSet(const ContextSet&) = delete;
  ContextSet& operator=(const ContextSet&) = delete;

  // A new server-side SSL on the default certificate's context (the first
  // certificate's when there is no default), ready for SSL_set_bio and
  // SSL_set_accept_state. `sel` must outlive the handshake (the ClientHello
  // callback fills it); detach it with release_ssl() afterwards.
  SslPtr new_ssl(Selection* sel) const;
  // Drops the per-handshake pointers from the SSL (call when the handshake
  // ended, before the SSL outlives the Selection or this set).
  static void release_ssl(SSL* ssl);

  const config::Config& config() const { return *cfg_; }
  uint64_t bundle_serial() const { return bundle_->serial; }
  size_t context_count() const { return certs_.size(); }

  struct Impl;  // internal: the callbacks need it

 private:
  ContextSet() = default;

  struct Cert {
    std::string cert_path;
    std::string key_path;
    std::string client_ca_path;
    SslCtxPtr ctx;
  };
  struct Entry {
    const config::Domain* domain = nullptr;  // null = [tls] default
    const Cert* cert = nullptr;
    bool mtls = false;
    std::array<unsigned char, 32> sid_ctx{};
  };

  const Entry* select(std::string_view sni) const;
  int on_client_hello(SSL* ssl, Selection* sel, int* alert) const;

  std::shared_ptr<const config::Config> cfg_;
  std::shared_ptr<const huginn::tls::Bundle> bundle_;
  std::vector<std::unique_ptr<Cert>> certs_;
  SSL_CTX* start_ = nullptr;                         // where new_ssl() starts an SSL; owned by certs_
  std::unordered_map<std::string, Entry> exact_;     // host → entry
  std::unordered_map<std::string, Entry> wildcard_;  // "example.com" for "*.example.com"
  std::optional<Entry> default_;
  bool sni_strict_ = false;

  friend struct Impl;
};

// "TLSv1.2" / "TLSv1.3" → the OpenSSL version constant; 0 when unknown.
// Also accepts "1.2" / "1.3" (the config's spelling).
int parse_tls_version(std::string_view name);

}  // namespace huginn::worker::tls
