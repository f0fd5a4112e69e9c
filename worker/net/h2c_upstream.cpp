#include "worker/net/h2c_upstream.h"

#include "worker/net/bulk_io.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "common/sys/log.h"
#include "worker/http1/writer.h"
#include "worker/net/nv_list.h"

namespace huginn::worker::net {

namespace {

using SessionPtr = sys::CHandle<nghttp2_session, nghttp2_session_del>;
using CallbacksPtr = sys::CHandle<nghttp2_session_callbacks, nghttp2_session_callbacks_del>;
using OptionPtr = sys::CHandle<nghttp2_option, nghttp2_option_del>;

constexpr size_t kMaxOutboundAck = 100;
constexpr size_t kMaxSettingsEntries = 32;

// Request fields HTTP/2 forbids (RFC 9113 §8.2.2) or that become pseudo-headers.
bool connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "host";
}

bool parse_status(std::string_view v, uint16_t* out) {
  if (v.size() != 3) return false;
  uint16_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return false;
    n = static_cast<uint16_t>(n * 10 + (c - '0'));
  }
  if (n < 100) return false;
  *out = n;
  return true;
}

}  // namespace

// ------------------------------------------------------------ session

// One backend connection and its nghttp2 client session. Owned by the
// exchange using it (kActive) or by the pool (kIdle, kClosing, kDead); only
// the pool frees it, from the event loop or its destructor, so a session is
// never freed inside one of its own callbacks. Input is fed to nghttp2 in
// slices from read/kick callbacks; frames are produced (mem_send) only there
// too, never from inside an nghttp2 callback.
class H2cSession {
 public:
  enum class State : uint8_t { kActive, kIdle, kClosing, kDead };

  static std::unique_ptr<H2cSession> open(WorkerContext& ctx, H2cPool& pool, size_t index);
  ~H2cSession() = default;
  H2cSession(const H2cSession&) = delete;
  H2cSession& operator=(const H2cSession&) = delete;

  // Can carry another request.
  bool usable() const {
    return state_ != State::kDead && !lost_ && !goaway_ && connected_ &&
           nghttp2_session_check_request_allowed(session_.get()) != 0;
  }
  void attach(H2cUpstream* owner) {
    state_ = State::kActive;
    owner_ = owner;
    stream_id_ = -1;
    paused_ = false;
  }
  void detach() {
    owner_ = nullptr;
    stream_id_ = -1;
    paused_ = false;
  }
  // Silences the connection for good (it is freed later by the pool).
  void kill() {
    state_ = State::kDead;
    owner_ = nullptr;
    stream_id_ = -1;
    if (bev_) {
      bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
      bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
    }
    if (kick_ev_) event_del(kick_ev_.get());
    if (timer_) evtimer_del(timer_.get());
  }
  // process_input() and flush() from the event loop.
  void kick() {
    if (state_ != State::kDead) event_active(kick_ev_.get(), EV_TIMEOUT, 0);
  }
  void arm_timer(uint64_t ms) {
    const timeval tv = to_timeval(ms);
    evtimer_add(timer_.get(), &tv);
  }
  void stop_timer() { evtimer_del(timer_.get()); }

  nghttp2_session* ngh() { return session_.get(); }
  bufferevent* bev() const { return bev_.get(); }
  size_t index() const { return index_; }
  State state() const { return state_; }
  void set_state(State s) { state_ = s; }
  bool connected() const { return connected_; }
  bool goaway() const { return goaway_; }
  int32_t goaway_last() const { return goaway_last_; }
  void set_stream(int32_t id) { stream_id_ = id; }
  void set_paused(bool p) { paused_ = p; }

  static ssize_t read_body_cb(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                              uint32_t* data_flags, nghttp2_data_source* source, void*);

 private:
  H2cSession(WorkerContext& ctx, H2cPool& pool, size_t index) : ctx_(ctx), pool_(pool), index_(index) {}
  bool init();

  H2cUpstream* mine(int32_t stream_id) const {
    return state_ == State::kActive && owner_ != nullptr && stream_id == stream_id_ ? owner_ : nullptr;
  }
  void process_input();
  void flush();
  void lose(const char* why);

  static void read_cb(bufferevent*, void* arg);
  static void write_cb(bufferevent*, void* arg);
  static void event_cb(bufferevent*, short what, void* arg);
  static void kick_cb(evutil_socket_t, short, void* arg);
  static void timer_cb(evutil_socket_t, short, void* arg);

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t flags, void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_data_chunk_recv(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                                size_t len, void* user);
  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user);

  WorkerContext& ctx_;
  H2cPool& pool_;
  size_t index_;
  BufferEventPtr bev_;
  SessionPtr session_;
  EventPtr kick_ev_;
  EventPtr timer_;  // idle timeout (kIdle), close grace (kClosing)
  State state_ = State::kActive;
  H2cUpstream* owner_ = nullptr;
  int32_t stream_id_ = -1;
  int32_t goaway_last_ = 0;
  bool connected_ = false;
  bool goaway_ = false;
  bool lost_ = false;
  bool paused_ = false;
};

std::unique_ptr<H2cSession> H2cSession::open(WorkerContext& ctx, H2cPool& pool, size_t index) {
  std::unique_ptr<H2cSession> s(new H2cSession(ctx, pool, index));
  if (!s->init()) return nullptr;
  return s;
}

bool H2cSession::init() {
  const proxy::BackendEndpoint& ep = ctx_.endpoints[index_];
  kick_ev_.reset(event_new(ctx_.base, -1, 0, &H2cSession::kick_cb, this));
  timer_.reset(evtimer_new(ctx_.base, &H2cSession::timer_cb, this));
  bev_.reset(bufferevent_socket_new(ctx_.base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS));
  if (!kick_ev_ || !timer_ || !bev_) return false;

  nghttp2_session_callbacks* raw_cbs = nullptr;
  if (nghttp2_session_callbacks_new(&raw_cbs) != 0) return false;
  const CallbacksPtr cbs(raw_cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs.get(), &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs.get(), &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs.get(), &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs.get(), &on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs.get(), &on_stream_close);
  nghttp2_option* raw_opt = nullptr;
  if (nghttp2_option_new(&raw_opt) != 0) return false;
  const OptionPtr opt(raw_opt);
  nghttp2_option_set_no_auto_window_update(opt.get(), 1);
  nghttp2_option_set_max_outbound_ack(opt.get(), kMaxOutboundAck);
  nghttp2_option_set_max_settings(opt.get(), kMaxSettingsEntries);
  nghttp2_session* raw = nullptr;
  if (nghttp2_session_client_new2(&raw, cbs.get(), this, opt.get()) != 0) return false;
  session_.reset(raw);

  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kH2cStreamWindow},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, ctx_.cfg->limits.max_header_bytes},
  };
  if (nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0)
    return false;
  if (nghttp2_session_set_local_window_size(session_.get(), NGHTTP2_FLAG_NONE, 0,
                                            static_cast<int32_t>(kH2cConnectionWindow)) != 0)
    return false;

  bufferevent_setcb(bev_.get(), &read_cb, &write_cb, &event_cb, this);
  raise_io_limits(bev_.get());
  bufferevent_setwatermark(bev_.get(), EV_READ, 0, kReadHigh);
  bufferevent_setwatermark(bev_.get(), EV_WRITE, kLowWater, 0);
  if (bufferevent_socket_connect(bev_.get(), reinterpret_cast<const sockaddr*>(&ep.addr),
                                 static_cast<int>(ep.len)) != 0)
    return false;
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  return true;
}

void H2cSession::lose(const char* why) {
  if (state_ == State::kDead || lost_) return;
  lost_ = true;
  HLOG_DEBUG("backend %s: h2c connection: %s", ctx_.cfg->backends[index_].address.c_str(), why);
  if (state_ == State::kActive) {
    if (owner_ != nullptr) {
      owner_->on_session_lost(why);  // retires the session
    } else {
      kill();
    }
    return;
  }
  pool_.on_session_gone(this);
}

void H2cSession::process_input() {
  if (state_ == State::kDead || !bev_) return;
  evbuffer* in = bufferevent_get_input(bev_.get());
  while (state_ != State::kDead && !lost_ && !(state_ == State::kActive && paused_)) {
    if (evbuffer_get_length(in) == 0) break;
    evbuffer_iovec v;
    if (evbuffer_peek(in, -1, nullptr, &v, 1) < 1) break;
    const size_t n = std::min(v.iov_len, kH2cRecvSlice);
    const ssize_t rv = nghttp2_session_mem_recv(session_.get(), static_cast<const uint8_t*>(v.iov_base), n);
    if (state_ == State::kDead) return;  // retired from a callback
    if (rv < 0) {
      HLOG_DEBUG("backend %s: h2c: %s", ctx_.cfg->backends[index_].address.c_str(),
                 nghttp2_strerror(static_cast<int>(rv)));
      // nghttp2 may have queued a GOAWAY; the connection is over either way.
      lose("protocol error");
      return;
    }
    evbuffer_drain(in, static_cast<size_t>(rv));
  }
  flush();
}

void H2cSession::flush() {
  if (state_ == State::kDead || lost_ || !bev_) return;
  evbuffer* out = bufferevent_get_output(bev_.get());
  while (evbuffer_get_length(out) < kHighWater) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
    if (state_ == State::kDead) return;
    if (n < 0) {
      HLOG_DEBUG("backend %s: h2c: %s", ctx_.cfg->backends[index_].address.c_str(),
                 nghttp2_strerror(static_cast<int>(n)));
      lose("send error");
      return;
    }
    if (n == 0) break;
    evbuffer_add(out, data, static_cast<size_t>(n));
  }
  if (nghttp2_session_want_read(session_.get()) == 0 && nghttp2_session_want_write(session_.get()) == 0) {
    // GOAWAY exchanged and nothing left: the connection is over once written.
    if (state_ != State::kClosing || evbuffer_get_length(out) == 0) lose("session ended");
    return;
  }
  if (state_ == State::kActive && owner_ != nullptr) owner_->on_session_flushed();
}

void H2cSession::read_cb(bufferevent*, void* arg) {
  auto* s = static_cast<H2cSession*>(arg);
  s->process_input();
}

void H2cSession::write_cb(bufferevent* bev, void* arg) {
  auto* s = static_cast<H2cSession*>(arg);
  if (s->state_ == State::kClosing && out_len(bev) == 0 && nghttp2_session_want_write(s->ngh()) == 0) {
    s->lose("closed");
    return;
  }
  s->flush();
}

void H2cSession::event_cb(bufferevent* bev, short what, void* arg) {
  auto* s = static_cast<H2cSession*>(arg);
  if (s->state_ == State::kDead) return;
  if (what & BEV_EVENT_CONNECTED) {
    s->connected_ = true;
    read_directly(bev);  // connecting re-pointed the read event at libevent's reads
    set_upstream_socket_options(bev, *s->ctx_.cfg);
    if (s->owner_ != nullptr) s->owner_->on_session_connected();
    s->flush();
    return;
  }
  if (what & BEV_EVENT_EOF) {
    // Whatever arrived before the FIN, even while paused.
    s->paused_ = false;
    s->process_input();
    s->lose("closed by the backend");
    return;
  }
  s->lose(s->connected_ ? "connection error" : "connect failed");
}

void H2cSession::kick_cb(evutil_socket_t, short, void* arg) {
  static_cast<H2cSession*>(arg)->process_input();
}

void H2cSession::timer_cb(evutil_socket_t, short, void* arg) {
  auto* s = static_cast<H2cSession*>(arg);
  if (s->state_ == State::kIdle || s->state_ == State::kClosing)
    s->lose(s->state_ == State::kIdle ? "idle timeout" : "close grace over");
}

int H2cSession::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* s = static_cast<H2cSession*>(user);
  if (s->state_ == State::kDead) return NGHTTP2_ERR_CALLBACK_FAILURE;
  if (H2cUpstream* o = s->mine(frame->hd.stream_id)) o->on_begin_headers();
  return 0;
}

int H2cSession::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                          const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  auto* s = static_cast<H2cSession*>(user);
  if (s->state_ == State::kDead) return NGHTTP2_ERR_CALLBACK_FAILURE;
  H2cUpstream* o = s->mine(frame->hd.stream_id);
  if (o == nullptr || frame->hd.type != NGHTTP2_HEADERS) return 0;
  const int rv = o->on_header(std::string_view(reinterpret_cast<const char*>(name), namelen),
                              std::string_view(reinterpret_cast<const char*>(value), valuelen));
  return s->state_ == State::kDead ? NGHTTP2_ERR_CALLBACK_FAILURE : rv;
}

int H2cSession::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* s = static_cast<H2cSession*>(user);
  if (s->state_ == State::kDead) return NGHTTP2_ERR_CALLBACK_FAILURE;
  switch (frame->hd.type) {
    case NGHTTP2_GOAWAY:
      s->goaway_ = true;
      s->goaway_last_ = frame->goaway.last_stream_id;
      HLOG_DEBUG("backend %s: h2c GOAWAY (last stream %d, error %u)",
                 s->ctx_.cfg->backends[s->index_].address.c_str(), frame->goaway.last_stream_id,
                 frame->goaway.error_code);
      // Streams above the last id are closed by nghttp2 (REFUSED_STREAM).
      if (s->state_ != State::kActive) s->lose("GOAWAY");
      break;
    case NGHTTP2_HEADERS:
      if (H2cUpstream* o = s->mine(frame->hd.stream_id))
        o->on_headers_done((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
      break;
    case NGHTTP2_DATA:
      if (H2cUpstream* o = s->mine(frame->hd.stream_id)) {
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) o->on_headers_done(true);
      }
      break;
    default:
      break;
  }
  return s->state_ == State::kDead ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

int H2cSession::on_data_chunk_recv(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                                   size_t len, void* user) {
  auto* s = static_cast<H2cSession*>(user);
  if (s->state_ == State::kDead) return NGHTTP2_ERR_CALLBACK_FAILURE;
  H2cUpstream* o = s->mine(stream_id);
  if (o == nullptr) {
    nghttp2_session_consume(session, stream_id, len);  // a finished stream: discarded
    return 0;
  }
  o->on_data(std::string_view(reinterpret_cast<const char*>(data), len));
  return s->state_ == State::kDead ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

int H2cSession::on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
  auto* s = static_cast<H2cSession*>(user);
  if (s->state_ == State::kDead) return 0;
  if (H2cUpstream* o = s->mine(stream_id)) o->on_stream_closed(error_code);
  return 0;
}

ssize_t H2cSession::read_body_cb(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                                 uint32_t* data_flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<H2cSession*>(source->ptr);
  H2cUpstream* o = s->mine(stream_id);
  // A stream whose exchange is over sends no more body (it is being reset).
  if (o == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  return o->read_body(buf, length, data_flags);
}

// ------------------------------------------------------------ pool

H2cPool::H2cPool(event_base* base, const config::BackendPool& cfg, size_t backends)
    : cfg_(cfg), idle_(backends), base_(base) {}

H2cPool::~H2cPool() { clear(); }

void H2cPool::clear() {
  for (auto& l : idle_) l.clear();
  closing_.clear();
  graveyard_.reap();
}

size_t H2cPool::idle_count(size_t index) const { return index < idle_.size() ? idle_[index].size() : 0; }

std::unique_ptr<H2cSession> H2cPool::acquire(size_t index) {
  if (!cfg_.enabled || index >= idle_.size()) return nullptr;
  auto& list = idle_[index];
  while (!list.empty()) {
    // Most recently used first: the likeliest to still be open on the backend.
    std::unique_ptr<H2cSession> s = std::move(list.back());
    list.pop_back();
    if (!s->usable()) {
      retire(std::move(s));
      continue;
    }
    s->stop_timer();
    s->set_state(H2cSession::State::kActive);
    return s;
  }
  return nullptr;
}

void H2cPool::release(std::unique_ptr<H2cSession> s) {
  if (!s) return;
  const size_t index = s->index();
  if (!cfg_.enabled || index >= idle_.size() || !s->usable() ||
      (cfg_.pool_max_idle_per_host != 0 && idle_[index].size() >= cfg_.pool_max_idle_per_host)) {
    close(std::move(s));
    return;
  }
  s->detach();
  s->set_state(H2cSession::State::kIdle);
  if (cfg_.idle_timeout != 0) s->arm_timer(uint64_t{cfg_.idle_timeout} * 1000);
  s->kick();  // frames the last exchange left queued (WINDOW_UPDATE, RST_STREAM)
  idle_[index].push_back(std::move(s));
}

void H2cPool::close(std::unique_ptr<H2cSession> s) {
  if (!s) return;
  if (!s->connected() || s->state() == H2cSession::State::kDead) {
    retire(std::move(s));
    return;
  }
  s->detach();
  s->set_state(H2cSession::State::kClosing);
  nghttp2_session_terminate_session(s->ngh(), NGHTTP2_NO_ERROR);
  s->arm_timer(kH2cCloseGraceMs);
  s->kick();
  closing_.push_back(std::move(s));
}

void H2cPool::retire(std::unique_ptr<H2cSession> s) {
  if (!s) return;
  s->kill();
  graveyard_.bury(base_, std::move(s));
}

void H2cPool::on_session_gone(H2cSession* s) {
  auto take = [&](std::list<std::unique_ptr<H2cSession>>& list) {
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (it->get() != s) continue;
      std::unique_ptr<H2cSession> owned = std::move(*it);
      list.erase(it);
      retire(std::move(owned));
      return true;
    }
    return false;
  };
  if (s->index() < idle_.size() && take(idle_[s->index()])) return;
  if (take(closing_)) return;
  s->kill();  // not ours (cannot happen): at least silence it
}

// ------------------------------------------------------------ exchange

H2cUpstream::H2cUpstream(WorkerContext& ctx, H2cPool& pool, Sink& sink)
    : ctx_(ctx),
      pool_(pool),
      sink_(sink),
      pending_(evbuffer_new()),
      connect_timer_(evtimer_new(ctx.base, &H2cUpstream::connect_timer_cb, this)),
      response_timer_(evtimer_new(ctx.base, &H2cUpstream::response_timer_cb, this)) {}

H2cUpstream::~H2cUpstream() { release_session(); }

const char* H2cUpstream::backend_name() const {
  return req_.backend_index < ctx_.cfg->backends.size()
             ? ctx_.cfg->backends[req_.backend_index].address.c_str()
             : "-";
}

bool H2cUpstream::start(H2cRequest req) {
  if (started_ || !pending_ || !connect_timer_ || !response_timer_) return false;
  started_ = true;
  req_ = std::move(req);
  // Without a body the request is complete once submitted (end_body() is then a no-op).
  request_complete_ = !req_.has_body;
  if (req_.backend_index >= ctx_.endpoints.size() || !ctx_.endpoints[req_.backend_index].resolved ||
      !open(true)) {
    finished_ = true;
    release_session();
    return false;
  }
  return true;
}

bool H2cUpstream::open(bool allow_pooled) {
  block_status_ = 0;
  block_headers_.clear();
  block_bytes_ = 0;
  block_fields_ = 0;
  unconsumed_ = 0;
  deferred_ = false;
  reused_ = false;
  if (allow_pooled && req_.reusable) sess_ = pool_.acquire(req_.backend_index);
  if (sess_) {
    reused_ = true;
  } else {
    sess_ = H2cSession::open(ctx_, pool_, req_.backend_index);
    if (!sess_) return false;
    const timeval tv = to_timeval(ctx_.cfg->timeout.upstream_connect_ms);
    evtimer_add(connect_timer_.get(), &tv);
  }
  sess_->attach(this);
  sess_->set_paused(paused_);
  stream_id_ = submit();
  if (stream_id_ < 0) {
    const bool was_reused = reused_;
    release_session();
    evtimer_del(connect_timer_.get());
    return was_reused && open(false);
  }
  sess_->set_stream(stream_id_);
  if (sess_->connected()) arm_response_timer();
  sess_->kick();
  return true;
}

int32_t H2cUpstream::submit() {
  // The names are lower-cased in place (again, harmlessly, on a retry) and
  // referenced: nothing is copied before nghttp2 encodes them.
  NvList fields;
  fields.add(":method", req_.method);
  fields.add(":scheme", req_.scheme);
  if (!req_.authority.empty()) fields.add(":authority", req_.authority);
  fields.add(":path", req_.path);
  for (auto& h : req_.headers) {
    http1::lower_in_place(h.name);
    const std::string& name = h.name;
    if (name.empty() || name[0] == ':' || connection_specific(name)) continue;
    if (name == "te" && !http1::iequals(http1::trim_ows(h.value), "trailers")) continue;
    if (nghttp2_check_header_name(reinterpret_cast<const uint8_t*>(name.data()), name.size()) == 0 ||
        nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(h.value.data()), h.value.size()) == 0) {
      HLOG_DEBUG("backend %s: h2c: request field %s dropped (invalid)", backend_name(), name.c_str());
      continue;
    }
    fields.add(name, h.value);
  }
  nghttp2_data_provider prd;
  prd.source.ptr = sess_.get();
  prd.read_callback = &H2cSession::read_body_cb;
  const int32_t id = nghttp2_submit_request(sess_->ngh(), nullptr, fields.data(), fields.size(),
                                            req_.has_body ? &prd : nullptr, nullptr);
  if (id < 0) HLOG_DEBUG("backend %s: h2c request not submitted: %s", backend_name(), nghttp2_strerror(id));
  return id;
}

size_t H2cUpstream::queued() const {
  size_t n = pending_ ? evbuffer_get_length(pending_.get()) : 0;
  if (sess_ && sess_->bev()) n += out_len(sess_->bev());
  return n;
}

void H2cUpstream::send_body(std::string_view data) {
  if (finished_ || request_complete_ || !req_.has_body || data.empty()) return;
  evbuffer_add(pending_.get(), data.data(), data.size());
  if (queued() > kLowWater) drain_wanted_ = true;
  if (!sess_) return;
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(sess_->ngh(), stream_id_);
  }
  sess_->kick();
}

void H2cUpstream::end_body() {
  if (finished_ || request_complete_) return;
  request_complete_ = true;
  if (!sess_) return;
  if (req_.has_body && deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(sess_->ngh(), stream_id_);
    sess_->kick();
  }
  if (sess_->connected()) arm_response_timer();
}

ssize_t H2cUpstream::read_body(uint8_t* buf, size_t length, uint32_t* data_flags) {
  if (finished_) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const size_t n = std::min(evbuffer_get_length(pending_.get()), length);
  if (n > 0) evbuffer_remove(pending_.get(), buf, n);
  if (request_complete_ && evbuffer_get_length(pending_.get()) == 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  if (n == 0) {
    deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

void H2cUpstream::arm_response_timer() {
  if (finished_ || paused_ || !request_complete_ || !sess_ || !sess_->connected()) return;
  const timeval tv = to_timeval(uint64_t{ctx_.cfg->timeout.upstream_response_secs} * 1000);
  evtimer_add(response_timer_.get(), &tv);
}

void H2cUpstream::consume(size_t n) {
  if (n > 0 && sess_) nghttp2_session_consume(sess_->ngh(), stream_id_, n);
}

void H2cUpstream::pause_reading() {
  if (paused_) return;
  paused_ = true;
  if (sess_) sess_->set_paused(true);
  evtimer_del(response_timer_.get());
}

void H2cUpstream::resume_reading() {
  if (!paused_) return;
  paused_ = false;
  if (finished_ || !sess_) return;
  sess_->set_paused(false);
  consume(unconsumed_);  // the window opens again
  unconsumed_ = 0;
  arm_response_timer();
  sess_->kick();  // buffered input is processed from the loop, never inside this call
}

void H2cUpstream::release_session() {
  if (!sess_) return;
  sess_->detach();
  pool_.retire(std::move(sess_));
}

void H2cUpstream::cancel() {
  finished_ = true;
  release_session();
  if (connect_timer_) evtimer_del(connect_timer_.get());
  if (response_timer_) evtimer_del(response_timer_.get());
}

void H2cUpstream::fail(uint16_t status, std::string_view reason) {
  HLOG_DEBUG("backend %s: h2c: %s (%u)", backend_name(), std::string(reason).c_str(),
             static_cast<unsigned>(status));
  const bool started = response_started_;
  cancel();
  sink_.on_exchange_error(status, reason, started);
}

void H2cUpstream::retry(const char* why) {
  HLOG_DEBUG("backend %s: h2c: %s: retrying on a new connection", backend_name(), why);
  retried_ = true;
  release_session();
  evtimer_del(connect_timer_.get());
  evtimer_del(response_timer_.get());
  if (!open(false)) fail(502, http1::reason::kBackendError);
}

void H2cUpstream::complete() {
  finished_ = true;
  evtimer_del(connect_timer_.get());
  evtimer_del(response_timer_.get());
  std::unique_ptr<H2cSession> s = std::move(sess_);
  nghttp2_session* ngh = s->ngh();
  // Everything delivered counts as consumed now; the connection window must
  // be whole for the next exchange.
  if (unconsumed_ > 0) nghttp2_session_consume(ngh, stream_id_, unconsumed_);
  unconsumed_ = 0;
  // A response that ended before the request did: the rest of the request
  // is not wanted (RFC 9113 §8.1).
  if (nghttp2_session_get_stream_local_close(ngh, stream_id_) == 0)
    nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE, stream_id_, NGHTTP2_CANCEL);
  s->detach();
  if (req_.reusable && pool_.enabled() && !ctx_.draining && s->usable()) {
    pool_.release(std::move(s));
  } else {
    pool_.close(std::move(s));
  }
  sink_.on_exchange_complete();
}

void H2cUpstream::connect_timer_cb(evutil_socket_t, short, void* arg) {
  auto* x = static_cast<H2cUpstream*>(arg);
  if (x->finished_ || (x->sess_ && x->sess_->connected())) return;
  x->fail(504, http1::reason::kGatewayTimeout);
}

void H2cUpstream::response_timer_cb(evutil_socket_t, short, void* arg) {
  auto* x = static_cast<H2cUpstream*>(arg);
  if (x->finished_) return;
  x->fail(504, http1::reason::kGatewayTimeout);
}

void H2cUpstream::on_session_connected() {
  if (finished_) return;
  evtimer_del(connect_timer_.get());
  arm_response_timer();
}

void H2cUpstream::on_begin_headers() {
  block_status_ = 0;
  block_headers_.clear();
  block_bytes_ = 0;
  block_fields_ = 0;
  arm_response_timer();
}

int H2cUpstream::on_header(std::string_view name, std::string_view value) {
  if (finished_) return NGHTTP2_ERR_CALLBACK_FAILURE;
  block_bytes_ += name.size() + value.size() + 32;
  ++block_fields_;
  const auto& lim = ctx_.cfg->limits;
  if (block_bytes_ > lim.max_header_bytes || block_fields_ > lim.max_headers) {
    HLOG_WARN("backend %s: h2c response header list over the limit (%zu bytes, %u fields): 502",
              backend_name(), block_bytes_, block_fields_);
    fail(502, http1::reason::kBackendError);
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  if (!name.empty() && name[0] == ':') {
    if (name == ":status" && !parse_status(value, &block_status_)) block_status_ = 0;
    return 0;
  }
  block_headers_.push_back(http1::Header{std::string(name), std::string(value)});
  return 0;
}

void H2cUpstream::on_headers_done(bool end_stream) {
  if (finished_) return;
  if (!response_started_ && block_status_ != 0) {
    http1::ResponseHead head;
    head.status = block_status_;
    head.version_major = 2;
    head.version_minor = 0;
    head.headers = std::move(block_headers_);
    block_headers_.clear();
    head.keep_alive = true;
    if (head.status < 200) {
      if (!end_stream) sink_.on_exchange_interim(head);
      if (finished_ || !end_stream) return;
    } else {
      const http1::Header* cl = http1::find_header(head.headers, "content-length");
      uint64_t n = 0;
      if (req_.head_request || head.status == 204 || head.status == 304) {
        head.framing = http1::BodyFraming::kNone;
      } else if (cl != nullptr && http1::parse_content_length(cl->value, &n)) {
        head.framing = http1::BodyFraming::kLength;
        head.content_length = n;
      } else {
        head.framing = http1::BodyFraming::kChunked;
      }
      response_started_ = true;
      evtimer_del(connect_timer_.get());
      sink_.on_exchange_head(std::move(head));
      if (finished_) return;
    }
  }
  // Later blocks are trailers: not forwarded.
  if (!end_stream) return;
  if (!response_started_) {
    fail(502, http1::reason::kBackendError);  // END_STREAM without a final response
    return;
  }
  complete();
}

void H2cUpstream::on_data(std::string_view data) {
  if (finished_ || !response_started_) {
    if (sess_) nghttp2_session_consume(sess_->ngh(), stream_id_, data.size());
    return;
  }
  arm_response_timer();
  sink_.on_exchange_body(data);
  if (finished_) return;  // the sink cancelled
  if (paused_) {
    unconsumed_ += data.size();
    evtimer_del(response_timer_.get());
  } else {
    consume(data.size());
  }
}

void H2cUpstream::on_stream_closed(uint32_t error_code) {
  if (finished_) return;
  const bool refused =
      error_code == NGHTTP2_REFUSED_STREAM || (sess_ && sess_->goaway() && stream_id_ > sess_->goaway_last());
  if (!response_started_ && refused && can_retry()) {
    retry("stream refused");
    return;
  }
  HLOG_DEBUG("backend %s: h2c stream %d closed (%s) before the response ended", backend_name(), stream_id_,
             nghttp2_http2_strerror(error_code));
  fail(502, http1::reason::kBackendError);
}

void H2cUpstream::on_session_lost(const char* why) {
  if (finished_) {
    release_session();
    return;
  }
  if (!response_started_ && reused_ && can_retry()) {
    retry(why);
    return;
  }
  fail(502, http1::reason::kBackendError);
}

void H2cUpstream::on_session_flushed() {
  if (finished_ || !drain_wanted_ || queued() > kLowWater) return;
  drain_wanted_ = false;
  sink_.on_exchange_drained();
}

}  // namespace huginn::worker::net
