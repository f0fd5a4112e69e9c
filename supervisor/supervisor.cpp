#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "common/ipc/channel.h"
#include "common/sys/log.h"
#include "supervisor/sd_notify.h"

namespace huginn::supervisor {
namespace {

// A worker that dies sooner than this after its start counts as a crash on
// start-up; consecutive ones back off exponentially (crash-loop protection).
constexpr auto kEarlyCrash = std::chrono::seconds(2);
constexpr int kMaxBackoffSecs = 30;
// Fast stop (SIGINT): how long workers get before SIGKILL.
constexpr int kFastStopSecs = 1;
// Graceful stop: slack beyond shutdown_secs before SIGKILL.
constexpr int kStopSlackSecs = 2;

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) +
           ")";
  return "ended";
}

timeval secs(double s) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(s);
  tv.tv_usec = static_cast<suseconds_t>((s - static_cast<double>(tv.tv_sec)) * 1e6);
  return tv;
}

}  // namespace

Supervisor::Supervisor(std::shared_ptr<const config::Config> cfg, Program worker_program)
    : cfg_(std::move(cfg)), worker_program_(std::move(worker_program)) {
  base_.reset(event_base_new());
}

Supervisor::~Supervisor() {
  // Children that are still around (runtime failure paths) must not outlive us.
  for (auto& [pid, w] : workers_) kill(pid, SIGKILL);
  for (auto& [pid, w] : workers_) waitpid(pid, nullptr, 0);
}

bool Supervisor::make_config_memfd(std::string* error) {
  sys::UniqueFd fd(memfd_create("huginn-config", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return false;
  }
  const std::string& text = cfg_->source_text;
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd.get(), text.data() + off, text.size() - off);
    if (n <= 0) {
      *error = std::string("memfd write: ") + std::strerror(errno);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    *error = std::string("memfd seal: ") + std::strerror(errno);
    return false;
  }
  config_memfd_ = std::move(fd);
  return true;
}

bool Supervisor::spawn_worker(uint32_t slot, std::string* error) {
  sys::UniqueFd mine, theirs;
  if (!ipc::make_channel(&mine, &theirs)) {
    *error = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  SpawnRequest req;
  req.program = &worker_program_;
  req.args = {"--ctl-fd", "3", "--config-fd", "4", "--worker-id", std::to_string(slot), "--generation",
              std::to_string(generation_)};
  req.fds = {theirs.get(), config_memfd_.get()};
  Child child;
  if (!spawn(req, &child, error)) return false;
  theirs.reset();

  auto w = std::make_unique<WorkerProc>();
  w->sup = this;
  w->slot = slot;
  w->generation = generation_;
  w->pid = child.pid;
  w->pidfd = std::move(child.pidfd);
  w->ctl = std::move(mine);
  w->started = std::chrono::steady_clock::now();
  evutil_make_socket_nonblocking(w->ctl.get());

  // HELLO and LISTENERS go out at once; the datagrams queue in the socket.
  std::vector<int> fds;
  ipc::Listeners lm;
  for (const auto& l : listeners_) {
    lm.entries.push_back({l.id, l.tls, l.address.to_string()});
    fds.push_back(l.fd.get());
  }
  if (!ipc::send_message(w->ctl.get(), ipc::Hello{ipc::kVersion, slot, generation_, 0}, {}, error) ||
      !ipc::send_message(w->ctl.get(), lm, fds, error)) {
    kill(child.pid, SIGKILL);
    waitpid(child.pid, nullptr, 0);
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
  HLOG_INFO("worker %u started: pid %d, generation %u", slot, static_cast<int>(child.pid), generation_);
  workers_.emplace(child.pid, std::move(w));
  return true;
}

void Supervisor::kill_worker(WorkerProc* w, const char* reason) {
  HLOG_ERROR("worker %u (pid %d): %s; killing it", w->slot, static_cast<int>(w->pid), reason);
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
    if (r.status != ipc::RecvStatus::kMessage) return kill_worker(w, ("protocol error: " + r.error).c_str());
    std::string why = w->session.accept(ipc::type_of(r.message));
    if (!why.empty()) return kill_worker(w, ("protocol error: " + why).c_str());
    if (auto* hello = std::get_if<ipc::Hello>(&r.message)) {
      if (hello->worker_id != w->slot || hello->generation != w->generation ||
          hello->pid != static_cast<uint32_t>(w->pid))
        return kill_worker(w, "HELLO does not match the spawned worker");
    } else if (auto* ready = std::get_if<ipc::Ready>(&r.message)) {
      if (ready->generation != w->generation) return kill_worker(w, "READY for the wrong generation");
      w->state = WorkerState::kReady;
      HLOG_INFO("worker %u (pid %d) ready", w->slot, static_cast<int>(w->pid));
      const bool all = std::all_of(workers_.begin(), workers_.end(),
                                   [](const auto& kv) { return kv.second->state == WorkerState::kReady; });
      if (all && workers_.size() == slots_.size() && !stopping_) on_all_ready();
    }
  }
}

void Supervisor::on_all_ready() {
  if (announced_ready_) return;
  announced_ready_ = true;
  std::string listen;
  for (const auto& l : listeners_) listen += (listen.empty() ? "" : " ") + l.address.to_string();
  HLOG_INFO("all %zu workers ready, serving on %s", slots_.size(), listen.c_str());
  sd_notify("READY=1\nSTATUS=serving on " + listen + " with " + std::to_string(slots_.size()) + " workers\n");
}

void Supervisor::on_exit(WorkerProc* w) {
  int status = 0;
  pid_t pid = w->pid;
  if (waitpid(pid, &status, WNOHANG) != pid) return;  // spurious wake-up
  const uint32_t slot = w->slot;
  const bool early = std::chrono::steady_clock::now() - w->started < kEarlyCrash;
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (stopping_) {
    HLOG_INFO("worker %u (pid %d) %s", slot, static_cast<int>(pid), describe_status(status).c_str());
  } else {
    HLOG_ERROR("worker %u (pid %d) %s unexpectedly", slot, static_cast<int>(pid), describe_status(status).c_str());
  }
  workers_.erase(pid);  // frees the events and descriptors
  if (stopping_) {
    if (workers_.empty()) event_base_loopexit(base_.get(), nullptr);
    return;
  }
  schedule_restart(slot, early || clean);
}

void Supervisor::schedule_restart(uint32_t slot, bool crashed_early) {
  Slot& s = slots_[slot];
  s.consecutive_crashes = crashed_early ? s.consecutive_crashes + 1 : 0;
  double delay = 0;
  if (s.consecutive_crashes > 1) {
    delay = std::min<double>(kMaxBackoffSecs, 0.25 * (1 << std::min(s.consecutive_crashes - 2, 8)));
    HLOG_ERROR("worker %u is crash-looping (%d quick failures in a row); next start in %.2f s", slot,
               s.consecutive_crashes, delay);
  }
  s.restart_timer.reset(evtimer_new(
      base_.get(),
      [](evutil_socket_t, short, void* p) {
        auto* sl = static_cast<Slot*>(p);
        if (sl->sup->stopping_) return;
        std::string err;
        if (!sl->sup->spawn_worker(sl->index, &err)) {
          HLOG_ERROR("restarting worker %u failed: %s", sl->index, err.c_str());
          sl->sup->schedule_restart(sl->index, true);
        }
      },
      &s));
  timeval tv = secs(delay);
  evtimer_add(s.restart_timer.get(), &tv);
}

void Supervisor::begin_stop(bool graceful) {
  if (stopping_) {
    if (!graceful) {  // a second signal, or SIGINT during a graceful stop: hurry
      HLOG_WARN("fast stop requested during shutdown; terminating workers");
      for (auto& [pid, w] : workers_) {
        std::string err;
        ipc::send_message(w->ctl.get(), ipc::Terminate{}, {}, &err);
      }
    }
    return;
  }
  stopping_ = true;
  sd_notify("STOPPING=1\nSTATUS=stopping\n");
  for (auto& s : slots_) s.restart_timer.reset();
  // Workers hold their own copies of the listening sockets; ours close now so
  // nothing new is queued once the workers stop accepting.
  listeners_.clear();
  const uint32_t deadline_ms = graceful ? cfg_->timeout.shutdown_secs * 1000 : 0;
  HLOG_INFO("%s stop: %zu workers", graceful ? "graceful" : "fast", workers_.size());
  for (auto& [pid, w] : workers_) {
    std::string err;
    bool ok = w->state == WorkerState::kReady
                  ? ipc::send_message(w->ctl.get(),
                                      graceful ? ipc::Message(ipc::Drain{deadline_ms}) : ipc::Message(ipc::Terminate{}),
                                      {}, &err)
                  : false;
    if (!ok) kill(pid, SIGKILL);  // not yet serving (or channel gone): nothing to drain
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
  timeval tv = secs(graceful ? cfg_->timeout.shutdown_secs + kStopSlackSecs : kFastStopSecs);
  evtimer_add(stop_timer_.get(), &tv);
}

int Supervisor::run() {
  if (!base_) {
    HLOG_ERROR("event_base_new failed");
    return 2;
  }
  std::string err;
  if (!bind_listeners(*cfg_, &listeners_, &err)) {
    HLOG_ERROR("cannot listen: %s", err.c_str());
    return 2;
  }
  if (!make_config_memfd(&err)) {
    HLOG_ERROR("%s", err.c_str());
    return 2;
  }
  struct SigSpec {
    int sig;
    void (*fn)(Supervisor*);
  };
  static constexpr SigSpec kSignals[] = {
      {SIGTERM, [](Supervisor* s) { s->begin_stop(true); }},
      {SIGINT, [](Supervisor* s) { s->begin_stop(false); }},
      {SIGHUP,
       [](Supervisor*) {
         HLOG_WARN("SIGHUP: configuration reload is not available in this version; restart the service to apply "
                   "changes");
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

  slots_.resize(cfg_->workers);  // never resized again: timers point into it
  for (uint32_t i = 0; i < cfg_->workers; ++i) {
    slots_[i].sup = this;
    slots_[i].index = i;
  }
  for (uint32_t i = 0; i < cfg_->workers; ++i) {
    if (!spawn_worker(i, &err)) {
      HLOG_ERROR("cannot start worker %u: %s", i, err.c_str());
      return 2;
    }
  }
  event_base_dispatch(base_.get());
  HLOG_INFO("stopped");
  return exit_status_;
}

}  // namespace huginn::supervisor
