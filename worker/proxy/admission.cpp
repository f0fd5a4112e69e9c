#include "worker/proxy/admission.h"

#include "worker/http1/writer.h"
#include "worker/proxy/tls_host_check.h"

namespace huginn::worker::proxy {

std::optional<LocalAnswer> local_answer(const config::Config& cfg, const net::ClientInfo& client,
                                        const Router::Decision& d) {
  if (d.outcome == Router::Outcome::kMisdirected) return LocalAnswer{421, http1::reason::kMisdirected};
  // The TLS/mTLS host rules come right after the domain match.
  switch (check_tls_host(cfg, client, d.domain)) {
    case TlsHostVerdict::kMisdirected:
      return LocalAnswer{421, http1::reason::kMisdirected};
    case TlsHostVerdict::kMtlsInconsistent:
      return LocalAnswer{421, http1::reason::kMtlsInconsistent};
    case TlsHostVerdict::kAllowed:
      break;
  }
  switch (d.outcome) {
    case Router::Outcome::kNoRoute:
      return LocalAnswer{404, http1::reason::kNoRoute};
    case Router::Outcome::kNoBackend:
      return LocalAnswer{503, http1::reason::kNoBackend};
    case Router::Outcome::kMisdirected:
    case Router::Outcome::kRouted:
      break;
  }
  return std::nullopt;
}

RequestContext request_context(const config::Config& cfg, const Router::Decision& d,
                               const net::ClientInfo& client, std::string_view host) {
  RequestContext rc;
  rc.cfg = &cfg;
  rc.domain = d.domain;
  rc.route = d.route;
  rc.backend = d.backend;
  rc.fingerprints = &client.fingerprints;
  rc.peer_ip = client.peer_ip;
  rc.local_port = client.local_port;
  rc.tls = client.tls;
  rc.host = host;
  return rc;
}

}  // namespace huginn::worker::proxy
