#include "worker/net/bulk_io.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
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
  if (base == nullptr || bev == nullptr || bufferevent_getfd(bev) < 0) return false;
  SSL* ssl = bufferevent_openssl_get_ssl(bev);
  if (ssl != nullptr && SSL_is_init_finished(ssl) != 1) return false;  // handshaking: libevent's
  flush_ev_ = event_new(base, -1, 0, &OutputPump::on_flush, this);
  if (flush_ev_ == nullptr) return false;
  cb_ = evbuffer_add_cb(bufferevent_get_output(bev), &OutputPump::on_change, this);
  if (cb_ == nullptr) {
    event_free(flush_ev_);
    flush_ev_ = nullptr;
    return false;
  }
  bev_ = bev;
  ssl_ = ssl;
  write_cb_ = write_cb;
  arg_ = arg;
  // Bytes still queued stay with libevent until its write callback reports
  // the output empty (done_writing).
  const bool queued = evbuffer_get_length(bufferevent_get_output(bev)) > 0;
  if (ssl_ != nullptr) {
    tls_handed_back_ = queued;
    // libevent arms the write event of a new, open TLS bufferevent: take it
    // back now rather than after epoll reports the socket writable.
    if (!queued) event_del(&bev->ev_write);
  } else if (!queued) {
    bufferevent_disable(bev, EV_WRITE);
  }
  return true;
}

bool OutputPump::libevent_writing() const {
  return ssl_ != nullptr ? tls_handed_back_ : (bufferevent_get_enabled(bev_) & EV_WRITE) != 0;
}

void OutputPump::detach() {
  if (bev_ == nullptr) return;
  evbuffer_remove_cb_entry(bufferevent_get_output(bev_), cb_);
  event_free(flush_ev_);
  flush_ev_ = nullptr;
  cb_ = nullptr;
  scheduled_ = false;
  bufferevent* bev = std::exchange(bev_, nullptr);
  // A TLS bufferevent's write event was armed when its pending bytes were
  // added (and EV_WRITE never left): libevent writes them.
  if (std::exchange(ssl_, nullptr) != nullptr) {
    tls_handed_back_ = false;
    return;
  }
  // Hand write interest back only when there is something to write: an
  // enabled EV_WRITE with an empty output costs an event of its own.
  if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) bufferevent_enable(bev, EV_WRITE);
}

void OutputPump::done_writing() {
  if (bev_ == nullptr || evbuffer_get_length(bufferevent_get_output(bev_)) != 0) return;
  if (ssl_ != nullptr)
    tls_handed_back_ = false;  // libevent emptied the output (and removed its write event)
  else
    bufferevent_disable(bev_, EV_WRITE);  // libevent already removed the event: no system call
}

void OutputPump::on_change(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  auto* p = static_cast<OutputPump*>(arg);
  if (info->n_added == 0 || p->scheduled_ || p->bev_ == nullptr) return;
  if (p->libevent_writing()) return;
  p->scheduled_ = true;
  event_active(p->flush_ev_, EV_TIMEOUT, 0);
}

void OutputPump::on_flush(evutil_socket_t, short, void* arg) { static_cast<OutputPump*>(arg)->flush(); }

void OutputPump::flush_tls() {
  evbuffer* out = bufferevent_get_output(bev_);
  while (evbuffer_get_length(out) > 0) {
    evbuffer_iovec v;
    const bool peeked = evbuffer_peek(out, -1, nullptr, &v, 1) >= 1 && v.iov_len > 0;
    ERR_clear_error();
    const int n =
        peeked ? SSL_write(ssl_, v.iov_base, static_cast<int>(std::min<size_t>(v.iov_len, INT_MAX))) : 0;
    if (n <= 0) {
      // Blocked (or failed): libevent's write event, armed when these bytes
      // were added to the empty output, retries them and reports errors.
      ERR_clear_error();
      tls_handed_back_ = true;
      return;
    }
    evbuffer_drain(out, static_cast<size_t>(n));
  }
  // Everything went out: libevent need not wait for the socket.
  event_del(&bev_->ev_write);
  if (write_cb_ != nullptr) write_cb_(bev_, arg_);
}

void OutputPump::flush() {
  scheduled_ = false;
  if (bev_ == nullptr || libevent_writing()) return;
  if (ssl_ != nullptr) {
    flush_tls();
    return;
  }
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
