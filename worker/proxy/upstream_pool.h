// Backend addresses and the per-worker keep-alive pool of idle backend
// connections.
//
// Backends are resolved once (blocking getaddrinfo) when the Server is built,
// before the sandbox; the first address returned is used. A pooled connection
// is an idle, connected bufferevent: the pool watches it (EOF, error, or any
// unsolicited byte closes it) and closes it after `[backend_pool]
// idle_timeout`. At most `pool_max_idle_per_host` idle connections are kept
// per backend (0 = no limit); `enabled = false` keeps none.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "common/config/model.h"
#include "worker/net/event_handles.h"

namespace huginn::worker::proxy {

struct BackendEndpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  bool resolved = false;
};

// Resolves "host" and port of every backend; unresolvable ones stay
// unresolved (requests to them get 502) and are logged.
std::vector<BackendEndpoint> resolve_backends(const config::Config& cfg);

class UpstreamPool {
 public:
  UpstreamPool(const config::BackendPool& cfg, size_t backends);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  bool enabled() const { return cfg_.enabled; }
  // An idle connection to backend `index`, with no callbacks set, or null.
  net::BufferEventPtr acquire(size_t index);
  // Offers a connected, idle bufferevent back; it is closed when the pool is
  // disabled or full.
  void release(size_t index, net::BufferEventPtr bev);
  size_t idle_count(size_t index) const;
  void clear();

 private:
  struct Idle {
    UpstreamPool* pool = nullptr;
    size_t index = 0;
    net::BufferEventPtr bev;
    std::list<Idle>::iterator self;
  };
  static void on_read(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  void drop(Idle* idle);

  // Takes a node for `list` from spare_ (or a new one), at its end.
  Idle& push_node(std::list<Idle>& list);

  config::BackendPool cfg_;
  std::vector<std::list<Idle>> idle_;
  // Emptied nodes (no bufferevent), spliced back by release(): a request that
  // takes a pooled connection and gives it back allocates nothing. At most
  // as many as were idle at once.
  std::list<Idle> spare_;
};

}  // namespace huginn::worker::proxy
