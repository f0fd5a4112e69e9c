// The worker's data path: accepts on inherited listeners and proxies HTTP.
//
// Owned by worker/main.cpp, which creates the event_base, receives the
// listening sockets and the config from the supervisor, sandboxes the process
// and then hands the sockets to a Server. Everything after accept() lives
// behind this interface (connections, HTTP/1 codec, router, upstream pool).
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/config/model.h"
#include "common/hoststate/region.h"
#include "common/metrics/table.h"
#include "common/net/address.h"
#include "common/sys/unique_fd.h"
#include "common/tls/bundle.h"

namespace huginn::worker {

namespace syn {
class TcpSynResolver;
}

struct ListenerSpec {
  uint32_t id = 0;
  huginn::net::SocketAddress address;  // the bound address
  bool tls = false;
};

struct ServerStats {
  uint64_t active_connections = 0;
  uint64_t total_connections = 0;
  uint64_t total_requests = 0;
  // The accept policy's estimate of how long a connection lives: the mean
  // lifetime of the recently closed HTTP connections (net::fair_share_yield).
  int64_t mean_connection_life_ms = 0;
};

class Server {
 public:
  // Builds routing tables from `cfg`. Backend host names are resolved here
  // (blocking getaddrinfo), before the sandbox is entered.
  Server(event_base* base, std::shared_ptr<const config::Config> cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts accepting on `fd`, a bound, listening socket (made non-blocking
  // here; TCP_NODELAY is set on it, so every accepted socket has it).
  bool add_listener(sys::UniqueFd fd, const ListenerSpec& spec);

  // Graceful stop: close the listeners, close idle keep-alive connections,
  // answer in-flight requests with `Connection: close`, and call `on_drained`
  // once no connection is left (possibly immediately).
  void drain(std::function<void()> on_drained);

  ServerStats stats() const;

  // The TCP SYN source (XDP maps and/or TCP_SAVED_SYN) consulted once per
  // accepted connection for the x-huginn-net-tcp fingerprint; null = none.
  // Not owned; must outlive the Server.
  void set_syn_resolver(const syn::TcpSynResolver* resolver);

  // This worker's slot of the shared metrics table; null = no metrics. Not
  // owned; must outlive the Server.
  void set_metrics(metrics::Slot* slot);

  // The host-wide state region (HOST_STATE) and this worker's slot in it:
  // max_connections counts every worker of the host, and rate limits use its
  // bucket table. Null (unit tests): max_connections per worker, no rate
  // limiting. Not owned; must outlive the Server. Call before add_listener.
  void set_host_state(hoststate::Region* region, uint32_t slot);

  // The TLS material from the supervisor (TLS_MATERIAL): certificates, keys,
  // client CAs and session-ticket keys. Called before the first TLS listener
  // is added and again whenever the supervisor sends a newer bundle. New
  // handshakes use it; connections already up keep theirs. False (logged)
  // when the SSL_CTXs cannot be built from it; the previous set stays.
  bool set_tls_bundle(std::shared_ptr<const huginn::tls::Bundle> bundle);

  // Backend states from the supervisor's health checks (HEALTH): one byte per
  // Config::backends entry, 1 healthy / 0 down. Round-robin skips down
  // backends from the next request on. False when the count does not match.
  bool set_backend_health(const std::vector<uint8_t>& states);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace huginn::worker
