#include "worker/net/tls_stage.h"

#include "common/sys/log.h"

namespace huginn::worker::net {

TlsStage::TlsStage(WorkerContext& ctx, sys::UniqueFd fd, std::shared_ptr<const tls::ContextSet> contexts,
                   ClientInfo info, std::vector<uint8_t> initial_bytes, uint64_t spent_ms)
    : ctx_(ctx),
      fd_(std::move(fd)),
      contexts_(std::move(contexts)),
      info_(std::move(info)),
      initial_bytes_(std::move(initial_bytes)),
      spent_ms_(spent_ms) {}

TlsStage::~TlsStage() = default;

bool TlsStage::start() {
  tls::AcceptOptions opts;
  const uint64_t deadline_ms = uint64_t{ctx_.cfg->timeout.tls_handshake_secs} * 1000;
  opts.deadline_ms = spent_ms_ < deadline_ms ? deadline_ms - spent_ms_ : 1;
  opts.initial_bytes = std::move(initial_bytes_);
  opts.compute_ja4 = ctx_.cfg->fingerprint.tls_enabled;
  opts.metrics = ctx_.metrics;
  const std::string peer = info_.peer_ip;
  acceptor_ = tls::Acceptor::start(
      ctx_.base, std::move(fd_), std::move(contexts_), opts, std::move(info_),
      [this](BufferEventPtr bev, ClientInfo info) {
        if (ctx_.metrics) {
          ctx_.metrics->tls_handshake(info.tls_version, info.cipher);
          if (ctx_.cfg->fingerprint.tls_enabled)
            ctx_.metrics->tls_fingerprint(info.fingerprints.has(proxy::ConnectionFingerprints::kJa4));
        }
        const bool h2 = info.alpn == "h2";
        ctx_.start_http(std::move(bev), std::move(info), h2);
        finish();
      },
      [this, peer](const std::string& reason) {
        HLOG_DEBUG("client %s: TLS handshake failed: %s", peer.c_str(), reason.c_str());
        if (ctx_.metrics) ctx_.metrics->tls_handshake_failed();
        finish();
      });
  if (!acceptor_) {
    finish();
    return false;
  }
  return true;
}

void TlsStage::finish() {
  if (closed_) return;
  closed_ = true;
  if (ctx_.on_closed) ctx_.on_closed(this);
}

}  // namespace huginn::worker::net
