#include "worker/server.h"

#include <arpa/inet.h>
#include <event2/listener.h>
#include <sys/socket.h>

#include <cstring>
#include <unordered_map>
#include <vector>

#include "common/fingerprint/p0f.h"
#include "common/sys/log.h"
#include "worker/net/event_handles.h"
#include "worker/net/http1_connection.h"
#include "worker/net/worker_context.h"
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

}  // namespace

struct Server::Impl {
  Impl(event_base* base, std::shared_ptr<const config::Config> config);
  ~Impl();

  static void accept_cb(evconnlistener* l, evutil_socket_t fd, sockaddr* sa, int socklen, void* arg);
  static void accept_error_cb(evconnlistener* l, void* arg);
  static void reap_cb(evutil_socket_t, short, void* arg);
  void connection_closed(net::Http1Connection* c);
  void maybe_drained();

  net::WorkerContext ctx;
  struct Listener {
    Impl* impl = nullptr;
    ListenerSpec spec;
    net::ListenerPtr ev;
  };
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unordered_map<net::Http1Connection*, std::unique_ptr<net::Http1Connection>> conns;
  const syn::TcpSynResolver* syn = nullptr;  // owned by the caller; null = no TCP fingerprints
  std::vector<std::unique_ptr<net::Http1Connection>> graveyard;
  net::EventPtr reaper;
  uint64_t total_connections = 0;
  std::function<void()> on_drained;
};

Server::Impl::Impl(event_base* base, std::shared_ptr<const config::Config> config) {
  ctx.base = base;
  ctx.cfg = std::move(config);
  ctx.router = std::make_unique<proxy::Router>(*ctx.cfg);
  ctx.limits.max_header_bytes = ctx.cfg->limits.max_header_bytes;
  ctx.limits.max_headers = ctx.cfg->limits.max_headers;
  ctx.endpoints = proxy::resolve_backends(*ctx.cfg);
  ctx.pool = std::make_unique<proxy::UpstreamPool>(ctx.cfg->backend_pool, ctx.cfg->backends.size());
  ctx.on_closed = [this](net::Http1Connection* c) { connection_closed(c); };
  reaper.reset(event_new(base, -1, 0, &Impl::reap_cb, this));
}

Server::Impl::~Impl() {
  listeners.clear();
  conns.clear();
  graveyard.clear();
  ctx.pool->clear();
}

void Server::Impl::accept_cb(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int socklen, void* arg) {
  auto* l = static_cast<Listener*>(arg);
  Impl* self = l->impl;
  if (self->ctx.draining) {
    evutil_closesocket(fd);
    return;
  }
  if (self->conns.size() >= self->ctx.cfg->security.max_connections) {
    HLOG_DEBUG("max_connections (%u) reached: refusing %s", self->ctx.cfg->security.max_connections,
               ip_of(sa).c_str());
    evutil_closesocket(fd);
    return;
  }
  ++self->total_connections;
  // The SYN is looked up right at accept: the XDP record must not be older
  // than this connection (worker/syn/syn_source.h explains the rule).
  const uint64_t accepted_ns = syn::monotonic_ns();
  auto conn = std::make_unique<net::Http1Connection>(self->ctx, fd, ip_of(sa), local_port_of(fd));
  net::Http1Connection* raw = conn.get();
  if (self->syn && self->ctx.cfg->fingerprint.tcp_enabled) {
    if (auto peer = huginn::net::SocketAddress::from_sockaddr(sa, socklen)) {
      if (auto fields = self->syn->resolve(fd, *peer, accepted_ns))
        raw->fingerprints().tcp = fp::p0f_raw_sig(*fields);
    }
  }
  self->conns.emplace(raw, std::move(conn));
  raw->start();  // on failure it has already reported itself closed
}

void Server::Impl::accept_error_cb(evconnlistener*, void* arg) {
  auto* l = static_cast<Listener*>(arg);
  const int err = EVUTIL_SOCKET_ERROR();
  // EMFILE/ENFILE/ENOBUFS: keep listening; the next accept may succeed.
  HLOG_WARN("listener %u: accept: %s", l->spec.id, evutil_socket_error_to_string(err));
}

void Server::Impl::connection_closed(net::Http1Connection* c) {
  auto it = conns.find(c);
  if (it == conns.end()) return;
  graveyard.push_back(std::move(it->second));
  conns.erase(it);
  event_active(reaper.get(), 0, 0);
}

void Server::Impl::reap_cb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  self->graveyard.clear();
  self->maybe_drained();
}

void Server::Impl::maybe_drained() {
  if (!ctx.draining || !conns.empty() || !on_drained) return;
  ctx.pool->clear();
  auto cb = std::move(on_drained);
  on_drained = nullptr;
  cb();  // may destroy the Server: nothing touches `this` afterwards
}

Server::Server(event_base* base, std::shared_ptr<const config::Config> cfg)
    : impl_(std::make_unique<Impl>(base, std::move(cfg))) {}

Server::~Server() = default;

bool Server::add_listener(sys::UniqueFd fd, const ListenerSpec& spec) {
  if (!fd || impl_->ctx.draining) return false;
  if (spec.tls) {
    HLOG_ERROR("listener %u: TLS listeners are not served by this worker yet", spec.id);
    return false;
  }
  if (evutil_make_socket_nonblocking(fd.get()) != 0) return false;
  auto l = std::make_unique<Impl::Listener>();
  l->impl = impl_.get();
  l->spec = spec;
  // backlog 0: the socket is already listening (bound by the supervisor).
  l->ev.reset(
      evconnlistener_new(impl_->ctx.base, &Impl::accept_cb, l.get(), LEV_OPT_CLOSE_ON_FREE, 0, fd.get()));
  if (!l->ev) return false;
  fd.release();  // owned by the listener now
  evconnlistener_set_error_cb(l->ev.get(), &Impl::accept_error_cb);
  impl_->listeners.push_back(std::move(l));
  return true;
}

void Server::drain(std::function<void()> on_drained) {
  Impl& i = *impl_;
  i.on_drained = std::move(on_drained);
  event_active(i.reaper.get(), 0, 0);  // report "drained" from the loop, not from here
  if (i.ctx.draining) return;
  i.ctx.draining = true;
  i.listeners.clear();
  i.ctx.pool->clear();
  std::vector<net::Http1Connection*> all;
  all.reserve(i.conns.size());
  for (auto& [raw, owned] : i.conns) all.push_back(raw);
  for (auto* c : all) c->drain();  // may move c to the graveyard
}

void Server::set_syn_resolver(const syn::TcpSynResolver* resolver) { impl_->syn = resolver; }

ServerStats Server::stats() const {
  ServerStats s;
  s.active_connections = impl_->conns.size();
  s.total_connections = impl_->total_connections;
  s.total_requests = impl_->ctx.total_requests;
  return s;
}

}  // namespace huginn::worker
