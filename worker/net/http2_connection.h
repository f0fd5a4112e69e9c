// One HTTP/2 client connection (h2c with prior knowledge, or TLS with ALPN
// "h2"), served with an nghttp2 server session, each request stream proxied to
// a backend through its own BackendExchange (HTTP/1.1 or h2c, backend_exchange.h).
//
// Transport: a connected bufferevent without callbacks; bytes already in its
// input buffer (a sniffed h2c preface, data after the TLS handshake) are
// processed by start(). (libevent freezes the END of a socket bufferevent's
// input buffer: a sniffer hands bytes back with evbuffer_prepend(), not
// evbuffer_add(), which fails there.) nghttp2 is driven with mem_recv/mem_send: input is fed
// in slices while the client output buffer is below kHighWater (reading stops
// above it and resumes at kLowWater), and frames are produced only while the
// output buffer is below kHighWater.
//
// Server SETTINGS: MAX_CONCURRENT_STREAMS = [limits] h2_max_concurrent_streams,
// MAX_HEADER_LIST_SIZE = [limits] max_header_bytes, INITIAL_WINDOW_SIZE =
// kStreamWindow; the connection receive window is raised to kConnectionWindow.
//
// Flow control: automatic WINDOW_UPDATE is off. Request DATA is handed to the
// backend exchange at once and acknowledged (nghttp2_session_consume) while
// the exchange's queue is below kHighWater, otherwise when the backend drains
// it to kLowWater. Response bodies are buffered per stream up to
// kStreamBufferHigh; above it the exchange stops reading from the backend
// until the data provider took the buffer down to kStreamBufferLow.
//
// Requests: pseudo-headers → host (:authority, else Host; normalised) →
// Router → TLS host check → local 421/404/503 (JSON body and security headers
// as for HTTP/1.1), or header rewrite and the backend request (Content-Length
// when the client sent one, else chunked; no body when HEADERS ended the
// stream). Malformed messages (missing or duplicate pseudo-headers,
// connection-specific fields, uppercase names, a Content-Length that does not
// match the DATA) are reset with PROTOCOL_ERROR by nghttp2's own HTTP
// messaging checks (an invalid regular field, which nghttp2 would only drop,
// resets the stream too); CONNECT, a :path that is not origin- or asterisk-form and
// an unusable host are answered 400. Backends with http_version "http2" (and
// "preserve", which means h2 for this client) are answered 502 with a log line:
// only HTTP/1.1 backends are spoken to.
//
// Akamai fingerprint ([fingerprint] http_enabled): built from the frames the
// session receives (first non-ACK SETTINGS, first connection WINDOW_UPDATE,
// PRIORITY frames, pseudo-header order of the first HEADERS), fixed at the
// first HEADERS, stored in ClientInfo::fingerprints and injected into every
// request of the connection.
//
// Abuse defences (each logged with the client address; the connection is
// answered with GOAWAY and closed):
//   * concurrent streams above the advertised limit: REFUSED_STREAM (nghttp2);
//   * header list: decoded size (name + value + 32 per field, RFC 9113
//     §6.5.2) above max_header_bytes or more than max_headers fields: the
//     stream gets 431, then GOAWAY ENHANCE_YOUR_CALM (last stream = that one)
//     and the connection ends after its open streams;
//   * CONTINUATION flood: more than kMaxContinuations CONTINUATION frames in
//     one header block → GOAWAY ENHANCE_YOUR_CALM, close (below the default
//     limit of 8 of nghttp2 builds that have one, which would otherwise end
//     the session first with a PROTOCOL_ERROR);
//   * rapid reset (CVE-2023-44487): a client RST_STREAM on a stream whose
//     response was not completely sent counts as an early reset; more than
//     kMaxEarlyResetsPerSecond in one second, or more than
//     kEarlyResetAllowance + (completed responses) over the connection's
//     lifetime → GOAWAY ENHANCE_YOUR_CALM, close;
//   * PING flood: more than kMaxPingsPerSecond non-ACK PINGs in one second;
//     SETTINGS flood: more than kMaxSettingsPerSecond non-ACK SETTINGS in one
//     second → GOAWAY ENHANCE_YOUR_CALM, close. nghttp2 itself also bounds
//     queued ACKs (kMaxOutboundAck) and SETTINGS entries per frame
//     (kMaxSettingsEntries);
//   * request header timeout: the first request's header block must be
//     complete within [timeout] request_header_ms of the start (as for
//     HTTP/1.1), and every later header block within request_header_ms of
//     its HEADERS frame (a CONTINUATION trickle) → GOAWAY NO_ERROR, close;
//   * idle: no open stream for [timeout] proxy_idle_ms → GOAWAY NO_ERROR,
//     close. A client that stops reading for proxy_idle_ms is dropped, and
//     so is one that sends nothing for proxy_idle_ms while a request of it
//     is incomplete (header block or body outstanding: slowloris).
//
// drain(): GOAWAY shutdown notice (last stream 2^31-1), then the final GOAWAY
// (NO_ERROR, last processed stream) after kDrainIdleGraceMs (at once if the
// session has nothing left to read or write). Streams the client opened before the
// final GOAWAY are served (it is what the notice is for); later ones are
// ignored by nghttp2 as RFC 9113 §6.8 says. The connection closes once the
// final GOAWAY is written and no stream is left. A connection started while
// ctx.draining is already set drains at once.
//
// Lifetime: as Http1Connection. close() releases the transport and every
// backend connection and reports to WorkerContext::on_closed exactly once;
// the owner destroys the object later from the event loop.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fingerprint/akamai.h"
#include "common/sys/c_handle.h"
#include "worker/http1/message.h"
#include "worker/net/bulk_io.h"
#include "worker/net/connection.h"
#include "worker/net/event_handles.h"
#include "worker/net/nv_list.h"
#include "worker/net/upstream_exchange.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::net {

inline constexpr uint32_t kStreamWindow = 256 * 1024;
inline constexpr uint32_t kConnectionWindow = 1024 * 1024;
inline constexpr size_t kStreamBufferHigh = 64 * 1024;
inline constexpr size_t kStreamBufferLow = 16 * 1024;
inline constexpr size_t kH2RecvSlice = 16 * 1024;
inline constexpr uint32_t kMaxContinuations = 7;
inline constexpr uint32_t kMaxEarlyResetsPerSecond = 100;
inline constexpr uint64_t kEarlyResetAllowance = 200;
inline constexpr uint32_t kMaxPingsPerSecond = 50;
inline constexpr uint32_t kMaxSettingsPerSecond = 20;
inline constexpr size_t kMaxOutboundAck = 100;
inline constexpr size_t kMaxSettingsEntries = 32;

class Http2Connection : public Connection {
 public:
  // What a connection noticed about its client, for tests and logs.
  struct Counters {
    uint64_t streams = 0;            // request streams begun
    uint64_t completed = 0;          // responses completely sent
    uint64_t early_resets = 0;       // client resets before the response ended
    uint64_t oversized_headers = 0;  // header lists over the limits
    uint64_t continuation_floods = 0;
    uint64_t ping_floods = 0;
    uint64_t settings_floods = 0;
    uint64_t rapid_reset_floods = 0;
  };

  Http2Connection(WorkerContext& ctx, BufferEventPtr transport, ClientInfo info);
  ~Http2Connection() override;
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  bool start() override;
  void drain() override;
  bool closed() const override { return closed_; }

  const ClientInfo& info() const { return info_; }
  const Counters& counters() const { return counters_; }
  size_t open_streams() const { return open_streams_; }

 private:
  struct Stream;
  struct RateWindow {
    uint64_t start_ms = 0;
    uint32_t count = 0;
    // Counts one event; true when more than `limit` fell into this second.
    bool hit(uint64_t now_ms, uint32_t limit);
  };
  using SessionPtr = sys::CHandle<nghttp2_session, nghttp2_session_del>;

  // nghttp2 callbacks.
  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user);
  static int on_invalid_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                               size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                               void* user);
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t flags, void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_data_chunk_recv(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                                size_t len, void* user);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user);
  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void* user);

  // libevent callbacks.
  static void read_cb(bufferevent* bev, void* arg);
  static void write_cb(bufferevent* bev, void* arg);
  static void event_cb(bufferevent* bev, short what, void* arg);
  static void idle_timer_cb(evutil_socket_t, short, void* arg);
  static void header_timer_cb(evutil_socket_t, short, void* arg);
  static void drain_timer_cb(evutil_socket_t, short, void* arg);
  static void kick_cb(evutil_socket_t, short, void* arg);

  bool init_session();
  void process_input();
  void flush();
  void kick();
  void maybe_close();
  void final_goaway();
  void close();
  void abuse(const char* what, uint64_t* counter);
  void fix_fingerprint(int32_t stream_id);
  void arm_idle_timer();
  // Request no longer outstanding (complete or closed).
  void request_settled(Stream& s);
  void update_read_timeout();

  void dispatch(Stream& s);
  // `extra`: header fields after the security headers (429: Retry-After, RateLimit-*).
  void respond_local(Stream& s, uint16_t status, std::string_view reason, const http1::Headers& extra = {});
  // `fields`: the response's header block, :status first.
  void submit_response(Stream& s, uint16_t status, const NvList& fields, bool with_body);
  void resume_data(Stream& s);
  void consume(Stream& s, size_t n);
  void release_stream(Stream& s);

  // Stream sink events (from UpstreamExchange).
  void on_stream_head(Stream& s, http1::ResponseHead&& head);
  void on_stream_body(Stream& s, std::string_view data);
  void on_stream_complete(Stream& s);
  void on_stream_error(Stream& s, uint16_t status, std::string_view reason, bool started);
  void on_stream_drained(Stream& s);

  WorkerContext& ctx_;
  ClientInfo info_;
  BufferEventPtr bev_;
  OutputPump pump_;  // write interest (see bulk_io.h)
  SessionPtr session_;
  EventPtr idle_timer_;
  // [timeout] request_header_ms: from the start until the first request's
  // header block is complete, and for every later header block from its
  // HEADERS frame to its END_HEADERS (slowloris).
  EventPtr header_timer_;
  EventPtr drain_timer_;
  EventPtr kick_;
  std::vector<std::unique_ptr<Stream>> streams_;    // open (nghttp2 user data points here)
  std::vector<std::unique_ptr<Stream>> graveyard_;  // closed, freed from kick_cb
  size_t open_streams_ = 0;
  size_t incomplete_requests_ = 0;  // streams whose request is still arriving
  Counters counters_;
  RateWindow resets_;
  RateWindow pings_;
  RateWindow settings_;
  // Akamai fingerprint state.
  fp::AkamaiBuilder akamai_;
  bool akamai_on_ = false;
  // Connection bytes read while the fingerprint was open, and the limit
  // ([fingerprint] max_capture): without a complete first HEADERS within it,
  // the connection gets no Akamai fingerprint.
  size_t akamai_seen_ = 0;
  size_t akamai_limit_ = 0;
  // The Akamai fingerprint is still being read: on, not fixed, within the limit.
  bool akamai_open() const { return akamai_on_ && !akamai_.complete() && akamai_seen_ < akamai_limit_; }
  int32_t akamai_stream_ = 0;  // stream of the first HEADERS being received
  std::vector<std::string> akamai_pseudo_;
  // CONTINUATION frames of the header block being received.
  uint32_t continuations_ = 0;
  bool started_ = false;
  bool closed_ = false;
  bool linger_ = false;       // graceful close: hand the transport to WorkerContext::linger on destruction
  bool terminating_ = false;  // fatal GOAWAY queued: stop reading, close once sent
  bool draining_ = false;
  bool final_goaway_ = false;
  bool read_paused_ = false;
  bool closing_ = false;  // nothing left to do: close once the output is flushed
};

}  // namespace huginn::worker::net
