// Per-route metric sections: which section of a slot belongs to which route
// of a configuration, and the label values of each (docs/ARCHITECTURE.md,
// "Metrics"). Labels come only from the configuration: `route` is the route's
// prefix as configured, `domain` its domain's host pattern ("_default_" for
// the catch-all domain, as upstream), `backend_address` the route's backend. The last section is "no route"
// (route
// "" and domain ""): decisions taken before or without a matched route.
#pragma once

#include <compare>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common/config/model.h"
#include "common/metrics/layout.h"

namespace huginn::metrics {

inline constexpr std::string_view kDefaultDomainLabel = "_default_";

// Route slots of `cfg`: every route of every domain in declaration order,
// plus one for "no route".
size_t route_slot_count(const config::Config& cfg);

// The section of `route` (a route of `domain`, both from `cfg`); the "no
// route" section (route_slot_count(cfg) - 1) when either is null or not from
// `cfg`.
size_t route_slot(const config::Config& cfg, const config::Domain* domain, const config::Route* route);

struct RouteKey {
  std::string domain;
  std::string route;
  std::string backend;  // the route's backend address ("" for "no route")
  auto operator<=>(const RouteKey&) const = default;
};

// Label values of every route slot of `cfg` (size route_slot_count(cfg)).
std::vector<RouteKey> route_keys(const config::Config& cfg);

// Per-route counters keyed by label values, so that sections of different
// generations (and of exited workers) with the same labels add up.
using RouteTotals = std::map<RouteKey, RouteCounters>;

}  // namespace huginn::metrics
