// Test scaffolding for the org.huginn.Proxy1 service: a private dbus-daemon,
// a fake Control, the DbusService running on an event_base in its own thread,
// and a runner for huginnctl/busctl child processes (optionally as nobody).
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/sys/c_handle.h"
#include "supervisor/control.h"
#include "supervisor/dbus_service.h"
#include "tests/support/private_bus.h"

namespace huginn::testing {

// Records calls; completes reloads after `reload_delay_ms` on the loop with
// the configured outcome, emitting Reloaded like the supervisor does; refuses
// a second reload while one runs; CheckConfig fails for paths containing
// "bad" and throws std::runtime_error for "/throw". Counters are read from the test thread.
class FakeControl : public supervisor::Control {
 public:
  static constexpr const char* kRefusal = "a reload is already in progress";

  std::atomic<int> reload_calls{0};
  std::atomic<int> status_calls{0};
  std::atomic<bool> reload_pending{false};
  std::atomic<uint32_t> gen{1};
  std::atomic<int> reload_delay_ms{50};

  void set_outcome(bool ok, const std::string& message);
  std::vector<std::string> checked_paths();

  // Loop-thread side, set by ServiceThread.
  void attach(event_base* base, supervisor::DbusService* service);
  void detach();

  void reload(ReloadDone done) override;
  std::vector<std::string> check_config(const std::string& path) override;
  std::string status_json() override;
  uint32_t generation() const override { return gen.load(); }

 private:
  static void on_timer(evutil_socket_t, short, void* arg);
  void finish();

  std::mutex mu_;
  bool next_ok_ = true;
  std::string next_message_ = "reloaded";
  std::vector<std::string> checked_;
  event_base* base_ = nullptr;
  supervisor::DbusService* service_ = nullptr;
  sys::CHandle<event, event_free> timer_;
  ReloadDone pending_;
};

// Runs DbusService::create(base, bus, control) and the event loop in a thread.
class ServiceThread {
 public:
  ServiceThread(const std::string& bus, FakeControl& control);
  ~ServiceThread();
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  // Runs `fn` on the loop thread and waits for it.
  void run_on_loop(std::function<void(supervisor::DbusService&)> fn);

 private:
  FakeControl& control_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool ok_ = false;
  std::string error_;
  event_base* base_ = nullptr;
  supervisor::DbusService* service_ = nullptr;
};

struct ProcResult {
  int code = -1;  // exit status; 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Who a child runs as: unchanged (root), or uid 65534 with gid `gid` and
// exactly the supplementary groups `groups`.
struct RunAs {
  bool drop = false;
  gid_t gid = 65534;
  std::vector<gid_t> groups;
};
inline RunAs nobody(gid_t gid = 65534, std::vector<gid_t> groups = {}) {
  return {true, gid, std::move(groups)};
}

// Starts argv[0] (absolute path) with stdout/stderr captured to files; as
// uid and gid 65534 with no supplementary groups when `as_nobody`.
class Child {
 public:
  Child(const std::vector<std::string>& argv, bool as_nobody = false)
      : Child(argv, as_nobody ? nobody() : RunAs{}) {}
  Child(const std::vector<std::string>& argv, const RunAs& as);
  ~Child();
  bool running();
  ProcResult wait();

 private:
  bool reap(int flags);  // true once the child has been waited for

  pid_t pid_ = -1;
  std::string dir_;
  bool waited_ = false;
  ProcResult result_;
};

ProcResult run(const std::vector<std::string>& argv, bool as_nobody = false);
ProcResult run(const std::vector<std::string>& argv, const RunAs& as);

std::string huginnctl_path();
std::vector<std::string> lines(const std::string& s);  // non-empty lines

}  // namespace huginn::testing
