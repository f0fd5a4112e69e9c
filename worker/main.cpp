// huginn-worker: started only by the supervisor (fork + exec), never by hand.
//
//   huginn-worker --ctl-fd 3 --config-fd 4 --worker-id N --generation G
//
// fd 3: SEQPACKET control channel (common/ipc/protocol.h); fd 4: sealed memfd
// holding the configuration text the supervisor validated; with --maps-fd 5,
// fd 5: the maps channel on which the privileged helper sends one MAPS_GRANT
// (read-only XDP map fds; the worker never writes to it). Start-up order:
// read config → HELLO → LISTENERS (checked against the manifest) → build the
// Server (resolves backends) → drop privileges and verify → READY → serve.
#include <event2/event.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/loader.h"
#include "common/hoststate/region.h"
#include "common/ipc/channel.h"
#include "common/metrics/table.h"
#include "common/sys/c_handle.h"
#include "common/sys/log.h"
#include "common/sys/memfd.h"
#include "common/sys/privileges.h"
#include "common/sys/seccomp.h"
#include "worker/net/block_cache.h"
#include "worker/net/event_handles.h"
#include "worker/sandbox_probe.h"
#include "worker/server.h"
#include "worker/syn/map_grant.h"
#include "worker/syn/tcp_syn.h"

namespace {

using huginn::sys::CHandle;
using huginn::sys::UniqueFd;
using EventBase = CHandle<event_base, event_base_free>;
using Event = CHandle<event, event_free>;

constexpr size_t kMaxConfigBytes = 4 * 1024 * 1024;

struct Args {
  int ctl_fd = -1;
  int config_fd = -1;
  int maps_fd = -1;
  uint32_t worker_id = 0;
  uint32_t generation = 0;
};

[[noreturn]] void die(const char* fmt, const std::string& detail) {
  HLOG_ERROR(fmt, detail.c_str());
  std::_Exit(2);
}

bool parse_u32(const char* s, uint32_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s, &end, 10);
  if (errno || end == s || *end != '\0' || v > 0xffffffffUL) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool parse_args(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    uint32_t v = 0;
    if (!parse_u32(argv[i + 1], &v)) return false;
    if (k == "--ctl-fd")
      a->ctl_fd = static_cast<int>(v);
    else if (k == "--config-fd")
      a->config_fd = static_cast<int>(v);
    else if (k == "--maps-fd")
      a->maps_fd = static_cast<int>(v);
    else if (k == "--worker-id")
      a->worker_id = v;
    else if (k == "--generation")
      a->generation = v;
    else
      return false;
  }
  return argc % 2 == 1 && a->ctl_fd >= 0 && a->config_fd >= 0;
}

// Reads the configuration text from the sealed memfd.
std::string read_config(int fd) {
  std::string text, err;
  if (!huginn::sys::read_sealed_memfd(fd, kMaxConfigBytes, &text, &err)) die("config fd: %s", err);
  return text;
}

// TLS_MATERIAL: the sealed memfd (seals and size checked before reading) holds
// tls::encode(bundle); works inside the sandbox (fcntl F_GET_SEALS, fstat,
// pread, close). Anything wrong is a protocol error.
std::shared_ptr<const huginn::tls::Bundle> read_tls_material(const huginn::ipc::TlsMaterial& m,
                                                             std::vector<UniqueFd>& fds) {
  if (fds.size() != 1) die("TLS_MATERIAL: expected one descriptor%s", "");
  std::string bytes, err;
  if (!huginn::sys::read_sealed_memfd(fds[0].get(), huginn::tls::kMaxBundleSize, &bytes, &err))
    die("TLS_MATERIAL: %s", err);
  fds.clear();
  auto b = huginn::tls::decode(bytes, &err);
  if (!b) die("TLS_MATERIAL: %s", err);
  if (b->serial != m.serial) die("TLS_MATERIAL: serial does not match its bundle%s", "");
  return std::make_shared<const huginn::tls::Bundle>(std::move(*b));
}

huginn::ipc::Message expect_message(int ctl, huginn::ipc::Session& session, std::vector<UniqueFd>* fds) {
  auto r = huginn::ipc::receive_message(ctl);
  if (r.status == huginn::ipc::RecvStatus::kClosed) die("control channel closed during start-up%s", "");
  if (r.status != huginn::ipc::RecvStatus::kMessage) die("control channel: %s", r.error);
  std::string why = session.accept(huginn::ipc::type_of(r.message));
  if (!why.empty()) die("control channel: %s", why);
  if (fds) *fds = std::move(r.fds);
  return std::move(r.message);
}

struct Worker {
  Args args;
  std::shared_ptr<const huginn::config::Config> cfg;
  EventBase base;
  // The host-wide state region (HOST_STATE) and this worker's slot in it
  // (declared before the server, which uses it until it is destroyed).
  std::unique_ptr<huginn::hoststate::Region> host_state;
  uint32_t host_slot = 0;
  std::unique_ptr<huginn::worker::Server> server;
  huginn::ipc::Session session{huginn::ipc::Session::Role::kWorkerSide};
  Event ctl_ev, term_ev, drain_timer, maps_ev;
  std::unique_ptr<huginn::worker::syn::TcpSynResolver> syn;
  // The generation's shared metrics table (METRICS) and this worker's slot.
  std::unique_ptr<huginn::metrics::Table> metrics_table;
  std::optional<huginn::metrics::Slot> metrics_slot;

  // The helper's MAPS_GRANT: validated against its manifest, then used for
  // lookups. Losing the channel only means no (new) grant: lookups fall back
  // as tcp_source says.
  void on_maps() {
    std::string err;
    bool again = false;
    auto grant = huginn::worker::syn::receive_grant(args.maps_fd, args.worker_id, &err, &again);
    if (again) return;
    if (grant) {
      HLOG_INFO("XDP maps granted; TCP fingerprints from the SYN maps");
      syn->set_grant(std::move(*grant));
    } else {
      HLOG_WARN("maps channel: %s", err.c_str());
    }
    maps_ev.reset();
    close(args.maps_fd);
    args.maps_fd = -1;
  }
  bool draining = false;

  void start_drain(uint32_t deadline_ms) {
    if (draining) return;
    draining = true;
    HLOG_INFO("draining (deadline %u ms)", deadline_ms);
    drain_timer.reset(evtimer_new(
        base.get(),
        [](evutil_socket_t, short, void* p) {
          auto* w = static_cast<Worker*>(p);
          HLOG_WARN("drain deadline reached with %llu connections open; closing them",
                    static_cast<unsigned long long>(w->server->stats().active_connections));
          event_base_loopexit(w->base.get(), nullptr);
        },
        this));
    timeval tv{static_cast<time_t>(deadline_ms / 1000),
               static_cast<suseconds_t>((deadline_ms % 1000) * 1000)};
    evtimer_add(drain_timer.get(), &tv);
    server->drain([this] { event_base_loopexit(base.get(), nullptr); });
  }

  void on_ctl() {
    auto r = huginn::ipc::receive_message(args.ctl_fd);
    if (r.status == huginn::ipc::RecvStatus::kAgain) return;
    if (r.status == huginn::ipc::RecvStatus::kClosed) {
      HLOG_WARN("supervisor closed the control channel; exiting");
      std::_Exit(0);
    }
    if (r.status != huginn::ipc::RecvStatus::kMessage) die("control channel: %s", r.error);
    std::string why = session.accept(huginn::ipc::type_of(r.message));
    if (!why.empty()) die("control channel: %s", why);
    if (auto* d = std::get_if<huginn::ipc::Drain>(&r.message)) {
      start_drain(d->deadline_ms);
    } else if (std::holds_alternative<huginn::ipc::Terminate>(r.message)) {
      HLOG_INFO("terminate requested");
      std::_Exit(0);
    } else if (auto* tm = std::get_if<huginn::ipc::TlsMaterial>(&r.message)) {
      auto bundle = read_tls_material(*tm, r.fds);
      HLOG_INFO("TLS material %llu received (%zu files, %zu ticket keys)",
                static_cast<unsigned long long>(bundle->serial), bundle->files.size(),
                bundle->ticket_keys.size());
      server->set_tls_bundle(std::move(bundle));
    } else if (auto* h = std::get_if<huginn::ipc::Health>(&r.message)) {
      // The supervisor's view of the backends (one byte per backend of this
      // generation's config); a count that does not match is a protocol error.
      if (!server->set_backend_health(h->states))
        die("HEALTH: %s", std::to_string(h->states.size()) + " states for " +
                              std::to_string(cfg->backends.size()) + " backends");
      HLOG_DEBUG("backend health: %zu of %zu up",
                 static_cast<size_t>(std::count(h->states.begin(), h->states.end(), uint8_t{1})),
                 h->states.size());
    } else if (std::holds_alternative<huginn::ipc::StatsReq>(r.message)) {
      auto s = server->stats();
      std::string err;
      if (!huginn::ipc::send_message(
              args.ctl_fd, huginn::ipc::StatsAns{s.active_connections, s.total_connections, s.total_requests},
              {}, &err))
        die("control channel: %s", err);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace huginn;
  Worker w;
  if (!parse_args(argc, argv, &w.args)) {
    std::fprintf(stderr, "huginn-worker: internal program, started by huginn-proxy\n");
    return 2;
  }
  // Backstop if the supervisor dies between fork and our first read.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Ctrl-C in a terminal reaches the whole process group: only the supervisor
  // decides how to stop. SIGTERM sent to a worker directly drains it.
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  // Bodies move through 4-256 KiB buffer chains that are freed and allocated
  // again all the time. With glibc's defaults the heap top is trimmed with
  // brk() after most frees and faulted in (zeroed) again on the next
  // allocation: a third of the worker's time on 1 MiB responses. Keep up to
  // 8 MiB of freed heap; a fixed mmap threshold also stops glibc from moving
  // its trim threshold on its own.
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  // Before the first libevent or OpenSSL call: their 16-64 KiB read and
  // write buffers come from a small LIFO cache (worker/net/block_cache.h).
  const bool crypto_cached = worker::net::install_block_cache();
  log::configure({log::Level::kInfo, false, "worker[" + std::to_string(w.args.worker_id) + "]"});
  if (!crypto_cached)
    HLOG_WARN("OpenSSL allocated before the block cache was installed; its buffers are not cached");

  const std::string text = read_config(w.args.config_fd);
  close(w.args.config_fd);
  auto loaded = config::load_text(text, "config", config::LoadOptions{1});
  if (auto* errs = std::get_if<std::vector<config::ConfigError>>(&loaded))
    die("configuration rejected: %s", errs->empty() ? "" : errs->front().to_string());
  w.cfg = std::get<std::shared_ptr<const config::Config>>(loaded);
  {
    log::Options lo;
    log::parse_level(w.cfg->logging.level, &lo.level);
    lo.json = w.cfg->logging.format == "json";
    lo.component = "worker[" + std::to_string(w.args.worker_id) + "]";
    log::configure(lo);
  }

  const int ctl = w.args.ctl_fd;
  std::string err;
  expect_message(ctl, w.session, nullptr);  // HELLO
  if (!ipc::send_message(
          ctl,
          ipc::Hello{ipc::kVersion, w.args.worker_id, w.args.generation, static_cast<uint32_t>(getpid())}, {},
          &err))
    die("control channel: %s", err);
  std::vector<UniqueFd> fds;
  auto lmsg = expect_message(ctl, w.session, &fds);
  auto* listeners = std::get_if<ipc::Listeners>(&lmsg);
  if (!listeners) die("control channel: expected LISTENERS%s", "");
  std::vector<worker::ListenerSpec> specs;
  for (size_t i = 0; i < listeners->entries.size(); ++i) {
    const auto& e = listeners->entries[i];
    auto addr = net::SocketAddress::parse(e.address);
    if (!addr) die("LISTENERS: bad address %s", e.address);
    if (!ipc::is_listening_tcp_socket(fds[i].get(), addr->family(), &err))
      die("LISTENERS: %s", e.address + ": " + err);
    specs.push_back({e.id, *addr, e.tls});
  }
  // The host-wide state region (max_connections count, rate-limit buckets)
  // comes right after LISTENERS, with this worker's slot in it; mapped now,
  // before the sandbox. A region that is not exactly ours ends the worker.
  {
    std::vector<UniqueFd> hfds;
    auto hmsg = expect_message(ctl, w.session, &hfds);
    auto* hs = std::get_if<ipc::HostState>(&hmsg);
    if (!hs) die("control channel: expected HOST_STATE, got %s", ipc::type_name(ipc::type_of(hmsg)));
    if (hs->slot >= hoststate::kMaxSlots) die("HOST_STATE: slot %s out of range", std::to_string(hs->slot));
    w.host_state = hoststate::Region::attach(hfds.at(0).get(), hs->layout, &err);
    if (!w.host_state) die("HOST_STATE: %s", err);
    w.host_slot = hs->slot;
  }
  // With [telemetry] metrics_port the supervisor sends the shared metrics
  // table right after LISTENERS; it is mapped now, before the sandbox.
  if (w.cfg->telemetry.metrics_port) {
    std::vector<UniqueFd> mfds;
    auto mmsg = expect_message(ctl, w.session, &mfds);
    auto* mm = std::get_if<ipc::Metrics>(&mmsg);
    if (!mm) die("control channel: expected METRICS, got %s", ipc::type_name(ipc::type_of(mmsg)));
    if (mm->layout != metrics::kLayoutVersion)
      die("METRICS: layout %s is not ours", std::to_string(mm->layout));
    if (w.args.worker_id >= mm->slots) die("METRICS: no slot for this worker%s", "");
    // The per-route sections follow this worker's copy of the generation's config.
    w.metrics_table =
        metrics::Table::attach(mfds.at(0).get(), mm->slots, metrics::route_slot_count(*w.cfg), &err);
    if (!w.metrics_table) die("METRICS: %s", err);
    w.metrics_slot.emplace(w.metrics_table->slot(w.args.worker_id));
  }
  // A worker with a TLS listener waits for its TLS material (sent right after
  // LISTENERS) before it serves or says READY.
  std::shared_ptr<const tls::Bundle> tls_bundle;
  if (std::any_of(specs.begin(), specs.end(), [](const auto& s) { return s.tls; })) {
    std::vector<UniqueFd> tfds;
    auto tmsg = expect_message(ctl, w.session, &tfds);
    auto* tm = std::get_if<ipc::TlsMaterial>(&tmsg);
    if (!tm) die("control channel: expected TLS_MATERIAL, got %s", ipc::type_name(ipc::type_of(tmsg)));
    tls_bundle = read_tls_material(*tm, tfds);
  }

  if (w.cfg->fingerprint.tcp_enabled) {
    w.syn = std::make_unique<worker::syn::TcpSynResolver>(w.cfg->fingerprint.tcp_source);
    for (auto& fd : fds)
      if (!w.syn->prepare_listener(fd.get(), &err)) HLOG_WARN("TCP_SAVE_SYN: %s", err.c_str());
  }

  w.base.reset(worker::net::new_event_base().release());
  if (!w.base) die("event_base_new failed%s", "");
  w.server = std::make_unique<worker::Server>(w.base.get(), w.cfg);

  if (w.syn) w.server->set_syn_resolver(w.syn.get());
  if (w.metrics_slot) w.server->set_metrics(&*w.metrics_slot);
  w.server->set_host_state(w.host_state.get(), w.host_slot);
  if (tls_bundle) w.server->set_tls_bundle(std::move(tls_bundle));
  if (!sys::drop_privileges(w.cfg->user, &err)) die("dropping privileges: %s", err);

  for (size_t i = 0; i < specs.size(); ++i)
    if (!w.server->add_listener(std::move(fds[i]), specs[i]))
      die("cannot serve %s", specs[i].address.to_string());

  if (evutil_make_socket_nonblocking(ctl) != 0) die("ctl: nonblocking%s", "");
  w.ctl_ev.reset(event_new(
      w.base.get(), ctl, EV_READ | EV_PERSIST,
      [](evutil_socket_t, short, void* p) { static_cast<Worker*>(p)->on_ctl(); }, &w));
  event_add(w.ctl_ev.get(), nullptr);
  if (w.args.maps_fd >= 0) {
    if (!w.syn) {
      close(w.args.maps_fd);
      w.args.maps_fd = -1;
    } else {
      evutil_make_socket_nonblocking(w.args.maps_fd);
      w.maps_ev.reset(event_new(
          w.base.get(), w.args.maps_fd, EV_READ | EV_PERSIST,
          [](evutil_socket_t, short, void* p) { static_cast<Worker*>(p)->on_maps(); }, &w));
      event_add(w.maps_ev.get(), nullptr);
    }
  }
  w.term_ev.reset(evsignal_new(
      w.base.get(), SIGTERM,
      [](evutil_socket_t, short, void* p) {
        auto* wk = static_cast<Worker*>(p);
        wk->start_drain(wk->cfg->timeout.shutdown_secs * 1000);
      },
      &w));
  event_add(w.term_ev.get(), nullptr);

  // Last start-up step: from here on only the allowlist in common/sys/seccomp.cpp
  // applies (docs/SANDBOX.md); HUGINN_SECCOMP_DEBUG=1 reports a violation
  // (exit status 159) instead of the kernel killing the worker.
  if (!sys::install_worker_sandbox(sys::sandbox_options_from_env(), &err)) die("seccomp sandbox: %s", err);

  if (!ipc::send_message(ctl, ipc::Ready{w.args.generation, static_cast<uint32_t>(getpid())}, {}, &err))
    die("control channel: %s", err);
  HLOG_INFO("ready: generation %u, %zu listeners, uid %u", w.args.generation, specs.size(),
            static_cast<unsigned>(getuid()));
  if (const char* probe_env = std::getenv("HUGINN_WORKER_SANDBOX_PROBE")) {
    if (auto probe = worker::sandbox_probe_for(probe_env, w.args.worker_id))
      HLOG_WARN("sandbox probe %s: %s", probe->c_str(), worker::run_sandbox_probe(*probe).c_str());
  }
  event_base_dispatch(w.base.get());
  HLOG_INFO("exiting");
  w.server.reset();
  return 0;
}
