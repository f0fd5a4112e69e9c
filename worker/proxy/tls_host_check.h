// The HTTP-layer checks that tie a request's host to the TLS handshake of its
// connection (upstream §1.5), run after the domain is matched, for HTTP/1.1
// and HTTP/2 alike:
//   * 421 misdirected_request: the connection presented SNI and the request
//     host resolves to a domain whose effective certificate path differs from
//     the one the handshake used (same domain entry or same certificate file
//     = coalescing, allowed). SNI and host both matching no domain = allowed.
//   * 421 mutual_tls_host_inconsistency: the request host maps to a domain
//     with client_ca_path, but the connection is not TLS with SNI that
//     selected that same domain entry (plaintext, no SNI, foreign SNI).
// Pure function.
#pragma once

#include "common/config/model.h"
#include "worker/net/connection.h"

namespace huginn::worker::proxy {

enum class TlsHostVerdict { kAllowed, kMisdirected, kMtlsInconsistent };

// The certificate path a domain's handshake uses: its own cert_path, else the
// default certificate ([tls] cert_path, else the catch-all domain's).
std::string effective_cert_path(const config::Config& cfg, const config::Domain* domain);

TlsHostVerdict check_tls_host(const config::Config& cfg, const net::ClientInfo& client,
                              const config::Domain* request_domain);

}  // namespace huginn::worker::proxy
