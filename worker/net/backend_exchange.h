// One request/response exchange with a backend, whatever the protocol
// towards it: HTTP/1.1 (UpstreamExchange) or HTTP/2 cleartext (H2cUpstream).
// The front connections (Http1Connection, Http2Connection) hold one per
// request and see the same Sink callbacks from both.
//
// start_backend_exchange() is the one place that turns a routed, rewritten
// request into the backend request: it picks the protocol from the
// backend's `http_version` (unset/"http11" → HTTP/1.1, "http2" → h2c,
// "preserve" → the client's protocol) and frames the body for it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/config/model.h"
#include "worker/http1/message.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::net {

// What an exchange reports to the front connection that owns it.
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  // An interim (1xx) response head; ignored by default.
  virtual void on_exchange_interim(const http1::ResponseHead& head) { (void)head; }
  // The final response head; its `framing` says how the body ends.
  virtual void on_exchange_head(http1::ResponseHead&& head) = 0;
  virtual void on_exchange_body(std::string_view data) = 0;
  // The response is complete; the backend connection was pooled or closed.
  virtual void on_exchange_complete() = 0;
  // Failure. Before the head: answer locally with `status` / `reason`
  // (http1::reason); after it (`response_started`): the response is cut.
  virtual void on_exchange_error(uint16_t status, std::string_view reason, bool response_started) = 0;
  // Queued request bytes fell to kLowWater: more body may be sent.
  virtual void on_exchange_drained() = 0;
};

class BackendExchange {
 public:
  virtual ~BackendExchange() = default;
  virtual void send_body(std::string_view data) = 0;
  // The request is complete; arms the response timeout.
  virtual void end_body() = 0;
  virtual size_t queued() const = 0;
  virtual bool writable() const = 0;  // queued() < kHighWater; on_exchange_drained at kLowWater
  virtual void pause_reading() = 0;
  // Continues from the event loop, never inside the call.
  virtual void resume_reading() = 0;
  virtual void cancel() = 0;
  virtual bool finished() const = 0;
  virtual bool response_started() const = 0;
  virtual bool request_complete() const = 0;
};

struct BackendRequest {
  enum class Body { kNone, kLength, kChunked };
  size_t backend_index = 0;  // into cfg->backends / ctx.endpoints
  std::string method;
  std::string target;      // what goes on the request line / into :path
  http1::Headers headers;  // rewritten (proxy::rewrite_request): Host first, no framing fields
  // Injected fields by reference (rewrite_request's `refs`), written after
  // `headers`; valid until start_backend_exchange() returns.
  http1::HeaderRefs header_refs;
  Body body = Body::kNone;
  uint64_t content_length = 0;  // kLength
  bool head_request = false;
  bool reusable = false;   // pooled connection allowed (pool enabled, no force_new_connection)
  bool client_h2 = false;  // the client speaks HTTP/2 (for http_version = "preserve")
};

// True when the request goes to the backend as h2c.
bool uses_h2c(const config::Backend& backend, bool client_h2);

// Starts the exchange; null (nothing started, no callback follows) when it
// cannot: the caller answers 502. The request's fields may be moved from.
std::unique_ptr<BackendExchange> start_backend_exchange(WorkerContext& ctx, ExchangeSink& sink,
                                                        BackendRequest& req);

}  // namespace huginn::worker::net
