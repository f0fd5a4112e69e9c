#include "worker/net/http1_connection.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include <algorithm>

#include "common/sys/log.h"
#include "worker/http1/writer.h"
#include "worker/net/bulk_io.h"
#include "worker/net/tls_shutdown.h"
#include "worker/proxy/admission.h"
#include "worker/tls/held_output.h"

namespace huginn::worker::net {

Http1Connection::Http1Connection(WorkerContext& ctx, BufferEventPtr transport, ClientInfo info)
    : ctx_(ctx),
      info_(std::move(info)),
      client_(std::move(transport)),
      client_timer_(evtimer_new(ctx.base, &Http1Connection::client_timer_cb, this)),
      req_parser_(http1::Parser::Kind::kRequest, ctx.limits, this) {}

Http1Connection::~Http1Connection() {
  // Destroyed from the event loop, never inside a callback of client_.
  pump_.detach();
  if (linger_ && client_ && ctx_.linger) ctx_.linger(std::move(client_));
}

bool Http1Connection::start() {
  if (!client_ || !client_timer_) {
    close();
    return false;
  }
  bufferevent_setcb(client_.get(), &client_read_cb, &client_write_cb, &client_event_cb, this);
  raise_io_limits(client_.get());
  bufferevent_setwatermark(client_.get(), EV_READ, 0, kReadHigh);
  bufferevent_setwatermark(client_.get(), EV_WRITE, kLowWater, 0);
  set_client_read_timeout(false);
  // The pump writes responses at the end of the callback that queued them
  // (bulk_io.h), for cleartext and TLS clients alike.
  if (!pump_.attach(ctx_.base, client_.get(), &client_write_cb, this))
    bufferevent_enable(client_.get(), EV_WRITE);
  bufferevent_enable(client_.get(), EV_READ);
  timer_mode_ = TimerMode::kHeader;
  arm_client_timer(ctx_.cfg->timeout.request_header_ms);
  // Bytes that arrived before this object took the transport over.
  if (in_len(client_.get()) > 0) process_input();
  return true;
}

// ------------------------------------------------------------ helpers

void Http1Connection::arm_client_timer(uint32_t ms) {
  const timeval tv = to_timeval(ms);
  evtimer_add(client_timer_.get(), &tv);
}

void Http1Connection::set_client_read_timeout(bool on) {
  // The write timeout is always on: a client that stops reading its response
  // for proxy_idle_ms is dropped. The read timeout covers request bodies.
  const timeval tv = to_timeval(ctx_.cfg->timeout.proxy_idle_ms);
  bufferevent_set_timeouts(client_.get(), on ? &tv : nullptr, &tv);
}

bool Http1Connection::idle() const {
  return !ex_.active && !req_parser_.in_message() && (!client_ || in_len(client_.get()) == 0);
}

void Http1Connection::write_client(std::string_view data) {
  if (client_ && !data.empty()) evbuffer_add(bufferevent_get_output(client_.get()), data.data(), data.size());
}

void Http1Connection::drop_exchange() {
  if (!up_) return;
  up_->cancel();
  ctx_.reaper.bury(ctx_.base, std::move(up_));
}

void Http1Connection::close() {
  if (closed_) return;
  closed_ = true;
  access_.finish(ctx_, info_);  // a request cut short: 499, or the status and bytes so far
  // Closing after a flushed final response: the client may still be sending,
  // unless it has closed its side already (EOF, or a TLS close_notify), or it
  // asked to close with a request that arrived whole and nothing it sent is
  // left unread (nginx's `lingering_close on`).
  const bool client_done = client_done_ || (ex_.active && ex_.client_closing && ex_.request_complete);
  linger_ = flushing_close_ && !client_eof_ && client_ && out_len(client_.get()) == 0 &&
            !(client_done && !unread_input(client_.get()));
  drop_exchange();
  // The client bufferevent is freed with the object (from the event loop):
  // close() may run while process_input() still holds its input buffer.
  pump_.detach();
  if (client_) {
    bufferevent_disable(client_.get(), EV_READ | EV_WRITE);
    bufferevent_setcb(client_.get(), nullptr, nullptr, nullptr, nullptr);
    if (info_.tls) send_close_notify(client_.get(), client_left_);
  }
  if (client_timer_) evtimer_del(client_timer_.get());
  if (ctx_.on_closed) ctx_.on_closed(this);
}

void Http1Connection::start_flush_close() {
  if (closed_ || flushing_close_) return;
  flushing_close_ = true;
  drop_exchange();
  bufferevent_disable(client_.get(), EV_READ);
  if (out_len(client_.get()) == 0) {
    close();
    return;
  }
  // The rest of the output ends the connection: over TLS it waits in the
  // kernel for the close_notify and the FIN (close()), one segment for all.
  if (info_.tls) tls::hold_output(bufferevent_openssl_get_ssl(client_.get()));
  timer_mode_ = TimerMode::kFlush;
  arm_client_timer(ctx_.cfg->timeout.proxy_idle_ms);
}

void Http1Connection::drain() {
  draining_ = true;
  if (closed_ || flushing_close_) return;
  // An idle connection is not closed at once: its client may be sending the
  // next request right now, and closing under it would fail that request
  // (clients need not retry). It gets a short grace to send one, answered
  // with `Connection: close`; if none comes, the timer closes it.
  if (idle()) {
    const uint32_t configured = timer_mode_ == TimerMode::kIdle ? ctx_.cfg->timeout.proxy_idle_ms
                                                                : ctx_.cfg->timeout.request_header_ms;
    arm_client_timer(std::min(kDrainIdleGraceMs, configured));
  }
}

// ------------------------------------------------------------ client side

void Http1Connection::client_read_cb(bufferevent*, void* arg) {
  static_cast<Http1Connection*>(arg)->process_input();
}

void Http1Connection::client_write_cb(bufferevent*, void* arg) {
  auto* c = static_cast<Http1Connection*>(arg);
  c->pump_.done_writing();
  if (c->closed_) return;
  if (c->flushing_close_) {
    if (out_len(c->client_.get()) == 0) c->close();
    return;
  }
  // The client took response bytes: the backend may be read again.
  if (c->ex_.active && c->up_ && out_len(c->client_.get()) < kHighWater) c->up_->resume_reading();
}

void Http1Connection::client_event_cb(bufferevent*, short what, void* arg) {
  auto* c = static_cast<Http1Connection*>(arg);
  if (c->closed_) return;
  if (what & BEV_EVENT_EOF) {
    c->client_eof_ = true;
    // Nothing owed to the client: it has read what it wanted (send_close_notify).
    c->client_left_ = !c->ex_.active && !c->req_parser_.in_message() && !c->flushing_close_ &&
                      in_len(c->client_.get()) == 0 && out_len(c->client_.get()) == 0;
    // A request whose head and body arrived completely is still answered.
    if (c->ex_.active && c->ex_.request_complete) return;
    if (c->flushing_close_) return;
    if (c->ex_.active || c->req_parser_.in_message()) {
      c->close();  // the request can never be completed
    } else {
      c->start_flush_close();
    }
    return;
  }
  c->close();  // error or timeout
}

void Http1Connection::client_timer_cb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Http1Connection*>(arg);
  HLOG_DEBUG("client %s: %s timeout", c->info_.peer_ip.c_str(),
             c->timer_mode_ == TimerMode::kIdle     ? "idle"
             : c->timer_mode_ == TimerMode::kHeader ? "request header"
                                                    : "flush");
  c->close();
}

void Http1Connection::process_input() {
  if (closed_ || flushing_close_ || !client_) return;
  evbuffer* in = bufferevent_get_input(client_.get());
  while (!closed_ && !flushing_close_) {
    if (ex_.active && ex_.request_complete) break;  // one request at a time
    if (evbuffer_get_length(in) == 0) break;
    // Backpressure: the backend has not taken what we gave it yet.
    if (ex_.active && !ex_.local && up_ && !up_->writable()) break;
    evbuffer_iovec v;
    if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) break;
    const size_t n = std::min(v.iov_len, kFeedSlice);
    const bool was_in_message = req_parser_.in_message();
    const http1::Parser::Result r = req_parser_.feed(static_cast<const char*>(v.iov_base), n);
    evbuffer_drain(in, r.consumed);
    if (closed_) return;
    if (!was_in_message && req_parser_.in_message() && timer_mode_ == TimerMode::kIdle) {
      timer_mode_ = TimerMode::kHeader;
      arm_client_timer(ctx_.cfg->timeout.request_header_ms);
    }
    if (r.status == http1::Parser::Status::kError) {
      on_request_parse_error();
      return;
    }
    if (r.status == http1::Parser::Status::kMessageComplete) {
      after_request_complete();
      if (ex_.active && ex_.local && !flushing_close_ && !closed_) finish_exchange(true);
    }
  }
  if (!closed_ && !flushing_close_ && client_eof_ && in_len(client_.get()) == 0 &&
      !(ex_.active && ex_.request_complete))
    start_flush_close();
}

void Http1Connection::on_request_parse_error() {
  const bool too_large = req_parser_.error() == http1::ParseError::kHeaderTooLarge ||
                         req_parser_.error() == http1::ParseError::kTooManyHeaders;
  HLOG_DEBUG("client %s: bad request: %s", info_.peer_ip.c_str(), req_parser_.error_reason());
  if (ex_.active && ex_.response_started) {
    close();  // cannot answer in the middle of a response
    return;
  }
  drop_exchange();
  if (ex_.active && ex_.local) {  // already answered; the stream is unusable
    start_flush_close();
    return;
  }
  if (!ex_.active) access_.begin(ctx_, {}, {}, "");  // no request head: logged as "- - -"
  ex_.active = true;
  respond_local(too_large ? 431 : 400,
                too_large ? http1::reason::kHeadersTooLarge : http1::reason::kBadRequest, true);
}

void Http1Connection::respond_local(uint16_t status, std::string_view reason, bool force_close,
                                    const http1::Headers& extra) {
  ex_.local = true;
  // Close unless the request is fully read (or has no body left to read).
  const bool body_outstanding = ex_.has_body && !ex_.request_complete;
  const bool close_conn =
      force_close || !ex_.client_keep_alive || body_outstanding || draining_ || ctx_.draining;
  auto sec = proxy::security_headers(*ctx_.cfg, ex_.domain, ex_.route, info_.tls);
  sec.insert(sec.end(), extra.begin(), extra.end());
  const std::string resp = http1::error_response(status, reason, sec, close_conn);
  write_client(resp);
  if (access_.active) {
    const size_t head_end = resp.find("\r\n\r\n");
    access_.status = status;
    access_.bytes += head_end == std::string::npos ? 0 : resp.size() - head_end - 4;
    access_.finish(ctx_, info_);
  }
  count_response(ctx_, metrics::Protocol::kHttp1, std::exchange(metrics_method_, metrics::kOtherMethod),
                 status, std::exchange(metrics_t0_us_, 0), ex_.domain, ex_.route);
  ex_.response_started = true;
  ex_.response_complete = true;
  if (close_conn) start_flush_close();
}

void Http1Connection::on_request_head(http1::RequestHead&& head) {
  ++ctx_.total_requests;
  if (ctx_.metrics) {
    metrics_t0_us_ = metrics_clock_us();
    metrics_method_ = metrics::method_index(llhttp_method_name(static_cast<llhttp_method_t>(head.method)));
  }
  access_.begin(ctx_, llhttp_method_name(static_cast<llhttp_method_t>(head.method)), head.target,
                head.version_minor >= 1 ? "HTTP/1.1" : "HTTP/1.0");
  evtimer_del(client_timer_.get());
  timer_mode_ = TimerMode::kNone;
  ex_ = Exchange{};
  ex_.active = true;
  ex_.client_http11 = head.version_minor >= 1;
  ex_.client_keep_alive = head.keep_alive && ex_.client_http11 && !draining_ && !ctx_.draining;
  ex_.client_closing = !head.keep_alive;
  ex_.head_request = head.method == HTTP_HEAD;
  ex_.has_body = head.framing == http1::BodyFraming::kChunked ||
                 (head.framing == http1::BodyFraming::kLength && head.content_length > 0);
  if (ex_.has_body) set_client_read_timeout(true);

  const auto parts = proxy::split_target(head.target);
  if (!parts) return respond_local(400, http1::reason::kBadRequest, true);
  std::string_view authority;
  if (parts->absolute) {
    authority = parts->authority;
  } else if (const auto* h = http1::find_header(head.headers, "host")) {
    authority = h->value;
  }
  auto host = proxy::normalize_host(authority);
  if (!host) return respond_local(400, http1::reason::kBadRequest, true);
  ex_.host = std::move(*host);
  access_.set_host(ex_.host);

  auto d = ctx_.router->route(ex_.host, head.target);
  ex_.domain = d.domain;
  ex_.route = d.route;
  access_.route = d.route;
  if (auto answer = proxy::local_answer(
          *ctx_.cfg, info_, d,
          {ctx_.ip_filters.get(), ctx_.metrics, ctx_.host_state, &head.headers, ratelimit::monotonic_ns()}))
    return respond_local(answer->status, answer->reason, false, answer->headers);
  proxy::Router::forwarded(d);
  ex_.backend = d.backend;
  access_.backend = d.backend;
  const proxy::RequestContext rc = proxy::request_context(*ctx_.cfg, d, info_, ex_.host);
  BackendRequest req;
  req.backend_index = static_cast<size_t>(d.backend - ctx_.cfg->backends.data());
  req.method = llhttp_method_name(static_cast<llhttp_method_t>(head.method));
  req.target = std::move(d.upstream_target);
  req.headers = proxy::rewrite_request(std::move(head.headers), rc, &req.header_refs);
  req.head_request = ex_.head_request;
  if (head.framing == http1::BodyFraming::kChunked) {
    req.body = BackendRequest::Body::kChunked;
  } else if (head.framing == http1::BodyFraming::kLength) {
    req.body = BackendRequest::Body::kLength;
    req.content_length = head.content_length;
  }
  req.reusable = !d.route->force_new_connection;
  access_.upstream_started();
  up_ = start_backend_exchange(ctx_, *this, req);
  if (!up_) {
    HLOG_DEBUG("backend %s: cannot connect", d.backend->address.c_str());
    on_exchange_error(502, http1::reason::kBackendError, false);  // none of its callbacks ran
  }
}

void Http1Connection::on_body(std::string_view data) {
  if (!ex_.active || ex_.local || !up_) return;  // answered locally: the body is discarded
  up_->send_body(data);
}

void Http1Connection::on_message_complete() {
  if (ex_.active && !ex_.local && up_) up_->end_body();  // arms the response timeout
}

void Http1Connection::after_request_complete() {
  if (!ex_.active) return;
  ex_.request_complete = true;
  set_client_read_timeout(false);
}

void Http1Connection::finish_exchange(bool from_input_loop) {
  // The response promised keep-alive (its head had no `Connection: close`).
  const bool promised = ex_.client_keep_alive && !close_after_response_;
  const bool drain = draining_ || ctx_.draining;
  const bool client_done = ex_.client_closing && ex_.request_complete;
  ex_ = Exchange{};
  drop_exchange();
  // A drain that began after the head went out does not break that promise:
  // the connection is treated like an idle one at drain time (drain()): a
  // short grace for the next request, which is answered with `Connection:
  // close` (on_exchange_head and the local answers check the drain).
  if (!promised) {
    client_done_ = client_done;
    start_flush_close();
    return;
  }
  if (client_eof_ && in_len(client_.get()) == 0) {
    start_flush_close();
    return;
  }
  if (in_len(client_.get()) > 0 || req_parser_.in_message()) {
    timer_mode_ = TimerMode::kHeader;
    arm_client_timer(ctx_.cfg->timeout.request_header_ms);
  } else {
    timer_mode_ = TimerMode::kIdle;
    arm_client_timer(drain ? std::min(kDrainIdleGraceMs, ctx_.cfg->timeout.proxy_idle_ms)
                           : ctx_.cfg->timeout.proxy_idle_ms);
  }
  if (!from_input_loop) process_input();
}

// ------------------------------------------------------------ backend side

void Http1Connection::on_exchange_error(uint16_t status, std::string_view reason, bool response_started) {
  count_backend_error(ctx_, ex_.domain, ex_.route, status);
  drop_exchange();
  if (response_started || ex_.response_started) {
    close();  // truncated response: the client must see the connection end
    return;
  }
  respond_local(status, reason, false);
  if (!flushing_close_ && !closed_ && ex_.request_complete) finish_exchange(false);
}

void Http1Connection::on_exchange_drained() {
  process_input();  // the backend took data: more of the request body may follow
}

void Http1Connection::on_exchange_interim(const http1::ResponseHead& head) {
  if (!ex_.client_http11 || ex_.response_started) return;
  std::string out;
  http1::append_response_head(out, head.status, head.reason, {});
  write_client(out);
}

void Http1Connection::on_exchange_head(http1::ResponseHead&& head) {
  ex_.response_started = true;
  access_.upstream_head();
  count_backend_response(ctx_, ex_.domain, ex_.route, head.status, access_.upstream_us.value_or(0));
  access_.status = head.status;

  proxy::RequestContext rc;
  rc.cfg = ctx_.cfg.get();
  rc.domain = ex_.domain;
  rc.route = ex_.route;
  rc.backend = ex_.backend;
  rc.tls = info_.tls;
  // A HEAD response keeps the backend's Content-Length (rewriting drops it).
  std::optional<std::string> head_length;
  if (head.framing == http1::BodyFraming::kNone && ex_.head_request) {
    if (const auto* cl = http1::find_header(head.headers, "content-length")) head_length = cl->value;
  }
  http1::Headers out = proxy::rewrite_response(std::move(head.headers), rc);
  switch (head.framing) {
    case http1::BodyFraming::kNone:
      if (head_length) out.push_back({"Content-Length", std::move(*head_length)});
      break;
    case http1::BodyFraming::kLength:
      out.push_back({"Content-Length", std::to_string(head.content_length)});
      break;
    case http1::BodyFraming::kChunked:
    case http1::BodyFraming::kUntilClose:
      if (ex_.client_http11) {
        out.push_back({"Transfer-Encoding", "chunked"});
        ex_.down_chunked = true;
      } else {
        ex_.down_until_close = true;
      }
      break;
  }
  if (draining_ || ctx_.draining || ex_.down_until_close) ex_.client_keep_alive = false;
  if (!ex_.client_keep_alive) out.push_back({"Connection", "close"});
  std::string& buf = ctx_.scratch;
  buf.clear();
  http1::append_response_head(buf, head.status, head.reason, out);
  write_client(buf);
  if (buf.capacity() > WorkerContext::kScratchKeep) std::string().swap(buf);
  count_response(ctx_, metrics::Protocol::kHttp1, std::exchange(metrics_method_, metrics::kOtherMethod),
                 head.status, std::exchange(metrics_t0_us_, 0), ex_.domain, ex_.route);
  if (up_ && out_len(client_.get()) >= kHighWater) up_->pause_reading();
}

void Http1Connection::on_exchange_body(std::string_view data) {
  if (!ex_.response_started) return;
  access_.bytes += data.size();
  if (ex_.down_chunked) {
    add_chunk(bufferevent_get_output(client_.get()), data);
  } else {
    write_client(data);
  }
  // Resumed by the client write callback once the client took the bytes.
  if (up_ && out_len(client_.get()) >= kHighWater) up_->pause_reading();
}

void Http1Connection::on_exchange_complete() {
  // The exchange pooled or closed the backend connection.
  drop_exchange();
  if (ex_.down_chunked) write_client(http1::kLastChunk);
  ex_.response_complete = true;
  access_.finish(ctx_, info_);
  // The backend answered before the request body ended: the rest of the body
  // cannot be framed for anyone, so the client connection closes.
  if (!ex_.request_complete) close_after_response_ = true;
  finish_exchange(false);
}

}  // namespace huginn::worker::net
