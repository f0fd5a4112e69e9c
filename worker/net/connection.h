// What the Server owns per accepted client: one Connection (HTTP/1.1 or
// HTTP/2, cleartext or TLS), plus what is known about the client before the
// first request is read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/config/model.h"
#include "worker/proxy/header_rewrite.h"

namespace huginn::worker::net {

struct ClientInfo {
  std::string peer_ip;      // no brackets, IPv4-mapped unwrapped
  uint16_t local_port = 0;  // the port the client connected to
  bool tls = false;
  // TLS only (empty / null otherwise):
  std::string sni;                             // server_name the client sent; empty = none
  const config::Domain* sni_domain = nullptr;  // domain whose certificate SNI selected; null = default cert
  std::string cert_path;                       // effective certificate path of the handshake
  std::string alpn;                            // negotiated ALPN ("h2", "http/1.1" or empty)
  // OpenSSL's own static names (SSL_get_version, SSL_CIPHER_get_name): valid
  // for the life of the process, so not copied into every connection.
  std::string_view tls_version;  // "TLSv1.3", ...
  std::string_view cipher;       // OpenSSL cipher name
  std::string client_subject;    // verified client certificate subject (mTLS), one line
  proxy::ConnectionFingerprints
      fingerprints;  // JA4 family / TCP set before start(); Akamai by the h2 session
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Takes over the transport; false = failed (the connection has already
  // reported itself closed through WorkerContext::on_closed).
  virtual bool start() = 0;
  // Graceful stop: HTTP/1.1 closes when idle or after the current response
  // (Connection: close); HTTP/2 sends GOAWAY and finishes open streams.
  virtual void drain() = 0;
  virtual bool closed() const = 0;
};

}  // namespace huginn::worker::net
