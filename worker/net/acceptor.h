// The accept loop of one listening socket that every worker shares.
//
// The workers inherit the same listening sockets from the supervisor and all
// wait on them. libevent's evconnlistener accepts until the queue is empty on
// every wake-up, so the worker that woke first took every connection of a
// burst: h2load's 10 connections landed 10/0 on two workers in 3 of 6 tries,
// which left one worker (one core) with all the load. Like nginx with
// `multi_accept off`, an Acceptor takes at most `batch` connections per
// readiness event; epoll is level-triggered, so what is left wakes the other
// workers as well as this one, and a burst is shared out.
//
// Batching alone still left 10/0 splits now and then: the worker that
// happened to be running took the connection before the other was scheduled.
// An optional `yield` policy asks, before each accept, whether this worker
// should leave the connection to the others (Server: when it already holds
// more than its share). A yielding Acceptor stops listening for one loop turn
// (epoll reports the socket again to every worker) and then accepts whatever
// is still queued without asking, so a connection waits at most one turn
// even when no other worker takes it.
//
// Resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) leaves the connection
// in the queue, which would wake the loop again at once and spin: the
// Acceptor stops listening for kExhaustedPauseMs instead and logs once per
// pause.
#pragma once

#include <event2/event.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/sys/unique_fd.h"
#include "worker/net/event_handles.h"

namespace huginn::worker::net {

inline constexpr size_t kAcceptBatch = 1;
inline constexpr uint32_t kExhaustedPauseMs = 100;
inline constexpr uint32_t kYieldUs = 1000;

class Acceptor {
 public:
  // A connection accepted non-blocking and close-on-exec; the callback owns
  // `fd`. It may disable() the Acceptor but must not destroy it.
  using OnAccept = void (*)(sys::UniqueFd fd, const sockaddr* sa, socklen_t len, void* arg);
  // True: leave the next connection to the other workers (see above).
  using Yield = bool (*)(void* arg);

  // Takes `fd` (a listening socket); it is made non-blocking. Listening
  // starts disabled. Null if the events cannot be made.
  static std::unique_ptr<Acceptor> create(event_base* base, sys::UniqueFd fd, size_t batch, OnAccept cb,
                                          void* arg, Yield yield = nullptr);
  ~Acceptor() = default;
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  bool enable();
  // Stops listening (and any exhaustion pause). The socket stays open until
  // the Acceptor is destroyed.
  void disable();
  int fd() const { return fd_.get(); }
  // Accept errors that paused listening, since creation.
  uint64_t exhausted() const { return exhausted_; }
  // Turns left to the other workers, since creation.
  uint64_t yielded() const { return yielded_; }

 private:
  Acceptor() = default;
  static void read_cb(evutil_socket_t, short, void* arg);
  static void resume_cb(evutil_socket_t, short, void* arg);

  sys::UniqueFd fd_;
  EventPtr ev_;
  EventPtr resume_;  // ends an exhaustion pause or a yield
  size_t batch_ = kAcceptBatch;
  OnAccept cb_ = nullptr;
  Yield yield_ = nullptr;
  void* arg_ = nullptr;
  bool enabled_ = false;
  bool just_yielded_ = false;  // the next readiness accepts without asking
  uint64_t exhausted_ = 0;
  uint64_t yielded_ = 0;
};

}  // namespace huginn::worker::net
