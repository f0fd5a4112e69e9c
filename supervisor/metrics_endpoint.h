// The supervisor's telemetry HTTP endpoint ([telemetry] metrics_port and
// metrics_address): /metrics (Prometheus text), /health, /live, /ready.
//
// Served from the supervisor's libevent loop. Each connection gets one
// response and is closed: the request head is read with the strict, bounded
// reader of common/metrics/http_request.h (at most kMaxRequestBytes, 5 s),
// only GET and HEAD are served, at most kMaxClients connections are open at
// once (more are closed at accept).
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/metrics/http_request.h"
#include "common/net/address.h"
#include "common/sys/c_handle.h"

namespace huginn::supervisor {

struct TelemetryResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};

// What /ready answers.
enum class Readiness { kStarting, kReady, kStopping };

// Pure routing: the answer to `req` (method already known to be parsed).
// `metrics` renders the /metrics body on demand.
TelemetryResponse route_telemetry(const metrics::Request& req, Readiness readiness,
                                  const std::function<std::string()>& metrics);
// Status line, Content-Type, Content-Length, Connection: close, body (not for HEAD).
std::string serialize_response(const TelemetryResponse& r, bool head_request);

class MetricsEndpoint {
 public:
  static constexpr size_t kMaxClients = 64;
  static constexpr int kClientTimeoutSecs = 5;

  using Readiness = supervisor::Readiness;
  struct Hooks {
    std::function<Readiness()> readiness;
    std::function<std::string()> metrics;
  };

  // Binds `addr` (SO_REUSEADDR, IPV6_V6ONLY) and starts serving; null + error.
  static std::unique_ptr<MetricsEndpoint> start(event_base* base, const net::SocketAddress& addr, Hooks hooks,
                                                std::string* error);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  const net::SocketAddress& address() const { return addr_; }

 private:
  MetricsEndpoint() = default;
  using ConnListener = sys::CHandle<evconnlistener, evconnlistener_free>;
  using BufferEvent = sys::CHandle<bufferevent, bufferevent_free>;
  struct Client {
    MetricsEndpoint* ep = nullptr;
    BufferEvent bev;
    bool responded = false;
  };
  static void accept_cb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  static void read_cb(bufferevent* bev, void* arg);
  static void write_cb(bufferevent* bev, void* arg);
  static void event_cb(bufferevent* bev, short what, void* arg);
  void respond(Client* c, const TelemetryResponse& r, bool head);
  void drop(Client* c);

  event_base* base_ = nullptr;
  net::SocketAddress addr_;
  Hooks hooks_;
  ConnListener listener_;
  std::unordered_map<Client*, std::unique_ptr<Client>> clients_;
};

}  // namespace huginn::supervisor
