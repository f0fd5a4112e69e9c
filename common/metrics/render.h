// Prometheus text exposition format (version 0.0.4) for the summed metrics
// table plus what only the supervisor knows (build, generation, reloads,
// worker restarts, XDP SYN map counters). Pure: numbers in, text out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/metrics/layout.h"
#include "common/metrics/routes.h"

namespace huginn::metrics {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

struct SynMapCounters {
  uint64_t captured = 0;
  uint64_t malformed = 0;
  uint64_t insert_failures = 0;
};

struct SupervisorFacts {
  std::string version;
  uint32_t generation = 0;
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  double last_reload_unix = 0;  // 0 = no reload yet
  uint32_t live_workers = 0;
  uint64_t worker_restarts = 0;
  std::optional<SynMapCounters> syn_v4, syn_v6;  // XDP maps (helper attached)
};

// `totals`: base + every live slot (common/metrics/table.h); `routes`: the
// per-route sections of the base and every live slot, by label values.
std::string render(const Counters& totals, const RouteTotals& routes, const SupervisorFacts& facts);

// A label value with \ " and newline escaped as the format requires.
std::string escape_label_value(std::string_view v);

}  // namespace huginn::metrics
