#include "worker/proxy/rate_limit.h"

#include <string>

#include "worker/proxy/client_ip.h"

namespace huginn::worker::proxy {

namespace {

std::string_view host_of(const config::Domain* domain) {
  return domain && domain->host ? std::string_view(*domain->host) : std::string_view();
}

}  // namespace

const config::RateLimit& effective_rate_limit(const config::Config& cfg, const config::Domain* domain,
                                              const config::Route* route) {
  if (route && route->security.rate_limit) return *route->security.rate_limit;
  if (domain && domain->security.rate_limit) return *domain->security.rate_limit;
  return cfg.security.rate_limit;
}

uint64_t rate_limit_key(const config::Config& cfg, const config::RateLimit& rl, const config::Domain* domain,
                        const config::Route* route, std::string_view peer_ip, const http1::Headers& headers,
                        uint64_t seed) {
  ratelimit::KeyBuilder k;
  // Scope identity.
  if (route && route->security.rate_limit) {
    k.add("route-scope").add(host_of(domain)).add(uint64_t{domain && !domain->host}).add(route->prefix);
  } else if (domain && domain->security.rate_limit) {
    k.add("domain-scope").add(host_of(domain)).add(uint64_t{!domain->host});
  } else {
    k.add("global-scope");
  }
  k.add(rl.requests_per_second).add(rl.burst).add(static_cast<uint64_t>(rl.limit_by)).add(rl.limit_by_header);

  const http1::Header* h =
      rl.limit_by_header.empty() ? nullptr : http1::find_header(headers, rl.limit_by_header);
  auto add_ip = [&] { k.add("ip").add(client_ip(peer_ip, cfg.security.trusted_proxies, headers)); };
  auto add_route = [&] {
    k.add("route")
        .add(host_of(domain))
        .add(uint64_t{domain && !domain->host})
        .add(route ? route->prefix : "");
  };
  switch (rl.limit_by) {
    case config::RateLimit::LimitBy::kIp:
      add_ip();
      break;
    case config::RateLimit::LimitBy::kHeader:
      if (h)
        k.add("header").add(h->value);
      else
        add_ip();
      break;
    case config::RateLimit::LimitBy::kRoute:
      add_route();
      break;
    case config::RateLimit::LimitBy::kCombined:
      add_ip();
      if (!rl.limit_by_header.empty())
        k.add("header").add(h ? std::string_view(h->value) : std::string_view());
      else
        add_route();
      break;
  }
  return k.hash(seed);
}

http1::Headers too_many_requests_headers(const ratelimit::Decision& d) {
  return {
      {"Retry-After", std::to_string(d.retry_after_s)},
      {"RateLimit-Limit", std::to_string(d.limit)},
      {"RateLimit-Remaining", std::to_string(d.remaining)},
      {"RateLimit-Reset", std::to_string(d.reset_s)},
  };
}

}  // namespace huginn::worker::proxy
