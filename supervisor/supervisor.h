// The supervisor: binds listeners, runs generations of workers, reloads,
// restarts crashed workers, stops.
//
// Event-driven (libevent): children are watched through pidfds, signals
// through evsignal, control channels through read events. Nothing polls.
//
// A generation is one validated configuration plus the workers started with
// it. Normally one generation is active. A reload builds generation N+1 next
// to N (listeners whose address is unchanged are shared, new ones are bound),
// waits until every new worker is READY, then tells generation N to drain.
// Any failure before that point kills N+1 and leaves N serving.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/model.h"
#include "common/hoststate/region.h"
#include "common/ipc/helper_protocol.h"
#include "common/ipc/protocol.h"
#include "common/metrics/table.h"
#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"
#include "common/tls/bundle.h"
#include "supervisor/cert_watch.h"
#include "supervisor/control.h"
#include "supervisor/health_prober.h"
#include "supervisor/listeners.h"
#include "supervisor/metrics_endpoint.h"
#include "supervisor/privhelper_client.h"
#include "supervisor/spawn.h"
#include "supervisor/tls_material.h"

namespace huginn::supervisor {

using EventBase = sys::CHandle<event_base, event_base_free>;
using Event = sys::CHandle<event, event_free>;

class DbusService;

class Supervisor : public Control {
 public:
  Supervisor(std::string config_path, std::shared_ptr<const config::Config> cfg, Program worker_program);
  ~Supervisor() override;

  // Binds listeners and starts the first generation; then runs until stopped.
  // Returns the process exit status (0 clean stop, 2 runtime failure).
  int run();

  // Control (D-Bus, SIGHUP).
  void reload(ReloadDone done) override;
  std::vector<std::string> check_config(const std::string& path) override;
  std::string status_json() override;
  uint32_t generation() const override;

 private:
  enum class WorkerState { kStarting, kReady, kDraining };
  struct Generation;
  struct WorkerProc {
    Supervisor* sup = nullptr;
    Generation* gen = nullptr;
    uint32_t slot = 0;
    uint32_t host_slot = 0;  // its slot in host_state_ (from host_slots_)
    pid_t pid = -1;
    sys::UniqueFd pidfd;
    sys::UniqueFd ctl;
    Event ctl_ev;
    Event exit_ev;
    WorkerState state = WorkerState::kStarting;
    ipc::Session session{ipc::Session::Role::kSupervisorSide};
    std::chrono::steady_clock::time_point started;
    ipc::StatsAns stats;
    std::vector<uint32_t> cpus;  // worker_cpu_affinity; empty = not pinned
  };
  struct Slot {
    Generation* gen = nullptr;
    uint32_t index = 0;
    int consecutive_crashes = 0;
    uint32_t restarts = 0;
    Event restart_timer;
  };
  enum class GenState { kStarting, kActive, kDraining };
  // One TLS bundle as sent to workers: the bundle and the sealed memfd
  // holding its encoding (shared by every TLS_MATERIAL that carries it).
  struct TlsPayload {
    tls::Bundle bundle;
    sys::UniqueFd memfd;
  };
  struct Generation {
    Supervisor* sup = nullptr;
    uint32_t id = 0;
    std::shared_ptr<const config::Config> cfg;
    sys::UniqueFd memfd;
    std::vector<Slot> slots;  // sized once: timers point into it
    GenState state = GenState::kStarting;
    std::shared_ptr<const TlsPayload> tls;  // newest TLS material; null without [tls]
    // Shared metrics table, one slot per worker slot; null without
    // [telemetry] metrics_port. A slot is folded into metrics_base_ and zeroed
    // when its worker exits, before a new worker gets it.
    std::unique_ptr<metrics::Table> metrics;
    // Label values of the table's per-route sections (metrics::route_keys(*cfg)).
    std::vector<metrics::RouteKey> metrics_routes;
  };
  struct PendingReload {
    Generation* gen = nullptr;
    std::vector<std::string> new_listeners;  // bound for this reload; closed if it fails
    std::vector<ReloadDone> waiters;
    Event timeout;
    std::shared_ptr<const TlsPayload> tls;  // material for the new generation
  };

  // Starts generation N+1 from `cfg` (reload, or re-granting maps after the
  // helper recreated them); `reload_` must be set.
  void begin_generation(std::shared_ptr<const config::Config> cfg);
  void start_first_generation();
  // XDP helper: starts it for `cfg` if TCP fingerprints want XDP; `then` runs
  // once it attached, failed, or was not needed.
  void start_helper(const config::Config& cfg, std::function<void()> then);
  void reconfigure_helper(const config::Config& old_cfg, const config::Config& cfg,
                          std::function<void()> then);
  void on_helper_restarted();
  std::unique_ptr<Generation> make_generation(std::shared_ptr<const config::Config> cfg, std::string* error);
  bool spawn_worker(Generation* gen, uint32_t slot, std::string* error);
  void on_ctl(WorkerProc* w);
  void on_exit(WorkerProc* w);
  void on_worker_ready(WorkerProc* w);
  void schedule_restart(Slot* slot, bool quick_failure);
  void kill_worker(WorkerProc* w, const std::string& reason);
  // A reaped worker's host-state slot: its connection count leaves the host
  // total and the slot returns to the free list.
  void release_host_slot(uint32_t slot);
  void begin_stop(bool graceful);
  void drain_generation(Generation* gen, uint32_t deadline_ms);
  size_t live_workers(const Generation* gen) const;
  void maybe_forget_generation(Generation* gen);
  bool reconcile_listeners(const config::Config& cfg, std::vector<std::string>* added, std::string* error);
  void close_unused_listeners();
  void finish_reload(bool ok, const std::string& message);
  void refresh_stats();
  // Telemetry endpoint: (re)binds it for `cfg` ([telemetry] metrics_port /
  // metrics_address); false when it cannot bind (the previous one stays).
  bool apply_telemetry(const config::Config& cfg, std::string* error);
  std::string render_metrics() const;
  Readiness readiness() const;
  std::string listen_summary() const;
  // TLS material (supervisor/tls_material.h): reads the files `cfg` names and
  // seals a new bundle (next serial, current ticket keys); null + errors.
  std::shared_ptr<const TlsPayload> make_tls_payload(const config::Config& cfg,
                                                     std::vector<config::ConfigError>* errors);
  std::shared_ptr<const TlsPayload> seal_tls_payload(tls::Bundle bundle, std::string* error);
  // Sends gen->tls to every live, non-draining worker of `gen`.
  void send_tls_to_generation(Generation* gen);
  // HEALTH (the prober's backend states) to `w`, or to every live worker of
  // generation `id` when the prober reports a change.
  bool send_health(WorkerProc* w, std::string* error);
  void send_health_to_generation(uint32_t id);
  // Certificate watch callback: rebuilds the material of every serving
  // generation; a broken file is logged and the previous bundle stays.
  void on_tls_files_changed();
  void on_ticket_rotation();
  // Points the certificate watch at the files of the active (and starting) generation.
  void watch_tls_files();

  std::string config_path_;
  Program worker_program_;
  EventBase base_;
  // Active health checks of every generation's backends (made right after base_).
  std::unique_ptr<HealthProber> health_;
  // The host-wide state region (common/hoststate): made once, kept across
  // reloads; every worker gets it with HOST_STATE and a slot from the free
  // list, which goes back (its connections subtracted) when the worker is reaped.
  std::unique_ptr<hoststate::Region> host_state_;
  hoststate::SlotAllocator host_slots_;
  std::map<std::string, Listener> listeners_;  // by address
  uint32_t next_generation_ = 1;
  uint32_t next_listener_id_ = 0;
  Generation* active_ = nullptr;
  std::vector<std::unique_ptr<Generation>> generations_;
  std::map<pid_t, std::unique_ptr<WorkerProc>> workers_;
  std::unique_ptr<PendingReload> reload_;
  std::unique_ptr<DbusService> dbus_;
  std::unique_ptr<PrivhelperClient> privhelper_;
  std::optional<ipc::helper::LoadAttach> helper_request_;  // what the running helper was asked
  std::optional<ipc::helper::StatsAns> helper_stats_;
  std::string helper_note_;  // why there is no helper, for status
  std::vector<Event> signal_events_;
  Event stop_timer_;
  Event stats_timer_;
  TicketKeyRing tickets_;
  uint64_t next_tls_serial_ = 1;
  std::unique_ptr<CertWatch> cert_watch_;
  Event ticket_timer_;
  std::chrono::steady_clock::time_point started_at_;
  // Telemetry: the endpoint, folded counts of exited workers, and what only
  // the supervisor counts.
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  metrics::Counters metrics_base_{};
  metrics::RouteTotals metrics_route_base_;  // by label values: survives reloads
  uint64_t reloads_ok_ = 0;
  uint64_t reloads_failed_ = 0;
  double last_reload_unix_ = 0;
  uint64_t worker_restarts_ = 0;
  bool stopping_ = false;
  bool announced_ready_ = false;
  int exit_status_ = 0;
};

}  // namespace huginn::supervisor
