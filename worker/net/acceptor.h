// The accept loop of one listening socket that every worker shares.
//
// The workers inherit the same listening sockets from the supervisor and all
// wait on them. libevent's evconnlistener accepts until the queue is empty on
// every wake-up, so the worker that woke first took every connection of a
// burst: h2load's 10 connections landed 10/0 on two workers in 3 of 6 tries,
// which left one worker (one core) with all the load. Like nginx with
// `multi_accept off`, an Acceptor takes one connection per
// readiness event; epoll is level-triggered, so what is left wakes the other
// workers as well as this one, and a burst is shared out.
//
// Batching alone still left 10/0 splits now and then: the worker that
// happened to be running took the connection before the other was scheduled.
// An optional `yield` policy asks, before each accept, whether this worker
// should leave the connection to the others (Server: when accepting would
// put it more than one connection above an even share of the host's
// connections). A yielding Acceptor stops listening for kYieldUs (every
// worker was woken by the same readiness; the others get the time to be
// scheduled), then takes the first connection still queued without asking,
// so that a connection waits about kYieldUs at most even when no other
// worker takes it, and up to kCatchUpBatch - 1 more while the policy allows.
// A pause ends early when reconsider() finds that the policy no longer
// yields: the Server calls it whenever one of its connections closes. With
// short-lived connections the shares change all the time, and two workers
// each sitting out a whole pause capped the accept rate at about one
// connection per kYieldUs (the resumption benchmark: 1,000/s instead of
// 2,000).
//
// Resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) leaves the connection
// in the queue, which would wake the loop again at once and spin: the
// Acceptor stops listening for kExhaustedPauseMs instead and logs once per
// pause.
#pragma once

#include <event2/event.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/sys/unique_fd.h"
#include "worker/net/event_handles.h"

namespace huginn::worker::net {

inline constexpr uint32_t kExhaustedPauseMs = 100;
// Connections that live shorter than this on average (Server: a weighted
// mean over the worker's recent closes) count as short-lived
// (fair_share_yield).
inline constexpr int64_t kShortLivedMs = 100;

// The Server's yield policy: whether a worker holding `mine` of the host's
// `total` connections leaves the next one to the other `workers` - 1.
// - Long-lived connections (the default): it yields when accepting would put
//   it more than one connection above an even share. This is what splits a
//   burst of long-lived connections (h2load's 10) 5/5: nothing rebalances
//   them later.
// - Short-lived: it yields only beyond a slack of max(2, share / 4) above
//   the share. Short-lived connections rebalance themselves (both workers
//   are woken by each new connection; the one free first takes it), and the
//   strict rule made the busier worker yield on about every other wake-up
//   under a load of new TLS connections: each yield is a pause of the
//   listener and a connection that waits for the other worker
//   (bench/README.md, runs 22 and 23).
inline bool fair_share_yield(int64_t mine, int64_t total, int64_t workers, bool short_lived) {
  if (workers < 2) return false;
  const int64_t slack = short_lived ? std::max<int64_t>(2, total / (4 * workers)) : 0;
  // mine > total / workers + slack, in integers.
  return mine * workers > total + slack * workers;
}

// libevent's timers run on the coarse monotonic clock (one kernel tick: 4 ms
// with HZ=250), so a pause lasts anywhere from a fraction of kYieldUs to
// about a tick more.
inline constexpr uint32_t kYieldUs = 1000;
inline constexpr size_t kCatchUpBatch = 64;

class Acceptor {
 public:
  // A connection accepted non-blocking and close-on-exec; the callback owns
  // `fd`. It may disable() the Acceptor but must not destroy it.
  using OnAccept = void (*)(sys::UniqueFd fd, const sockaddr* sa, socklen_t len, void* arg);
  // True: leave the next connection to the other workers (see above).
  using Yield = bool (*)(void* arg);

  // Takes `fd` (a listening socket); it is made non-blocking. Listening
  // starts disabled. A yield pauses listening for `yield_us` (tests lengthen
  // it so that only reconsider() can end a pause). Null if the events cannot
  // be made.
  static std::unique_ptr<Acceptor> create(event_base* base, sys::UniqueFd fd, OnAccept cb, void* arg,
                                          Yield yield = nullptr, uint32_t yield_us = kYieldUs);
  ~Acceptor() = default;
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  bool enable();
  // Stops listening (and any exhaustion pause). The socket stays open until
  // the Acceptor is destroyed.
  void disable();
  // Ends a yield's pause at once if the policy no longer yields.
  void reconsider();
  int fd() const { return fd_.get(); }
  // Accept errors that paused listening, since creation.
  uint64_t exhausted() const { return exhausted_; }
  // In a yield's or an exhaustion's pause.
  bool pausing() const { return evtimer_pending(resume_.get(), nullptr) != 0; }
  // Turns left to the other workers, since creation.
  uint64_t yielded() const { return yielded_; }

 private:
  Acceptor() = default;
  static void read_cb(evutil_socket_t, short, void* arg);
  static void resume_cb(evutil_socket_t, short, void* arg);
  // True when it paused listening (a yield or exhaustion).
  bool accept_some(bool after_yield);

  sys::UniqueFd fd_;
  EventPtr ev_;
  EventPtr resume_;  // ends an exhaustion pause or a yield
  OnAccept cb_ = nullptr;
  Yield yield_ = nullptr;
  void* arg_ = nullptr;
  uint32_t yield_us_ = kYieldUs;
  bool enabled_ = false;
  bool in_yield_ = false;  // resume_ ends a yield, not an exhaustion pause
  uint64_t exhausted_ = 0;
  uint64_t yielded_ = 0;
};

}  // namespace huginn::worker::net
