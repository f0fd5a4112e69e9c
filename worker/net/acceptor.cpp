#include "worker/net/acceptor.h"

#include <errno.h>
#include <event2/util.h>
#include <string.h>

#include "common/sys/log.h"

namespace huginn::worker::net {

std::unique_ptr<Acceptor> Acceptor::create(event_base* base, sys::UniqueFd fd, OnAccept cb, void* arg,
                                           Yield yield, uint32_t yield_us) {
  if (!fd || base == nullptr || cb == nullptr) return nullptr;
  if (evutil_make_socket_nonblocking(fd.get()) != 0) return nullptr;
  std::unique_ptr<Acceptor> a(new Acceptor());
  a->fd_ = std::move(fd);
  a->cb_ = cb;
  a->yield_ = yield;
  a->yield_us_ = yield_us;
  a->arg_ = arg;
  a->ev_.reset(event_new(base, a->fd_.get(), EV_READ | EV_PERSIST, &Acceptor::read_cb, a.get()));
  a->resume_.reset(evtimer_new(base, &Acceptor::resume_cb, a.get()));
  if (!a->ev_ || !a->resume_) return nullptr;
  return a;
}

bool Acceptor::enable() {
  enabled_ = true;
  if (evtimer_pending(resume_.get(), nullptr)) return true;  // listening again when the pause ends
  return event_add(ev_.get(), nullptr) == 0;
}

void Acceptor::disable() {
  enabled_ = false;
  in_yield_ = false;
  event_del(ev_.get());
  evtimer_del(resume_.get());
}

void Acceptor::reconsider() {
  if (!enabled_ || !in_yield_ || (yield_ != nullptr && yield_(arg_))) return;
  evtimer_del(resume_.get());
  in_yield_ = false;
  event_add(ev_.get(), nullptr);
}

void Acceptor::read_cb(evutil_socket_t, short, void* arg) { static_cast<Acceptor*>(arg)->accept_some(false); }

bool Acceptor::accept_some(bool after_yield) {
  // After a yield, the first connection still queued is taken without
  // asking (a connection waits about kYieldUs at most, even if the other
  // workers never take it), and up to kCatchUpBatch - 1 more while the
  // policy allows them: the others may have taken their share meanwhile.
  const size_t limit = after_yield ? kCatchUpBatch : 1;
  for (size_t i = 0; i < limit && enabled_; ++i) {
    const bool ask = yield_ != nullptr && (!after_yield || i > 0);
    if (ask && yield_(arg_)) {
      // Not listening for yield_us_: the other workers, woken by the same
      // readiness, get the time to be scheduled and take the connection.
      ++yielded_;
      in_yield_ = true;
      event_del(ev_.get());
      const timeval later = to_timeval_us(yield_us_);
      evtimer_add(resume_.get(), &later);
      return true;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      // The callback may disable listening (drain); it must not destroy
      // the Acceptor.
      cb_(sys::UniqueFd(fd), reinterpret_cast<const sockaddr*>(&ss), len, arg_);
      continue;
    }
    const int err = errno;
    switch (err) {
      case EAGAIN:
      case EINTR:
        return false;
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM: {
        // The connection stays queued: listening again at once would spin.
        ++exhausted_;
        HLOG_WARN("accept on listening socket %d: %s: not accepting for %u ms", fd_.get(), strerror(err),
                  kExhaustedPauseMs);
        event_del(ev_.get());
        const timeval tv = to_timeval(kExhaustedPauseMs);
        evtimer_add(resume_.get(), &tv);
        return true;
      }
      default:
        // ECONNABORTED, EPROTO, EPERM (a firewall) and the like concern one
        // connection: the next one may be fine.
        HLOG_DEBUG("accept on listening socket %d: %s", fd_.get(), strerror(err));
        continue;
    }
  }
  return false;
}

void Acceptor::resume_cb(evutil_socket_t, short, void* arg) {
  auto* a = static_cast<Acceptor*>(arg);
  if (!a->enabled_) return;
  if (a->in_yield_) {
    // At once, not at the next readiness: with nothing queued any more the
    // pause simply ends, and a later connection is asked about as usual.
    a->in_yield_ = false;
    if (a->accept_some(true) || !a->enabled_) return;  // paused again, or disabled by the callback
  }
  event_add(a->ev_.get(), nullptr);
}

}  // namespace huginn::worker::net
