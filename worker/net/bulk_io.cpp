#include "worker/net/bulk_io.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "worker/net/worker_context.h"

namespace huginn::worker::net {
namespace {

// libevent's per-event read step for socket bufferevents (EVBUFFER_MAX_READ).
constexpr size_t kLibeventReadStep = 4096;
constexpr size_t kPiece = 64 * 1024;

ReadMore fill(evutil_socket_t fd, evbuffer* in, size_t have, size_t limit) {
  while (have < limit) {
    const size_t want = std::min(kPiece, limit - have);
    evbuffer_iovec vec[2];
    const int n = evbuffer_reserve_space(in, static_cast<ev_ssize_t>(want), vec, 2);
    if (n <= 0) return ReadMore::kLimit;  // out of memory: stop here, libevent goes on
    iovec iov[2];
    size_t room = 0;
    for (int i = 0; i < n; ++i) {
      iov[i].iov_base = vec[i].iov_base;
      iov[i].iov_len = std::min(vec[i].iov_len, want - room);
      room += iov[i].iov_len;
    }
    ssize_t got;
    do {
      got = ::readv(fd, iov, n);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
      evbuffer_commit_space(in, vec, 0);
      return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? ReadMore::kWouldBlock : ReadMore::kClosed;
    }
    size_t left = static_cast<size_t>(got);
    int used = 0;
    for (int i = 0; i < n && left > 0; ++i, ++used) {
      vec[i].iov_len = std::min(iov[i].iov_len, left);
      left -= vec[i].iov_len;
    }
    evbuffer_commit_space(in, vec, used);
    have += static_cast<size_t>(got);
    if (static_cast<size_t>(got) < room) return ReadMore::kWouldBlock;  // drained for now
  }
  return ReadMore::kLimit;
}

}  // namespace

void raise_io_limits(bufferevent* bev) {
  if (bev == nullptr) return;
  const bool tls = bufferevent_openssl_get_ssl(bev) != nullptr;
  bufferevent_set_max_single_read(bev, static_cast<ev_ssize_t>(tls ? kTlsReadStep : kReadHigh));
  bufferevent_set_max_single_write(bev, static_cast<ev_ssize_t>(kHighWater));
}

ReadMore read_more(bufferevent* bev, size_t limit) {
  if (bev == nullptr || bufferevent_openssl_get_ssl(bev) != nullptr) return ReadMore::kNotApplicable;
  const evutil_socket_t fd = bufferevent_getfd(bev);
  evbuffer* in = bufferevent_get_input(bev);
  size_t have = evbuffer_get_length(in);
  if (fd < 0 || have < kLibeventReadStep) return ReadMore::kNotApplicable;
  // A socket bufferevent keeps the end of its input frozen outside its own
  // reads (evbuffer_reserve_space would fail); thaw it for ours.
  evbuffer_unfreeze(in, 0);
  const ReadMore r = fill(fd, in, have, limit);
  evbuffer_freeze(in, 0);
  return r;
}

}  // namespace huginn::worker::net

namespace huginn::worker::net {

bool OutputPump::attach(event_base* base, bufferevent* bev, bufferevent_data_cb write_cb, void* arg) {
  detach();
  if (base == nullptr || bev == nullptr || bufferevent_openssl_get_ssl(bev) != nullptr ||
      bufferevent_getfd(bev) < 0)
    return false;
  flush_ev_ = event_new(base, -1, 0, &OutputPump::on_flush, this);
  if (flush_ev_ == nullptr) return false;
  cb_ = evbuffer_add_cb(bufferevent_get_output(bev), &OutputPump::on_change, this);
  if (cb_ == nullptr) {
    event_free(flush_ev_);
    flush_ev_ = nullptr;
    return false;
  }
  bev_ = bev;
  write_cb_ = write_cb;
  arg_ = arg;
  // Bytes still queued stay with libevent until its write callback reports
  // the output empty (done_writing).
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) bufferevent_disable(bev, EV_WRITE);
  return true;
}

void OutputPump::detach() {
  if (bev_ == nullptr) return;
  evbuffer_remove_cb_entry(bufferevent_get_output(bev_), cb_);
  event_free(flush_ev_);
  flush_ev_ = nullptr;
  cb_ = nullptr;
  scheduled_ = false;
  bufferevent* bev = std::exchange(bev_, nullptr);
  // Hand write interest back only when there is something to write: an
  // enabled EV_WRITE with an empty output costs an event of its own.
  if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) bufferevent_enable(bev, EV_WRITE);
}

void OutputPump::done_writing() {
  if (bev_ != nullptr && evbuffer_get_length(bufferevent_get_output(bev_)) == 0)
    bufferevent_disable(bev_, EV_WRITE);  // libevent already removed the event: no system call
}

void OutputPump::on_change(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  auto* p = static_cast<OutputPump*>(arg);
  if (info->n_added == 0 || p->scheduled_ || p->bev_ == nullptr) return;
  if (bufferevent_get_enabled(p->bev_) & EV_WRITE) return;  // libevent is writing
  p->scheduled_ = true;
  event_active(p->flush_ev_, EV_TIMEOUT, 0);
}

void OutputPump::on_flush(evutil_socket_t, short, void* arg) { static_cast<OutputPump*>(arg)->flush(); }

void OutputPump::flush() {
  scheduled_ = false;
  if (bev_ == nullptr || (bufferevent_get_enabled(bev_) & EV_WRITE)) return;
  evbuffer* out = bufferevent_get_output(bev_);
  if (evbuffer_get_length(out) == 0) return;
  // Like the output's end for reads (see read_more), a socket bufferevent
  // keeps the start of its output frozen outside its own writes.
  evbuffer_unfreeze(out, 1);
  const int n = evbuffer_write(out, bufferevent_getfd(bev_));
  evbuffer_freeze(out, 1);
  if (n < 0 || evbuffer_get_length(out) > 0) {
    // Short write or an error: libevent takes over, reports the error or
    // waits for room under the write timeout.
    bufferevent_enable(bev_, EV_WRITE);
    return;
  }
  if (write_cb_ != nullptr) write_cb_(bev_, arg_);
}

}  // namespace huginn::worker::net
