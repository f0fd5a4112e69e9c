// The first stage of a cleartext client connection: reads until the first
// bytes tell HTTP/2 with prior knowledge (the 24-byte connection preface,
// RFC 9113 §3.4) from HTTP/1.1, then hands the transport, with those bytes
// still in its input buffer, to the connection that speaks the protocol
// (WorkerContext::start_http). Nothing is consumed or copied here. Bytes
// already in the input buffer when it starts (read past a PROXY protocol
// header) are classified at once.
#pragma once

#include <string_view>

#include "worker/net/connection.h"
#include "worker/net/event_handles.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::net {

inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum class SniffResult { kNeedMore, kHttp1, kHttp2 };
// Pure: classify the first bytes of a cleartext connection.
SniffResult sniff_protocol(std::string_view first_bytes);

class CleartextSniffer : public Connection {
 public:
  CleartextSniffer(WorkerContext& ctx, BufferEventPtr transport, ClientInfo info);
  ~CleartextSniffer() override;
  CleartextSniffer(const CleartextSniffer&) = delete;
  CleartextSniffer& operator=(const CleartextSniffer&) = delete;

  bool start() override;
  // Nothing has been asked yet: the client gets the same short grace as an
  // idle keep-alive connection to send its first request.
  void drain() override;
  bool closed() const override { return closed_; }

 private:
  static void read_cb(bufferevent* bev, void* arg);
  static void event_cb(bufferevent* bev, short what, void* arg);
  void decide();
  void finish();

  WorkerContext& ctx_;
  BufferEventPtr bev_;
  ClientInfo info_;
  bool closed_ = false;
};

}  // namespace huginn::worker::net
