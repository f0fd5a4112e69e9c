// What happens to a request once it is routed, for HTTP/1.1 and HTTP/2
// alike: either the proxy answers it itself (SPEC.md §4 order: no domain →
// 421, TLS/mTLS host rules → 421, IP filter → 403, no route → 404, rate
// limit → 429, no backend → 503, every backend down → 502) or it goes to the backend with the
// header-rewrite context built here. No I/O; the only side effects are the
// policy counters of the metrics slot.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "common/config/model.h"
#include "common/hoststate/region.h"
#include "common/metrics/table.h"
#include "worker/http1/message.h"
#include "worker/net/connection.h"
#include "worker/proxy/header_rewrite.h"
#include "worker/proxy/ip_filter.h"
#include "worker/proxy/router.h"

namespace huginn::worker::proxy {

struct LocalAnswer {
  LocalAnswer(uint16_t s, std::string_view r, http1::Headers h = {})
      : status(s), reason(r), headers(std::move(h)) {}
  uint16_t status = 0;
  std::string_view reason;  // http1::reason code for the JSON body
  http1::Headers headers;   // more header fields of the answer (429: Retry-After, RateLimit-*)
};

// What local_answer() consults besides the config: this worker's compiled
// policies (built from the same Config) and where it counts its decisions.
struct Policies {
  const IpFilterSet* ip_filters = nullptr;  // null: the IP filter is not checked
  metrics::Slot* metrics = nullptr;         // null: not counted
  // Rate limiting: the host-wide region (its bucket table and hash seed;
  // null: not checked), the request's header fields (limit_by_header,
  // X-Forwarded-For) and CLOCK_MONOTONIC now (ratelimit::monotonic_ns()).
  const hoststate::Region* host_state = nullptr;
  const http1::Headers* headers = nullptr;
  uint64_t now_ns = 0;
};

// The proxy's own answer to a routed request, or nullopt when it goes to the backend.
std::optional<LocalAnswer> local_answer(const config::Config& cfg, const net::ClientInfo& client,
                                        const Router::Decision& d, const Policies& policies = {});

// The header-rewrite context of a request routed to a backend (`host`: the
// normalised routing host; `client` must outlive the context).
RequestContext request_context(const config::Config& cfg, const Router::Decision& d,
                               const net::ClientInfo& client, std::string_view host);

}  // namespace huginn::worker::proxy
