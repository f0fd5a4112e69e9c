#include "tests/unit/dbus/dbus_fixture.h"

#include <event2/thread.h>
#include <fcntl.h>
#include <grp.h>
#include <json/json.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace huginn::testing {
namespace {

std::string make_temp_dir() {
  char tmpl[] = "/tmp/huginn-dbus-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return {};
  chmod(tmpl, 0755);  // an unprivileged client must reach the socket
  return tmpl;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

void FakeControl::set_outcome(bool ok, const std::string& message) {
  std::lock_guard<std::mutex> l(mu_);
  next_ok_ = ok;
  next_message_ = message;
}

std::vector<std::string> FakeControl::checked_paths() {
  std::lock_guard<std::mutex> l(mu_);
  return checked_;
}

void FakeControl::attach(event_base* base, supervisor::DbusService* service) {
  base_ = base;
  service_ = service;
  timer_.reset(evtimer_new(base, &FakeControl::on_timer, this));
}

void FakeControl::detach() {
  timer_.reset();
  pending_ = nullptr;
  service_ = nullptr;
  base_ = nullptr;
}

void FakeControl::reload(ReloadDone done) {
  ++reload_calls;
  if (reload_pending.load()) {
    done(false, kRefusal);
    return;
  }
  reload_pending = true;
  pending_ = std::move(done);
  const int ms = reload_delay_ms.load();
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(timer_.get(), &tv);
}

void FakeControl::on_timer(evutil_socket_t, short, void* arg) { static_cast<FakeControl*>(arg)->finish(); }

void FakeControl::finish() {
  bool ok;
  std::string message;
  {
    std::lock_guard<std::mutex> l(mu_);
    ok = next_ok_;
    message = next_message_;
  }
  if (ok) ++gen;
  reload_pending = false;
  ReloadDone done = std::move(pending_);
  pending_ = nullptr;
  // Same order as the supervisor: signal first, then the waiting callers.
  if (service_) service_->emit_reloaded(gen.load(), ok, message);
  if (done) done(ok, message);
}

std::vector<std::string> FakeControl::check_config(const std::string& path) {
  {
    std::lock_guard<std::mutex> l(mu_);
    checked_.push_back(path);
  }
  if (path == "/throw") throw std::runtime_error("simulated failure in Control");
  if (path.find("bad") == std::string::npos) return {};
  return {"listen[0].address (" + path + ":3): \"nowhere\" is not an address",
          "routes[1].backend (" + path + ":9): unknown backend \"b9\""};
}

std::string FakeControl::status_json() {
  ++status_calls;
  Json::Value v;
  v["version"] = "0.0.0-test";
  v["pid"] = 4242;
  v["generation"] = gen.load();
  v["config_path"] = "/etc/huginn-proxy/config.toml";
  v["uptime_secs"] = 3725;
  v["state"] = reload_pending ? "reloading" : "ready";
  v["reload_in_progress"] = reload_pending.load();
  Json::Value ws(Json::arrayValue);
  for (int i = 0; i < 2; ++i) {
    Json::Value w;
    w["pid"] = 5000 + i;
    w["slot"] = i;
    w["generation"] = gen.load();
    w["state"] = "serving";
    w["connections"] = 7 + i;
    ws.append(w);
  }
  v["workers"] = ws;
  v["helper"]["state"] = "attached";
  v["helper"]["syn_captured"] = 123;
  Json::StreamWriterBuilder b;
  b["indentation"] = "";
  return Json::writeString(b, v);
}

ServiceThread::ServiceThread(const std::string& bus, FakeControl& control) : control_(control) {
  static const int threads_ready = evthread_use_pthreads();
  (void)threads_ready;
  thread_ = std::thread([this, bus] {
    event_base* base = event_base_new();
    std::string err;
    auto service = supervisor::DbusService::create(base, bus, control_, &err);
    control_.attach(base, service.get());
    {
      std::lock_guard<std::mutex> l(mu_);
      started_ = true;
      ok_ = service != nullptr;
      error_ = err;
      base_ = service ? base : nullptr;
      service_ = service.get();
    }
    cv_.notify_all();
    if (service) event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    control_.detach();
    service.reset();
    event_base_free(base);
  });
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [this] { return started_; });
}

ServiceThread::~ServiceThread() {
  // Not event_base_loopbreak() from here: a break requested before the loop
  // thread entered event_base_loop() would be forgotten. A zero timeout
  // queued on the base breaks the loop from inside whenever it runs.
  if (base_) {
    const timeval now{0, 0};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* b) { event_base_loopbreak(static_cast<event_base*>(b)); }, base_,
        &now);
  }
  thread_.join();
}

void ServiceThread::run_on_loop(std::function<void(supervisor::DbusService&)> fn) {
  struct Job {
    std::function<void(supervisor::DbusService&)> fn;
    supervisor::DbusService* service;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  } job{std::move(fn), service_, {}, {}, false};
  event_base_once(
      base_, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) {
        auto* j = static_cast<Job*>(arg);
        j->fn(*j->service);
        std::lock_guard<std::mutex> l(j->mu);
        j->done = true;
        j->cv.notify_all();
      },
      &job, nullptr);
  std::unique_lock<std::mutex> l(job.mu);
  job.cv.wait(l, [&] { return job.done; });
}

Child::Child(const std::vector<std::string>& argv, const RunAs& as) {
  dir_ = make_temp_dir();
  const std::string out = dir_ + "/out", err = dir_ + "/err";
  // Everything the child needs is prepared before fork (no allocation after
  // it: the service thread may hold the malloc lock).
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0) _exit(126);
    dup2(o, 1);
    dup2(e, 2);
    if (as.drop &&
        (setgroups(as.groups.size(), as.groups.data()) != 0 || setgid(as.gid) != 0 || setuid(65534) != 0)) {
      _exit(125);
    }
    execv(args[0], args.data());
    _exit(127);
  }
}

Child::~Child() {
  if (pid_ > 0 && !waited_) {
    kill(pid_, SIGKILL);
    wait();
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

bool Child::reap(int flags) {
  if (waited_) return true;
  int status = 0;
  if (pid_ <= 0 || waitpid(pid_, &status, flags) != pid_) return pid_ <= 0;
  waited_ = true;
  result_.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result_.out = read_file(dir_ + "/out");
  result_.err = read_file(dir_ + "/err");
  return true;
}

bool Child::running() { return !reap(WNOHANG); }

ProcResult Child::wait() {
  reap(0);
  return result_;
}

ProcResult run(const std::vector<std::string>& argv, bool as_nobody) { return Child(argv, as_nobody).wait(); }
ProcResult run(const std::vector<std::string>& argv, const RunAs& as) { return Child(argv, as).wait(); }

std::string huginnctl_path() { return HUGINN_BINARY_DIR "/bin/huginnctl"; }

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

}  // namespace huginn::testing
