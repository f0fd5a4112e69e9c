#include "worker/proxy/tls_host_check.h"

namespace huginn::worker::proxy {

std::string effective_cert_path(const config::Config& cfg, const config::Domain* domain) {
  if (domain != nullptr && !domain->cert_path.empty()) return domain->cert_path;
  if (cfg.tls && !cfg.tls->cert_path.empty()) return cfg.tls->cert_path;
  for (const auto& d : cfg.domains)
    if (!d.host) return d.cert_path;  // the catch-all domain's certificate (may be empty)
  return {};
}

TlsHostVerdict check_tls_host(const config::Config& cfg, const net::ClientInfo& client,
                              const config::Domain* request_domain) {
  if (request_domain != nullptr && !request_domain->client_ca_path.empty()) {
    // Only a handshake whose SNI selected this very domain verified a client
    // certificate against its CA.
    if (!client.tls || client.sni.empty() || client.sni_domain != request_domain)
      return TlsHostVerdict::kMtlsInconsistent;
    return TlsHostVerdict::kAllowed;
  }
  if (!client.tls || client.sni.empty() || request_domain == nullptr) return TlsHostVerdict::kAllowed;
  if (client.sni_domain == request_domain) return TlsHostVerdict::kAllowed;
  // Connection coalescing is fine while the certificate is the same file.
  if (client.cert_path == effective_cert_path(cfg, request_domain)) return TlsHostVerdict::kAllowed;
  return TlsHostVerdict::kMisdirected;
}

}  // namespace huginn::worker::proxy
