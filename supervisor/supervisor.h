// The supervisor: binds listeners, spawns and watches the workers, stops.
//
// Event-driven (libevent): children are watched through pidfds, signals
// through evsignal, control channels through read events. Nothing polls.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config/model.h"
#include "common/ipc/protocol.h"
#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"
#include "supervisor/listeners.h"
#include "supervisor/spawn.h"

namespace huginn::supervisor {

using EventBase = sys::CHandle<event_base, event_base_free>;
using Event = sys::CHandle<event, event_free>;

class Supervisor {
 public:
  Supervisor(std::shared_ptr<const config::Config> cfg, Program worker_program);
  ~Supervisor();

  // Binds listeners and starts the workers; then runs until stopped.
  // Returns the process exit status (0 clean stop, 2 runtime failure).
  int run();

 private:
  enum class WorkerState { kStarting, kReady, kDraining };
  struct WorkerProc {
    Supervisor* sup = nullptr;
    uint32_t slot = 0;
    uint32_t generation = 0;
    pid_t pid = -1;
    sys::UniqueFd pidfd;
    sys::UniqueFd ctl;
    Event ctl_ev;
    Event exit_ev;
    WorkerState state = WorkerState::kStarting;
    ipc::Session session{ipc::Session::Role::kSupervisorSide};
    std::chrono::steady_clock::time_point started;
  };
  struct Slot {
    Supervisor* sup = nullptr;
    uint32_t index = 0;
    int consecutive_crashes = 0;
    Event restart_timer;
  };

  bool make_config_memfd(std::string* error);
  bool spawn_worker(uint32_t slot, std::string* error);
  void on_ctl(WorkerProc* w);
  void on_exit(WorkerProc* w);
  void schedule_restart(uint32_t slot, bool crashed_early);
  void kill_worker(WorkerProc* w, const char* reason);
  void begin_stop(bool graceful);
  void on_all_ready();

  std::shared_ptr<const config::Config> cfg_;
  Program worker_program_;
  EventBase base_;
  std::vector<Listener> listeners_;
  sys::UniqueFd config_memfd_;
  uint32_t generation_ = 1;
  std::map<pid_t, std::unique_ptr<WorkerProc>> workers_;
  std::vector<Slot> slots_;
  std::vector<Event> signal_events_;
  Event stop_timer_;
  bool stopping_ = false;
  bool announced_ready_ = false;
  int exit_status_ = 0;
};

}  // namespace huginn::supervisor
