#include "worker/net/acceptor.h"

#include <errno.h>
#include <event2/util.h>
#include <string.h>

#include "common/sys/log.h"

namespace huginn::worker::net {

std::unique_ptr<Acceptor> Acceptor::create(event_base* base, sys::UniqueFd fd, size_t batch, OnAccept cb,
                                           void* arg, Yield yield) {
  if (!fd || base == nullptr || cb == nullptr || batch == 0) return nullptr;
  if (evutil_make_socket_nonblocking(fd.get()) != 0) return nullptr;
  std::unique_ptr<Acceptor> a(new Acceptor());
  a->fd_ = std::move(fd);
  a->batch_ = batch;
  a->cb_ = cb;
  a->yield_ = yield;
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
  event_del(ev_.get());
  evtimer_del(resume_.get());
}

void Acceptor::read_cb(evutil_socket_t, short, void* arg) {
  auto* a = static_cast<Acceptor*>(arg);
  const bool may_yield = !a->just_yielded_;
  a->just_yielded_ = false;
  for (size_t i = 0; i < a->batch_ && a->enabled_; ++i) {
    if (may_yield && a->yield_ != nullptr && a->yield_(a->arg_)) {
      // A zero timeout runs after the next epoll_wait, which reports the
      // socket to the other workers meanwhile.
      ++a->yielded_;
      a->just_yielded_ = true;
      event_del(a->ev_.get());
      const timeval later{0, static_cast<suseconds_t>(kYieldUs)};
      evtimer_add(a->resume_.get(), &later);
      return;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd =
        accept4(a->fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      // The callback may disable listening (drain); it must not destroy
      // the Acceptor.
      a->cb_(sys::UniqueFd(fd), reinterpret_cast<const sockaddr*>(&ss), len, a->arg_);
      continue;
    }
    const int err = errno;
    switch (err) {
      case EAGAIN:
      case EINTR:
        return;
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM: {
        // The connection stays queued: listening again at once would spin.
        ++a->exhausted_;
        HLOG_WARN("accept on listening socket %d: %s: not accepting for %u ms", a->fd_.get(), strerror(err),
                  kExhaustedPauseMs);
        event_del(a->ev_.get());
        const timeval tv{0, static_cast<suseconds_t>(kExhaustedPauseMs) * 1000};
        evtimer_add(a->resume_.get(), &tv);
        return;
      }
      default:
        // ECONNABORTED, EPROTO, EPERM (a firewall) and the like concern one
        // connection: the next one may be fine.
        HLOG_DEBUG("accept on listening socket %d: %s", a->fd_.get(), strerror(err));
        continue;
    }
  }
}

void Acceptor::resume_cb(evutil_socket_t, short, void* arg) {
  auto* a = static_cast<Acceptor*>(arg);
  if (a->enabled_) event_add(a->ev_.get(), nullptr);
}

}  // namespace huginn::worker::net
