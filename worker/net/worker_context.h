// What every connection of one worker shares: the config snapshot, the
// router, resolved backends, the upstream pool and counters. Owned by
// Server::Impl; outlives every connection.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/config/model.h"
#include "worker/http1/parser.h"
#include "worker/net/connection.h"
#include "worker/net/event_handles.h"
#include "worker/proxy/router.h"
#include "worker/proxy/upstream_pool.h"

namespace huginn::worker::net {

struct WorkerContext {
  event_base* base = nullptr;
  std::shared_ptr<const config::Config> cfg;
  std::unique_ptr<proxy::Router> router;
  http1::ParserLimits limits;
  std::vector<proxy::BackendEndpoint> endpoints;  // parallel to cfg->backends
  std::unique_ptr<proxy::UpstreamPool> pool;
  uint64_t total_requests = 0;
  bool draining = false;
  // Called once when a connection has finished; the owner destroys it later
  // (never inside the call).
  std::function<void(Connection*)> on_closed;
  // Starts the HTTP/1.1 or HTTP/2 connection that takes over `transport`
  // once the protocol is known (cleartext sniffing, TLS ALPN). The Server owns it.
  std::function<void(BufferEventPtr transport, ClientInfo info, bool h2)> start_http;
};

// Buffer bounds of the data path (per direction and connection): at most
// about kHighWater in an output buffer and kReadHigh in an input buffer.
inline constexpr size_t kReadHigh = 256 * 1024;
inline constexpr size_t kHighWater = 256 * 1024;
inline constexpr size_t kLowWater = 64 * 1024;
inline constexpr size_t kFeedSlice = 64 * 1024;

// Graceful stop: how long an idle keep-alive connection may still send one
// more request (answered with `Connection: close`) before it is closed.
inline constexpr uint32_t kDrainIdleGraceMs = 1000;

}  // namespace huginn::worker::net
