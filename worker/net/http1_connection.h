// One cleartext HTTP/1.1 client connection and the backend exchange of its
// current request.
//
// Requests are handled one at a time in arrival order: the request parser
// stops after each message, and the next (pipelined) request is parsed only
// once the response to the current one has been written. Bodies stream in both
// directions through bounded buffers: a side stops consuming input while the
// other side's output buffer holds kHighWater bytes and resumes when it drains
// below kLowWater.
//
// The backend side of each request is a BackendExchange (HTTP/1.1 or h2c; connect or pooled
// reuse, one retry, response parsing, timeouts, 502/504); this class frames
// the request and response for the client and applies backpressure.
//
// Lifetime: created by Server::Impl on accept; close() releases every handle
// at once and reports to WorkerContext::on_closed, which destroys the object
// later from the event loop (never inside one of its callbacks).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "worker/http1/parser.h"
#include "worker/net/access_log.h"
#include "worker/net/bulk_io.h"
#include "worker/net/connection.h"
#include "worker/net/event_handles.h"
#include "worker/net/upstream_exchange.h"
#include "worker/net/worker_context.h"
#include "worker/proxy/header_rewrite.h"

namespace huginn::worker::net {

class Http1Connection : public Connection, public http1::ParserSink, public UpstreamExchange::Sink {
 public:
  // `transport`: a connected client bufferevent (plain socket or TLS), no
  // callbacks set; bytes already in its input (sniffed, or read during the
  // TLS handshake) are processed by start().
  Http1Connection(WorkerContext& ctx, BufferEventPtr transport, ClientInfo info);
  ~Http1Connection() override;
  Http1Connection(const Http1Connection&) = delete;
  Http1Connection& operator=(const Http1Connection&) = delete;

  bool start() override;
  // Graceful stop: close now if idle, else after the current response (which
  // then carries Connection: close).
  void drain() override;
  bool closed() const override { return closed_; }

 private:
  // Request parser sink.
  void on_request_head(http1::RequestHead&& head) override;
  void on_body(std::string_view data) override;
  void on_message_complete() override;

  // Backend exchange sink.
  void on_exchange_interim(const http1::ResponseHead& head) override;
  void on_exchange_head(http1::ResponseHead&& head) override;
  void on_exchange_body(std::string_view data) override;
  void on_exchange_complete() override;
  void on_exchange_error(uint16_t status, std::string_view reason, bool response_started) override;
  void on_exchange_drained() override;

  static void client_read_cb(bufferevent* bev, void* arg);
  static void client_write_cb(bufferevent* bev, void* arg);
  static void client_event_cb(bufferevent* bev, short what, void* arg);
  static void client_timer_cb(evutil_socket_t, short, void* arg);

  void process_input();
  void on_request_parse_error();
  void after_request_complete();
  void drop_exchange();
  void finish_exchange(bool from_input_loop);
  // `extra`: header fields after the security headers (429: Retry-After, RateLimit-*).
  void respond_local(uint16_t status, std::string_view reason, bool force_close,
                     const http1::Headers& extra = {});
  void start_flush_close();
  void close();
  void arm_client_timer(uint32_t ms);
  void set_client_read_timeout(bool on);
  bool idle() const;
  void write_client(std::string_view data);

  enum class TimerMode : uint8_t { kNone, kHeader, kIdle, kFlush };

  struct Exchange {
    bool active = false;
    bool local = false;             // answered by the proxy itself
    bool request_complete = false;  // whole request parsed (and forwarded)
    bool response_started = false;  // final response head sent to the client
    bool response_complete = false;
    bool client_keep_alive = false;
    bool client_closing = false;  // the request asked to close (Connection: close, HTTP/1.0)
    bool client_http11 = true;
    bool head_request = false;
    bool has_body = false;
    bool down_chunked = false;      // response body chunked to the client
    bool down_until_close = false;  // response body delimited by closing
    const config::Domain* domain = nullptr;
    const config::Route* route = nullptr;
    const config::Backend* backend = nullptr;
    std::string host;  // normalised routing host
  };

  WorkerContext& ctx_;
  ClientInfo info_;
  BufferEventPtr client_;
  OutputPump pump_;  // write interest (see bulk_io.h)
  EventPtr client_timer_;
  TimerMode timer_mode_ = TimerMode::kNone;
  http1::Parser req_parser_;
  std::unique_ptr<BackendExchange> up_;  // backend side of the current request
  Exchange ex_;
  AccessEntry access_;  // [logging] access_log state of the current request
  bool closed_ = false;
  bool linger_ = false;         // hand the transport to WorkerContext::linger on destruction
  uint64_t metrics_t0_us_ = 0;  // request head time of the current exchange (metrics); 0 = none
  size_t metrics_method_ = metrics::kOtherMethod;  // its method (metrics::method_index)
  bool draining_ = false;
  bool client_eof_ = false;
  bool client_left_ = false;  // the end of stream came with nothing owed to the client
  bool client_done_ = false;  // the client's last request (it asked to close) arrived whole
  bool flushing_close_ = false;
  bool close_after_response_ = false;
};

}  // namespace huginn::worker::net
