#include "worker/net/upstream_exchange.h"

#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "common/sys/log.h"
#include "worker/http1/writer.h"
#include "worker/net/bulk_io.h"

namespace huginn::worker::net {

void set_upstream_socket_options(bufferevent* bev, const config::Config& cfg) {
  const evutil_socket_t fd = bufferevent_getfd(bev);
  if (fd < 0) return;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (cfg.timeout.keep_alive.enabled) {
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    int idle = static_cast<int>(std::max<uint32_t>(1, cfg.timeout.keep_alive.upstream_idle_timeout));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  }
}

void add_chunk(evbuffer* out, std::string_view data) {
  if (data.empty()) return;
  std::string size;
  http1::append_chunk_size(size, data.size());
  evbuffer_add(out, size.data(), size.size());
  evbuffer_add(out, data.data(), data.size());
  evbuffer_add(out, http1::kChunkEnd.data(), http1::kChunkEnd.size());
}

UpstreamExchange::UpstreamExchange(WorkerContext& ctx, Sink& sink) : ctx_(ctx), sink_(sink) {
  resp_sink_.x = this;
}

UpstreamExchange::~UpstreamExchange() = default;

bool UpstreamExchange::start(Request req) {
  if (started_) return false;
  started_ = true;
  req_ = std::move(req);
  if (req_.backend_index >= ctx_.endpoints.size()) return false;
  if (!connect(true)) {
    finished_ = true;
    return false;
  }
  return true;
}

bool UpstreamExchange::connect(bool allow_pooled) {
  const proxy::BackendEndpoint& ep = ctx_.endpoints[req_.backend_index];
  if (!ep.resolved) return false;
  parser_.emplace(http1::Parser::Kind::kResponse, ctx_.limits, &resp_sink_);
  parser_->set_head_request(req_.head_request);
  connected_ = false;
  reused_ = false;
  if (allow_pooled && req_.reusable && ctx_.pool) up_ = ctx_.pool->acquire(req_.backend_index);
  if (up_) {
    reused_ = true;
    connected_ = true;
  } else {
    // Made when first needed: most exchanges reuse a pooled connection.
    if (!connect_timer_)
      connect_timer_.reset(evtimer_new(ctx_.base, &UpstreamExchange::connect_timer_cb, this));
    if (!connect_timer_) return false;
    up_.reset(bufferevent_socket_new(ctx_.base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS));
    if (!up_) return false;
  }
  bufferevent_setcb(up_.get(), &read_cb, &write_cb, &event_cb, this);
  raise_io_limits(up_.get());
  bufferevent_setwatermark(up_.get(), EV_READ, 0, kReadHigh);
  bufferevent_setwatermark(up_.get(), EV_WRITE, kLowWater, 0);
  if (!reused_) {
    if (bufferevent_socket_connect(up_.get(), reinterpret_cast<const sockaddr*>(&ep.addr),
                                   static_cast<int>(ep.len)) != 0) {
      up_.reset();
      return false;
    }
    const timeval tv = to_timeval(ctx_.cfg->timeout.upstream_connect_ms);
    evtimer_add(connect_timer_.get(), &tv);
  }
  // A pooled connection is connected: the pump writes the head (attached
  // before it is queued). A new one gets the pump at BEV_EVENT_CONNECTED.
  if (reused_) pump_.attach(ctx_.base, up_.get(), &write_cb, this);
  write(req_.head);
  short enable = paused_ ? 0 : EV_READ;
  if (!pump_.attached()) enable |= EV_WRITE;
  if (enable != 0) bufferevent_enable(up_.get(), enable);
  if (reused_ && request_complete_) arm_response_timeout();
  return true;
}

void UpstreamExchange::stop_connect_timer() {
  if (connect_timer_) evtimer_del(connect_timer_.get());
}

void UpstreamExchange::write(std::string_view data) {
  if (up_ && !data.empty()) evbuffer_add(bufferevent_get_output(up_.get()), data.data(), data.size());
}

size_t UpstreamExchange::queued() const { return up_ ? out_len(up_.get()) : 0; }

void UpstreamExchange::send_body(std::string_view data) {
  if (finished_ || request_complete_ || !up_ || data.empty()) return;
  body_sent_ = true;
  if (req_.chunked) {
    add_chunk(bufferevent_get_output(up_.get()), data);
  } else {
    write(data);
  }
}

void UpstreamExchange::end_body() {
  if (finished_ || request_complete_) return;
  request_complete_ = true;
  if (!up_) return;
  if (req_.chunked) write(http1::kLastChunk);
  if (connected_) arm_response_timeout();
}

void UpstreamExchange::arm_response_timeout() {
  const timeval tv = to_timeval(uint64_t{ctx_.cfg->timeout.upstream_response_secs} * 1000);
  bufferevent_set_timeouts(up_.get(), &tv, nullptr);
}

void UpstreamExchange::pause_reading() {
  if (paused_) return;
  // resume_reading() needs this event; made on the first pause (most
  // responses never pause). Without it (out of memory), keep reading.
  if (!resume_ev_) resume_ev_.reset(event_new(ctx_.base, -1, 0, &UpstreamExchange::resume_cb, this));
  if (!resume_ev_) return;
  paused_ = true;
  if (up_) bufferevent_disable(up_.get(), EV_READ);
}

void UpstreamExchange::resume_reading() {
  if (!paused_) return;
  paused_ = false;
  if (finished_ || !up_) return;
  bufferevent_enable(up_.get(), EV_READ);
  // Bytes already buffered produce no read event: parse them from the loop.
  event_active(resume_ev_.get(), EV_TIMEOUT, 0);
}

void UpstreamExchange::cancel() {
  finished_ = true;
  pump_.detach();
  up_.reset();
  stop_connect_timer();
  if (resume_ev_) event_del(resume_ev_.get());
}

void UpstreamExchange::fail(uint16_t status, std::string_view reason) {
  HLOG_DEBUG("backend %s: %s (%u)",
             req_.backend_index < ctx_.cfg->backends.size()
                 ? ctx_.cfg->backends[req_.backend_index].address.c_str()
                 : "-",
             std::string(reason).c_str(), static_cast<unsigned>(status));
  const bool started = response_started_;
  cancel();
  sink_.on_exchange_error(status, reason, started);
}

void UpstreamExchange::closed_early() {
  // A pooled connection the backend closed just before our request: one
  // retry on a fresh connection when nothing but the head has been sent.
  if (reused_ && !retried_ && !req_.has_body && !body_sent_) {
    retried_ = true;
    pump_.detach();
    up_.reset();
    if (connect(false)) return;
  }
  fail(502, http1::reason::kBackendError);
}

void UpstreamExchange::complete() {
  stop_connect_timer();
  const bool reuse = req_.reusable && upstream_keep_alive_ && request_complete_ && connected_ && up_ &&
                     ctx_.pool && !ctx_.draining && out_len(up_.get()) == 0 && in_len(up_.get()) == 0;
  pump_.detach();
  if (reuse) {
    bufferevent_set_timeouts(up_.get(), nullptr, nullptr);
    ctx_.pool->release(req_.backend_index, std::move(up_));
  }
  up_.reset();
  if (resume_ev_) event_del(resume_ev_.get());
  finished_ = true;
  sink_.on_exchange_complete();
}

void UpstreamExchange::connect_timer_cb(evutil_socket_t, short, void* arg) {
  auto* x = static_cast<UpstreamExchange*>(arg);
  if (x->finished_ || x->connected_) return;
  x->fail(504, http1::reason::kGatewayTimeout);
}

void UpstreamExchange::resume_cb(evutil_socket_t, short, void* arg) {
  static_cast<UpstreamExchange*>(arg)->process_input();
}

void UpstreamExchange::read_cb(bufferevent* bev, void* arg) {
  auto* x = static_cast<UpstreamExchange*>(arg);
  if (bev != x->up_.get()) return;
  x->process_input();
}

void UpstreamExchange::write_cb(bufferevent* bev, void* arg) {
  auto* x = static_cast<UpstreamExchange*>(arg);
  if (bev != x->up_.get()) return;
  x->pump_.done_writing();
  if (x->finished_) return;
  x->sink_.on_exchange_drained();
}

void UpstreamExchange::event_cb(bufferevent* bev, short what, void* arg) {
  auto* x = static_cast<UpstreamExchange*>(arg);
  if (x->finished_ || bev != x->up_.get()) return;
  if (what & BEV_EVENT_CONNECTED) {
    x->connected_ = true;
    x->stop_connect_timer();
    x->pump_.attach(x->ctx_.base, bev, &write_cb, x);
    read_directly(bev);  // connecting re-pointed the read event at libevent's reads
    set_upstream_socket_options(bev, *x->ctx_.cfg);
    if (x->request_complete_) x->arm_response_timeout();
    return;
  }
  if (what & BEV_EVENT_TIMEOUT) {
    x->fail(504, http1::reason::kGatewayTimeout);
    return;
  }
  if (what & BEV_EVENT_EOF) {
    // Whatever arrived before the FIN, even while paused: the connection is
    // over, the response must be complete in what is buffered.
    x->paused_ = false;
    x->process_input();
    if (x->finished_ || bev != x->up_.get()) return;
    const http1::Parser::Status s = x->parser_->finish();
    if (s == http1::Parser::Status::kMessageComplete && x->response_complete_) {
      x->upstream_keep_alive_ = false;
      x->complete();
      return;
    }
    if (!x->response_started_ && !x->parser_->in_message() && s != http1::Parser::Status::kError) {
      x->closed_early();
      return;
    }
    x->fail(502, http1::reason::kBackendError);
    return;
  }
  // BEV_EVENT_ERROR: refused, reset, unreachable.
  if (x->connected_ && !x->response_started_ && !x->parser_->in_message()) {
    x->closed_early();
  } else {
    x->fail(502, http1::reason::kBackendError);
  }
}

void UpstreamExchange::process_input() {
  if (finished_ || !up_ || !parser_) return;
  evbuffer* in = bufferevent_get_input(up_.get());
  while (!finished_ && up_ && !paused_) {
    if (evbuffer_get_length(in) == 0) break;
    evbuffer_iovec v;
    if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) break;
    const size_t n = std::min(v.iov_len, kFeedSlice);
    const http1::Parser::Result r = parser_->feed(static_cast<const char*>(v.iov_base), n);
    if (finished_) return;
    evbuffer_drain(in, r.consumed);
    if (r.status == http1::Parser::Status::kError) {
      HLOG_DEBUG("backend %s: bad response: %s", ctx_.cfg->backends[req_.backend_index].address.c_str(),
                 parser_->error_reason());
      fail(502, http1::reason::kBackendError);
      return;
    }
    if (r.status == http1::Parser::Status::kMessageComplete && response_complete_) {
      complete();
      return;
    }
  }
}

void UpstreamExchange::on_head(http1::ResponseHead&& head) {
  if (head.status < 200) {
    interim_ = true;
    sink_.on_exchange_interim(head);
    return;
  }
  interim_ = false;
  response_started_ = true;
  upstream_keep_alive_ = head.keep_alive;
  stop_connect_timer();
  sink_.on_exchange_head(std::move(head));
}

void UpstreamExchange::on_body(std::string_view data) {
  if (!response_started_ || finished_) return;
  sink_.on_exchange_body(data);
}

void UpstreamExchange::on_message_complete() {
  if (interim_) {
    interim_ = false;
    return;
  }
  response_complete_ = true;
}

}  // namespace huginn::worker::net
