#include "worker/net/proxy_header_stage.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/net/proxy_protocol.h"
#include "common/sys/log.h"

namespace huginn::worker::net {

namespace pp = huginn::net::proxy_protocol;
using Event = metrics::ProxyProtocolEvent;
using Mode = config::ProxyProtocol::Mode;

bool proxy_peer_trusted(const config::TrustedProxies& trusted, const huginn::net::SocketAddress& peer) {
  if (trusted.insecure) return true;
  for (const auto& c : trusted.cidrs)
    if (c.contains(peer)) return true;
  return false;
}

HeaderVerdict judge_proxy_header(Mode mode, std::string_view received, bool eof, bool timed_out) {
  HeaderVerdict v;
  const pp::Result r = pp::parse(received);
  switch (r.status) {
    case pp::Status::kDone:
      v.action = HeaderVerdict::Action::kProceed;
      v.consumed = r.header.length;
      if (r.header.carries_client()) {
        v.client = r.header.source.normalized();
        v.event = Event::kAccepted;
      } else {
        v.event = Event::kNoClientAddr;
      }
      return v;
    case pp::Status::kError:
      v.action = HeaderVerdict::Action::kDrop;
      v.event = Event::kDroppedBadHeader;
      v.reason = r.error;
      return v;
    case pp::Status::kNotProxy:
      if (mode == Mode::kRequire) {
        v.action = HeaderVerdict::Action::kDrop;
        v.event = Event::kDroppedBadHeader;
        v.reason = "no PROXY header";
      } else {
        v.action = HeaderVerdict::Action::kProceed;
        v.event = Event::kPassthrough;
      }
      return v;
    case pp::Status::kNeedMore:
      break;
  }
  if (received.empty() && eof) {
    v.action = HeaderVerdict::Action::kDrop;
    v.reason = "closed before sending anything";
    return v;
  }
  if (eof) {
    v.action = HeaderVerdict::Action::kDrop;
    v.event = Event::kDroppedBadHeader;
    v.reason = "truncated PROXY header";
    return v;
  }
  if (timed_out) {
    if (received.empty() && mode == Mode::kOptional) {
      v.action = HeaderVerdict::Action::kProceed;
      v.event = Event::kPassthrough;
      return v;
    }
    v.action = HeaderVerdict::Action::kDrop;
    v.event = Event::kDroppedTimeout;
    v.reason = received.empty() ? "no PROXY header within header_timeout_ms"
                                : "incomplete PROXY header at header_timeout_ms";
    return v;
  }
  return v;  // kWait
}

ProxyHeaderStage::ProxyHeaderStage(WorkerContext& ctx, AcceptedClient client, NextFn next)
    : ctx_(ctx), client_(std::move(client)), next_(std::move(next)) {}

ProxyHeaderStage::~ProxyHeaderStage() = default;

bool ProxyHeaderStage::start() {
  if (client_.fd) {
    read_ev_.reset(event_new(ctx_.base, client_.fd.get(), EV_READ | EV_PERSIST, &on_read, this));
    deadline_ev_.reset(evtimer_new(ctx_.base, &on_deadline, this));
  }
  const timeval tv = to_timeval(ctx_.cfg->listen.proxy_protocol.header_timeout_ms);
  if (!read_ev_ || !deadline_ev_ || event_add(read_ev_.get(), nullptr) != 0 ||
      event_add(deadline_ev_.get(), &tv) != 0) {
    HLOG_ERROR("client %s: cannot register the PROXY header events", client_.info.peer_ip.c_str());
    finish();
    return false;
  }
  buf_.reserve(pp::kMaxHeaderLength);
  return true;
}

void ProxyHeaderStage::on_read(evutil_socket_t, short, void* arg) {
  static_cast<ProxyHeaderStage*>(arg)->read_some();
}

void ProxyHeaderStage::on_deadline(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ProxyHeaderStage*>(arg);
  if (self->closed_) return;
  self->apply(judge_proxy_header(self->ctx_.cfg->listen.proxy_protocol.mode, self->buf_, false, true));
}

void ProxyHeaderStage::read_some() {
  if (closed_) return;
  // Never more than the largest header: a decision is always possible then,
  // and what was read past the header stays small.
  char chunk[pp::kMaxHeaderLength];
  const size_t room = pp::kMaxHeaderLength - buf_.size();
  const ssize_t n = ::recv(client_.fd.get(), chunk, room, 0);
  bool eof = false;
  if (n > 0) {
    buf_.append(chunk, static_cast<size_t>(n));
  } else if (n == 0) {
    eof = true;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    return;
  } else {
    HLOG_DEBUG("client %s: recv before the PROXY header: %s", client_.info.peer_ip.c_str(),
               std::strerror(errno));
    finish();
    return;
  }
  apply(judge_proxy_header(ctx_.cfg->listen.proxy_protocol.mode, buf_, eof, false));
}

void ProxyHeaderStage::apply(const HeaderVerdict& v) {
  if (v.action == HeaderVerdict::Action::kWait) return;
  if (v.event && ctx_.metrics) ctx_.metrics->proxy_protocol(*v.event);
  if (v.action == HeaderVerdict::Action::kDrop) {
    if (v.event) HLOG_DEBUG("client %s: dropped: %s", client_.info.peer_ip.c_str(), v.reason);
    finish();
    return;
  }
  read_ev_.reset();
  deadline_ev_.reset();
  client_.initial_bytes = buf_.substr(v.consumed);
  if (v.client) {
    client_.proxied = v.client;
    client_.info.peer_ip = v.client->ip_string();
  }
  // `next` adopts the successor before this stage reports itself closed.
  if (next_) next_(std::move(client_));
  finish();
}

void ProxyHeaderStage::finish() {
  if (closed_) return;
  closed_ = true;
  read_ev_.reset();
  deadline_ev_.reset();
  client_.fd.reset();
  if (ctx_.on_closed) ctx_.on_closed(this);
}

}  // namespace huginn::worker::net
