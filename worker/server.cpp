#include "worker/server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <vector>

#include "common/sys/log.h"
#include "worker/net/acceptor.h"
#include "worker/net/bulk_io.h"
#include "worker/net/cleartext_sniffer.h"
#include "worker/net/event_handles.h"
#include "worker/net/h2c_upstream.h"
#include "worker/net/http1_connection.h"
#include "worker/net/http2_connection.h"
#include "worker/net/proxy_header_stage.h"
#include "worker/net/tls_shutdown.h"
#include "worker/net/tls_stage.h"
#include "worker/net/worker_context.h"
#include "worker/proxy/fingerprint_memo.h"
#include "worker/syn/tcp_syn.h"

namespace huginn::worker {

namespace {

// "1.2.3.4" / "2001:db8::1" of a peer; IPv4-mapped IPv6 becomes IPv4.
std::string ip_of(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    const auto* a6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
      inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], buf, sizeof buf);
    else
      inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

uint16_t local_port_of(evutil_socket_t fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

int64_t now_ms() { return static_cast<int64_t>(net::metrics_clock_us() / 1000); }

}  // namespace

struct Server::Impl {
  Impl(event_base* base, std::shared_ptr<const config::Config> config);
  ~Impl();

  static void accept_cb(sys::UniqueFd fd, const sockaddr* sa, socklen_t socklen, void* arg);
  // net::Acceptor's yield policy: this worker leaves a connection to its
  // siblings while it holds more than its share of the host's connections.
  static bool yield_cb(void* arg);
  // Lingering close (WorkerContext::linger).
  struct Lingering {
    Impl* impl = nullptr;
    net::BufferEventPtr bev;
    size_t discarded = 0;
  };
  void linger(net::BufferEventPtr bev);
  void end_linger(Lingering* l);
  static void linger_read_cb(bufferevent* bev, void* arg);
  static void linger_event_cb(bufferevent* bev, short what, void* arg);
  void connection_closed(net::Connection* c);
  // `http`: an HTTP/1.1 or HTTP/2 connection, whose lifetime feeds
  // mean_life_ms (a stage's would not: it hands its socket over).
  void adopt(std::unique_ptr<net::Connection> conn, bool http = false);
  // max_connections. Every Connection in `conns` holds one unit of the
  // host-wide count (HOST_STATE region; without one, conns.size() is the
  // count). accept_cb takes the unit with the limit check and hands it to
  // the first adopt() for that socket (AcceptPermit); a stage handing its
  // socket over (start_http) takes one more unit for the successor, without
  // the check, before the stage reports itself closed and gives its unit back.
  struct AcceptPermit {
    Impl* impl = nullptr;
    bool held = false;
    ~AcceptPermit();
  };
  bool take_connection();
  void count_connection();
  void release_connection();
  AcceptPermit* accept_permit = nullptr;  // set while accept_cb runs
  void start_http(net::BufferEventPtr transport, net::ClientInfo info, bool h2);
  // An accepted socket past the PROXY stage (if any): SYN lookup, then the
  // TLS stage or the cleartext sniffer.
  void dispatch(net::AcceptedClient c);
  void maybe_drained();

  net::WorkerContext ctx;
  // Idle h2c backend connections; destroyed after every connection (~Impl clears those first).
  std::unique_ptr<net::H2cPool> h2c_pool;
  struct Listener {
    Impl* impl = nullptr;
    ListenerSpec spec;
    std::unique_ptr<net::Acceptor> acceptor;
    // The listening socket's port, which every socket it accepts has as its
    // local port (one getsockname here instead of one per connection).
    uint16_t port = 0;
  };
  std::vector<std::unique_ptr<Listener>> listeners;
  // Listeners stopped by drain(), closed one loop turn later by
  // close_listeners_ev (net::new_event_base: with epoll's change list, a
  // shared listening socket closed in the turn its event is deleted would
  // stay in the epoll set and wake this worker forever).
  std::vector<std::unique_ptr<Listener>> stopped_listeners;
  net::EventPtr close_listeners_ev;
  static void close_listeners_cb(evutil_socket_t, short, void* arg);
  // Every client connection in any stage (sniffing, TLS handshake, HTTP).
  struct Held {
    std::unique_ptr<net::Connection> conn;
    int64_t since_ms = -1;  // now_ms() at adoption; -1 for a stage (no lifetime sample)
  };
  std::unordered_map<net::Connection*, Held> conns;
  // Mean lifetime (ms, from the start of HTTP to the close) of this worker's
  // recently closed HTTP connections, weighted 1/8 per close: the yield
  // policy's estimate of how long the next one lives. Not the stages (TLS
  // handshake, sniffer, PROXY header): every connection passes one in about
  // a millisecond, long-lived or not. Starts long (the strict policy).
  int64_t mean_life_ms = 60'000;
  const syn::TcpSynResolver* syn = nullptr;  // owned by the caller; null = no TCP fingerprints
  // Newest TLS material from the supervisor (null until the first TLS_MATERIAL).
  std::shared_ptr<const huginn::tls::Bundle> tls_bundle;
  // SSL_CTXs built from it; handshakes in progress keep the set they started with.
  std::shared_ptr<const tls::ContextSet> tls_contexts;
  std::unordered_map<Lingering*, std::unique_ptr<Lingering>> lingering;
  // Closed connections and finished lingering closes, freed from the loop;
  // each turn then checks whether a drain is complete.
  net::Graveyard graveyard{[this] { maybe_drained(); }};
  uint64_t total_connections = 0;
  std::function<void()> on_drained;
};

Server::Impl::Impl(event_base* base, std::shared_ptr<const config::Config> config) {
  ctx.base = base;
  ctx.cfg = std::move(config);
  ctx.router = std::make_unique<proxy::Router>(*ctx.cfg);
  ctx.ip_filters = std::make_unique<proxy::IpFilterSet>(*ctx.cfg);
  ctx.limits.max_header_bytes = ctx.cfg->limits.max_header_bytes;
  ctx.limits.max_headers = ctx.cfg->limits.max_headers;
  ctx.endpoints = proxy::resolve_backends(*ctx.cfg);
  ctx.pool = std::make_unique<proxy::UpstreamPool>(ctx.cfg->backend_pool, ctx.cfg->backends.size());
  h2c_pool = std::make_unique<net::H2cPool>(base, ctx.cfg->backend_pool, ctx.cfg->backends.size());
  ctx.h2c_pool = h2c_pool.get();
  ctx.on_closed = [this](net::Connection* c) { connection_closed(c); };
  ctx.linger = [this](net::BufferEventPtr bev) { linger(std::move(bev)); };
  ctx.start_http = [this](net::BufferEventPtr transport, net::ClientInfo info, bool h2) {
    start_http(std::move(transport), std::move(info), h2);
  };
}

Server::Impl::~Impl() {
  listeners.clear();
  stopped_listeners.clear();
  for (size_t i = 0; i < conns.size(); ++i) release_connection();
  conns.clear();
  graveyard.reap();
  lingering.clear();
  ctx.reaper.reap();  // retired exchanges may hold pooled or h2c connections
  ctx.pool->clear();
  h2c_pool->clear();
}

void Server::Impl::accept_cb(sys::UniqueFd fd, const sockaddr* sa, socklen_t socklen, void* arg) {
  auto* l = static_cast<Listener*>(arg);
  Impl* self = l->impl;
  if (self->ctx.draining) return;  // closes fd
  if (!self->take_connection()) {
    HLOG_DEBUG("max_connections (%u) reached: refusing %s", self->ctx.cfg->security.max_connections,
               ip_of(sa).c_str());
    if (self->ctx.metrics) self->ctx.metrics->connection_rejected();
    return;
  }
  // Given back when this function returns without adopting the socket.
  AcceptPermit permit{self, true};
  self->accept_permit = &permit;
  ++self->total_connections;
  if (self->ctx.metrics) self->ctx.metrics->connection_accepted();
  // accepted_ns bounds the SYN lookup, which happens in dispatch() after any
  // PROXY header: only records captured before this accept count
  // (worker/syn/syn_source.h explains the rule).
  net::AcceptedClient c;
  c.accepted_ns = syn::monotonic_ns();
  c.fd = std::move(fd);  // accepted with SOCK_NONBLOCK
  c.info.peer_ip = ip_of(sa);
  c.info.local_port = l->port;
  c.tls = l->spec.tls;
  if (auto peer = huginn::net::SocketAddress::from_sockaddr(sa, socklen)) c.peer = *peer;
  const config::ProxyProtocol::Mode pp_mode = self->ctx.cfg->listen.proxy_protocol.mode;
  if (pp_mode != config::ProxyProtocol::Mode::kOff) {
    if (net::proxy_peer_trusted(self->ctx.cfg->security.trusted_proxies, c.peer)) {
      self->adopt(std::make_unique<net::ProxyHeaderStage>(
          self->ctx, std::move(c), [self](net::AcceptedClient next) { self->dispatch(std::move(next)); }));
      return;
    }
    if (pp_mode == config::ProxyProtocol::Mode::kRequire) {
      HLOG_DEBUG("client %s: not a trusted proxy and PROXY protocol is required: dropped",
                 c.info.peer_ip.c_str());
      if (self->ctx.metrics)
        self->ctx.metrics->proxy_protocol(metrics::ProxyProtocolEvent::kDroppedUntrusted);
      return;  // closes c.fd
    }
  }
  self->dispatch(std::move(c));
}

void Server::Impl::dispatch(net::AcceptedClient c) {
  const int fd = c.fd.get();
  if (syn && ctx.cfg->fingerprint.tcp_enabled && (c.proxied || c.peer.family() != AF_UNSPEC)) {
    // With a PROXY header the socket's own SYN (TCP_SAVED_SYN) is the
    // proxy's, not the client's: only an XDP record keyed by the client's
    // address and port can be the client's SYN (kNoSocket).
    syn::SynTrace trace;
    auto fields = c.proxied ? syn->resolve(syn::TcpSynResolver::kNoSocket, *c.proxied, c.accepted_ns, &trace)
                            : syn->resolve(fd, c.peer, c.accepted_ns, &trace);
    if (fields)
      c.info.fingerprints =
          proxy::FingerprintMemo::for_this_thread().with_tcp(c.info.fingerprints, *fields, ctx.metrics);
    if (ctx.metrics) {
      ctx.metrics->syn_lookup(fields.has_value());
      std::array<metrics::SynLookupEvent, 3> events;
      const size_t n = syn::syn_lookup_events(trace, events);
      for (size_t i = 0; i < n; ++i) ctx.metrics->syn_source(events[i]);
    }
  }
  // TCP_NODELAY is inherited from the listener (add_listener).
  if (c.tls) {
    if (!tls_contexts) {  // cannot happen after READY: the worker waits for its material
      HLOG_ERROR("no TLS material yet; closing %s", c.info.peer_ip.c_str());
      return;
    }
    // One deadline for the PROXY header and the handshake together.
    const uint64_t spent_ms = (syn::monotonic_ns() - c.accepted_ns) / 1000000;
    std::vector<uint8_t> initial(c.initial_bytes.begin(), c.initial_bytes.end());
    adopt(std::make_unique<net::TlsStage>(ctx, std::move(c.fd), tls_contexts, std::move(c.info),
                                          std::move(initial), spent_ms));
    return;
  }
  net::BufferEventPtr bev(bufferevent_socket_new(ctx.base, fd, BEV_OPT_CLOSE_ON_FREE));
  if (!bev) return;
  c.fd.release();  // owned by bev now
  // Bytes read past a PROXY header: the sniffer finds them in the input
  // buffer. A socket bufferevent keeps the end of its input frozen (only its
  // own reads append), so thaw it for this one append.
  if (!c.initial_bytes.empty()) {
    evbuffer* in = bufferevent_get_input(bev.get());
    evbuffer_unfreeze(in, 0);
    const int added = evbuffer_add(in, c.initial_bytes.data(), c.initial_bytes.size());
    evbuffer_freeze(in, 0);
    if (added != 0) return;
  }
  adopt(std::make_unique<net::CleartextSniffer>(ctx, std::move(bev), std::move(c.info)));
}

Server::Impl::AcceptPermit::~AcceptPermit() {
  if (impl->accept_permit == this) impl->accept_permit = nullptr;
  if (held) impl->release_connection();
}

bool Server::Impl::yield_cb(void* arg) {
  const Impl* self = static_cast<Listener*>(arg)->impl;
  const int64_t workers = self->ctx.cfg->workers;
  if (self->ctx.host_state == nullptr || workers < 2) return false;
  // net::fair_share_yield. Connections of an older generation that is
  // draining count in the host total, which only makes the rule more lenient.
  const int64_t mine = self->ctx.host_state->slot_count(self->ctx.host_slot);
  const int64_t total = self->ctx.host_state->active();
  const bool short_lived = self->mean_life_ms < net::kShortLivedMs;
  return net::fair_share_yield(mine, total, workers, short_lived);
}

bool Server::Impl::take_connection() {
  const uint32_t max = ctx.cfg->security.max_connections;
  if (ctx.host_state) return ctx.host_state->add(ctx.host_slot, max);
  return conns.size() < max;
}

void Server::Impl::count_connection() {
  if (ctx.host_state) ctx.host_state->add(ctx.host_slot, std::numeric_limits<uint32_t>::max());
}

void Server::Impl::release_connection() {
  if (!ctx.host_state) return;
  ctx.host_state->remove(ctx.host_slot);
  // A listener sitting out a yield may be under its share now.
  for (auto& l : listeners) l->acceptor->reconsider();
}

void Server::Impl::adopt(std::unique_ptr<net::Connection> conn, bool http) {
  if (accept_permit) {
    accept_permit->held = false;  // the accepted socket's unit moves to the connection
    accept_permit = nullptr;
  } else {
    count_connection();
  }
  net::Connection* raw = conn.get();
  conns.emplace(raw, Held{std::move(conn), http ? now_ms() : -1});
  if (ctx.metrics) ctx.metrics->set_active_connections(conns.size());
  raw->start();  // on failure it has already reported itself closed
}

void Server::Impl::start_http(net::BufferEventPtr transport, net::ClientInfo info, bool h2) {
  if (h2) {
    adopt(std::make_unique<net::Http2Connection>(ctx, std::move(transport), std::move(info)), true);
  } else {
    adopt(std::make_unique<net::Http1Connection>(ctx, std::move(transport), std::move(info)), true);
  }
}

void Server::Impl::connection_closed(net::Connection* c) {
  auto it = conns.find(c);
  if (it == conns.end()) return;
  if (it->second.since_ms >= 0) mean_life_ms += (now_ms() - it->second.since_ms - mean_life_ms) / 8;
  graveyard.bury(ctx.base, std::move(it->second.conn));
  conns.erase(it);
  release_connection();
  if (ctx.metrics) ctx.metrics->set_active_connections(conns.size());
}

void Server::Impl::linger(net::BufferEventPtr bev) {
  if (!bev) return;
  const bool shut = net::send_close_notify(bev.get());
  if (lingering.size() >= net::kMaxLingering) return;  // freed (closed) here
  const evutil_socket_t fd = bufferevent_getfd(bev.get());
  if (fd < 0 || (!shut && ::shutdown(fd, SHUT_WR) != 0)) return;
  auto l = std::make_unique<Lingering>();
  l->impl = this;
  l->bev = std::move(bev);
  evbuffer_drain(bufferevent_get_input(l->bev.get()),
                 evbuffer_get_length(bufferevent_get_input(l->bev.get())));
  bufferevent_setcb(l->bev.get(), &linger_read_cb, nullptr, &linger_event_cb, l.get());
  bufferevent_setwatermark(l->bev.get(), EV_READ, 0, 0);
  const timeval tv = net::to_timeval(net::kLingerMs);
  bufferevent_set_timeouts(l->bev.get(), &tv, nullptr);
  bufferevent_disable(l->bev.get(), EV_WRITE);
  bufferevent_enable(l->bev.get(), EV_READ);
  net::read_tls_pending(l->bev.get());  // client bytes OpenSSL holds are read (and discarded) too
  Lingering* raw = l.get();
  lingering.emplace(raw, std::move(l));
}

void Server::Impl::end_linger(Lingering* l) {
  auto it = lingering.find(l);
  if (it == lingering.end()) return;
  bufferevent_disable(l->bev.get(), EV_READ | EV_WRITE);
  bufferevent_setcb(l->bev.get(), nullptr, nullptr, nullptr, nullptr);
  graveyard.bury(ctx.base, std::move(it->second));
  lingering.erase(it);
}

void Server::Impl::linger_read_cb(bufferevent* bev, void* arg) {
  auto* l = static_cast<Lingering*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  l->discarded += evbuffer_get_length(in);
  evbuffer_drain(in, evbuffer_get_length(in));
  if (l->discarded > net::kLingerMaxBytes) l->impl->end_linger(l);
}

void Server::Impl::linger_event_cb(bufferevent*, short, void* arg) {
  auto* l = static_cast<Lingering*>(arg);
  l->impl->end_linger(l);  // EOF, error or timeout
}

void Server::Impl::close_listeners_cb(evutil_socket_t, short, void* arg) {
  static_cast<Impl*>(arg)->stopped_listeners.clear();
}

void Server::Impl::maybe_drained() {
  if (!ctx.draining || !conns.empty() || !on_drained) return;
  ctx.pool->clear();
  h2c_pool->clear();
  auto cb = std::move(on_drained);
  on_drained = nullptr;
  cb();  // may destroy the Server: nothing touches `this` afterwards
}

Server::Server(event_base* base, std::shared_ptr<const config::Config> cfg)
    : impl_(std::make_unique<Impl>(base, std::move(cfg))) {}

Server::~Server() = default;

bool Server::set_tls_bundle(std::shared_ptr<const huginn::tls::Bundle> bundle) {
  if (!bundle || !impl_->ctx.cfg->tls) return false;
  std::string err;
  auto contexts = tls::ContextSet::build(impl_->ctx.cfg, bundle, &err);
  if (!contexts) {
    HLOG_ERROR("TLS material %llu rejected, keeping the previous one: %s",
               static_cast<unsigned long long>(bundle->serial), err.c_str());
    return false;
  }
  HLOG_INFO("TLS material %llu in use (%zu certificates, %zu ticket keys)",
            static_cast<unsigned long long>(bundle->serial), contexts->context_count(),
            bundle->ticket_keys.size());
  impl_->tls_bundle = std::move(bundle);
  impl_->tls_contexts = std::move(contexts);
  return true;
}

bool Server::add_listener(sys::UniqueFd fd, const ListenerSpec& spec) {
  if (!fd || impl_->ctx.draining) return false;
  auto l = std::make_unique<Impl::Listener>();
  l->impl = impl_.get();
  l->spec = spec;
  l->port = local_port_of(fd.get());
  // Every accepted socket inherits TCP_NODELAY from the listener: one system
  // call per listener instead of one per connection. The supervisor sets it
  // before listen() already (connections queued before this call have it);
  // set here too for listeners that come from elsewhere.
  int one = 1;
  if (setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    HLOG_ERROR("listener %u: TCP_NODELAY: %s", spec.id, std::strerror(errno));
    return false;
  }
  // The socket is already listening (bound by the supervisor).
  l->acceptor =
      net::Acceptor::create(impl_->ctx.base, std::move(fd), &Impl::accept_cb, l.get(), &Impl::yield_cb);
  if (!l->acceptor || !l->acceptor->enable()) return false;
  impl_->listeners.push_back(std::move(l));
  return true;
}

void Server::drain(std::function<void()> on_drained) {
  Impl& i = *impl_;
  i.on_drained = std::move(on_drained);
  i.graveyard.wake(i.ctx.base);  // report "drained" from the loop, not from here
  if (i.ctx.draining) return;
  i.ctx.draining = true;
  for (auto& l : i.listeners) l->acceptor->disable();
  i.stopped_listeners = std::move(i.listeners);
  i.listeners.clear();
  // A zero timeout runs in the next turn, after epoll_wait: the change list
  // (with the listeners' EPOLL_CTL_DEL) is applied by then.
  const timeval now{0, 0};
  if (!i.close_listeners_ev)
    i.close_listeners_ev.reset(evtimer_new(i.ctx.base, &Impl::close_listeners_cb, &i));
  if (!i.close_listeners_ev || evtimer_add(i.close_listeners_ev.get(), &now) != 0)
    HLOG_WARN("drain: cannot schedule closing the listeners; they close at exit");
  i.ctx.pool->clear();
  i.h2c_pool->clear();
  std::vector<net::Connection*> all;
  all.reserve(i.conns.size());
  for (auto& [raw, owned] : i.conns) all.push_back(raw);
  for (auto* c : all) c->drain();  // may move c to the graveyard
}

void Server::set_syn_resolver(const syn::TcpSynResolver* resolver) { impl_->syn = resolver; }

void Server::set_metrics(metrics::Slot* slot) { impl_->ctx.metrics = slot; }

void Server::set_host_state(hoststate::Region* region, uint32_t slot) {
  impl_->ctx.host_state = region;
  impl_->ctx.host_slot = slot;
}

bool Server::set_backend_health(const std::vector<uint8_t>& states) {
  return impl_->ctx.router->set_health(states);
}

ServerStats Server::stats() const {
  ServerStats s;
  s.active_connections = impl_->conns.size();
  s.total_connections = impl_->total_connections;
  s.total_requests = impl_->ctx.total_requests;
  s.mean_connection_life_ms = impl_->mean_life_ms;
  return s;
}

}  // namespace huginn::worker
