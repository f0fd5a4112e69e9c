// One request/response exchange with an HTTP/1.1 backend over a pooled (or
// new) keep-alive connection, independent of the client protocol.
//
// The owner serialises the request head (http1::append_request_head) and
// hands it to start() together with how the body is framed; body bytes follow
// through send_body() and end with end_body(). The response is parsed with
// http1::Parser (kResponse) and delivered to the Sink as head, body pieces and
// completion, or as one error.
//
// Flow control is explicit in both directions:
//   * request: queued() is what the backend has not taken yet; the owner stops
//     sending while !writable() (kHighWater) and is told through
//     Sink::on_exchange_drained() when the queue fell to kLowWater;
//   * response: pause_reading() stops parsing and reading from the backend
//     socket; resume_reading() continues from the event loop (never inside
//     the call, so a sink may call it from anywhere).
//
// Errors follow Http1Connection: connect failure or refusal → 502
// backend_error, connect timeout and response timeout
// ([timeout] upstream_response_secs, armed once the request is complete) →
// 504 gateway_timeout, an unparsable response → 502. A pooled connection that
// the backend closed before answering is retried once on a new connection
// when the request has no body. Once the head was delivered, an error means a
// truncated response (response_started = true).
//
// Pooling: the connection goes back to ctx.pool after a complete response
// when the request allowed it (Request::reusable: [backend_pool] enabled and
// no force_new_connection), the backend kept it alive, the whole request was
// sent and nothing is left over in either direction.
//
// Callback rules: every Sink callback runs from an event-loop callback of the
// exchange. A sink must not destroy the exchange inside a callback (it may
// call cancel(), pause_reading(), resume_reading(), send_body(), end_body());
// after on_exchange_complete() or on_exchange_error() no further callback
// comes. cancel() closes the backend connection (never pooled) and silences
// the exchange.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "worker/http1/parser.h"
#include "worker/net/backend_exchange.h"
#include "worker/net/bulk_io.h"
#include "worker/net/event_handles.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::net {

// Appends `data` to `out` as one HTTP/1.1 chunk; empty data adds nothing (a
// zero-size chunk would end the body).
void add_chunk(evbuffer* out, std::string_view data);

// A connected backend socket: TCP_NODELAY, and TCP keepalive per [timeout.keep_alive].
void set_upstream_socket_options(bufferevent* bev, const config::Config& cfg);

class UpstreamExchange : public BackendExchange {
 public:
  using Sink = ExchangeSink;

  struct Request {
    size_t backend_index = 0;   // into ctx.endpoints / cfg->backends
    std::string head;           // serialised request head
    bool has_body = false;      // send_body() will carry bytes
    bool chunked = false;       // frame send_body() data as chunks
    bool head_request = false;  // the response has no body
    bool reusable = false;      // may come from and return to the pool
  };

  UpstreamExchange(WorkerContext& ctx, Sink& sink);
  ~UpstreamExchange();
  UpstreamExchange(const UpstreamExchange&) = delete;
  UpstreamExchange& operator=(const UpstreamExchange&) = delete;

  // Sends the head on a pooled connection or starts a connect. false: the
  // exchange could not start (unresolved backend, no socket); no callback
  // follows, the owner answers 502.
  bool start(Request req);
  void send_body(std::string_view data) override;
  // The request is complete (the last chunk is written when chunked).
  void end_body() override;
  // Request bytes written but not yet taken by the backend socket.
  size_t queued() const override;
  bool writable() const override { return queued() < kHighWater; }
  void pause_reading() override;
  void resume_reading() override;
  void cancel() override;
  // Complete, failed or cancelled.
  bool finished() const override { return finished_; }
  bool response_started() const override { return response_started_; }
  bool request_complete() const override { return request_complete_; }

 private:
  struct ResponseSink : http1::ParserSink {
    UpstreamExchange* x = nullptr;
    void on_response_head(http1::ResponseHead&& head) override { x->on_head(std::move(head)); }
    void on_body(std::string_view data) override { x->on_body(data); }
    void on_message_complete() override { x->on_message_complete(); }
  };

  static void read_cb(bufferevent* bev, void* arg);
  static void write_cb(bufferevent* bev, void* arg);
  static void event_cb(bufferevent* bev, short what, void* arg);
  static void connect_timer_cb(evutil_socket_t, short, void* arg);
  void stop_connect_timer();
  static void resume_cb(evutil_socket_t, short, void* arg);

  bool connect(bool allow_pooled);
  void write(std::string_view data);
  void process_input();
  void arm_response_timeout();
  void fail(uint16_t status, std::string_view reason);
  void closed_early();
  void complete();
  void on_head(http1::ResponseHead&& head);
  void on_body(std::string_view data);
  void on_message_complete();

  WorkerContext& ctx_;
  Sink& sink_;
  Request req_;
  ResponseSink resp_sink_;
  std::optional<http1::Parser> parser_;  // in place: one allocation less per exchange
  BufferEventPtr up_;
  OutputPump pump_;         // write interest once connected (see bulk_io.h)
  EventPtr connect_timer_;  // fresh connections only; made by the first connect()
  EventPtr resume_ev_;      // made by the first pause_reading()
  bool started_ = false;
  bool connected_ = false;
  bool reused_ = false;
  bool retried_ = false;
  bool body_sent_ = false;  // some body bytes were written (no retry then)
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool interim_ = false;
  bool upstream_keep_alive_ = false;
  bool paused_ = false;
  bool finished_ = false;
};

}  // namespace huginn::worker::net
