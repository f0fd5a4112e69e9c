#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <set>

#include <json/json.h>

#include "build_info.h"
#include "common/config/cpu_affinity.h"
#include "common/config/loader.h"
#include "common/ipc/channel.h"
#include "common/metrics/render.h"
#include "common/sys/cpus.h"
#include "common/sys/log.h"
#include "common/sys/memfd.h"
#include "supervisor/dbus_service.h"
#include "supervisor/sd_notify.h"
#include "supervisor/tls_options_check.h"
#include "supervisor/worker_env.h"

namespace huginn::supervisor {
namespace {

// A worker that dies sooner than this after its start counts as a quick
// failure; consecutive ones back off exponentially (crash-loop protection).
constexpr auto kQuickFailure = std::chrono::seconds(2);
constexpr int kMaxBackoffSecs = 30;
// Fast stop (SIGINT): how long workers get before SIGKILL.
constexpr int kFastStopSecs = 1;
// Graceful stop: slack beyond shutdown_secs before SIGKILL.
constexpr int kStopSlackSecs = 2;
// How long a new generation may take to report READY before a reload fails.
constexpr int kReloadReadySecs = 30;
constexpr double kStatsIntervalSecs = 1.0;

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "ended";
}

timeval secs(double s) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(s);
  tv.tv_usec = static_cast<suseconds_t>((s - static_cast<double>(tv.tv_sec)) * 1e6);
  return tv;
}

uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000ULL + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

const char* state_name(int s) {
  static constexpr const char* kNames[] = {"starting", "ready", "draining"};
  return kNames[s];
}

}  // namespace

Supervisor::Supervisor(std::string config_path, std::shared_ptr<const config::Config> cfg,
                       Program worker_program)
    : config_path_(std::move(config_path)), worker_program_(std::move(worker_program)) {
  base_.reset(event_base_new());
  started_at_ = std::chrono::steady_clock::now();
  {
    std::string herr;
    host_state_ = hoststate::Region::create(&herr);
    if (!host_state_) HLOG_ERROR("host-state region: %s", herr.c_str());
  }
  if (base_)
    health_ =
        std::make_unique<HealthProber>(base_.get(), [this](uint32_t id) { send_health_to_generation(id); });
  std::string err;
  auto gen = make_generation(std::move(cfg), &err);
  if (gen) {
    active_ = gen.get();
    generations_.push_back(std::move(gen));
  } else {
    HLOG_ERROR("%s", err.c_str());
  }
}

Supervisor::~Supervisor() {
  dbus_.reset();
  // Children that are still around (runtime failure paths) must not outlive us.
  for (auto& [pid, w] : workers_) kill(pid, SIGKILL);
  for (auto& [pid, w] : workers_) waitpid(pid, nullptr, 0);
}

std::unique_ptr<Supervisor::Generation> Supervisor::make_generation(std::shared_ptr<const config::Config> cfg,
                                                                    std::string* error) {
  sys::UniqueFd fd = sys::make_sealed_memfd("huginn-config", cfg->source_text, error);
  if (!fd) return nullptr;
  auto gen = std::make_unique<Generation>();
  gen->sup = this;
  gen->id = next_generation_++;
  gen->memfd = std::move(fd);
  if (cfg->telemetry.metrics_port) {
    gen->metrics_routes = metrics::route_keys(*cfg);
    gen->metrics = metrics::Table::create(cfg->workers, gen->metrics_routes.size(), error);
    if (!gen->metrics) return nullptr;
  }
  gen->slots.resize(cfg->workers);
  for (uint32_t i = 0; i < cfg->workers; ++i) {
    gen->slots[i].gen = gen.get();
    gen->slots[i].index = i;
  }
  gen->cfg = std::move(cfg);
  if (health_) health_->add_generation(gen->id, *gen->cfg);
  return gen;
}

bool Supervisor::spawn_worker(Generation* gen, uint32_t slot, std::string* error) {
  sys::UniqueFd mine, theirs;
  if (!ipc::make_channel(&mine, &theirs)) {
    *error = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  SpawnRequest req;
  req.program = &worker_program_;
  req.args = {"--ctl-fd",     "3",
              "--config-fd",  "4",
              "--worker-id",  std::to_string(slot),
              "--generation", std::to_string(gen->id)};
  req.fds = {theirs.get(), gen->memfd.get()};
  req.env = worker_env(std::getenv("GLIBC_TUNABLES"));
  req.cpus = config::worker_cpus(gen->cfg->worker_cpu_affinity, slot, sys::allowed_cpus());
  if (gen->cfg->worker_cpu_affinity.mode != config::CpuAffinity::Mode::kOff && req.cpus.empty())
    HLOG_WARN("worker %u: worker_cpu_affinity names no CPU the supervisor may use; not pinned", slot);
  // The worker's end of a maps channel: the helper writes the MAPS_GRANT
  // (read-only map fds) on it; the worker only reads.
  sys::UniqueFd maps;
  if (privhelper_ && privhelper_->attached()) maps = privhelper_->grant_worker(slot, gen->id);
  if (maps) {
    req.args.insert(req.args.end(), {"--maps-fd", "5"});
    req.fds.push_back(maps.get());
  }
  if (!host_state_) {
    *error = "no host-state region";
    return false;
  }
  const std::optional<uint32_t> host_slot = host_slots_.take();
  if (!host_slot) {
    *error = "no free host-state slot (" + std::to_string(hoststate::kMaxSlots) + " workers alive)";
    return false;
  }
  Child child;
  if (!spawn(req, &child, error)) {
    host_slots_.give(*host_slot);
    return false;
  }
  theirs.reset();
  maps.reset();

  auto w = std::make_unique<WorkerProc>();
  w->sup = this;
  w->gen = gen;
  w->slot = slot;
  w->host_slot = *host_slot;
  w->pid = child.pid;
  w->pidfd = std::move(child.pidfd);
  w->ctl = std::move(mine);
  w->started = std::chrono::steady_clock::now();
  w->cpus = req.cpus;
  evutil_make_socket_nonblocking(w->ctl.get());

  // HELLO and LISTENERS go out at once; the datagrams queue in the socket.
  std::vector<int> fds;
  ipc::Listeners lm;
  for (const auto& la : gen->cfg->listeners()) {
    const Listener& l = listeners_.at(la.address.to_string());
    lm.entries.push_back({l.id, la.tls, l.address.to_string()});
    fds.push_back(l.fd.get());
  }
  if (!ipc::send_message(w->ctl.get(), ipc::Hello{ipc::kVersion, slot, gen->id, 0}, {}, error) ||
      !ipc::send_message(w->ctl.get(), lm, fds, error) ||
      !ipc::send_message(w->ctl.get(), ipc::HostState{hoststate::kLayoutVersion, *host_slot},
                         {host_state_->fd()}, error) ||
      (gen->metrics &&
       !ipc::send_message(w->ctl.get(), ipc::Metrics{metrics::kLayoutVersion, gen->metrics->slots()},
                          {gen->metrics->fd()}, error)) ||
      (gen->tls && !ipc::send_message(w->ctl.get(), ipc::TlsMaterial{gen->tls->bundle.serial},
                                      {gen->tls->memfd.get()}, error))) {
    kill(child.pid, SIGKILL);
    waitpid(child.pid, nullptr, 0);
    release_host_slot(*host_slot);
    return false;
  }
  // The backends' current health, after the start-up messages the worker
  // reads in order (it handles HEALTH in its event loop).
  if (!send_health(w.get(), error)) {
    kill(child.pid, SIGKILL);
    waitpid(child.pid, nullptr, 0);
    release_host_slot(*host_slot);
    return false;
  }
  WorkerProc* raw = w.get();
  w->ctl_ev.reset(event_new(
      base_.get(), w->ctl.get(), EV_READ | EV_PERSIST,
      [](evutil_socket_t, short, void* p) {
        auto* wp = static_cast<WorkerProc*>(p);
        wp->sup->on_ctl(wp);
      },
      raw));
  w->exit_ev.reset(event_new(
      base_.get(), w->pidfd.get(), EV_READ,
      [](evutil_socket_t, short, void* p) {
        auto* wp = static_cast<WorkerProc*>(p);
        wp->sup->on_exit(wp);
      },
      raw));
  event_add(w->ctl_ev.get(), nullptr);
  event_add(w->exit_ev.get(), nullptr);
  const std::string cpus = req.cpus.empty() ? "" : ", CPUs " + config::cpu_list_text(req.cpus);
  HLOG_INFO("worker %u started: pid %d, generation %u%s", slot, static_cast<int>(child.pid), gen->id,
            cpus.c_str());
  workers_.emplace(child.pid, std::move(w));
  return true;
}

void Supervisor::release_host_slot(uint32_t slot) {
  host_state_->reclaim(slot);
  host_slots_.give(slot);
}

void Supervisor::kill_worker(WorkerProc* w, const std::string& reason) {
  HLOG_ERROR("worker %u (pid %d, generation %u): %s; killing it", w->slot, static_cast<int>(w->pid),
             w->gen->id, reason.c_str());
  kill(w->pid, SIGKILL);
  event_del(w->ctl_ev.get());
}

void Supervisor::on_ctl(WorkerProc* w) {
  for (;;) {
    auto r = ipc::receive_message(w->ctl.get());
    if (r.status == ipc::RecvStatus::kAgain) return;
    if (r.status == ipc::RecvStatus::kClosed) {
      event_del(w->ctl_ev.get());  // the exit event reports the rest
      return;
    }
    if (r.status != ipc::RecvStatus::kMessage) return kill_worker(w, "protocol error: " + r.error);
    std::string why = w->session.accept(ipc::type_of(r.message));
    if (!why.empty()) return kill_worker(w, "protocol error: " + why);
    if (auto* hello = std::get_if<ipc::Hello>(&r.message)) {
      if (hello->worker_id != w->slot || hello->generation != w->gen->id ||
          hello->pid != static_cast<uint32_t>(w->pid))
        return kill_worker(w, "HELLO does not match the spawned worker");
    } else if (auto* ready = std::get_if<ipc::Ready>(&r.message)) {
      if (ready->generation != w->gen->id) return kill_worker(w, "READY for the wrong generation");
      on_worker_ready(w);
    } else if (auto* stats = std::get_if<ipc::StatsAns>(&r.message)) {
      w->stats = *stats;
    }
  }
}

void Supervisor::on_worker_ready(WorkerProc* w) {
  if (w->state == WorkerState::kStarting) w->state = WorkerState::kReady;
  HLOG_INFO("worker %u (pid %d, generation %u) ready", w->slot, static_cast<int>(w->pid), w->gen->id);
  Generation* gen = w->gen;
  size_t ready = 0;
  for (const auto& [pid, x] : workers_)
    if (x->gen == gen && x->state == WorkerState::kReady) ++ready;
  if (ready < gen->slots.size() || stopping_) return;
  if (gen->state == GenState::kStarting && gen == active_) {
    // First generation at start-up.
    gen->state = GenState::kActive;
    if (!announced_ready_) {
      announced_ready_ = true;
      HLOG_INFO("all %zu workers ready, serving on %s", gen->slots.size(), listen_summary().c_str());
      sd_notify("READY=1\nSTATUS=generation " + std::to_string(gen->id) + ", serving on " + listen_summary() +
                " with " + std::to_string(gen->slots.size()) + " workers\n");
    }
  } else if (gen->state == GenState::kStarting && reload_ && reload_->gen == gen) {
    // Reload: the new generation is complete; the old one drains.
    Generation* old = active_;
    gen->state = GenState::kActive;
    active_ = gen;
    if (old) drain_generation(old, gen->cfg->timeout.shutdown_secs * 1000);
    watch_tls_files();
    close_unused_listeners();
    HLOG_INFO("all %zu workers of generation %u ready, serving on %s", gen->slots.size(), gen->id,
              listen_summary().c_str());
    std::string terr;
    if (!apply_telemetry(*gen->cfg, &terr))
      HLOG_ERROR("telemetry endpoint: %s; the previous one stays", terr.c_str());
    const size_t n = gen->slots.size();
    finish_reload(true, "reloaded: generation " + std::to_string(gen->id) + " with " + std::to_string(n) +
                            (n == 1 ? " worker" : " workers"));
  }
}

void Supervisor::drain_generation(Generation* gen, uint32_t deadline_ms) {
  gen->state = GenState::kDraining;
  for (auto& s : gen->slots) s.restart_timer.reset();
  for (auto& [pid, w] : workers_) {
    if (w->gen != gen || w->state == WorkerState::kDraining) continue;
    std::string err;
    const bool ok =
        w->state == WorkerState::kReady && ipc::send_message(w->ctl.get(), ipc::Drain{deadline_ms}, {}, &err);
    if (!ok) kill(pid, SIGKILL);  // not serving yet (or channel gone): nothing to drain
    w->state = WorkerState::kDraining;
  }
  HLOG_INFO("generation %u draining (%zu workers, deadline %u ms)", gen->id, live_workers(gen), deadline_ms);
  maybe_forget_generation(gen);
}

size_t Supervisor::live_workers(const Generation* gen) const {
  return static_cast<size_t>(std::count_if(workers_.begin(), workers_.end(),
                                           [gen](const auto& kv) { return kv.second->gen == gen; }));
}

void Supervisor::maybe_forget_generation(Generation* gen) {
  if (gen == active_ || (reload_ && reload_->gen == gen) || live_workers(gen) > 0) return;
  HLOG_INFO("generation %u finished", gen->id);
  if (health_) health_->remove_generation(gen->id);
  generations_.erase(std::remove_if(generations_.begin(), generations_.end(),
                                    [gen](const auto& g) { return g.get() == gen; }),
                     generations_.end());
}

void Supervisor::on_exit(WorkerProc* w) {
  int status = 0;
  const pid_t pid = w->pid;
  if (waitpid(pid, &status, WNOHANG) != pid) return;  // spurious wake-up
  Generation* gen = w->gen;
  const uint32_t slot = w->slot;
  const bool quick = std::chrono::steady_clock::now() - w->started < kQuickFailure;
  const bool expected = stopping_ || gen->state == GenState::kDraining;
  if (expected) {
    HLOG_INFO("worker %u (pid %d, generation %u) %s", slot, static_cast<int>(pid), gen->id,
              describe_status(status).c_str());
  } else {
    HLOG_ERROR("worker %u (pid %d, generation %u) %s unexpectedly", slot, static_cast<int>(pid), gen->id,
               describe_status(status).c_str());
  }
  const WorkerState state = w->state;
  const uint32_t host_slot = w->host_slot;
  workers_.erase(pid);  // frees the events and descriptors
  // Connections it still counted (a crash) leave the host-wide count.
  release_host_slot(host_slot);
  // Its counts stay in the totals; the slot is clean for the next worker.
  if (gen->metrics) gen->metrics->fold_into(slot, gen->metrics_routes, &metrics_base_, &metrics_route_base_);
  if (stopping_) {
    if (workers_.empty()) event_base_loopexit(base_.get(), nullptr);
    return;
  }
  if (gen->state == GenState::kDraining) {
    maybe_forget_generation(gen);
    return;
  }
  if (gen->state == GenState::kStarting && reload_ && reload_->gen == gen) {
    // A worker of the generation being built died before it was complete:
    // the reload fails and the running generation stays.
    finish_reload(false, "reload failed: a worker of the new generation " + describe_status(status) +
                             (state == WorkerState::kStarting ? " before it was ready" : "") +
                             " (see the log)");
    return;
  }
  schedule_restart(&gen->slots[slot], quick);
}

void Supervisor::schedule_restart(Slot* s, bool quick_failure) {
  s->consecutive_crashes = quick_failure ? s->consecutive_crashes + 1 : 0;
  ++s->restarts;
  ++worker_restarts_;
  double delay = 0;
  if (s->consecutive_crashes > 1) {
    delay = std::min<double>(kMaxBackoffSecs, 0.25 * (1 << std::min(s->consecutive_crashes - 2, 8)));
    HLOG_ERROR("worker %u is crash-looping (%d quick failures in a row); next start in %.2f s", s->index,
               s->consecutive_crashes, delay);
  }
  s->restart_timer.reset(evtimer_new(
      base_.get(),
      [](evutil_socket_t, short, void* p) {
        auto* sl = static_cast<Slot*>(p);
        Supervisor* sup = sl->gen->sup;
        if (sup->stopping_ || sl->gen->state == GenState::kDraining) return;
        std::string err;
        if (!sup->spawn_worker(sl->gen, sl->index, &err)) {
          HLOG_ERROR("restarting worker %u failed: %s", sl->index, err.c_str());
          sup->schedule_restart(sl, true);
        }
      },
      s));
  timeval tv = secs(delay);
  evtimer_add(s->restart_timer.get(), &tv);
}

bool Supervisor::reconcile_listeners(const config::Config& cfg, std::vector<std::string>* added,
                                     std::string* error) {
  for (const auto& la : cfg.listeners()) {
    const net::SocketAddress& addr = la.address;
    const std::string key = addr.to_string();
    auto it = listeners_.find(key);
    if (it != listeners_.end()) {
      // Same address: keep the socket (and its queue); apply a new backlog.
      listen(it->second.fd.get(), static_cast<int>(cfg.listen.tcp_backlog));
      continue;
    }
    Listener l;
    if (!bind_listener(addr, cfg.listen.tcp_backlog, &l, error)) {
      for (const auto& k : *added) listeners_.erase(k);
      added->clear();
      return false;
    }
    l.id = next_listener_id_++;
    listeners_.emplace(key, std::move(l));
    added->push_back(key);
  }
  return true;
}

void Supervisor::close_unused_listeners() {
  std::set<std::string> used;
  for (const auto& g : generations_)
    if (g->state != GenState::kDraining)
      for (const auto& la : g->cfg->listeners()) used.insert(la.address.to_string());
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (!used.count(it->first)) {
      HLOG_INFO("closing listener %s (no longer configured)", it->first.c_str());
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
}

void Supervisor::reload(ReloadDone done) {
  if (stopping_) {
    done(false, "reload refused: the service is stopping");
    return;
  }
  if (reload_) {
    done(false, "reload refused: a reload is already in progress (generation " +
                    std::to_string(reload_->gen->id) + " is starting)");
    return;
  }
  if (!announced_ready_) {
    done(false, "reload refused: the service is still starting");
    return;
  }
  HLOG_INFO("reloading %s", config_path_.c_str());
  done = [this, inner = std::move(done)](bool ok, const std::string& message) {
    if (ok) {
      ++reloads_ok_;
      timespec ts{};
      clock_gettime(CLOCK_REALTIME, &ts);
      last_reload_unix_ = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
    } else {
      ++reloads_failed_;
    }
    inner(ok, message);
  };
  auto loaded = config::load_file(config_path_);
  std::shared_ptr<const TlsPayload> tls_payload;
  if (auto* ok = std::get_if<std::shared_ptr<const config::Config>>(&loaded)) {
    auto tls_errs = check_tls_options(**ok);
    if (tls_errs.empty() && (*ok)->tls) tls_payload = make_tls_payload(**ok, &tls_errs);
    if (!tls_errs.empty()) loaded = std::move(tls_errs);
  }
  if (auto* errs = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
    std::string msg = "reload failed: " + std::to_string(errs->size()) + " configuration error" +
                      (errs->size() == 1 ? "" : "s") + "; generation " + std::to_string(active_->id) +
                      " keeps serving";
    for (const auto& e : *errs) msg += "\n" + e.to_string();
    HLOG_ERROR("%s", msg.c_str());
    if (dbus_) dbus_->emit_reloaded(active_->id, false, msg);
    done(false, msg);
    return;
  }
  auto cfg = std::get<std::shared_ptr<const config::Config>>(loaded);
  sd_notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()) + "\nSTATUS=reloading\n");
  reload_ = std::make_unique<PendingReload>();
  reload_->waiters.push_back(std::move(done));
  reload_->tls = std::move(tls_payload);
  // [ebpf] or the TCP fingerprint source may have changed: the helper is
  // reconfigured first, so that the new workers get grants from it.
  std::shared_ptr<const config::Config> old = active_->cfg;
  reconfigure_helper(*old, *cfg, [this, cfg] {
    if (reload_ && !reload_->gen) begin_generation(cfg);
  });
}

void Supervisor::begin_generation(std::shared_ptr<const config::Config> cfg) {
  std::string err;
  if (!reconcile_listeners(*cfg, &reload_->new_listeners, &err)) {
    finish_reload(false, "reload failed: cannot listen: " + err);
    return;
  }
  auto gen = make_generation(cfg, &err);
  if (!gen) {
    finish_reload(false, "reload failed: " + err);
    return;
  }
  gen->tls = reload_->tls;
  reload_->gen = gen.get();
  generations_.push_back(std::move(gen));
  for (uint32_t i = 0; i < reload_->gen->slots.size(); ++i) {
    if (!spawn_worker(reload_->gen, i, &err)) {
      finish_reload(false, "reload failed: cannot start worker: " + err);
      return;
    }
  }
  reload_->timeout.reset(evtimer_new(
      base_.get(),
      [](evutil_socket_t, short, void* p) {
        static_cast<Supervisor*>(p)->finish_reload(
            false, "reload failed: the new workers did not become ready within " +
                       std::to_string(kReloadReadySecs) + " s");
      },
      this));
  timeval tv = secs(kReloadReadySecs);
  evtimer_add(reload_->timeout.get(), &tv);
}

namespace {

bool wants_xdp(const config::Config& c) {
  return c.fingerprint.tcp_enabled && c.fingerprint.tcp_source != config::Fingerprint::TcpSource::kSavedSyn;
}

}  // namespace

void Supervisor::start_helper(const config::Config& cfg, std::function<void()> then) {
  helper_request_.reset();
  helper_stats_.reset();
  if (!wants_xdp(cfg)) {
    helper_note_ = cfg.fingerprint.tcp_enabled ? "tcp_source = saved_syn" : "tcp fingerprints disabled";
    return then();
  }
  ipc::helper::LoadAttach req;
  std::string err;
  if (!load_request_from_config(
          cfg, [](const char* k) { return std::getenv(k); }, &req, &err)) {
    helper_note_ = "XDP not configured: " + err;
    if (cfg.fingerprint.tcp_source == config::Fingerprint::TcpSource::kXdp)
      HLOG_ERROR("tcp_source = \"xdp\" but %s; TCP fingerprints will be missing", err.c_str());
    else
      HLOG_INFO("XDP SYN capture not configured (%s); TCP fingerprints come from TCP_SAVED_SYN", err.c_str());
    return then();
  }
  privhelper_ = std::make_unique<PrivhelperClient>(base_.get());
  privhelper_->set_on_restarted([this] { on_helper_restarted(); });
  auto shared_then = std::make_shared<std::function<void()>>(std::move(then));
  const bool started = privhelper_->start(
      req,
      [this, shared_then](bool ok, const std::string& message) {
        if (ok) {
          helper_note_.clear();
          HLOG_INFO("XDP SYN capture attached (%s)", message.c_str());
        } else {
          helper_note_ = "attach failed: " + message;
          HLOG_ERROR("XDP SYN capture failed: %s; TCP fingerprints fall back as configured", message.c_str());
        }
        (*shared_then)();
      },
      &err);
  if (!started) {
    helper_note_ = "cannot start the helper: " + err;
    HLOG_ERROR("cannot start huginn-privhelper: %s", err.c_str());
    privhelper_.reset();
    return (*shared_then)();
  }
  helper_request_ = req;
}

void Supervisor::reconfigure_helper(const config::Config& old_cfg, const config::Config& cfg,
                                    std::function<void()> then) {
  ipc::helper::LoadAttach req;
  std::string err;
  const bool usable = wants_xdp(cfg) && load_request_from_config(
                                            cfg, [](const char* k) { return std::getenv(k); }, &req, &err);
  if (usable && privhelper_ && helper_request_) {
    ipc::helper::LoadAttach same = *helper_request_;
    same.watch = req.watch;
    if (same == req) {  // at most the watched ports or destinations changed
      if (helper_request_->watch == req.watch) return then();
      helper_request_ = req;
      privhelper_->update(req.watch, [then](bool ok, const std::string& message) {
        if (!ok) HLOG_ERROR("updating the XDP watch list failed: %s", message.c_str());
        then();
      });
      return;
    }
  }
  if (!privhelper_ && !wants_xdp(cfg) && !wants_xdp(old_cfg)) return then();
  // Interfaces, mode, pins or map size changed, or XDP was switched on or off:
  // detach the old program and start again.
  auto restart = [this, &cfg, then]() mutable { start_helper(cfg, std::move(then)); };
  if (privhelper_) {
    auto* client = privhelper_.get();
    auto cfg_copy = std::make_shared<config::Config>(cfg);
    client->shutdown(true, [this, cfg_copy, then]() mutable {
      privhelper_.reset();
      start_helper(*cfg_copy, std::move(then));
    });
    return;
  }
  restart();
}

void Supervisor::on_helper_restarted() {
  if (!privhelper_) return;
  if (privhelper_->last_attach().reused_pins) {
    HLOG_INFO("huginn-privhelper restarted and reused its pinned maps; workers keep their grants");
    return;
  }
  // The maps were recreated: the workers' read-only fds point at the old ones.
  // A new generation with the same configuration gets fresh grants.
  HLOG_WARN("huginn-privhelper restarted with new maps; starting a new generation to grant them");
  if (reload_ || stopping_) return;
  reload_ = std::make_unique<PendingReload>();
  reload_->waiters.push_back([](bool ok, const std::string& m) {
    if (!ok) HLOG_ERROR("re-granting maps failed: %s", m.c_str());
  });
  reload_->tls = active_->tls;
  begin_generation(active_->cfg);
}

void Supervisor::finish_reload(bool ok, const std::string& message) {
  if (!reload_) return;
  std::unique_ptr<PendingReload> r = std::move(reload_);
  if (!ok) {
    // Undo: kill the new generation's workers and close what was bound for it.
    if (r->gen) {
      r->gen->state = GenState::kDraining;
      for (auto& s : r->gen->slots) s.restart_timer.reset();
      for (auto& [pid, w] : workers_)
        if (w->gen == r->gen) {
          kill(pid, SIGKILL);
          w->state = WorkerState::kDraining;
        }
      maybe_forget_generation(r->gen);
    }
    for (const auto& k : r->new_listeners) listeners_.erase(k);
    HLOG_ERROR("%s; generation %u keeps serving", message.c_str(), active_->id);
  } else {
    HLOG_INFO("%s", message.c_str());
  }
  sd_notify("READY=1\nSTATUS=generation " + std::to_string(active_->id) + ", serving on " + listen_summary() +
            " with " + std::to_string(active_->slots.size()) + " workers\n");
  if (dbus_) dbus_->emit_reloaded(active_->id, ok, message);
  for (auto& done : r->waiters) done(ok, message);
}

std::vector<std::string> Supervisor::check_config(const std::string& path) {
  auto loaded = config::load_file(path.empty() ? config_path_ : path);
  std::vector<std::string> out;
  if (auto* errs = std::get_if<std::vector<config::ConfigError>>(&loaded))
    for (const auto& e : *errs) out.push_back(e.to_string());
  else  // [tls.options] names and the certificate/key/CA files
    for (const auto& e : check_tls_config(*std::get<std::shared_ptr<const config::Config>>(loaded)))
      out.push_back(e.to_string());
  return out;
}

uint32_t Supervisor::generation() const { return active_ ? active_->id : 0; }

std::string Supervisor::listen_summary() const {
  std::string s;
  for (const auto& [k, l] : listeners_) s += (s.empty() ? "" : " ") + k;
  return s;
}

std::string Supervisor::status_json() {
  Json::Value v;
  v["version"] = build::kVersion;
  v["pid"] = static_cast<int>(getpid());
  v["generation"] = generation();
  v["config_path"] = config_path_;
  v["uptime_secs"] = static_cast<Json::Int64>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_)
          .count());
  v["state"] = stopping_ ? "stopping" : (reload_ ? "reloading" : (announced_ready_ ? "ready" : "starting"));
  v["reload_in_progress"] = reload_ != nullptr;
  Json::Value ls(Json::arrayValue);
  for (const auto& [k, l] : listeners_) ls.append(k);
  v["listeners"] = ls;
  Json::Value ws(Json::arrayValue);
  for (const auto& [pid, w] : workers_) {
    Json::Value x;
    x["pid"] = static_cast<int>(pid);
    x["slot"] = w->slot;
    x["generation"] = w->gen->id;
    x["state"] = state_name(static_cast<int>(w->state));
    x["connections"] = static_cast<Json::UInt64>(w->stats.active_connections);
    x["total_connections"] = static_cast<Json::UInt64>(w->stats.total_connections);
    x["total_requests"] = static_cast<Json::UInt64>(w->stats.total_requests);
    x["restarts"] = w->gen->slots[w->slot].restarts;
    x["crash_loop"] = w->gen->slots[w->slot].consecutive_crashes > 1;
    if (!w->cpus.empty()) x["cpus"] = config::cpu_list_text(w->cpus);
    ws.append(x);
  }
  v["workers"] = ws;
  if (health_ && active_) v["backends"] = health_->status_json(active_->id);
  Json::Value h;
  if (!privhelper_) {
    h["state"] = "not running";
    h["note"] = helper_note_;
  } else {
    h["state"] = privhelper_->attached() ? "attached" : (privhelper_->running() ? "starting" : "restarting");
    h["pid"] = static_cast<int>(privhelper_->pid());
    h["restarts"] = privhelper_->restarts();
    h["reused_pins"] = privhelper_->last_attach().reused_pins;
    if (!helper_note_.empty()) h["note"] = helper_note_;
    if (helper_stats_) {
      h["mode"] = helper_stats_->mode == ipc::helper::XdpMode::kSkb ? "skb" : "native";
      Json::Value ifs(Json::arrayValue);
      for (const auto& i : helper_stats_->interfaces) ifs.append(i);
      h["interfaces"] = ifs;
      for (const auto& [name, c] :
           {std::pair{"syn_v4", helper_stats_->v4}, std::pair{"syn_v6", helper_stats_->v6}}) {
        Json::Value x;
        x["captured"] = static_cast<Json::UInt64>(c.captured);
        x["malformed"] = static_cast<Json::UInt64>(c.malformed);
        x["insert_failures"] = static_cast<Json::UInt64>(c.insert_failures);
        h[name] = x;
      }
    }
  }
  v["helper"] = h;
  Json::StreamWriterBuilder b;
  b["indentation"] = "";
  return Json::writeString(b, v);
}

Readiness Supervisor::readiness() const {
  if (stopping_) return Readiness::kStopping;
  return announced_ready_ ? Readiness::kReady : Readiness::kStarting;
}

bool Supervisor::apply_telemetry(const config::Config& cfg, std::string* error) {
  if (!cfg.telemetry.metrics_port) {
    if (metrics_endpoint_)
      HLOG_INFO("telemetry endpoint %s closed", metrics_endpoint_->address().to_string().c_str());
    metrics_endpoint_.reset();
    return true;
  }
  const std::string host = cfg.telemetry.metrics_address.value_or("0.0.0.0");
  const std::string text = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                           std::to_string(*cfg.telemetry.metrics_port);
  auto addr = net::SocketAddress::parse(text);
  if (!addr) {
    *error = "bad address " + text;
    return false;
  }
  if (metrics_endpoint_ && metrics_endpoint_->address() == *addr) return true;
  auto start = [this](const net::SocketAddress& a, std::string* e) {
    MetricsEndpoint::Hooks hooks;
    hooks.readiness = [this] { return readiness(); };
    hooks.metrics = [this] { return render_metrics(); };
    return MetricsEndpoint::start(base_.get(), a, std::move(hooks), e);
  };
  // The old socket goes first: a reload may keep the port and change the
  // address (0.0.0.0 → 127.0.0.1), which could not bind next to it.
  std::optional<net::SocketAddress> previous;
  if (metrics_endpoint_) previous = metrics_endpoint_->address();
  metrics_endpoint_.reset();
  metrics_endpoint_ = start(*addr, error);
  if (!metrics_endpoint_) {
    std::string again;
    if (previous) metrics_endpoint_ = start(*previous, &again);
    return false;
  }
  HLOG_INFO("telemetry endpoint on %s (/metrics, /health, /live, /ready)", addr->to_string().c_str());
  return true;
}

std::string Supervisor::render_metrics() const {
  metrics::Counters totals = metrics_base_;
  metrics::RouteTotals routes = metrics_route_base_;
  for (const auto& g : generations_)
    if (g->metrics) g->metrics->sum_into(g->metrics_routes, &totals, &routes);
  metrics::SupervisorFacts f;
  f.version = build::kVersion;
  f.generation = generation();
  f.reloads_ok = reloads_ok_;
  f.reloads_failed = reloads_failed_;
  f.last_reload_unix = last_reload_unix_;
  f.live_workers = static_cast<uint32_t>(workers_.size());
  f.worker_restarts = worker_restarts_;
  if (helper_stats_) {
    f.syn_v4 = metrics::SynMapCounters{helper_stats_->v4.captured, helper_stats_->v4.malformed,
                                       helper_stats_->v4.insert_failures};
    f.syn_v6 = metrics::SynMapCounters{helper_stats_->v6.captured, helper_stats_->v6.malformed,
                                       helper_stats_->v6.insert_failures};
  }
  return metrics::render(totals, routes, f) + (health_ ? health_->render_metrics() : std::string());
}

void Supervisor::refresh_stats() {
  if (privhelper_ && privhelper_->running())
    privhelper_->request_stats(
        [this](std::optional<ipc::helper::StatsAns> st) { helper_stats_ = std::move(st); });
  for (auto& [pid, w] : workers_) {
    if (w->state == WorkerState::kStarting) continue;
    std::string err;
    ipc::send_message(w->ctl.get(), ipc::StatsReq{}, {}, &err);  // a dead channel shows up as exit
  }
}

void Supervisor::begin_stop(bool graceful) {
  if (stopping_) {
    if (!graceful) {  // SIGINT during a graceful stop: hurry
      HLOG_WARN("fast stop requested during shutdown; terminating workers");
      for (auto& [pid, w] : workers_) {
        std::string err;
        if (!ipc::send_message(w->ctl.get(), ipc::Terminate{}, {}, &err)) kill(pid, SIGKILL);
      }
    }
    return;
  }
  stopping_ = true;
  sd_notify("STOPPING=1\nSTATUS=stopping\n");
  if (reload_) finish_reload(false, "reload aborted: the service is stopping");
  for (auto& g : generations_)
    for (auto& s : g->slots) s.restart_timer.reset();
  stats_timer_.reset();
  // Workers hold their own copies of the listening sockets; ours close now.
  listeners_.clear();
  const uint32_t deadline_ms = graceful ? active_->cfg->timeout.shutdown_secs * 1000 : 0;
  HLOG_INFO("%s stop: %zu workers", graceful ? "graceful" : "fast", workers_.size());
  for (auto& [pid, w] : workers_) {
    if (w->state == WorkerState::kDraining && graceful) continue;
    std::string err;
    const bool ok =
        w->state != WorkerState::kStarting &&
        ipc::send_message(w->ctl.get(),
                          graceful ? ipc::Message(ipc::Drain{deadline_ms}) : ipc::Message(ipc::Terminate{}),
                          {}, &err);
    if (!ok) kill(pid, SIGKILL);
    w->state = WorkerState::kDraining;
  }
  if (workers_.empty()) {
    event_base_loopexit(base_.get(), nullptr);
    return;
  }
  stop_timer_.reset(evtimer_new(
      base_.get(),
      [](evutil_socket_t, short, void* p) {
        auto* sup = static_cast<Supervisor*>(p);
        HLOG_WARN("%zu workers still running after the shutdown timeout; killing them", sup->workers_.size());
        for (auto& [pid, w] : sup->workers_) kill(pid, SIGKILL);
      },
      this));
  timeval tv = secs(graceful ? active_->cfg->timeout.shutdown_secs + kStopSlackSecs : kFastStopSecs);
  evtimer_add(stop_timer_.get(), &tv);
}

void Supervisor::start_first_generation() {
  std::string err;
  for (uint32_t i = 0; i < active_->slots.size(); ++i) {
    if (!spawn_worker(active_, i, &err)) {
      HLOG_ERROR("cannot start worker %u: %s", i, err.c_str());
      exit_status_ = 2;
      begin_stop(false);
      return;
    }
  }
}

std::shared_ptr<const Supervisor::TlsPayload> Supervisor::make_tls_payload(
    const config::Config& cfg, std::vector<config::ConfigError>* errors) {
  std::string err;
  if (cfg.tls->session_resumption_enabled && tickets_.keys().empty() && !tickets_.rotate(&err)) {
    errors->push_back(
        {"tls.session_resumption.enabled", "session-ticket keys: " + err, cfg.source_name, cfg.tls->pos});
    return nullptr;
  }
  tls::Bundle b;
  *errors = build_tls_bundle(cfg, tickets_.keys(), 0, &b);
  if (!errors->empty()) return nullptr;
  auto p = seal_tls_payload(std::move(b), &err);
  if (!p) errors->push_back({"tls", "TLS material: " + err, cfg.source_name, cfg.tls->pos});
  return p;
}

std::shared_ptr<const Supervisor::TlsPayload> Supervisor::seal_tls_payload(tls::Bundle bundle,
                                                                           std::string* error) {
  bundle.serial = next_tls_serial_++;
  auto p = std::make_shared<TlsPayload>();
  p->memfd = sys::make_sealed_memfd("huginn-tls", tls::encode(bundle), error);
  if (!p->memfd) return nullptr;
  p->bundle = std::move(bundle);
  return p;
}

void Supervisor::send_tls_to_generation(Generation* gen) {
  size_t sent = 0;
  for (auto& [pid, w] : workers_) {
    if (w->gen != gen || w->state == WorkerState::kDraining) continue;
    std::string err;
    if (!ipc::send_message(w->ctl.get(), ipc::TlsMaterial{gen->tls->bundle.serial}, {gen->tls->memfd.get()},
                           &err)) {
      kill_worker(w.get(), "cannot send TLS material: " + err);
      continue;
    }
    ++sent;
  }
  HLOG_INFO("TLS material %llu sent to %zu workers of generation %u",
            static_cast<unsigned long long>(gen->tls->bundle.serial), sent, gen->id);
}

bool Supervisor::send_health(WorkerProc* w, std::string* error) {
  if (!health_ || w->gen->cfg->backends.empty()) return true;
  // More backends than one HEALTH can carry: the workers keep every backend in rotation.
  if (w->gen->cfg->backends.size() > ipc::kMaxHealthEntries) {
    HLOG_ERROR("generation %u has %zu backends; health states reach workers for at most %zu", w->gen->id,
               w->gen->cfg->backends.size(), ipc::kMaxHealthEntries);
    return true;
  }
  return ipc::send_message(w->ctl.get(), ipc::Health{health_->states(w->gen->id)}, {}, error);
}

void Supervisor::send_health_to_generation(uint32_t id) {
  for (auto& [pid, w] : workers_) {
    if (w->gen->id != id) continue;
    std::string err;
    // A draining worker may still route a last request; its channel may be gone.
    if (!send_health(w.get(), &err) && w->state != WorkerState::kDraining)
      kill_worker(w.get(), "cannot send HEALTH: " + err);
  }
}

void Supervisor::watch_tls_files() {
  std::vector<std::string> paths;
  for (const Generation* g : {active_, reload_ ? reload_->gen : nullptr})
    if (g && g->tls)
      for (auto& p : tls_material_paths(*g->cfg)) paths.push_back(std::move(p));
  std::string err;
  if (!cert_watch_ && !paths.empty()) {
    cert_watch_ = make_inotify_cert_watch(
        base_.get(), kCertWatchDebounce, [this] { on_tls_files_changed(); }, &err);
    if (!cert_watch_) {
      HLOG_WARN("certificate hot reload unavailable: %s; certificates change on reload only", err.c_str());
      return;
    }
  }
  if (cert_watch_ && !cert_watch_->set_paths(paths, &err))
    HLOG_WARN("certificate hot reload: %s; those files change on reload only", err.c_str());
}

void Supervisor::on_tls_files_changed() {
  if (stopping_) return;
  for (auto& g : generations_) {
    if (!g->tls || g->state == GenState::kDraining) continue;
    std::vector<config::ConfigError> errs;
    tls::Bundle b;
    errs = build_tls_bundle(*g->cfg, g->tls->bundle.ticket_keys, 0, &b);
    if (!errs.empty()) {
      for (const auto& e : errs) HLOG_ERROR("certificate reload: %s", e.to_string().c_str());
      HLOG_ERROR("certificate reload failed; generation %u keeps TLS material %llu", g->id,
                 static_cast<unsigned long long>(g->tls->bundle.serial));
      continue;
    }
    if (b.files == g->tls->bundle.files) continue;  // a change elsewhere in a watched directory
    std::string err;
    auto p = seal_tls_payload(std::move(b), &err);
    if (!p) {
      HLOG_ERROR("certificate reload: %s; generation %u keeps its TLS material", err.c_str(), g->id);
      continue;
    }
    HLOG_INFO("certificate files changed: new TLS material %llu for generation %u",
              static_cast<unsigned long long>(p->bundle.serial), g->id);
    g->tls = std::move(p);
    send_tls_to_generation(g.get());
  }
}

void Supervisor::on_ticket_rotation() {
  if (stopping_) return;
  std::string err;
  if (!tickets_.rotate(&err)) {
    HLOG_ERROR("session-ticket key rotation failed: %s; the current keys stay", err.c_str());
    return;
  }
  for (auto& g : generations_) {
    if (!g->tls || g->state == GenState::kDraining || g->tls->bundle.ticket_keys.empty()) continue;
    tls::Bundle b = g->tls->bundle;
    b.ticket_keys = tickets_.keys();
    auto p = seal_tls_payload(std::move(b), &err);
    if (!p) {
      HLOG_ERROR("session-ticket key rotation: %s", err.c_str());
      continue;
    }
    g->tls = std::move(p);
    send_tls_to_generation(g.get());
  }
}

int Supervisor::run() {
  if (!base_ || !active_) {
    HLOG_ERROR("supervisor initialisation failed");
    return 2;
  }
  std::string err;
  std::vector<std::string> added;
  if (!reconcile_listeners(*active_->cfg, &added, &err)) {
    HLOG_ERROR("cannot listen: %s", err.c_str());
    return 2;
  }
  // The telemetry endpoint answers from the start (/ready: 503 until READY).
  if (!apply_telemetry(*active_->cfg, &err)) {
    HLOG_ERROR("cannot serve telemetry: %s", err.c_str());
    return 2;
  }
  // TLS material: like a bind failure, unusable files stop the start-up.
  if (active_->cfg->tls) {
    std::vector<config::ConfigError> tls_errs = check_tls_options(*active_->cfg);
    if (tls_errs.empty()) active_->tls = make_tls_payload(*active_->cfg, &tls_errs);
    if (!active_->tls) {
      for (const auto& e : tls_errs) HLOG_ERROR("%s", e.to_string().c_str());
      HLOG_ERROR("cannot start: the TLS configuration is not usable");
      return 2;
    }
  }
  watch_tls_files();
  ticket_timer_.reset(event_new(
      base_.get(), -1, EV_PERSIST,
      [](evutil_socket_t, short, void* p) { static_cast<Supervisor*>(p)->on_ticket_rotation(); }, this));
  timeval rotation = secs(static_cast<double>(kTicketKeyRotation.count()));
  evtimer_add(ticket_timer_.get(), &rotation);
  struct SigSpec {
    int sig;
    void (*fn)(Supervisor*);
  };
  static constexpr SigSpec kSignals[] = {
      {SIGTERM, [](Supervisor* s) { s->begin_stop(true); }},
      {SIGINT, [](Supervisor* s) { s->begin_stop(false); }},
      {SIGHUP,
       [](Supervisor* s) {
         HLOG_INFO("SIGHUP: reloading the configuration");
         s->reload([](bool, const std::string&) {});  // the outcome is logged by finish_reload / reload
       }},
  };
  signal(SIGPIPE, SIG_IGN);
  for (const auto& spec : kSignals) {
    auto* ev = evsignal_new(
        base_.get(), spec.sig,
        [](evutil_socket_t sig, short, void* p) {
          for (const auto& s : kSignals)
            if (s.sig == sig) s.fn(static_cast<Supervisor*>(p));
        },
        this);
    event_add(ev, nullptr);
    signal_events_.emplace_back(ev);
  }

  const std::string& bus = active_->cfg->dbus.bus;
  if (bus != "none") {
    dbus_ = DbusService::create(base_.get(), bus, *this, &err);
    if (!dbus_)
      HLOG_WARN("D-Bus control interface unavailable (%s bus): %s; reload with SIGHUP", bus.c_str(),
                err.c_str());
  }

  start_helper(*active_->cfg, [this] { start_first_generation(); });
  stats_timer_.reset(event_new(
      base_.get(), -1, EV_PERSIST,
      [](evutil_socket_t, short, void* p) { static_cast<Supervisor*>(p)->refresh_stats(); }, this));
  timeval tv = secs(kStatsIntervalSecs);
  evtimer_add(stats_timer_.get(), &tv);

  event_base_dispatch(base_.get());
  if (privhelper_ && privhelper_->running()) {
    // Clean stop: detach the XDP program and remove the pins.
    privhelper_->shutdown(true, [this] { event_base_loopexit(base_.get(), nullptr); });
    timeval limit = secs(5);
    event_base_loopexit(base_.get(), &limit);
    event_base_dispatch(base_.get());
  }
  privhelper_.reset();
  dbus_.reset();
  HLOG_INFO("stopped");
  return exit_status_;
}

}  // namespace huginn::supervisor
