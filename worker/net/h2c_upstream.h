// One request/response exchange with an HTTP/2 cleartext backend (h2c with
// prior knowledge: `http_version = "http2"`, and "preserve" for HTTP/2
// clients), with the same Sink contract and the same methods as
// UpstreamExchange, so that a front connection can drive either.
//
// Request: structured (H2cRequest), not a serialised HTTP/1.1 head. The
// pseudo-header fields come from method / scheme / authority / path (an empty
// authority sends no :authority); `headers` are sent with lowercased names,
// in order. The caller has already rewritten them (no hop-by-hop fields, no
// Host); connection-specific fields that slip through (Connection,
// Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, Host, TE other
// than "trailers") and fields nghttp2 rejects as invalid are dropped. A
// "content-length" field (the client's Content-Length, added by the caller as
// for HTTP/1.1) is forwarded as is. has_body = false sends HEADERS with
// END_STREAM at start(); otherwise send_body() bytes become DATA frames
// through an nghttp2 data provider (deferred while nothing is queued) and
// end_body() sends END_STREAM.
//
// Response → Sink, as UpstreamExchange does it:
//   * 1xx header blocks → on_exchange_interim();
//   * the final header block → on_exchange_head(ResponseHead): status, empty
//     reason (the writer uses the standard phrase), version 2.0, the regular
//     fields in received order (lowercase, as HTTP/2 requires; content-length
//     kept when present), keep_alive = true, and the framing that
//     Http1Connection / Http2Connection re-frame from:
//       - kNone for HEAD requests, 204 and 304 (no body follows; a HEAD
//         response's content-length stays in `headers`, which is where both
//         front connections copy it from);
//       - kLength + content_length when a valid content-length came (nghttp2
//         checks the DATA against it and resets the stream on a mismatch →
//         a truncated response);
//       - kChunked otherwise: the body ends with END_STREAM, so an HTTP/1.1
//         client gets Transfer-Encoding: chunked (HTTP/1.0: until close) —
//         never kUntilClose, the backend connection outlives the response;
//   * DATA → on_exchange_body(); END_STREAM → on_exchange_complete();
//     trailers are ignored.
//
// Errors (on_exchange_error): connect failure → 502 backend_error; connect
// timeout ([timeout] upstream_connect_ms) → 504 gateway_timeout; response
// timeout ([timeout] upstream_response_secs, armed once the request is
// complete and connected, re-armed by every frame of the response, stopped
// while paused) → 504; RST_STREAM, GOAWAY that covers the stream, connection
// loss or a protocol error → 502 before the head, a cut response after it;
// a response header block (name + value + 32 per field, RFC 9113 §6.5.2)
// above [limits] max_header_bytes or with more than max_headers fields →
// 502 (the connection is dropped). One retry on a fresh connection, only for
// requests without a body: REFUSED_STREAM, a stream above the last stream id
// of a GOAWAY, or a pooled connection lost before the response began.
//
// Flow control:
//   * request: queued() = body bytes nghttp2 has not taken yet + the socket
//     output buffer; the owner stops at !writable() (kHighWater) and hears
//     on_exchange_drained() once it fell to kLowWater;
//   * response: automatic WINDOW_UPDATE is off (stream window
//     kH2cStreamWindow, connection window kH2cConnectionWindow); delivered
//     DATA is acknowledged with nghttp2_session_consume() unless the sink
//     paused reading, in which case it is acknowledged at resume_reading().
//     While paused no further input slice (kH2cRecvSlice) is processed, so a
//     paused sink gets at most the rest of the current slice, and the backend
//     can have at most one stream window in flight.
//
// Connections: one nghttp2 client session per backend TCP connection, one
// stream per exchange, used sequentially like HTTP/1.1 keep-alive (no
// multiplexing). After a complete response the connection goes to the
// H2cPool when the request allowed it (reusable), the worker is not draining
// and the session may still open streams (no GOAWAY, stream ids left);
// otherwise it is closed gracefully (GOAWAY NO_ERROR, then close). SETTINGS
// sent: ENABLE_PUSH = 0, INITIAL_WINDOW_SIZE = kH2cStreamWindow,
// MAX_HEADER_LIST_SIZE = [limits] max_header_bytes.
//
// Callback rules: as UpstreamExchange — every Sink callback runs from an
// event-loop callback; a sink must not destroy the exchange inside one (it
// may call cancel(), pause_reading(), resume_reading(), send_body(),
// end_body()); nothing follows on_exchange_complete() / on_exchange_error().
// cancel() closes the backend connection (never pooled). Backend connections
// are never freed inside their own callbacks: a connection that ends is
// handed to the pool, which frees it from the event loop.
#pragma once

#include <event2/buffer.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/model.h"
#include "common/sys/c_handle.h"
#include "worker/http1/message.h"
#include "worker/net/event_handles.h"
#include "worker/net/graveyard.h"
#include "worker/net/upstream_exchange.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::net {

inline constexpr uint32_t kH2cStreamWindow = 256 * 1024;
inline constexpr uint32_t kH2cConnectionWindow = 1024 * 1024;
inline constexpr size_t kH2cRecvSlice = 16 * 1024;
// How long a connection being closed may take to write its GOAWAY.
inline constexpr uint32_t kH2cCloseGraceMs = 1000;

struct H2cRequest {
  size_t backend_index = 0;  // into ctx.endpoints / cfg->backends
  std::string method;
  std::string path;       // :path (origin form, or "*")
  std::string authority;  // :authority (the client's Host); empty: none
  std::string scheme = "http";
  http1::Headers headers;     // already rewritten, no hop-by-hop, no Host
  bool has_body = false;      // send_body() will carry bytes
  bool head_request = false;  // the response has no body
  bool reusable = false;      // may come from and return to the pool
};

class H2cSession;  // one backend connection (h2c_upstream.cpp)

// Idle h2c backend connections of one worker, per backend (to be owned by
// WorkerContext next to `pool`; it must outlive every H2cUpstream and be
// destroyed before the event_base). An idle connection keeps being served
// (PING, SETTINGS, WINDOW_UPDATE are answered); GOAWAY, EOF, an error or
// `[backend_pool] idle_timeout` ends it. At most pool_max_idle_per_host idle
// connections per backend (0 = no limit); `enabled = false` keeps none.
class H2cPool {
 public:
  H2cPool(event_base* base, const config::BackendPool& cfg, size_t backends);
  ~H2cPool();
  H2cPool(const H2cPool&) = delete;
  H2cPool& operator=(const H2cPool&) = delete;

  bool enabled() const { return cfg_.enabled; }
  size_t idle_count(size_t index) const;
  // Connections writing their final GOAWAY.
  size_t closing_count() const { return closing_.size(); }
  // Closes every idle and closing connection now (worker stop).
  void clear();

 private:
  friend class H2cSession;
  friend class H2cUpstream;

  // A usable idle connection to backend `index`, or null.
  std::unique_ptr<H2cSession> acquire(size_t index);
  // After a complete exchange: kept idle, or closed when not wanted.
  void release(std::unique_ptr<H2cSession> s);
  // GOAWAY NO_ERROR, then closed once written (or after kH2cCloseGraceMs).
  void close(std::unique_ptr<H2cSession> s);
  // Silenced now, freed from the event loop.
  void retire(std::unique_ptr<H2cSession> s);
  // An idle or closing connection ended (from inside its own callbacks).
  void on_session_gone(H2cSession* s);

  config::BackendPool cfg_;
  std::vector<std::list<std::unique_ptr<H2cSession>>> idle_;
  std::list<std::unique_ptr<H2cSession>> closing_;
  event_base* base_;
  Graveyard graveyard_;  // dead sessions
};

class H2cUpstream : public BackendExchange {
 public:
  using Sink = ExchangeSink;

  H2cUpstream(WorkerContext& ctx, H2cPool& pool, Sink& sink);
  ~H2cUpstream();
  H2cUpstream(const H2cUpstream&) = delete;
  H2cUpstream& operator=(const H2cUpstream&) = delete;

  // Submits the request on a pooled connection or starts a connect. false:
  // the exchange could not start (unresolved backend, no socket, nghttp2
  // refused the request); no callback follows, the owner answers 502.
  bool start(H2cRequest req);
  void send_body(std::string_view data) override;
  // The request is complete (END_STREAM follows the queued body).
  void end_body() override;
  size_t queued() const override;
  bool writable() const override { return queued() < kHighWater; }
  void pause_reading() override;
  void resume_reading() override;
  void cancel() override;
  bool finished() const override { return finished_; }
  bool response_started() const override { return response_started_; }
  bool request_complete() const override { return request_complete_; }
  // The current (or last) stream runs on a pooled connection.
  bool reused() const { return reused_; }

 private:
  friend class H2cSession;
  using EvBufferPtr = sys::CHandle<evbuffer, evbuffer_free>;

  static void connect_timer_cb(evutil_socket_t, short, void* arg);
  static void response_timer_cb(evutil_socket_t, short, void* arg);

  bool open(bool allow_pooled);
  int32_t submit();
  void arm_response_timer();
  void consume(size_t n);
  void release_session();
  bool can_retry() const { return !retried_ && !req_.has_body; }
  void retry(const char* why);
  void fail(uint16_t status, std::string_view reason);
  void complete();
  const char* backend_name() const;

  // From the session (its stream only).
  void on_session_connected();
  void on_begin_headers();
  int on_header(std::string_view name, std::string_view value);
  void on_headers_done(bool end_stream);
  void on_data(std::string_view data);
  void on_stream_closed(uint32_t error_code);
  void on_session_lost(const char* why);
  void on_session_flushed();
  ssize_t read_body(uint8_t* buf, size_t length, uint32_t* data_flags);

  WorkerContext& ctx_;
  H2cPool& pool_;
  Sink& sink_;
  H2cRequest req_;
  std::unique_ptr<H2cSession> sess_;
  int32_t stream_id_ = -1;
  EvBufferPtr pending_;  // request body not yet taken by nghttp2
  EventPtr connect_timer_;
  EventPtr response_timer_;
  // The header block being received.
  uint16_t block_status_ = 0;
  http1::Headers block_headers_;
  size_t block_bytes_ = 0;
  uint32_t block_fields_ = 0;
  size_t unconsumed_ = 0;  // DATA delivered while paused, not yet acknowledged
  bool started_ = false;
  bool reused_ = false;
  bool retried_ = false;
  bool deferred_ = false;  // the data provider returned DEFERRED
  bool drain_wanted_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool paused_ = false;
  bool finished_ = false;
};

}  // namespace huginn::worker::net
