#include "worker/proxy/admission.h"

#include "common/metrics/routes.h"
#include "worker/http1/writer.h"
#include "worker/proxy/rate_limit.h"
#include "worker/proxy/tls_host_check.h"

namespace huginn::worker::proxy {

namespace {

// The IP filter of the request's scope; a request whose path matched no route
// is checked against its domain's (else the global) block.
bool ip_allowed(const config::Config& cfg, const net::ClientInfo& client, const Router::Decision& d,
                const Policies& policies) {
  if (!policies.ip_filters) return true;
  const config::IpFilter& filter = IpFilterSet::effective(cfg, d.domain, d.route);
  if (filter.mode == config::IpFilter::Mode::kDisabled) return true;
  const auto peer = huginn::net::SocketAddress::from_ip(client.peer_ip);  // peer_ip: no brackets, no port
  // An unparsable peer cannot be in an allowlist; a denylist cannot name it either.
  const bool allowed =
      peer ? policies.ip_filters->allows(filter, *peer) : filter.mode == config::IpFilter::Mode::kDenylist;
  if (policies.metrics) policies.metrics->ip_filter(allowed);
  return allowed;
}

// The rate-limit step (worker/proxy/rate_limit.h): nullopt = allowed.
std::optional<LocalAnswer> rate_limited(const config::Config& cfg, const net::ClientInfo& client,
                                        const Router::Decision& d, const Policies& policies) {
  if (!policies.host_state || !policies.headers || !d.route) return std::nullopt;
  const config::RateLimit& rl = effective_rate_limit(cfg, d.domain, d.route);
  if (!rl.enabled) return std::nullopt;
  const uint64_t key = rate_limit_key(cfg, rl, d.domain, d.route, client.peer_ip, *policies.headers,
                                      policies.host_state->seed());
  const ratelimit::Decision r =
      policies.host_state->buckets().acquire(key, {rl.requests_per_second, rl.burst}, policies.now_ns);
  if (policies.metrics)
    policies.metrics->rate_limit(metrics::route_slot(cfg, d.domain, d.route), rl.limit_by, r.allowed);
  if (r.allowed) return std::nullopt;
  return LocalAnswer{429, http1::reason::kTooManyRequests, too_many_requests_headers(r)};
}

}  // namespace

std::optional<LocalAnswer> local_answer(const config::Config& cfg, const net::ClientInfo& client,
                                        const Router::Decision& d, const Policies& policies) {
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
  if (!ip_allowed(cfg, client, d, policies)) return LocalAnswer{403, http1::reason::kIpBlocked};
  // After the route (404), before the backend choice (503/502).
  if (d.outcome != Router::Outcome::kNoRoute)
    if (auto limited = rate_limited(cfg, client, d, policies)) return limited;
  switch (d.outcome) {
    case Router::Outcome::kNoRoute:
      return LocalAnswer{404, http1::reason::kNoRoute};
    case Router::Outcome::kNoBackend:
      return LocalAnswer{503, http1::reason::kNoBackend};
    case Router::Outcome::kUnhealthy:
      return LocalAnswer{502, http1::reason::kUnhealthy, {}};
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
