// The rate-limit step of a routed request (SPEC.md §4: after route matching,
// before backend choice), over the host-wide bucket table
// (common/ratelimit/bucket_table.h). Pure apart from the table's atomics.
//
//  * Scope: the route's [security.rate_limit] block, else its domain's,
//    else the global one (whole-block override; `enabled = false` in a
//    nearer block switches limiting off there).
//  * Key: a keyed hash (the region's random seed) of the scope identity
//    (global / domain host / domain host + route prefix, with the block's
//    requests_per_second, burst, limit_by and limit_by_header: a reload that
//    changes the numbers starts with fresh buckets, one that keeps them keeps
//    the state) and of the strategy's value:
//      ip       the client address (client_ip(): X-Forwarded-For through
//               trusted_proxies)
//      header   the first value of limit_by_header; a request without it is
//               keyed by its client address (kept apart from header values)
//      route    the matched domain and route prefix: one bucket for everyone
//      combined client address + the limit_by_header value when that key is
//               set, else client address + route (upstream's "{ip}:{prefix}")
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/config/model.h"
#include "common/ratelimit/bucket_table.h"
#include "worker/http1/message.h"

namespace huginn::worker::proxy {

// The block that applies to a request of `domain`/`route` (either may be null).
const config::RateLimit& effective_rate_limit(const config::Config& cfg, const config::Domain* domain,
                                              const config::Route* route);

// The bucket key of one request under `rl` (see above).
uint64_t rate_limit_key(const config::Config& cfg, const config::RateLimit& rl, const config::Domain* domain,
                        const config::Route* route, std::string_view peer_ip, const http1::Headers& headers,
                        uint64_t seed);

// Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset of a
// denied request.
http1::Headers too_many_requests_headers(const ratelimit::Decision& d);

}  // namespace huginn::worker::proxy
