#include "worker/net/cleartext_sniffer.h"

#include <event2/buffer.h>

#include <algorithm>

#include "common/sys/log.h"

namespace huginn::worker::net {

SniffResult sniff_protocol(std::string_view first_bytes) {
  const size_t n = std::min(first_bytes.size(), kH2Preface.size());
  if (first_bytes.substr(0, n) != kH2Preface.substr(0, n)) return SniffResult::kHttp1;
  return n == kH2Preface.size() ? SniffResult::kHttp2 : SniffResult::kNeedMore;
}

CleartextSniffer::CleartextSniffer(WorkerContext& ctx, BufferEventPtr transport, ClientInfo info)
    : ctx_(ctx), bev_(std::move(transport)), info_(std::move(info)) {}

CleartextSniffer::~CleartextSniffer() = default;

bool CleartextSniffer::start() {
  if (!bev_) {
    finish();
    return false;
  }
  bufferevent_setcb(bev_.get(), &read_cb, nullptr, &event_cb, this);
  // The first request's header timer covers the sniffing too.
  const timeval tv = to_timeval(ctx_.cfg->timeout.request_header_ms);
  bufferevent_set_timeouts(bev_.get(), &tv, nullptr);
  bufferevent_enable(bev_.get(), EV_READ);
  // Bytes an earlier stage read past a PROXY header are already in the input.
  if (in_len(bev_.get()) > 0) decide();
  return true;
}

void CleartextSniffer::drain() {
  if (closed_ || !bev_) return;
  const timeval tv = to_timeval(std::min(kDrainIdleGraceMs, ctx_.cfg->timeout.request_header_ms));
  bufferevent_set_timeouts(bev_.get(), &tv, nullptr);
}

void CleartextSniffer::read_cb(bufferevent*, void* arg) { static_cast<CleartextSniffer*>(arg)->decide(); }

void CleartextSniffer::event_cb(bufferevent*, short what, void* arg) {
  auto* self = static_cast<CleartextSniffer*>(arg);
  if (what & BEV_EVENT_TIMEOUT)
    HLOG_DEBUG("client %s: no request within the header timeout", self->info_.peer_ip.c_str());
  // EOF before a decision: bytes that do not even make a request line.
  if ((what & BEV_EVENT_EOF) && evbuffer_get_length(bufferevent_get_input(self->bev_.get())) > 0) {
    self->decide();
    if (self->closed_) return;
  }
  self->bev_.reset();
  self->finish();
}

void CleartextSniffer::decide() {
  if (closed_) return;
  evbuffer* in = bufferevent_get_input(bev_.get());
  char head[kH2Preface.size()];
  const ev_ssize_t n = evbuffer_copyout(in, head, sizeof head);
  if (n <= 0) return;
  SniffResult r = sniff_protocol(std::string_view(head, static_cast<size_t>(n)));
  if (r == SniffResult::kNeedMore) return;
  bufferevent_disable(bev_.get(), EV_READ);
  bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
  bufferevent_set_timeouts(bev_.get(), nullptr, nullptr);
  ctx_.start_http(std::move(bev_), std::move(info_), r == SniffResult::kHttp2);
  finish();
}

void CleartextSniffer::finish() {
  if (closed_) return;
  closed_ = true;
  if (ctx_.on_closed) ctx_.on_closed(this);
}

}  // namespace huginn::worker::net
