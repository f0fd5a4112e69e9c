#include "worker/net/bulk_io.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <utility>

#include "worker/net/worker_context.h"

namespace huginn::worker::net {
namespace {

constexpr size_t kPiece = 64 * 1024;

enum class End { kLimit, kWouldBlock, kClosed };

struct Filled {
  size_t bytes = 0;  // read into the input
  End end = End::kLimit;
  int error = 0;        // errno of a failed read (kClosed), 0 for an EOF
  bool broken = false;  // bytes read could not be kept (out of memory)
};

// Reads into `in` until the socket would block, fails or closes, or `want`
// bytes were read: first a piece of up to `first`, then pieces of up to
// kPiece while each read comes back full. The first read may also fill
// `spill` (up to `spill_len` bytes past the first piece); what lands there is
// copied into the input, in chains sized to it. The input's end must be
// thawed.
Filled fill(evutil_socket_t fd, evbuffer* in, size_t want, size_t first, char* spill, size_t spill_len) {
  Filled f;
  size_t piece = first;
  while (f.bytes < want) {
    const size_t ask = std::min(piece, want - f.bytes);
    piece = kPiece;
    evbuffer_iovec vec[2];
    const int n = evbuffer_reserve_space(in, static_cast<ev_ssize_t>(ask), vec, 2);
    if (n <= 0) return f;  // out of memory: stop here, libevent goes on
    iovec iov[3];
    size_t room = 0;
    for (int i = 0; i < n; ++i) {
      iov[i].iov_base = vec[i].iov_base;
      iov[i].iov_len = std::min(vec[i].iov_len, ask - room);
      room += iov[i].iov_len;
    }
    size_t spilled_room = 0;
    if (spill != nullptr) {
      spilled_room = std::min(spill_len, want - f.bytes - room);
      iov[n].iov_base = spill;
      iov[n].iov_len = spilled_room;
    }
    ssize_t got;
    do {
      got = ::readv(fd, iov, n + (spilled_room > 0 ? 1 : 0));
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
      const int err = got < 0 ? errno : 0;
      evbuffer_commit_space(in, vec, 0);
      f.end = err == EAGAIN || err == EWOULDBLOCK ? End::kWouldBlock : End::kClosed;
      f.error = f.end == End::kClosed ? err : 0;
      return f;
    }
    size_t left = static_cast<size_t>(got);
    int used = 0;
    for (int i = 0; i < n && left > 0; ++i, ++used) {
      vec[i].iov_len = std::min(iov[i].iov_len, left);
      left -= vec[i].iov_len;
    }
    evbuffer_commit_space(in, vec, used);
    if (left > 0 && evbuffer_add(in, spill, left) != 0) {
      f.broken = true;  // out of memory: the stream lost bytes
      f.error = ENOMEM;
      return f;
    }
    spill = nullptr;
    f.bytes += static_cast<size_t>(got);
    if (static_cast<size_t>(got) < room + spilled_room) {
      f.end = End::kWouldBlock;  // drained for now
      return f;
    }
  }
  return f;
}

// Room for the rest of a first direct read: a message larger than kFirstRead
// still takes one read, and the input gets chains sized to it rather than a
// 64 KiB reservation (or a FIONREAD to size one).
constexpr size_t kSpill = 64 * 1024;
thread_local char spill_area[kSpill];

// libevent's read callback of socket bufferevents (bufferevent_readcb, not
// exported), taken from the first bufferevent given direct reads. The read
// timeout and a full input are handed to it.
std::atomic<event_callback_fn> libevent_read_cb{nullptr};

void on_readable(evutil_socket_t fd, short what, void* arg) {
  auto* bev = static_cast<bufferevent*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  const size_t have = evbuffer_get_length(in);
  const ev_ssize_t max_read = bufferevent_get_max_single_read(bev);
  size_t want = max_read > 0 ? static_cast<size_t>(max_read) : kFirstRead;
  size_t low = 0;
  size_t high = 0;
  bufferevent_getwatermark(bev, EV_READ, &low, &high);
  if (high != 0) want = high > have ? std::min(want, high - have) : 0;
  if (what == EV_TIMEOUT || want == 0) {
    // The read timeout (reported with BEV_EVENT_TIMEOUT) or an input at its
    // high watermark (reading is suspended): libevent's own handling.
    libevent_read_cb.load(std::memory_order_relaxed)(fd, what, arg);
    return;
  }
  evbuffer_unfreeze(in, 0);  // frozen outside the bufferevent's own reads
  const Filled f = fill(fd, in, want, kFirstRead, spill_area, kSpill);
  evbuffer_freeze(in, 0);
  if (f.bytes == 0 && f.end != End::kClosed && !f.broken) return;  // nothing after all
  bufferevent_incref(bev);                                         // the callbacks may free it
  if (f.bytes > 0 && !f.broken) {
    bufferevent_trigger(bev, EV_READ, 0);  // the low watermark and deferral apply
  } else {
    bufferevent_disable(bev, EV_READ);
    errno = f.error;
    bufferevent_trigger_event(bev, BEV_EVENT_READING | (f.error == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), 0);
  }
  bufferevent_decref(bev);
}

// The owner took bytes out of a TLS bufferevent's input: reading may go on.
// libevent added some: one SSL_read returns at most one record, and libevent
// stops after it when OpenSSL holds nothing decrypted, while the socket BIO
// may hold the next records, read ahead (tls/acceptor.cpp). An owner that
// waits for more bytes before it takes any would wait for ever.
void on_tls_input_change(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  if (info->n_deleted > 0 || info->n_added > 0) read_tls_pending(static_cast<bufferevent*>(arg));
}

}  // namespace

void raise_io_limits(bufferevent* bev) {
  if (bev == nullptr) return;
  const bool tls = bufferevent_openssl_get_ssl(bev) != nullptr;
  bufferevent_set_max_single_read(bev, static_cast<ev_ssize_t>(tls ? kTlsReadStep : kReadHigh));
  bufferevent_set_max_single_write(bev, static_cast<ev_ssize_t>(kHighWater));
  if (tls) {
    evbuffer_add_cb(bufferevent_get_input(bev), &on_tls_input_change, bev);
  } else {
    read_directly(bev);  // a connecting one gets them once connected
  }
}

void read_tls_pending(bufferevent* bev) {
  SSL* ssl = bev != nullptr ? bufferevent_openssl_get_ssl(bev) : nullptr;
  if (ssl == nullptr || (bufferevent_get_enabled(bev) & EV_READ) == 0) return;
  // Decrypted bytes, or bytes the socket BIO read ahead. Not OpenSSL's part
  // of a record still arriving (SSL_has_pending): the rest of it makes the
  // socket readable, and counting it would cost a recv per drain during
  // uploads.
  BIO* rbio = SSL_get_rbio(ssl);
  if (SSL_pending(ssl) <= 0 && (rbio == nullptr || BIO_pending(rbio) <= 0)) return;
  size_t low = 0;
  size_t high = 0;
  bufferevent_getwatermark(bev, EV_READ, &low, &high);
  if (high != 0 && evbuffer_get_length(bufferevent_get_input(bev)) >= high) return;  // still suspended
  event_active(&bev->ev_read, EV_READ, 1);
}

bool reads_directly(const bufferevent* bev) {
  return bev != nullptr && event_get_callback(&bev->ev_read) == &on_readable;
}

bool read_directly(bufferevent* bev) {
  if (bev == nullptr) return false;
  if (reads_directly(bev)) return true;
  event* ev = &bev->ev_read;
  const evutil_socket_t fd = bufferevent_getfd(bev);
  if (fd < 0 || bufferevent_openssl_get_ssl(bev) != nullptr || bufferevent_get_underlying(bev) != nullptr ||
      event_get_callback_arg(ev) != bev || event_get_fd(ev) != fd)
    return false;
  const event_callback_fn theirs = event_get_callback(ev);
  event_callback_fn expected = nullptr;
  if (!libevent_read_cb.compare_exchange_strong(expected, theirs) && expected != theirs)
    return false;  // not a socket bufferevent's read event
  const bool pending = event_pending(ev, EV_READ, nullptr) != 0;
  if (pending) event_del(ev);
  if (event_assign(ev, bufferevent_get_base(bev), fd, event_get_events(ev), &on_readable, bev) != 0)
    return false;
  if (pending) event_add(ev, evutil_timerisset(&bev->timeout_read) ? &bev->timeout_read : nullptr);
  return true;
}

}  // namespace huginn::worker::net

namespace huginn::worker::net {

bool OutputPump::attach(event_base* base, bufferevent* bev, bufferevent_data_cb write_cb, void* arg) {
  detach();
  if (base == nullptr || bev == nullptr || bufferevent_getfd(bev) < 0) return false;
  SSL* ssl = bufferevent_openssl_get_ssl(bev);
  if (ssl != nullptr && SSL_is_init_finished(ssl) != 1) return false;  // handshaking: libevent's
  if (event_assign(&flush_ev_, base, -1, 0, &OutputPump::on_flush, this) != 0) return false;
  cb_ = evbuffer_add_cb(bufferevent_get_output(bev), &OutputPump::on_change, this);
  if (cb_ == nullptr) return false;
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
  event_del(&flush_ev_);  // a scheduled flush is cancelled
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
  event_active(&p->flush_ev_, EV_TIMEOUT, 0);
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
  // Like the input's end outside its reads (see on_readable), a socket bufferevent
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
