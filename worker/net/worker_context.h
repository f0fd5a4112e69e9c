// What every connection of one worker shares: the config snapshot, the
// router, resolved backends, the upstream pool and counters. Owned by
// Server::Impl; outlives every connection.
#pragma once

#include <event2/event.h>

#include <time.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config/model.h"
#include "common/hoststate/region.h"
#include "common/metrics/table.h"
#include "worker/http1/parser.h"
#include "worker/net/connection.h"
#include "worker/net/event_handles.h"
#include "worker/net/graveyard.h"
#include "worker/proxy/ip_filter.h"
#include "worker/proxy/router.h"
#include "worker/proxy/upstream_pool.h"

namespace huginn::worker::net {

class H2cPool;
class AccessLogWriter;
class BackendExchange;

struct WorkerContext {
  event_base* base = nullptr;
  std::shared_ptr<const config::Config> cfg;
  std::unique_ptr<proxy::Router> router;
  std::unique_ptr<proxy::IpFilterSet> ip_filters;  // compiled [security.ip_filter] blocks of cfg
  http1::ParserLimits limits;
  std::vector<proxy::BackendEndpoint> endpoints;  // parallel to cfg->backends
  std::unique_ptr<proxy::UpstreamPool> pool;
  H2cPool* h2c_pool = nullptr;  // idle h2c backend connections (owned by the Server); null = no h2c backends
  // Retired backend exchanges of every connection (an exchange is never
  // destroyed inside one of its own callbacks; a retired one no longer calls
  // its sink, so it may outlive the connection that retired it). The owner
  // reaps it before its pools go.
  Graveyard reaper;
  // [logging] access_log: created at the first finished request (access_log.h).
  std::shared_ptr<AccessLogWriter> access_log;
  uint64_t total_requests = 0;
  // Where an HTTP/1.1 response head is put together before it is copied
  // into the client's output: it keeps its room (up to kScratchKeep), so a
  // head costs no allocation. Filled and emptied within one call.
  std::string scratch;
  static constexpr size_t kScratchKeep = 16 * 1024;
  // This worker's slot of the host-wide metrics table ([telemetry]
  // metrics_port); null when metrics are off (and in unit tests).
  metrics::Slot* metrics = nullptr;
  // The host-wide state region (HOST_STATE: connection count for
  // max_connections, rate-limit buckets) and this worker's slot in it; null
  // in unit tests, which then count max_connections per worker and do not
  // rate-limit.
  hoststate::Region* host_state = nullptr;
  uint32_t host_slot = 0;
  bool draining = false;
  // Called once when a connection has finished; the owner destroys it later
  // (never inside the call).
  std::function<void(Connection*)> on_closed;
  // Starts the HTTP/1.1 or HTTP/2 connection that takes over `transport`
  // once the protocol is known (cleartext sniffing, TLS ALPN). The Server owns it.
  std::function<void(BufferEventPtr transport, ClientInfo info, bool h2)> start_http;
  // Lingering close of a finished client transport whose output is flushed:
  // close_notify (TLS), shutdown(SHUT_WR), then read and discard what the
  // client still sends until it closes (or kLingerMs / kLingerMaxBytes), so
  // that unread input cannot make the kernel answer with a reset that
  // destroys response bytes the client has not read yet (nginx's
  // lingering_close). Not used once the client has closed its side (EOF or
  // close_notify): nothing more can arrive; nor by HTTP/1.1 after the
  // client's last request (`Connection: close`) when nothing it sent is
  // unread (net::unread_input). Null = just free it.
  std::function<void(BufferEventPtr transport)> linger;
};

// Monotonic microseconds (vDSO): request durations in the metrics, connection
// lifetimes for the accept policy (Server).
inline uint64_t metrics_clock_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000ULL + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// One response to a client: method (metrics::method_index), status and time
// since the request head (`t0_us`; 0 = unknown: no request head, then the
// response counts only in the entrypoint series). `domain`/`route`: the
// router's decision for this request (null = none): a matched route also
// counts in huginn_requests_total / huginn_requests_duration_seconds.
inline void count_response(const WorkerContext& ctx, metrics::Protocol p, size_t method, uint16_t status,
                           uint64_t t0_us, const config::Domain* domain = nullptr,
                           const config::Route* route = nullptr) {
  if (!ctx.metrics) return;
  const uint64_t now = metrics_clock_us();
  const size_t slot =
      t0_us != 0 && route ? metrics::route_slot(*ctx.cfg, domain, route) : metrics::Slot::kNoRouteSlot;
  ctx.metrics->request(p, method, status, t0_us != 0 && now > t0_us ? now - t0_us : 0, slot);
}

// One backend response head (`upstream_us` after the exchange started) or one
// failed exchange (502/504), in the section of the request's route.
inline void count_backend_response(const WorkerContext& ctx, const config::Domain* domain,
                                   const config::Route* route, uint16_t status, uint64_t upstream_us) {
  if (ctx.metrics)
    ctx.metrics->backend_response(metrics::route_slot(*ctx.cfg, domain, route), status, upstream_us);
}
inline void count_backend_error(const WorkerContext& ctx, const config::Domain* domain,
                                const config::Route* route, uint16_t status) {
  if (ctx.metrics)
    ctx.metrics->backend_error(metrics::route_slot(*ctx.cfg, domain, route),
                               metrics::backend_error_of(status));
}

// Buffer bounds of the data path (per direction and connection): at most
// about kHighWater in an output buffer and kReadHigh in an input buffer.
inline constexpr size_t kReadHigh = 256 * 1024;
inline constexpr size_t kHighWater = 256 * 1024;
inline constexpr size_t kLowWater = 64 * 1024;
inline constexpr size_t kFeedSlice = 64 * 1024;

// Graceful stop: how long an idle keep-alive connection may still send one
// more request (answered with `Connection: close`) before it is closed.
inline constexpr uint32_t kDrainIdleGraceMs = 1000;

// Lingering close bounds (WorkerContext::linger); at most kMaxLingering
// transports linger at once, the rest are closed at once.
inline constexpr uint32_t kLingerMs = 2000;
inline constexpr size_t kLingerMaxBytes = 256 * 1024;
inline constexpr size_t kMaxLingering = 4096;

}  // namespace huginn::worker::net
