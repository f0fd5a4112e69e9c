#include "common/metrics/routes.h"

namespace huginn::metrics {

size_t route_slot_count(const config::Config& cfg) {
  size_t n = 1;
  for (const auto& d : cfg.domains) n += d.routes.size();
  return n;
}

size_t route_slot(const config::Config& cfg, const config::Domain* domain, const config::Route* route) {
  size_t offset = 0;
  for (const auto& d : cfg.domains) {
    if (&d == domain) {
      for (size_t r = 0; r < d.routes.size(); ++r)
        if (&d.routes[r] == route) return offset + r;
      break;
    }
    offset += d.routes.size();
  }
  return route_slot_count(cfg) - 1;
}

std::vector<RouteKey> route_keys(const config::Config& cfg) {
  std::vector<RouteKey> keys;
  keys.reserve(route_slot_count(cfg));
  for (const auto& d : cfg.domains) {
    const std::string domain = d.host ? *d.host : std::string(kDefaultDomainLabel);
    for (const auto& r : d.routes) keys.push_back({domain, r.prefix, r.backend});
  }
  keys.push_back({"", "", ""});
  return keys;
}

}  // namespace huginn::metrics
