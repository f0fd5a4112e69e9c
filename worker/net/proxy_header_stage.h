// The first stage of a connection on a listener with `[listen.proxy_protocol]
// mode = optional | require` whose socket peer is a trusted proxy
// (`security.trusted_proxies`): reads the PROXY protocol v1/v2 header
// (common/net/proxy_protocol.h) from the raw socket, bounded by
// `header_timeout_ms` and proxy_protocol::kMaxHeaderLength bytes, then hands
// the socket on (AcceptedClient) with the client address the header carries
// and the bytes read past the header (the client's first TLS or HTTP bytes).
// Server::Impl decides who gets here (proxy_peer_trusted) and what follows
// (SYN lookup, TLS stage or cleartext sniffer).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/config/model.h"
#include "common/metrics/layout.h"
#include "common/net/address.h"
#include "common/sys/unique_fd.h"
#include "worker/net/connection.h"
#include "worker/net/event_handles.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::net {

// An accepted socket on its way to the TLS stage or the cleartext sniffer.
struct AcceptedClient {
  sys::UniqueFd fd;
  ClientInfo info;                  // peer_ip: the effective client address
  huginn::net::SocketAddress peer;  // getpeername of fd
  // The client named by a PROXY header (IPv4-mapped unwrapped); empty = the
  // socket peer is the client.
  std::optional<huginn::net::SocketAddress> proxied;
  uint64_t accepted_ns = 0;   // syn::monotonic_ns() right after accept()
  bool tls = false;           // the listener speaks TLS
  std::string initial_bytes;  // read from fd past the PROXY header
};

// Pure: may `peer` (a socket peer) send a PROXY header? trusted_proxies.cidrs
// (IPv4-mapped peers match IPv4 prefixes) or trusted_proxies.insecure.
bool proxy_peer_trusted(const config::TrustedProxies& trusted, const huginn::net::SocketAddress& peer);

// Pure: what to do with the bytes a trusted peer has sent so far.
struct HeaderVerdict {
  enum class Action { kWait, kProceed, kDrop };
  Action action = Action::kWait;
  // kProceed: the header's client (normalised), or empty = keep the socket peer.
  std::optional<huginn::net::SocketAddress> client;
  size_t consumed = 0;                               // kProceed: header bytes to skip (0 without a header)
  std::optional<metrics::ProxyProtocolEvent> event;  // what to count
  const char* reason = nullptr;                      // kDrop: for the log
};
// `received`: every byte read so far; `eof`: the peer closed its side;
// `timed_out`: header_timeout_ms has passed. In optional mode a peer that has
// sent nothing when the time is up is a direct client (it may be a proxy that
// does not speak PROXY protocol, whose client has not sent yet); a peer that
// started a header and did not finish it is dropped. A connection closed
// before any byte is dropped uncounted (a TCP health check).
HeaderVerdict judge_proxy_header(config::ProxyProtocol::Mode mode, std::string_view received, bool eof,
                                 bool timed_out);

class ProxyHeaderStage : public Connection {
 public:
  using NextFn = std::function<void(AcceptedClient client)>;
  // `next` gets the socket once the header is known (with AcceptedClient
  // updated); it is not called when the connection is dropped.
  ProxyHeaderStage(WorkerContext& ctx, AcceptedClient client, NextFn next);
  ~ProxyHeaderStage() override;
  ProxyHeaderStage(const ProxyHeaderStage&) = delete;
  ProxyHeaderStage& operator=(const ProxyHeaderStage&) = delete;

  bool start() override;
  // Bounded by header_timeout_ms (at most 60 s): let it finish.
  void drain() override {}
  bool closed() const override { return closed_; }

 private:
  static void on_read(evutil_socket_t, short, void* arg);
  static void on_deadline(evutil_socket_t, short, void* arg);
  void read_some();
  void apply(const HeaderVerdict& v);
  void finish();

  WorkerContext& ctx_;
  AcceptedClient client_;
  NextFn next_;
  std::string buf_;
  EventPtr read_ev_;
  EventPtr deadline_ev_;
  bool closed_ = false;
};

}  // namespace huginn::worker::net
