// The first stage of a TLS client connection: owns the handshake
// (worker/tls/acceptor.h: ClientHello capture, JA4, OpenSSL) and, once it has
// succeeded, hands the TLS bufferevent to the HTTP/2 (ALPN "h2") or HTTP/1.1
// connection through WorkerContext::start_http. Counted like any connection
// (max_connections, drain), so a slow handshake holds a slot until its
// deadline.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "worker/net/connection.h"
#include "worker/net/worker_context.h"
#include "worker/tls/acceptor.h"

namespace huginn::worker::net {

class TlsStage : public Connection {
 public:
  // `initial_bytes`: the client's first bytes, already read from `fd` (past a
  // PROXY protocol header); `spent_ms`: time since accept (the PROXY header),
  // taken off the handshake deadline so one deadline covers both.
  TlsStage(WorkerContext& ctx, sys::UniqueFd fd, std::shared_ptr<const tls::ContextSet> contexts,
           ClientInfo info, std::vector<uint8_t> initial_bytes = {}, uint64_t spent_ms = 0);
  ~TlsStage() override;
  TlsStage(const TlsStage&) = delete;
  TlsStage& operator=(const TlsStage&) = delete;

  bool start() override;
  // A handshake in progress is let finish (within its deadline); the HTTP
  // connection it becomes sees the worker draining and closes after one
  // response (HTTP/1.1) or sends GOAWAY (HTTP/2).
  void drain() override {}
  bool closed() const override { return closed_; }

 private:
  void finish();

  WorkerContext& ctx_;
  sys::UniqueFd fd_;
  std::shared_ptr<const tls::ContextSet> contexts_;
  ClientInfo info_;
  std::vector<uint8_t> initial_bytes_;
  uint64_t spent_ms_ = 0;
  std::unique_ptr<tls::Acceptor> acceptor_;
  bool closed_ = false;
};

}  // namespace huginn::worker::net
