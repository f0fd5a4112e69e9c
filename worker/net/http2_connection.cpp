#include "worker/net/http2_connection.h"
#include "worker/net/bulk_io.h"

#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <iterator>
#include <optional>

#include "common/sys/log.h"
#include "worker/http1/writer.h"
#include "worker/net/access_log.h"
#include "worker/proxy/admission.h"
#include "worker/proxy/header_rewrite.h"
#include "worker/proxy/router.h"

namespace huginn::worker::net {

namespace {

using EvBufferPtr = sys::CHandle<evbuffer, evbuffer_free>;
using CallbacksPtr = sys::CHandle<nghttp2_session_callbacks, nghttp2_session_callbacks_del>;
using OptionPtr = sys::CHandle<nghttp2_option, nghttp2_option_del>;

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Response field names that HTTP/2 forbids or that rewriting must already
// have removed (RFC 9113 §8.2.2).
bool connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "te";
}

// Regular request fields a stream has room for at its first (a browser sends
// 5-15), with 4 to spare for dispatch(): 16 fields of 64 bytes, 1 KiB.
constexpr size_t kStreamHeadersReserve = 16;

// A status code as the three digits of :status (100-999; the parsers and
// the proxy's own answers give nothing else).
class StatusText {
 public:
  explicit StatusText(uint16_t status) {
    const auto end = std::to_chars(text_, text_ + sizeof text_, status).ptr;
    size_ = static_cast<size_t>(end - text_);
  }
  std::string_view view() const { return {text_, size_}; }

 private:
  char text_[8];
  size_t size_ = 0;
};

bool valid_field_name(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (!http1::is_tchar(u) || (u >= 'A' && u <= 'Z')) return false;
  }
  return true;
}

}  // namespace

// ------------------------------------------------------------ stream

struct Http2Connection::Stream : UpstreamExchange::Sink {
  Http2Connection* c = nullptr;
  int32_t id = 0;
  // Request.
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  std::string host_header;
  std::string cookie;
  bool have_authority = false;
  bool have_host = false;
  bool have_cookie = false;
  http1::Headers headers;
  size_t header_bytes = 0;
  uint32_t header_count = 0;
  bool too_large = false;
  bool have_content_length = false;
  bool bad_content_length = false;
  uint64_t content_length = 0;
  bool request_complete = false;
  bool outstanding = false;  // counted in incomplete_requests_
  bool dispatched = false;
  uint64_t metrics_t0_us = 0;  // dispatch time (metrics)
  bool head_request = false;
  const config::Domain* domain = nullptr;
  const config::Route* route = nullptr;
  const config::Backend* backend = nullptr;
  std::unique_ptr<BackendExchange> ex;
  size_t unconsumed = 0;  // DATA bytes received, not yet acknowledged
  // Response.
  EvBufferPtr body{evbuffer_new()};  // bytes waiting for the data provider
  bool response_submitted = false;
  bool body_complete = false;  // every body byte is in `body`
  bool deferred = false;       // the data provider returned DEFERRED
  bool response_sent = false;  // END_STREAM sent
  bool closed = false;
  AccessEntry access;  // [logging] access_log state

  void on_exchange_head(http1::ResponseHead&& head) override { c->on_stream_head(*this, std::move(head)); }
  void on_exchange_body(std::string_view data) override { c->on_stream_body(*this, data); }
  void on_exchange_complete() override { c->on_stream_complete(*this); }
  void on_exchange_error(uint16_t status, std::string_view reason, bool started) override {
    c->on_stream_error(*this, status, reason, started);
  }
  void on_exchange_drained() override { c->on_stream_drained(*this); }
};

bool Http2Connection::RateWindow::hit(uint64_t now, uint32_t limit) {
  if (now - start_ms >= 1000) {
    start_ms = now;
    count = 0;
  }
  return ++count > limit;
}

// ------------------------------------------------------------ setup

Http2Connection::Http2Connection(WorkerContext& ctx, BufferEventPtr transport, ClientInfo info)
    : ctx_(ctx),
      info_(std::move(info)),
      bev_(std::move(transport)),
      idle_timer_(evtimer_new(ctx.base, &Http2Connection::idle_timer_cb, this)),
      header_timer_(evtimer_new(ctx.base, &Http2Connection::header_timer_cb, this)),
      drain_timer_(evtimer_new(ctx.base, &Http2Connection::drain_timer_cb, this)),
      kick_(event_new(ctx.base, -1, 0, &Http2Connection::kick_cb, this)) {
  akamai_on_ = ctx.cfg->fingerprint.http_enabled;
  akamai_limit_ = ctx.cfg->fingerprint.max_capture;
}

Http2Connection::~Http2Connection() {
  // Destroyed from the event loop, never inside a callback of bev_.
  pump_.detach();
  if (linger_ && bev_ && ctx_.linger) ctx_.linger(std::move(bev_));
  // Streams (and their exchanges) go before the session that points at them.
  graveyard_.clear();
  streams_.clear();
  session_.reset();
}

bool Http2Connection::init_session() {
  nghttp2_session_callbacks* raw_cbs = nullptr;
  if (nghttp2_session_callbacks_new(&raw_cbs) != 0) return false;
  CallbacksPtr cbs(raw_cbs);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs.get(), &on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs.get(), &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs.get(), &on_header);
  nghttp2_session_callbacks_set_on_invalid_header_callback(cbs.get(), &on_invalid_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs.get(), &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs.get(), &on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs.get(), &on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs.get(), &on_stream_close);

  nghttp2_option* raw_opt = nullptr;
  if (nghttp2_option_new(&raw_opt) != 0) return false;
  OptionPtr opt(raw_opt);
  nghttp2_option_set_no_auto_window_update(opt.get(), 1);
  nghttp2_option_set_no_closed_streams(opt.get(), 1);
  nghttp2_option_set_max_outbound_ack(opt.get(), kMaxOutboundAck);
  nghttp2_option_set_max_settings(opt.get(), kMaxSettingsEntries);

  nghttp2_session* raw = nullptr;
  if (nghttp2_session_server_new2(&raw, cbs.get(), this, opt.get()) != 0) return false;
  session_.reset(raw);

  const auto& lim = ctx_.cfg->limits;
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim.h2_max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim.max_header_bytes},
  };
  if (nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, iv, std::size(iv)) != 0) return false;
  if (nghttp2_session_set_local_window_size(session_.get(), NGHTTP2_FLAG_NONE, 0,
                                            static_cast<int32_t>(kConnectionWindow)) != 0)
    return false;
  return true;
}

bool Http2Connection::start() {
  if (started_ || closed_) return false;
  started_ = true;
  if (!bev_ || !idle_timer_ || !header_timer_ || !drain_timer_ || !kick_ || !init_session()) {
    HLOG_WARN("client %s: HTTP/2 session setup failed", info_.peer_ip.c_str());
    close();
    return false;
  }
  // TCP_NODELAY is already set: accepted sockets inherit it from the listener.
  bufferevent_setcb(bev_.get(), &read_cb, &write_cb, &event_cb, this);
  raise_io_limits(bev_.get());
  bufferevent_setwatermark(bev_.get(), EV_READ, 0, kReadHigh);
  bufferevent_setwatermark(bev_.get(), EV_WRITE, kLowWater, 0);
  // A client that stops reading its responses is dropped after proxy_idle_ms.
  const timeval tv = to_timeval(ctx_.cfg->timeout.proxy_idle_ms);
  bufferevent_set_timeouts(bev_.get(), nullptr, &tv);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  // Frames go out at the end of the callback that queued them (bulk_io.h).
  pump_.attach(ctx_.base, bev_.get(), &write_cb, this);
  arm_idle_timer();
  const timeval header_tv = to_timeval(ctx_.cfg->timeout.request_header_ms);
  evtimer_add(header_timer_.get(), &header_tv);
  if (ctx_.draining) drain();
  process_input();  // bytes that arrived with the transport
  if (!closed_) flush();
  return !closed_;
}

// ------------------------------------------------------------ I/O

void Http2Connection::read_cb(bufferevent*, void* arg) {
  static_cast<Http2Connection*>(arg)->process_input();
}

void Http2Connection::write_cb(bufferevent*, void* arg) {
  auto* c = static_cast<Http2Connection*>(arg);
  c->pump_.done_writing();
  if (c->closed_) return;
  if (c->closing_) {
    if (out_len(c->bev_.get()) == 0) {
      c->linger_ = true;
      c->close();
    }
    return;
  }
  c->flush();
  if (c->closed_ || c->closing_) return;
  if (c->read_paused_ && out_len(c->bev_.get()) < kHighWater) {
    c->read_paused_ = false;
    bufferevent_enable(c->bev_.get(), EV_READ);
    read_tls_pending(c->bev_.get());
    c->process_input();
  }
}

void Http2Connection::event_cb(bufferevent*, short what, void* arg) {
  auto* c = static_cast<Http2Connection*>(arg);
  if (c->closed_) return;
  if (what & BEV_EVENT_EOF) {
    HLOG_DEBUG("client %s: HTTP/2 connection closed by the client", c->info_.peer_ip.c_str());
  } else if (what & BEV_EVENT_TIMEOUT) {
    HLOG_DEBUG("client %s: HTTP/2 %s timeout", c->info_.peer_ip.c_str(),
               (what & BEV_EVENT_READING) ? "request" : "write");
  }
  c->close();
}

void Http2Connection::process_input() {
  if (closed_ || !session_ || closing_) return;
  evbuffer* in = bufferevent_get_input(bev_.get());
  while (!closed_ && !terminating_) {
    const size_t len = evbuffer_get_length(in);
    if (len == 0) break;
    if (out_len(bev_.get()) >= kHighWater) {
      // The client does not read what we send: stop reading until it does.
      read_paused_ = true;
      bufferevent_disable(bev_.get(), EV_READ);
      break;
    }
    size_t n = std::min(len, kH2RecvSlice);
    // While the fingerprint is read, no byte past max_capture goes in with
    // the bytes before it: the limit falls exactly where it says.
    const bool fp_open = akamai_open();
    if (fp_open) n = std::min<size_t>(n, akamai_limit_ - akamai_seen_);
    unsigned char* p = evbuffer_pullup(in, static_cast<ev_ssize_t>(n));
    if (p == nullptr) {
      close();
      return;
    }
    const ssize_t r = nghttp2_session_mem_recv(session_.get(), p, n);
    if (closed_) return;
    if (r < 0) {
      const bool flood = r == NGHTTP2_ERR_FLOODED;
      if (flood) {
        HLOG_WARN("client %s: HTTP/2 flood of frames needing an ACK: GOAWAY ENHANCE_YOUR_CALM",
                  info_.peer_ip.c_str());
      } else {
        HLOG_DEBUG("client %s: HTTP/2 receive error: %s", info_.peer_ip.c_str(),
                   nghttp2_strerror(static_cast<int>(r)));
      }
      if (!terminating_)
        nghttp2_session_terminate_session(session_.get(),
                                          flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
      terminating_ = true;
      break;
    }
    evbuffer_drain(in, static_cast<size_t>(r));
    if (fp_open) {
      akamai_seen_ += static_cast<size_t>(r);
      if (!akamai_.complete() && akamai_seen_ >= akamai_limit_) {
        // No complete first HEADERS within max_capture bytes: no Akamai
        // fingerprint for this connection (counted as not fingerprinted).
        akamai_pseudo_.clear();
        HLOG_DEBUG("client %s: HTTP/2: no fingerprint within the first %zu bytes (max_capture)",
                   info_.peer_ip.c_str(), akamai_limit_);
      }
    }
    flush();
  }
  if (closed_) return;
  if (terminating_) {
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_disable(bev_.get(), EV_READ);
  }
  flush();
}

void Http2Connection::flush() {
  if (closed_ || !session_) return;
  evbuffer* out = bufferevent_get_output(bev_.get());
  while (evbuffer_get_length(out) < kHighWater) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
    if (closed_) return;
    if (n < 0) {
      HLOG_DEBUG("client %s: HTTP/2 send error: %s", info_.peer_ip.c_str(),
                 nghttp2_strerror(static_cast<int>(n)));
      close();
      return;
    }
    if (n == 0) break;
    evbuffer_add(out, data, static_cast<size_t>(n));
  }
  maybe_close();
}

void Http2Connection::kick() {
  if (!closed_ && kick_) event_active(kick_.get(), EV_TIMEOUT, 0);
}

void Http2Connection::kick_cb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Http2Connection*>(arg);
  c->graveyard_.clear();
  if (c->closed_) return;
  c->flush();
  if (c->closed_ || c->closing_) return;
  if (c->read_paused_ && out_len(c->bev_.get()) < kLowWater) {
    c->read_paused_ = false;
    bufferevent_enable(c->bev_.get(), EV_READ);
    read_tls_pending(c->bev_.get());
    c->process_input();
  }
}

void Http2Connection::maybe_close() {
  if (closed_ || !session_) return;
  const bool want_write = nghttp2_session_want_write(session_.get()) != 0;
  const bool want_read = nghttp2_session_want_read(session_.get()) != 0;
  const bool done = terminating_ ? !want_write : (!want_read && !want_write);
  if (!done) return;
  if (draining_ && !final_goaway_ && !terminating_) {
    // Nothing is open any more: the final GOAWAY need not wait for the grace.
    final_goaway();
    return;
  }
  if (out_len(bev_.get()) == 0) {
    linger_ = true;
    close();
    return;
  }
  if (!closing_) {
    closing_ = true;
    bufferevent_disable(bev_.get(), EV_READ);
    bufferevent_setwatermark(bev_.get(), EV_WRITE, 0, 0);
    bufferevent_enable(bev_.get(), EV_WRITE);
  }
}

void Http2Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (ctx_.metrics && akamai_on_ && !info_.fingerprints.has(proxy::ConnectionFingerprints::kAkamai))
    ctx_.metrics->http2_fingerprint(false);
  for (auto& s : streams_) {
    if (s->ex) s->ex->cancel();
    s->access.finish(ctx_, info_);  // cut short: 499, or the status and bytes so far
  }
  // The transport is freed with the object: close() may run while an
  // nghttp2 call or a bufferevent callback still holds it.
  pump_.detach();
  if (bev_) {
    bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
    bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
  }
  if (idle_timer_) evtimer_del(idle_timer_.get());
  if (header_timer_) evtimer_del(header_timer_.get());
  if (drain_timer_) evtimer_del(drain_timer_.get());
  if (ctx_.on_closed) ctx_.on_closed(this);
}

void Http2Connection::abuse(const char* what, uint64_t* counter) {
  if (counter) ++*counter;
  if (terminating_ || closed_) return;
  HLOG_WARN("client %s: HTTP/2 %s: GOAWAY ENHANCE_YOUR_CALM", info_.peer_ip.c_str(), what);
  terminating_ = true;
  nghttp2_session_terminate_session(session_.get(), NGHTTP2_ENHANCE_YOUR_CALM);
  kick();
}

void Http2Connection::arm_idle_timer() {
  const timeval tv = to_timeval(ctx_.cfg->timeout.proxy_idle_ms);
  evtimer_add(idle_timer_.get(), &tv);
}

void Http2Connection::idle_timer_cb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Http2Connection*>(arg);
  if (c->closed_ || c->open_streams_ > 0 || c->terminating_) return;
  HLOG_DEBUG("client %s: HTTP/2 idle timeout", c->info_.peer_ip.c_str());
  c->terminating_ = true;
  nghttp2_session_terminate_session(c->session_.get(), NGHTTP2_NO_ERROR);
  c->flush();
}

void Http2Connection::header_timer_cb(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<Http2Connection*>(arg);
  if (c->closed_ || c->terminating_) return;
  HLOG_DEBUG("client %s: HTTP/2 request header timeout", c->info_.peer_ip.c_str());
  c->terminating_ = true;
  nghttp2_session_terminate_session(c->session_.get(), NGHTTP2_NO_ERROR);
  c->flush();
}

void Http2Connection::drain() {
  if (closed_ || draining_) return;
  draining_ = true;
  if (!session_) return;
  nghttp2_submit_shutdown_notice(session_.get());
  const timeval tv = to_timeval(kDrainIdleGraceMs);
  evtimer_add(drain_timer_.get(), &tv);
  kick();
}

void Http2Connection::drain_timer_cb(evutil_socket_t, short, void* arg) {
  static_cast<Http2Connection*>(arg)->final_goaway();
}

void Http2Connection::final_goaway() {
  if (closed_ || final_goaway_) return;
  final_goaway_ = true;
  evtimer_del(drain_timer_.get());
  const int32_t last = nghttp2_session_get_last_proc_stream_id(session_.get());
  const int rv = nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, nullptr, 0);
  HLOG_DEBUG("client %s: HTTP/2 final GOAWAY (last stream %d): %s", info_.peer_ip.c_str(), last,
             rv == 0 ? "queued" : nghttp2_strerror(rv));
  flush();
}

// ------------------------------------------------------------ nghttp2 callbacks

int Http2Connection::on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
  auto* c = static_cast<Http2Connection*>(user);
  if (c->closed_) return 0;
  // Header timeout of a later header block: from its HEADERS frame until any
  // frame after its last CONTINUATION (the first request's block runs
  // against the deadline armed at start(), cleared when it is complete).
  if (hd->type == NGHTTP2_HEADERS && c->counters_.streams > 0) {
    const timeval tv = to_timeval(c->ctx_.cfg->timeout.request_header_ms);
    evtimer_add(c->header_timer_.get(), &tv);
  } else if (hd->type != NGHTTP2_CONTINUATION && c->counters_.streams > 0) {
    evtimer_del(c->header_timer_.get());
  }
  if (hd->type == NGHTTP2_HEADERS) {
    c->continuations_ = 0;
  } else if (hd->type == NGHTTP2_CONTINUATION) {
    if (++c->continuations_ > kMaxContinuations)
      c->abuse("CONTINUATION flood", &c->counters_.continuation_floods);
  }
  return 0;
}

int Http2Connection::on_invalid_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t*, size_t,
                                       const uint8_t*, size_t, uint8_t, void* user) {
  auto* c = static_cast<Http2Connection*>(user);
  HLOG_DEBUG("client %s: HTTP/2 stream %d: invalid header field: PROTOCOL_ERROR", c->info_.peer_ip.c_str(),
             frame->hd.stream_id);
  return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM PROTOCOL_ERROR
}

int Http2Connection::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<Http2Connection*>(user);
  if (c->closed_ || frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (c->akamai_open()) {
    c->akamai_stream_ = frame->hd.stream_id;
    c->akamai_pseudo_.clear();
  }
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST || c->terminating_) return 0;
  auto s = std::make_unique<Stream>();
  if (!s->body) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  s->c = c;
  s->id = frame->hd.stream_id;
  if (nghttp2_session_set_stream_user_data(session, s->id, s.get()) != 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  s->outstanding = true;
  c->streams_.push_back(std::move(s));
  ++c->open_streams_;
  ++c->incomplete_requests_;
  c->update_read_timeout();
  ++c->counters_.streams;
  evtimer_del(c->idle_timer_.get());
  return 0;
}

int Http2Connection::on_header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                               size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  auto* c = static_cast<Http2Connection*>(user);
  if (c->closed_ || frame->hd.type != NGHTTP2_HEADERS) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (c->akamai_open() && frame->hd.stream_id == c->akamai_stream_ && !n.empty() && n[0] == ':' &&
      c->akamai_pseudo_.size() < fp::kAkamaiMaxEntries)
    c->akamai_pseudo_.emplace_back(n);
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (s == nullptr || c->terminating_) return 0;
  // HPACK bomb defence: the decoded size is capped, not the wire size.
  s->header_bytes += namelen + valuelen + 32;
  ++s->header_count;
  const auto& lim = c->ctx_.cfg->limits;
  if (s->header_bytes > lim.max_header_bytes || s->header_count > lim.max_headers) s->too_large = true;
  if (s->too_large || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers are not forwarded
  if (!n.empty() && n[0] == ':') {
    if (n == ":method") {
      s->method.assign(v);
    } else if (n == ":scheme") {
      s->scheme.assign(v);
    } else if (n == ":authority") {
      s->authority.assign(v);
      s->have_authority = true;
    } else if (n == ":path") {
      s->path.assign(v);
    }
    return 0;
  }
  for (const char ch : n) {
    if (ch >= 'A' && ch <= 'Z') {
      // RFC 9113 §8.2.1: malformed; nghttp2 does not check this for every field.
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_PROTOCOL_ERROR);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
  }
  if (n == "host") {
    if (!s->have_host) s->host_header.assign(v);
    s->have_host = true;
  } else if (n == "cookie") {
    // RFC 9113 §8.2.3: crumbs are joined for HTTP/1.1.
    if (s->have_cookie) s->cookie.append("; ");
    s->cookie.append(v);
    s->have_cookie = true;
  } else if (n == "content-length") {
    uint64_t cl = 0;
    if (!http1::parse_content_length(v, &cl) || (s->have_content_length && cl != s->content_length))
      s->bad_content_length = true;
    s->content_length = cl;
    s->have_content_length = true;
  } else {
    // Room for a typical request at the first field, and for what dispatch()
    // adds: one allocation instead of one per doubling.
    if (s->headers.empty()) s->headers.reserve(kStreamHeadersReserve);
    s->headers.push_back(http1::Header{std::string(n), std::string(v)});
  }
  return 0;
}

int Http2Connection::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<Http2Connection*>(user);
  if (c->closed_) return 0;
  const bool fp_open = c->akamai_open();
  switch (frame->hd.type) {
    case NGHTTP2_SETTINGS: {
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) break;
      if (fp_open) {
        std::vector<std::pair<uint16_t, uint32_t>> iv;
        iv.reserve(std::min(frame->settings.niv, fp::kAkamaiMaxEntries));
        for (size_t i = 0; i < frame->settings.niv && i < fp::kAkamaiMaxEntries; ++i)
          iv.emplace_back(static_cast<uint16_t>(frame->settings.iv[i].settings_id),
                          frame->settings.iv[i].value);
        c->akamai_.on_settings(iv, false);
      }
      if (c->settings_.hit(now_ms(), kMaxSettingsPerSecond))
        c->abuse("SETTINGS flood", &c->counters_.settings_floods);
      break;
    }
    case NGHTTP2_WINDOW_UPDATE:
      if (fp_open)
        c->akamai_.on_window_update(static_cast<uint32_t>(frame->hd.stream_id),
                                    static_cast<uint32_t>(frame->window_update.window_size_increment));
      break;
    case NGHTTP2_PRIORITY:
      if (fp_open) {
        const nghttp2_priority_spec& p = frame->priority.pri_spec;
        c->akamai_.on_priority(static_cast<uint32_t>(frame->hd.stream_id), p.exclusive != 0,
                               static_cast<uint32_t>(p.stream_id), static_cast<uint8_t>(p.weight - 1));
      }
      break;
    case NGHTTP2_PING:
      if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && c->pings_.hit(now_ms(), kMaxPingsPerSecond))
        c->abuse("PING flood", &c->counters_.ping_floods);
      break;
    case NGHTTP2_RST_STREAM: {
      auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      if (s != nullptr && !s->response_sent) {
        ++c->counters_.early_resets;
        const bool burst = c->resets_.hit(now_ms(), kMaxEarlyResetsPerSecond);
        if (burst || c->counters_.early_resets > kEarlyResetAllowance + c->counters_.completed)
          c->abuse("rapid reset", &c->counters_.rapid_reset_floods);
      }
      break;
    }
    case NGHTTP2_HEADERS: {
      evtimer_del(c->header_timer_.get());  // the header block is complete
      if (fp_open && frame->hd.stream_id == c->akamai_stream_) c->fix_fingerprint(frame->hd.stream_id);
      auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      if (s == nullptr || c->terminating_) break;
      const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && !s->dispatched) {
        s->request_complete = end;
        if (end) c->request_settled(*s);
        c->dispatch(*s);
      } else if (end) {
        s->request_complete = true;
        c->request_settled(*s);
        if (s->ex) s->ex->end_body();
      }
      break;
    }
    case NGHTTP2_DATA: {
      if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) break;
      auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      if (s == nullptr) break;
      s->request_complete = true;
      c->request_settled(*s);
      if (s->ex) s->ex->end_body();
      break;
    }
    default:
      break;
  }
  return 0;
}

int Http2Connection::on_data_chunk_recv(nghttp2_session* session, uint8_t, int32_t stream_id,
                                        const uint8_t* data, size_t len, void* user) {
  auto* c = static_cast<Http2Connection*>(user);
  if (c->closed_) return 0;
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (s == nullptr) {
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  if (s->ex && !s->ex->finished() && !s->ex->request_complete() && !c->terminating_) {
    s->ex->send_body(std::string_view(reinterpret_cast<const char*>(data), len));
    if (s->ex->writable() && s->unconsumed == 0) {
      c->consume(*s, len);
    } else {
      s->unconsumed += len;  // acknowledged when the backend drains
    }
  } else {
    c->consume(*s, len);  // answered locally, or the backend is gone: discarded
  }
  return 0;
}

int Http2Connection::on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<Http2Connection*>(user);
  if (c->closed_) return 0;
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (s == nullptr || s->response_sent) return 0;
  s->response_sent = true;
  ++c->counters_.completed;
  // RFC 9113 §8.1: a complete response before the complete request ends the
  // request with RST_STREAM NO_ERROR.
  if (!s->request_complete) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
  return 0;
}

int Http2Connection::on_stream_close(nghttp2_session* session, int32_t stream_id, uint32_t, void* user) {
  auto* c = static_cast<Http2Connection*>(user);
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (s == nullptr) return 0;
  nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
  if (s->unconsumed > 0 && !c->closed_) nghttp2_session_consume_connection(session, s->unconsumed);
  s->unconsumed = 0;
  c->release_stream(*s);
  return 0;
}

ssize_t Http2Connection::read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                   uint32_t* data_flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  const size_t avail = evbuffer_get_length(s->body.get());
  const size_t n = std::min(avail, length);
  if (n > 0) evbuffer_remove(s->body.get(), buf, n);
  s->access.bytes += n;
  if (s->ex && !s->ex->finished() && avail - n <= kStreamBufferLow) s->ex->resume_reading();
  if (s->body_complete && avail == n) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  if (n == 0) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

// ------------------------------------------------------------ streams

void Http2Connection::fix_fingerprint(int32_t stream_id) {
  akamai_.on_headers(static_cast<uint32_t>(stream_id), akamai_pseudo_);
  info_.fingerprints.set(proxy::ConnectionFingerprints::kAkamai, akamai_.value());
  if (ctx_.metrics) ctx_.metrics->http2_fingerprint(true);
  akamai_pseudo_.clear();
  const std::string_view akamai = info_.fingerprints.get(proxy::ConnectionFingerprints::kAkamai).value_or("");
  HLOG_DEBUG("client %s: akamai %.*s", info_.peer_ip.c_str(), static_cast<int>(akamai.size()), akamai.data());
}

void Http2Connection::request_settled(Stream& s) {
  if (!s.outstanding) return;
  s.outstanding = false;
  if (incomplete_requests_ > 0) --incomplete_requests_;
  update_read_timeout();
}

void Http2Connection::update_read_timeout() {
  if (closed_ || !bev_) return;
  // The write timeout is always on; the read timeout only while a request
  // is still arriving (as for HTTP/1.1 request bodies).
  const timeval tv = to_timeval(ctx_.cfg->timeout.proxy_idle_ms);
  bufferevent_set_timeouts(bev_.get(), incomplete_requests_ > 0 ? &tv : nullptr, &tv);
}

void Http2Connection::release_stream(Stream& s) {
  request_settled(s);
  s.closed = true;
  s.access.finish(ctx_, info_);
  if (s.ex && !s.ex->finished()) s.ex->cancel();
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (streams_[i].get() != &s) continue;
    graveyard_.push_back(std::move(streams_[i]));
    streams_[i] = std::move(streams_.back());
    streams_.pop_back();
    break;
  }
  if (open_streams_ > 0) --open_streams_;
  if (open_streams_ == 0 && !closed_ && !terminating_) arm_idle_timer();
  kick();
}

void Http2Connection::consume(Stream& s, size_t n) {
  if (n > 0 && session_) nghttp2_session_consume(session_.get(), s.id, n);
}

void Http2Connection::resume_data(Stream& s) {
  if (!s.deferred || s.closed || !session_) return;
  s.deferred = false;
  nghttp2_session_resume_data(session_.get(), s.id);
}

void Http2Connection::submit_response(Stream& s, uint16_t status, const NvList& fields, bool with_body) {
  nghttp2_data_provider prd;
  prd.source.ptr = &s;
  prd.read_callback = &read_body;
  s.response_submitted = true;
  count_response(ctx_, metrics::Protocol::kHttp2, metrics::method_index(s.method), status, s.metrics_t0_us,
                 s.domain, s.route);
  const int rv =
      nghttp2_submit_response(session_.get(), s.id, fields.data(), fields.size(), with_body ? &prd : nullptr);
  if (rv != 0) {
    HLOG_DEBUG("client %s: stream %d: response not submitted: %s", info_.peer_ip.c_str(), s.id,
               nghttp2_strerror(rv));
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  }
  kick();
}

void Http2Connection::respond_local(Stream& s, uint16_t status, std::string_view reason,
                                    const http1::Headers& extra) {
  if (s.ex) s.ex->cancel();
  // Request DATA held back for the backend is discarded now.
  consume(s, s.unconsumed);
  s.unconsumed = 0;
  if (s.response_submitted) {
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
    kick();
    return;
  }
  http1::Headers sec = proxy::security_headers(*ctx_.cfg, s.domain, s.route, info_.tls);
  sec.insert(sec.end(), extra.begin(), extra.end());
  http1::ErrorParts parts = http1::error_parts(reason, sec);
  const StatusText status_text(status);
  NvList fields;
  fields.add(":status", status_text.view());
  for (auto& h : parts.headers) {
    http1::lower_in_place(h.name);
    if (!valid_field_name(h.name) || connection_specific(h.name)) continue;
    fields.add(h.name, h.value);
  }
  evbuffer_drain(s.body.get(), evbuffer_get_length(s.body.get()));
  const bool with_body = !s.head_request;
  if (with_body) evbuffer_add(s.body.get(), parts.body.data(), parts.body.size());
  s.access.status = status;
  s.body_complete = true;
  submit_response(s, status, fields, with_body);
}

void Http2Connection::dispatch(Stream& s) {
  ++ctx_.total_requests;
  s.dispatched = true;
  s.access.begin(ctx_, s.method, s.path, "HTTP/2.0");
  if (ctx_.metrics) s.metrics_t0_us = metrics_clock_us();
  s.head_request = s.method == "HEAD";
  if (s.too_large) {
    ++counters_.oversized_headers;
    HLOG_WARN("client %s: HTTP/2 stream %d: header list over the limit (%zu bytes, %u fields): 431, GOAWAY",
              info_.peer_ip.c_str(), s.id, s.header_bytes, s.header_count);
    respond_local(s, 431, http1::reason::kHeadersTooLarge);
    nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE, s.id, NGHTTP2_ENHANCE_YOUR_CALM, nullptr, 0);
    draining_ = true;
    final_goaway_ = true;  // that GOAWAY is the last one
    return;
  }
  const auto parts = proxy::split_target(s.path);
  if (s.method.empty() || s.method == "CONNECT" || !parts || parts->absolute || s.bad_content_length) {
    HLOG_DEBUG("client %s: HTTP/2 stream %d: bad request", info_.peer_ip.c_str(), s.id);
    return respond_local(s, 400, http1::reason::kBadRequest);
  }
  const std::string_view authority =
      s.have_authority ? std::string_view(s.authority) : std::string_view(s.host_header);
  auto host = proxy::normalize_host(authority);
  if (!host) return respond_local(s, 400, http1::reason::kBadRequest);
  s.access.set_host(*host);

  auto d = ctx_.router->route(*host, s.path);
  s.domain = d.domain;
  s.route = d.route;
  s.access.route = d.route;
  // The fields as an HTTP/1.1 request would carry them (host from
  // :authority, the cookie crumbs joined), before the admission check: a rate
  // limit keyed by limit_by_header = "host" or "cookie" sees the same value
  // over both protocols.
  // The stream's own list: Host and the cookie, then room for what
  // rewrite_request adds to it (Host, the spoofing report, a client's
  // X-Forwarded-For) in place of Host. Usually there already is.
  http1::Headers in = std::move(s.headers);
  in.reserve(in.size() + 4);
  if (s.have_authority || s.have_host) in.insert(in.begin(), http1::Header{"host", std::string(authority)});
  if (s.have_cookie) in.push_back(http1::Header{"cookie", s.cookie});
  if (auto answer = proxy::local_answer(
          *ctx_.cfg, info_, d,
          {ctx_.ip_filters.get(), ctx_.metrics, ctx_.host_state, &in, ratelimit::monotonic_ns()}))
    return respond_local(s, answer->status, answer->reason, answer->headers);
  proxy::Router::forwarded(d);
  s.backend = d.backend;
  s.access.backend = d.backend;
  const proxy::RequestContext rc = proxy::request_context(*ctx_.cfg, d, info_, *host);
  BackendRequest req;
  req.backend_index = static_cast<size_t>(d.backend - ctx_.cfg->backends.data());
  req.method = s.method;
  req.target = std::move(d.upstream_target);
  req.headers = proxy::rewrite_request(std::move(in), rc, &req.header_refs);
  req.head_request = s.head_request;
  req.client_h2 = true;
  if (s.have_content_length) {
    req.body = BackendRequest::Body::kLength;
    req.content_length = s.content_length;
  } else if (!s.request_complete) {
    req.body = BackendRequest::Body::kChunked;
  } else if (s.method == "POST" || s.method == "PUT" || s.method == "PATCH") {
    req.body = BackendRequest::Body::kLength;  // Content-Length: 0
  }
  req.reusable = !d.route->force_new_connection;
  s.access.upstream_started();
  s.ex = start_backend_exchange(ctx_, s, req);
  if (!s.ex) {
    HLOG_DEBUG("backend %s: cannot connect: 502", d.backend->address.c_str());
    count_backend_error(ctx_, s.domain, s.route, 502);
    return respond_local(s, 502, http1::reason::kBackendError);
  }
  if (s.request_complete) s.ex->end_body();
}

// ------------------------------------------------------------ exchange events

void Http2Connection::on_stream_head(Stream& s, http1::ResponseHead&& head) {
  s.access.upstream_head();
  count_backend_response(ctx_, s.domain, s.route, head.status, s.access.upstream_us.value_or(0));
  if (s.closed || closed_) return;
  s.access.status = head.status;
  proxy::RequestContext rc;
  rc.cfg = ctx_.cfg.get();
  rc.domain = s.domain;
  rc.route = s.route;
  rc.backend = s.backend;
  rc.tls = info_.tls;
  // A HEAD response keeps the backend's Content-Length (rewriting drops it).
  std::optional<std::string> head_length;
  if (head.framing != http1::BodyFraming::kLength && s.head_request) {
    if (const auto* cl = http1::find_header(head.headers, "content-length")) head_length = cl->value;
  }
  http1::Headers rewritten = proxy::rewrite_response(std::move(head.headers), rc);
  // The fields are lower-cased in place and referenced: nothing is copied
  // before nghttp2 encodes them.
  const StatusText status_text(head.status);
  NvList fields;
  fields.add(":status", status_text.view());
  for (auto& h : rewritten) {
    http1::lower_in_place(h.name);
    if (!valid_field_name(h.name) || connection_specific(h.name) || h.name == "content-length") continue;
    fields.add(h.name, h.value);
  }
  char length_text[24];
  if (head.framing == http1::BodyFraming::kLength) {
    const auto end = std::to_chars(length_text, length_text + sizeof length_text, head.content_length).ptr;
    fields.add("content-length", std::string_view(length_text, static_cast<size_t>(end - length_text)));
  } else if (head_length) {
    fields.add("content-length", *head_length);
  }
  const bool with_body = !s.head_request && head.status != 204 && head.status != 304;
  submit_response(s, head.status, fields, with_body);
}

void Http2Connection::on_stream_body(Stream& s, std::string_view data) {
  if (s.closed || closed_) return;
  evbuffer_add(s.body.get(), data.data(), data.size());
  if (evbuffer_get_length(s.body.get()) >= kStreamBufferHigh && s.ex) s.ex->pause_reading();
  resume_data(s);
  kick();
}

void Http2Connection::on_stream_complete(Stream& s) {
  if (s.closed || closed_) return;
  s.body_complete = true;
  resume_data(s);
  kick();
}

void Http2Connection::on_stream_error(Stream& s, uint16_t status, std::string_view reason, bool started) {
  count_backend_error(ctx_, s.domain, s.route, status);
  if (s.closed || closed_) return;
  if (!started && !s.response_submitted) {
    respond_local(s, status, reason);
  } else {
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
    kick();
  }
}

void Http2Connection::on_stream_drained(Stream& s) {
  if (s.closed || closed_) return;
  const size_t n = s.unconsumed;
  s.unconsumed = 0;
  consume(s, n);
  kick();
}

}  // namespace huginn::worker::net
