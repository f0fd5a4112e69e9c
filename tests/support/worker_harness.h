// What the worker's unit tests share (tests/unit/worker, tests/unit/h2): the
// config loader, loopback sockets, blocking writes, deterministic bodies and
// a libevent loop on its own thread.
#pragma once

#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/config/model.h"

namespace huginn::test {

// Parses TOML with config::load_text; fails the current test on errors
// (returns null then).
std::shared_ptr<const config::Config> load_config(const std::string& toml);

// One catch-all domain routing "/" to `backend`; `route_extra` is TOML added
// to that route, `extra` more top-level TOML.
std::string simple_config(const std::string& backend, const std::string& extra = {},
                          const std::string& route_extra = {});

// A listening TCP socket on 127.0.0.1 with a kernel-chosen port (in *port);
// `type_flags` are OR-ed into the socket type (e.g. SOCK_NONBLOCK). -1 on error.
int listen_loopback(uint16_t* port, int backlog = 128, int type_flags = 0);

// A blocking TCP connection to 127.0.0.1:port, or -1. `rcvbuf` > 0 sets
// SO_RCVBUF before connect() (a small window keeps the peer's data queued).
int connect_loopback(uint16_t port, int rcvbuf = 0);

// Writes all of [p, p + n) (a non-blocking socket waits for room); false on
// error or a blocking socket's send timeout.
bool write_all(int fd, const char* p, size_t n);

// `n` pseudo-random bytes, the same for the same seed.
std::string make_body(size_t n, uint32_t seed = 1);

// A libevent base whose loop runs on its own thread from start() to stop().
class EventLoopThread {
 public:
  EventLoopThread();
  ~EventLoopThread();
  EventLoopThread(const EventLoopThread&) = delete;
  EventLoopThread& operator=(const EventLoopThread&) = delete;

  event_base* base() const { return base_.get(); }
  void start();
  // Runs `fn` on the loop thread and waits for it.
  void run(const std::function<void()>& fn);
  // Breaks the loop and joins the thread (idempotent).
  void stop();

 private:
  struct BaseDeleter {
    void operator()(event_base* b) const { event_base_free(b); }
  };
  std::unique_ptr<event_base, BaseDeleter> base_;
  std::thread thread_;
};

}  // namespace huginn::test
