#include "supervisor/privhelper_client.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "build_info.h"
#include "common/sys/log.h"

namespace huginn::supervisor {

namespace helper = ipc::helper;

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

bool parse_u32(const std::string& s, uint32_t lo, uint32_t hi, uint32_t* out) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  const unsigned long long v = std::stoull(s);
  if (v < lo || v > hi) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

// "" / absent = keep; "0.0.0.0" / "::" = no filter.
bool set_dst_v4(const std::string& s, helper::Watch* w) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  if (a.s_addr == 0) {
    w->dst_v4.reset();
  } else {
    std::array<uint8_t, 4> b{};
    std::memcpy(b.data(), &a, 4);
    w->dst_v4 = b;
  }
  return true;
}

bool set_dst_v6(const std::string& s, helper::Watch* w) {
  in6_addr a{};
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1) return false;
  std::array<uint8_t, 16> b{};
  std::memcpy(b.data(), &a, 16);
  if (b == std::array<uint8_t, 16>{}) {
    w->dst_v6.reset();
  } else {
    w->dst_v6 = b;
  }
  return true;
}

}  // namespace

bool load_request_from_config(const config::Config& cfg,
                              const std::function<const char*(const char*)>& getenv_fn,
                              helper::LoadAttach* out, std::string* error) {
  const config::Ebpf& e = cfg.ebpf;
  helper::LoadAttach r;
  r.interfaces = e.interfaces;
  r.mode = e.xdp_mode == "skb" ? helper::XdpMode::kSkb : helper::XdpMode::kNative;
  r.pin_path = e.pin_path;
  r.max_entries = e.syn_map_max_entries;
  r.watch.ports = e.ports;
  if (r.watch.ports.empty()) {
    for (const auto& l : cfg.listeners())
      if (std::find(r.watch.ports.begin(), r.watch.ports.end(), l.address.port()) == r.watch.ports.end())
        r.watch.ports.push_back(l.address.port());
  }
  if (e.dst_ipv4 && !set_dst_v4(*e.dst_ipv4, &r.watch)) {
    *error = "ebpf.dst_ipv4: not an IPv4 address";
    return false;
  }
  if (e.dst_ipv6 && !set_dst_v6(*e.dst_ipv6, &r.watch)) {
    *error = "ebpf.dst_ipv6: not an IPv6 address";
    return false;
  }
  auto env = [&getenv_fn](const char* name) -> std::optional<std::string> {
    const char* v = getenv_fn(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  if (auto v = env("HUGINN_EBPF_INTERFACE")) r.interfaces = split_list(*v);
  if (auto v = env("HUGINN_EBPF_XDP_MODE")) {
    if (*v == "native" || *v == "xdp-native") {
      r.mode = helper::XdpMode::kNative;
    } else if (*v == "skb" || *v == "xdp-skb") {
      r.mode = helper::XdpMode::kSkb;
    } else {
      *error = "HUGINN_EBPF_XDP_MODE: must be native or skb, got \"" + *v + "\"";
      return false;
    }
  }
  if (auto v = env("HUGINN_EBPF_DST_IP_V4"); v && !set_dst_v4(*v, &r.watch)) {
    *error = "HUGINN_EBPF_DST_IP_V4: not an IPv4 address";
    return false;
  }
  if (auto v = env("HUGINN_EBPF_DST_IP_V6"); v && !set_dst_v6(*v, &r.watch)) {
    *error = "HUGINN_EBPF_DST_IP_V6: not an IPv6 address";
    return false;
  }
  if (auto v = env("HUGINN_EBPF_DST_PORT")) {
    r.watch.ports.clear();
    for (const auto& p : split_list(*v)) {
      uint32_t port = 0;
      if (!parse_u32(p, 1, 65535, &port)) {
        *error = "HUGINN_EBPF_DST_PORT: not a port: \"" + p + "\"";
        return false;
      }
      if (std::find(r.watch.ports.begin(), r.watch.ports.end(), port) == r.watch.ports.end())
        r.watch.ports.push_back(static_cast<uint16_t>(port));
    }
  }
  if (auto v = env("HUGINN_EBPF_PIN_PATH")) r.pin_path = *v;
  if (auto v = env("HUGINN_EBPF_SYN_MAP_MAX_ENTRIES");
      v && !parse_u32(*v, 1, helper::kMaxMapEntries, &r.max_entries)) {
    *error = "HUGINN_EBPF_SYN_MAP_MAX_ENTRIES: out of range";
    return false;
  }
  if (r.interfaces.empty()) {
    *error = "no interface to attach XDP to ([ebpf] interfaces or HUGINN_EBPF_INTERFACE)";
    return false;
  }
  if (r.interfaces.size() > helper::kMaxIfaces) {
    *error = "too many interfaces";
    return false;
  }
  for (const auto& i : r.interfaces) {
    if (!helper::valid_interface_name(i)) {
      *error = "not a valid interface name: \"" + i + "\"";
      return false;
    }
  }
  if (r.watch.ports.empty() || r.watch.ports.size() > helper::kMaxPorts) {
    *error = "between 1 and " + std::to_string(helper::kMaxPorts) + " ports must be watched";
    return false;
  }
  if (!helper::valid_pin_path(r.pin_path)) {
    *error = "pin path must be absolute without \".\" or \"..\": \"" + r.pin_path + "\"";
    return false;
  }
  *out = std::move(r);
  return true;
}

PrivhelperClient::PrivhelperClient(event_base* base, PrivhelperOptions opts)
    : base_(base), opts_(std::move(opts)), next_delay_(opts_.restart_delay) {}

PrivhelperClient::~PrivhelperClient() {
  if (child_.pid > 0) {
    kill(child_.pid, SIGKILL);
    waitpid(child_.pid, nullptr, 0);
  }
}

bool PrivhelperClient::start(const config::Config& cfg, AttachedCallback on_attached, std::string* error) {
  helper::LoadAttach req;
  if (!load_request_from_config(
          cfg, [](const char* n) { return std::getenv(n); }, &req, error))
    return false;
  return start(req, std::move(on_attached), error);
}

bool PrivhelperClient::start(const helper::LoadAttach& req, AttachedCallback on_attached,
                             std::string* error) {
  if (running()) {
    *error = "the helper is already running";
    return false;
  }
  std::string path = opts_.helper_path;
  if (path.empty()) {
    const char* env = std::getenv("HUGINN_PRIVHELPER_PATH");
    path = env && *env ? env : self_dir() + "/../" + build::kLibexecRel + "/huginn-privhelper";
  }
  if (!program_.fd && !Program::open(path, &program_, error)) return false;
  request_ = req;
  on_attached_ = std::move(on_attached);
  stopping_ = false;
  if (!spawn_helper(error)) return false;
  send_load_attach();
  return true;
}

bool PrivhelperClient::spawn_helper(std::string* error) {
  sys::UniqueFd mine, theirs;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    *error = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  mine.reset(sv[0]);
  theirs.reset(sv[1]);
  SpawnRequest req;
  req.program = &program_;
  req.args = {"--ctl-fd", "3", "--log-level", opts_.log_level};
  if (!opts_.netns_path.empty()) {
    req.args.push_back("--netns");
    req.args.push_back(opts_.netns_path);
  }
  req.fds = {theirs.get()};
  Child child;
  if (!spawn(req, &child, error)) return false;
  theirs.reset();
  child_ = std::move(child);
  ctl_ = std::move(mine);
  evutil_make_socket_nonblocking(ctl_.get());
  session_ = helper::SupervisorSession{};
  attached_ = false;
  spawned_at_ = std::chrono::steady_clock::now();
  ctl_ev_.reset(event_new(
      base_, ctl_.get(), EV_READ | EV_PERSIST,
      [](evutil_socket_t, short, void* p) { static_cast<PrivhelperClient*>(p)->on_readable(); }, this));
  exit_ev_.reset(event_new(
      base_, child_.pidfd.get(), EV_READ,
      [](evutil_socket_t, short, void* p) { static_cast<PrivhelperClient*>(p)->on_exit(); }, this));
  event_add(ctl_ev_.get(), nullptr);
  event_add(exit_ev_.get(), nullptr);
  HLOG_INFO("privhelper started: pid %d", static_cast<int>(child_.pid));
  std::string err;
  if (!helper::send_message(
          ctl_.get(), helper::Hello{helper::kHelperVersion, static_cast<uint32_t>(getpid())}, {}, &err)) {
    kill_helper("sending HELLO: " + err);
  }
  return true;
}

bool PrivhelperClient::send(const helper::Message& m, const std::vector<int>& fds,
                            std::function<void(const helper::Message*)> handler) {
  if (!ctl_) {
    if (handler) handler(nullptr);
    return false;
  }
  std::string err;
  if (!helper::send_message(ctl_.get(), m, fds, &err)) {
    if (handler) handler(nullptr);
    kill_helper(std::string("sending ") + helper::type_name(helper::type_of(m)) + ": " + err);
    return false;
  }
  session_.expect(helper::type_of(m));
  // Every request sent here has an answer (HELLO is sent directly).
  helper::MsgType answer = helper::MsgType::kHello;
  switch (helper::type_of(m)) {
    case helper::MsgType::kLoadAttach:
      answer = helper::MsgType::kLoadAttachAns;
      break;
    case helper::MsgType::kUpdate:
      answer = helper::MsgType::kUpdateAns;
      break;
    case helper::MsgType::kWorkerGrant:
      answer = helper::MsgType::kWorkerGrantAns;
      break;
    case helper::MsgType::kStatsReq:
      answer = helper::MsgType::kStatsAns;
      break;
    case helper::MsgType::kShutdown:
      answer = helper::MsgType::kShutdownAns;
      break;
    default:
      break;
  }
  pending_.push_back({answer, std::move(handler)});
  return true;
}

void PrivhelperClient::send_load_attach() {
  const bool first = on_attached_ != nullptr;
  send(request_, {}, [this, first](const helper::Message* m) {
    const auto* ans = m ? std::get_if<helper::LoadAttachAns>(m) : nullptr;
    const bool ok = ans && ans->ok;
    std::string msg;
    if (ans) {
      last_attach_ = *ans;
      std::string ifs;
      for (const auto& i : ans->interfaces) ifs += (ifs.empty() ? "" : ",") + i;
      msg = ok ? "XDP attached to " + ifs + " (" + helper::xdp_mode_name(ans->mode) + " mode" +
                     (ans->reused_pins ? ", reused pinned maps" : "") + ")"
               : "XDP not attached: " + ans->error;
    } else {
      msg = "the privhelper exited before answering LOAD_ATTACH";
    }
    attached_ = ok;
    if (ok) {
      HLOG_INFO("%s", msg.c_str());
    } else {
      HLOG_ERROR("%s", msg.c_str());
    }
    if (first && on_attached_) {
      auto cb = std::move(on_attached_);
      on_attached_ = nullptr;
      cb(ok, msg);
    } else if (ok && on_restarted_) {
      on_restarted_();
    }
  });
}

void PrivhelperClient::on_readable() {
  for (;;) {
    if (!ctl_) return;
    helper::Received r = helper::receive_message(ctl_.get());
    if (r.status == helper::RecvStatus::kAgain) return;
    if (r.status == helper::RecvStatus::kClosed) {
      event_del(ctl_ev_.get());  // the exit event reports the rest
      return;
    }
    if (r.status != helper::RecvStatus::kMessage) return kill_helper("protocol error: " + r.error);
    const helper::MsgType t = helper::type_of(r.message);
    if (std::string why = session_.accept(t); !why.empty()) return kill_helper("protocol error: " + why);
    if (t == helper::MsgType::kHello) {
      const auto& h = std::get<helper::Hello>(r.message);
      if (h.pid != static_cast<uint32_t>(child_.pid)) return kill_helper("HELLO from an unexpected pid");
      continue;
    }
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    if (p.handler) p.handler(&r.message);
  }
}

void PrivhelperClient::kill_helper(const std::string& why) {
  HLOG_ERROR("privhelper (pid %d): %s; killing it", static_cast<int>(child_.pid), why.c_str());
  if (child_.pid > 0) kill(child_.pid, SIGKILL);
  if (ctl_ev_) event_del(ctl_ev_.get());
}

void PrivhelperClient::on_exit() {
  int status = 0;
  waitpid(child_.pid, &status, 0);
  const pid_t pid = child_.pid;
  child_ = Child{};
  ctl_ev_.reset();
  exit_ev_.reset();
  ctl_.reset();
  attached_ = false;
  // Everything still outstanding fails.
  std::deque<Pending> pending = std::move(pending_);
  pending_.clear();
  for (auto& p : pending)
    if (p.handler) p.handler(nullptr);
  if (stopping_) {
    HLOG_INFO("privhelper (pid %d) stopped", static_cast<int>(pid));
    if (on_shutdown_) {
      auto cb = std::move(on_shutdown_);
      on_shutdown_ = nullptr;
      cb();
    }
    return;
  }
  if (WIFSIGNALED(status)) {
    HLOG_ERROR("privhelper (pid %d) killed by signal %d; XDP stays attached, restarting it",
               static_cast<int>(pid), WTERMSIG(status));
  } else {
    HLOG_ERROR("privhelper (pid %d) exited with status %d; XDP stays attached, restarting it",
               static_cast<int>(pid), WEXITSTATUS(status));
  }
  schedule_restart();
}

void PrivhelperClient::schedule_restart() {
  // A helper that ran for a while restarts at once-ish; quick crashes back off.
  const auto lived = std::chrono::steady_clock::now() - spawned_at_;
  if (lived > std::chrono::seconds(30)) next_delay_ = opts_.restart_delay;
  const auto delay = next_delay_;
  next_delay_ = std::min(next_delay_ * 2, opts_.max_restart_delay);
  restart_ev_.reset(evtimer_new(
      base_, [](evutil_socket_t, short, void* p) { static_cast<PrivhelperClient*>(p)->restart_now(); },
      this));
  const timeval tv{static_cast<time_t>(delay.count() / 1000),
                   static_cast<suseconds_t>((delay.count() % 1000) * 1000)};
  evtimer_add(restart_ev_.get(), &tv);
}

void PrivhelperClient::restart_now() {
  if (stopping_ || running()) return;
  std::string err;
  ++restarts_;
  if (!spawn_helper(&err)) {
    HLOG_ERROR("restarting the privhelper: %s", err.c_str());
    schedule_restart();
    return;
  }
  send_load_attach();
}

sys::UniqueFd PrivhelperClient::grant_worker(uint32_t worker_id, uint32_t generation) {
  if (!attached_ || !ctl_) return {};
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    HLOG_ERROR("maps channel for worker %u: socketpair: %s", worker_id, std::strerror(errno));
    return {};
  }
  sys::UniqueFd worker_end(sv[0]), helper_end(sv[1]);
  const bool ok = send(
      helper::WorkerGrant{worker_id, generation}, {helper_end.get()}, [worker_id](const helper::Message* m) {
        const auto* a = m ? std::get_if<helper::WorkerGrantAns>(m) : nullptr;
        if (!a) {
          HLOG_WARN("maps grant for worker %u: the privhelper is gone", worker_id);
        } else if (!a->ok) {
          HLOG_WARN("maps grant for worker %u failed: %s", worker_id, a->error.c_str());
        } else if (a->worker_id != worker_id) {
          HLOG_ERROR("maps grant answer names worker %u, expected %u", a->worker_id, worker_id);
        }
      });
  if (!ok) return {};
  return worker_end;
}

void PrivhelperClient::update(const helper::Watch& watch, DoneCallback done) {
  if (!attached_) {
    if (done) done(false, "XDP is not attached");
    return;
  }
  request_.watch = watch;  // a restarted helper attaches with the new set
  send(helper::Update{watch}, {}, [done](const helper::Message* m) {
    const auto* a = m ? std::get_if<helper::UpdateAns>(m) : nullptr;
    if (done) done(a && a->ok, a ? a->error : "the privhelper is gone");
  });
}

void PrivhelperClient::request_stats(StatsCallback cb) {
  if (!running() || !attached_) {
    if (cb) cb(std::nullopt);
    return;
  }
  send(helper::StatsReq{}, {}, [cb](const helper::Message* m) {
    const auto* a = m ? std::get_if<helper::StatsAns>(m) : nullptr;
    if (cb) cb(a ? std::optional<helper::StatsAns>(*a) : std::nullopt);
  });
}

void PrivhelperClient::shutdown(bool detach, std::function<void()> done) {
  stopping_ = true;
  restart_ev_.reset();
  if (!running()) {
    if (done) done();
    return;
  }
  on_shutdown_ = std::move(done);
  // The helper exits after SHUTDOWN_ANS; on_exit() runs `done`.
  send(helper::Shutdown{detach}, {}, nullptr);
}

}  // namespace huginn::supervisor
