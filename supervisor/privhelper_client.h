// The supervisor's side of huginn-privhelper: spawns it (fd 3 = control
// channel), drives the channel asynchronously on the supervisor's libevent
// loop, restarts it when it dies (the pinned XDP link and maps survive, so
// traffic and fingerprints continue; the new helper reuses the pins) and makes
// the per-worker maps channels.
//
// Every request is answered in order; answers are matched against the oldest
// outstanding request (ipc::helper::SupervisorSession) and anything else
// kills the helper, which is then restarted like after a crash.
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "common/config/model.h"
#include "common/ipc/helper_protocol.h"
#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"
#include "supervisor/spawn.h"

namespace huginn::supervisor {

struct PrivhelperOptions {
  // Empty: <self_dir>/../<libexec>/huginn-privhelper, or $HUGINN_PRIVHELPER_PATH.
  std::string helper_path;
  // Tests: the helper joins this network namespace before dropping capabilities.
  std::string netns_path;
  std::string log_level = "info";
  std::chrono::milliseconds restart_delay{500};        // first restart; doubles per quick crash
  std::chrono::milliseconds max_restart_delay{30000};  // cap of the back-off
};

// The LOAD_ATTACH request for `cfg`: the [ebpf] keys, overridden by the
// upstream agent's environment variables (HUGINN_EBPF_INTERFACE (comma-
// separated), HUGINN_EBPF_DST_IP_V4 ("0.0.0.0" = any), HUGINN_EBPF_DST_IP_V6
// ("::" = any), HUGINN_EBPF_DST_PORT (comma-separated), HUGINN_EBPF_PIN_PATH,
// HUGINN_EBPF_SYN_MAP_MAX_ENTRIES, HUGINN_EBPF_XDP_MODE (native|skb, also
// xdp-native|xdp-skb)); ports default to the listener ports. `getenv_fn`
// is std::getenv in production. False with `*error` when the result is
// unusable (no interface, bad value).
bool load_request_from_config(const config::Config& cfg,
                              const std::function<const char*(const char*)>& getenv_fn,
                              ipc::helper::LoadAttach* out, std::string* error);

class PrivhelperClient {
 public:
  using AttachedCallback = std::function<void(bool ok, const std::string& message)>;
  using StatsCallback = std::function<void(std::optional<ipc::helper::StatsAns>)>;
  using DoneCallback = std::function<void(bool ok, const std::string& message)>;

  PrivhelperClient(event_base* base, PrivhelperOptions opts = {});
  // Kills a helper that is still running (SIGKILL); the pins keep XDP attached.
  ~PrivhelperClient();
  PrivhelperClient(const PrivhelperClient&) = delete;
  PrivhelperClient& operator=(const PrivhelperClient&) = delete;

  // Builds the request (load_request_from_config with std::getenv), spawns the
  // helper and asks it to load and attach. `on_attached` runs once, with the
  // first LOAD_ATTACH answer or the helper's death before it. False (nothing
  // started) when the request or the spawn fails.
  bool start(const config::Config& cfg, AttachedCallback on_attached, std::string* error);
  // The same with an explicit request (tests).
  bool start(const ipc::helper::LoadAttach& req, AttachedCallback on_attached, std::string* error);

  // Runs after a restarted helper has re-attached: existing workers keep
  // their (still valid) map fds; the caller may grant again as it likes.
  void set_on_restarted(std::function<void()> cb) { on_restarted_ = std::move(cb); }

  // Makes a maps channel for a worker: sends WORKER_GRANT with the helper's
  // end and returns the worker's end (the helper writes one MAPS_GRANT on it
  // at once). Invalid fd when the helper is not attached.
  sys::UniqueFd grant_worker(uint32_t worker_id, uint32_t generation);

  // New ports / destination filter (reload); only while attached.
  void update(const ipc::helper::Watch& watch, DoneCallback done);
  // Counters, mode and interfaces; nullopt when the helper is not running.
  void request_stats(StatsCallback cb);
  // Last message: detach (remove program and pins) or keep XDP attached.
  // `done` runs when the helper answered and exited (or was already gone).
  void shutdown(bool detach, std::function<void()> done);

  bool running() const { return ctl_.valid(); }
  bool attached() const { return attached_; }
  pid_t pid() const { return child_.pid; }
  uint32_t restarts() const { return restarts_; }
  const ipc::helper::LoadAttachAns& last_attach() const { return last_attach_; }

 private:
  using Event = sys::CHandle<event, event_free>;
  struct Pending {
    ipc::helper::MsgType answer;
    std::function<void(const ipc::helper::Message*)> handler;  // nullptr message = helper gone
  };

  bool spawn_helper(std::string* error);
  bool send(const ipc::helper::Message& m, const std::vector<int>& fds,
            std::function<void(const ipc::helper::Message*)> handler);
  void on_readable();
  void on_exit();
  void kill_helper(const std::string& why);
  void schedule_restart();
  void restart_now();
  void send_load_attach();

  event_base* base_;
  PrivhelperOptions opts_;
  Program program_;
  ipc::helper::LoadAttach request_;
  Child child_;
  sys::UniqueFd ctl_;
  Event ctl_ev_;
  Event exit_ev_;
  Event restart_ev_;
  ipc::helper::SupervisorSession session_;
  std::deque<Pending> pending_;
  AttachedCallback on_attached_;
  std::function<void()> on_restarted_;
  std::function<void()> on_shutdown_;
  ipc::helper::LoadAttachAns last_attach_;
  std::chrono::steady_clock::time_point spawned_at_;
  std::chrono::milliseconds next_delay_{0};
  uint32_t restarts_ = 0;
  bool attached_ = false;
  bool stopping_ = false;
};

}  // namespace huginn::supervisor
