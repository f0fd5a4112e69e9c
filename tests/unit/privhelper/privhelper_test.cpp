// The real huginn-privhelper, driven through PrivhelperClient on a libevent
// loop: loads and attaches the XDP program on the server end of a veth pair
// (native and skb mode) inside network namespaces made by the test, grants
// maps to a "worker" (a forked child that drops to nobody with no
// capabilities), and real TCP connections over IPv4, IPv6 and a dual-stack
// listener are looked up through the read-only fds and compared with
// TCP_SAVED_SYN of the same connection. Then: pin modes, the helper's
// capability sets, SIGKILL (XDP stays attached, maps stay readable, the
// restarted helper reuses the pins) and a detaching shutdown.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bpf/syn_abi_check.h"
#include "common/fingerprint/p0f.h"
#include "common/net/address.h"
#include "common/sys/c_handle.h"
#include "common/sys/privileges.h"
#include "supervisor/privhelper_client.h"
#include "tests/support/netns.h"
#include "worker/syn/bpf_syscall.h"
#include "worker/syn/map_grant.h"
#include "worker/syn/saved_syn.h"
#include "worker/syn/syn_source.h"

namespace huginn {
namespace {

namespace helper = ipc::helper;
using supervisor::PrivhelperClient;
using supervisor::PrivhelperOptions;
using testing::in_netns;
using testing::NetnsPair;
using testing::PinDir;

using EventBase = sys::CHandle<event_base, event_base_free>;
using Event = sys::CHandle<event, event_free>;

const std::string kHelperPath = std::string(HUGINN_BINARY_DIR) + "/libexec/huginn-proxy/huginn-privhelper";

// A libevent loop with a 10 ms tick so that run_until() can check its predicate.
class Loop {
 public:
  Loop() : base_(event_base_new()) {
    tick_.reset(event_new(
        base_.get(), -1, EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr));
    const timeval tv{0, 10000};
    event_add(tick_.get(), &tv);
  }
  event_base* base() { return base_.get(); }
  bool run_until(const std::function<bool()>& pred, int timeout_ms = 15000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      event_base_loop(base_.get(), EVLOOP_ONCE);
    }
    return true;
  }

 private:
  EventBase base_;
  Event tick_;
};

sys::UniqueFd tcp_listen(const std::string& ns, int family, const std::string& addr, uint16_t port,
                         bool v6only = true) {
  sys::UniqueFd fd;
  in_netns(ns, [&] {
    fd.reset(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1, v6 = v6only ? 1 : 0;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6);
    auto sa = net::SocketAddress::parse(family == AF_INET6 ? "[" + addr + "]:" + std::to_string(port)
                                                           : addr + ":" + std::to_string(port));
    std::string err;
    if (!sa || bind(fd.get(), sa->sa(), sa->len()) != 0 || !worker::syn::enable_save_syn(fd.get(), &err) ||
        listen(fd.get(), 16) != 0)
      fd.reset();
  });
  return fd;
}

sys::UniqueFd tcp_connect(const std::string& ns, const std::string& addr_port) {
  sys::UniqueFd fd;
  in_netns(ns, [&] {
    auto sa = net::SocketAddress::parse(addr_port);
    if (!sa) return;
    fd.reset(socket(sa->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(fd.get(), sa->sa(), sa->len()) != 0) fd.reset();
  });
  return fd;
}

struct Accepted {
  sys::UniqueFd client;
  sys::UniqueFd conn;
  uint64_t accept_ns = 0;
  std::string saved_sig;  // p0f signature from TCP_SAVED_SYN
  net::SocketAddress peer;
};

std::optional<Accepted> connection(const NetnsPair& n, int listen_fd, const std::string& target) {
  Accepted a;
  a.client = tcp_connect(n.client_path(), target);
  if (!a.client) return std::nullopt;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  a.conn.reset(accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
  a.accept_ns = worker::syn::monotonic_ns();
  if (!a.conn) return std::nullopt;
  auto peer = net::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  if (!peer) return std::nullopt;
  a.peer = *peer;
  auto f = worker::syn::read_saved_syn(a.conn.get());
  if (!f) return std::nullopt;
  a.saved_sig = fp::p0f_raw_sig(*f);
  return a;
}

int raw_obj_get(const std::string& path, uint32_t flags) {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.pathname = reinterpret_cast<uintptr_t>(path.c_str());
  attr.file_flags = flags;
  const long rc = syscall(__NR_bpf, BPF_OBJ_GET, &attr, sizeof attr);
  return rc < 0 ? -errno : static_cast<int>(rc);
}

// The ring's copy of a connection's SYN, rendered, or "" when its slot holds
// another key.
std::string ring_sig(const worker::syn::SynRing& ring, const net::SocketAddress& peer_in) {
  const net::SocketAddress peer = peer_in.normalized();
  const std::string_view addr = peer.addr_bytes();
  auto render = [](const auto& v) { return fp::p0f_raw_sig(worker::syn::syn_fields_from_record(v)); };
  if (peer.is_v4()) {
    huginn_syn_key_v4 k{};
    k.family = HUGINN_FAMILY_V4;
    k.sport = htons(peer.port());
    std::memcpy(&k.saddr, addr.data(), 4);
    huginn_syn_value_v4 v{};
    return ring.find(k, &v) ? render(v) : "";
  }
  huginn_syn_key_v6 k{};
  k.family = HUGINN_FAMILY_V6;
  k.sport = htons(peer.port());
  std::memcpy(k.saddr, addr.data(), 16);
  huginn_syn_value_v6 v{};
  return ring.find(k, &v) ? render(v) : "";
}

uint32_t ring_index(const net::SocketAddress& peer_in) {
  const net::SocketAddress peer = peer_in.normalized();
  uint32_t w[4] = {};
  std::memcpy(w, peer.addr_bytes().data(), peer.addr_bytes().size());
  return huginn_syn_ring_index(htons(peer.port()), w[0], w[1], w[2], w[3]);
}

// The process's mappings of BPF maps ("start-end perms ... anon_inode:bpf-map").
std::vector<std::string> bpf_map_mappings() {
  std::ifstream in("/proc/self/maps");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (line.find("bpf-map") != std::string::npos) out.push_back(line);
  return out;
}

// The "worker": a forked child that drops to nobody with empty capability
// sets, receives the grant and looks every connection up. Exit status 0 when
// all checks pass; otherwise the reason is written to `report`.
int worker_child(int grant_fd, const std::vector<const Accepted*>& conns, const std::string& pin_dir,
                 int report) {
  auto fail = [report](int code, const std::string& why) {
    (void)!write(report, why.data(), why.size());
    return code;
  };
  std::string err;
  if (!sys::drop_privileges("nobody", &err)) return fail(2, "drop_privileges: " + err);
  if (!sys::verify_unprivileged(true, &err)) return fail(3, "verify_unprivileged: " + err);
  auto maps = worker::syn::receive_grant(grant_fd, 7, &err);
  if (!maps) return fail(4, "grant: " + err);
  if (!maps->v4 || !maps->v6 || !maps->ring.valid() || maps->generation != 3)
    return fail(5, "grant lacks a map or has the wrong generation");
  // The ring holds every connection's SYN, except where a later one of them
  // took its slot; what it holds renders as the saved SYN does.
  std::set<uint32_t> slots;
  size_t in_ring = 0;
  for (const Accepted* a : conns) {
    slots.insert(ring_index(a->peer));
    const std::string sig = ring_sig(maps->ring, a->peer);
    if (sig.empty()) continue;
    ++in_ring;
    if (sig != a->saved_sig)
      return fail(11, a->peer.to_string() + ": ring " + sig + " != saved " + a->saved_sig);
  }
  if (in_ring != slots.size())
    return fail(
        12, std::to_string(in_ring) + " connections in the ring, expected " + std::to_string(slots.size()));
  // One mapping of a BPF map, read-only and shared, that cannot be made writable.
  const auto mappings = bpf_map_mappings();
  if (mappings.size() != 1) return fail(13, std::to_string(mappings.size()) + " BPF map mappings");
  std::istringstream fields(mappings[0]);
  std::string range, perms;
  fields >> range >> perms;
  if (perms != "r--s") return fail(14, "ring mapped " + perms);
  const uintptr_t start = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
  if (mprotect(reinterpret_cast<void*>(start), 4096, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
    return fail(15, "the ring's mapping could be made writable");
  const int v4fd = maps->v4.get();
  worker::syn::XdpSynSource src;
  src.set_maps(std::move(*maps));
  for (const Accepted* a : conns) {
    worker::syn::SynLookup st;
    auto f = src.lookup(a->peer, a->accept_ns, &st);
    if (!f) return fail(6, a->peer.to_string() + ": lookup " + worker::syn::syn_lookup_name(st));
    const std::string sig = fp::p0f_raw_sig(*f);
    if (sig != a->saved_sig)
      return fail(7, a->peer.to_string() + ": XDP " + sig + " != saved " + a->saved_sig);
  }
  // Writes through the read-only fd are refused.
  huginn_syn_key_v4 key{};
  key.family = HUGINN_FAMILY_V4;
  huginn_syn_value_v4 val{};
  const int up = worker::syn::bpf_map_update(v4fd, &key, &val, BPF_ANY);
  if (up != -EPERM) return fail(8, "update through the RO fd gave " + std::to_string(up));
  const int del = worker::syn::bpf_map_delete(v4fd, &key);
  if (del != -EPERM) return fail(9, "delete through the RO fd gave " + std::to_string(del));
  // The pins cannot be reopened (0700 directory, 0600 pins).
  const int ro = raw_obj_get(pin_dir + "/" HUGINN_MAP_SYN_V4, BPF_F_RDONLY);
  if (ro != -EACCES) return fail(10, "reopening the pin gave " + std::to_string(ro));
  return 0;
}

// Forks the worker child; returns "" on success, else its report.
std::string run_worker(sys::UniqueFd grant_fd, const std::vector<const Accepted*>& conns,
                       const std::string& pin_dir) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return "pipe";
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    _exit(worker_child(grant_fd.get(), conns, pin_dir, p[1]));
  }
  close(p[1]);
  grant_fd.reset();
  std::string report;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) report.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return "worker child status " + std::to_string(status) + ": " + report;
}

struct XdpState {
  uint32_t prog_id = 0;
  uint32_t mode = 0;
};

XdpState xdp_state(const NetnsPair& n) {
  XdpState s;
  in_netns(n.server_path(), [&] {
    const int ifindex = static_cast<int>(if_nametoindex(n.server_if().c_str()));
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (ifindex > 0 && bpf_xdp_query(ifindex, 0, &q) == 0) {
      s.prog_id = q.prog_id;
      s.mode = q.attach_mode;
    }
  });
  return s;
}

uint32_t pinned_map_id(const std::string& path) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return 0;
  bpf_map_info info{};
  __u32 len = sizeof info;
  const int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  return rc == 0 ? info.id : 0;
}

bool pinned_v4_has(const std::string& pin_dir, const net::SocketAddress& peer) {
  const int fd = bpf_obj_get((pin_dir + "/" HUGINN_MAP_SYN_V4).c_str());
  if (fd < 0) return false;
  huginn_syn_key_v4 k{};
  k.family = HUGINN_FAMILY_V4;
  k.sport = htons(peer.port());
  std::memcpy(&k.saddr, peer.normalized().addr_bytes().data(), 4);
  huginn_syn_value_v4 v{};
  const bool ok = bpf_map_lookup_elem(fd, &k, &v) == 0;
  close(fd);
  return ok;
}

std::string status_field(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + ":", 0) == 0) {
      std::string v = line.substr(name.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "";
}

class PrivhelperTest : public ::testing::TestWithParam<helper::XdpMode> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, bpffs, XDP)";
    if (access(kHelperPath.c_str(), X_OK) != 0) GTEST_SKIP() << "helper not built: " << kHelperPath;
  }
};

TEST_P(PrivhelperTest, AttachGrantLookupRestartShutdown) {
  const helper::XdpMode mode = GetParam();
  const int tag = mode == helper::XdpMode::kSkb ? 1 : 2;
  NetnsPair n(tag);
  ASSERT_TRUE(n.ok()) << "could not create the network namespaces";
  PinDir pins(tag);
  const uint16_t port = 8080, port_ds = 8081;

  Loop loop;
  PrivhelperOptions opts;
  opts.helper_path = kHelperPath;
  opts.netns_path = n.server_path();
  opts.restart_delay = std::chrono::milliseconds(1500);
  opts.log_level = "debug";
  PrivhelperClient client(loop.base(), opts);

  helper::LoadAttach req;
  req.interfaces = {n.server_if()};
  req.mode = mode;
  req.watch.ports = {port, port_ds};
  req.pin_path = pins.path();
  req.max_entries = 1024;
  std::optional<std::pair<bool, std::string>> attached;
  int restarted = 0;
  client.set_on_restarted([&restarted] { ++restarted; });
  std::string err;
  ASSERT_TRUE(client.start(
      req, [&](bool ok, const std::string& msg) { attached.emplace(ok, msg); }, &err))
      << err;
  ASSERT_TRUE(loop.run_until([&] { return attached.has_value(); }));
  ASSERT_TRUE(attached->first) << attached->second;
  EXPECT_FALSE(client.last_attach().reused_pins);

  // The helper: exactly CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39).
  const pid_t hpid = client.pid();
  const std::string three = "000000c000001000";
  EXPECT_EQ(status_field(hpid, "CapEff"), three);
  EXPECT_EQ(status_field(hpid, "CapPrm"), three);
  EXPECT_EQ(status_field(hpid, "CapBnd"), three);
  EXPECT_EQ(status_field(hpid, "CapInh"), "0000000000000000");
  EXPECT_EQ(status_field(hpid, "CapAmb"), "0000000000000000");
  EXPECT_EQ(status_field(hpid, "NoNewPrivs"), "1");

  // Pins: directory 0700 root, every pin 0600 root.
  struct stat st {};
  ASSERT_EQ(stat(pins.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, 0u);
  for (const char* name :
       {HUGINN_MAP_SYN_V4, HUGINN_MAP_SYN_V6, HUGINN_MAP_COUNTERS, HUGINN_MAP_WATCH_PORTS,
        HUGINN_MAP_WATCH_DST4, HUGINN_MAP_WATCH_DST6, HUGINN_MAP_CONFIG, HUGINN_MAP_SYN_RING}) {
    SCOPED_TRACE(name);
    ASSERT_EQ(stat((pins.path() + "/" + name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  }
  // The ring is frozen: even root's read-write descriptor cannot write it or
  // map it writable.
  {
    const int rfd = bpf_obj_get((pins.path() + "/" HUGINN_MAP_SYN_RING).c_str());
    ASSERT_GE(rfd, 0);
    sys::UniqueFd ring(rfd);
    const uint32_t key = 0;
    huginn_syn_slot zero{};
    EXPECT_NE(bpf_map_update_elem(ring.get(), &key, &zero, BPF_ANY), 0);
    EXPECT_EQ(errno, EPERM);
    void* w = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ring.get(), 0);
    EXPECT_EQ(w, MAP_FAILED);
    EXPECT_EQ(errno, EPERM);
    if (w != MAP_FAILED) munmap(w, 4096);
  }
  const std::string link_pin = pins.path() + "/link_" + n.server_if();
  ASSERT_EQ(stat(link_pin.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  const XdpState xs = xdp_state(n);
  EXPECT_NE(xs.prog_id, 0u);
  EXPECT_EQ(xs.mode, mode == helper::XdpMode::kSkb ? XDP_ATTACHED_SKB : XDP_ATTACHED_DRV);

  // Real connections: IPv4, IPv6, and IPv4 through a dual-stack IPv6 listener.
  auto l4 = tcp_listen(n.server_path(), AF_INET, n.server_v4(), port);
  auto l6 = tcp_listen(n.server_path(), AF_INET6, n.server_v6(), port);
  auto lds = tcp_listen(n.server_path(), AF_INET6, "::", port_ds, false);
  ASSERT_TRUE(l4 && l6 && lds);
  auto c4 = connection(n, l4.get(), n.server_v4() + ":" + std::to_string(port));
  auto c6 = connection(n, l6.get(), "[" + n.server_v6() + "]:" + std::to_string(port));
  auto cds = connection(n, lds.get(), n.server_v4() + ":" + std::to_string(port_ds));
  ASSERT_TRUE(c4 && c6 && cds);
  EXPECT_EQ(cds->peer.family(), AF_INET6);  // ::ffff:a.b.c.d
  EXPECT_EQ(c4->saved_sig.rfind("4:64+0:0:1460:", 0), 0u) << c4->saved_sig;
  EXPECT_EQ(c6->saved_sig.rfind("6:64+0:0:1440:", 0), 0u) << c6->saved_sig;

  sys::UniqueFd g = client.grant_worker(7, 3);
  ASSERT_TRUE(g);
  EXPECT_EQ(run_worker(std::move(g), {&*c4, &*c6, &*cds}, pins.path()), "");

  std::optional<helper::StatsAns> stats;
  bool stats_done = false;
  client.request_stats([&](std::optional<helper::StatsAns> s) {
    stats = std::move(s);
    stats_done = true;
  });
  ASSERT_TRUE(loop.run_until([&] { return stats_done; }));
  ASSERT_TRUE(stats);
  EXPECT_TRUE(stats->attached);
  EXPECT_EQ(stats->mode, mode);
  EXPECT_EQ(stats->interfaces, std::vector<std::string>{n.server_if()});
  EXPECT_GE(stats->v4.captured, 2u);
  EXPECT_GE(stats->v6.captured, 1u);
  EXPECT_EQ(stats->v4.malformed + stats->v6.malformed + stats->v4.insert_failures + stats->v6.insert_failures,
            0u);

  // SIGKILL: XDP stays attached and keeps recording into the pinned maps.
  const uint32_t v4_map_id = pinned_map_id(pins.path() + "/" HUGINN_MAP_SYN_V4);
  ASSERT_NE(v4_map_id, 0u);
  ASSERT_EQ(kill(hpid, SIGKILL), 0);
  ASSERT_TRUE(loop.run_until([&] { return !client.running(); }));
  EXPECT_EQ(xdp_state(n).prog_id, xs.prog_id);
  auto during = connection(n, l4.get(), n.server_v4() + ":" + std::to_string(port));
  ASSERT_TRUE(during);
  EXPECT_TRUE(pinned_v4_has(pins.path(), during->peer)) << "not recorded while the helper was down";
  EXPECT_TRUE(pinned_v4_has(pins.path(), c4->peer));

  // The restarted helper reuses the pins: same maps, same link, entries kept.
  ASSERT_TRUE(loop.run_until([&] { return restarted == 1; }));
  EXPECT_NE(client.pid(), hpid);
  EXPECT_TRUE(client.last_attach().reused_pins);
  EXPECT_EQ(client.restarts(), 1u);
  EXPECT_EQ(pinned_map_id(pins.path() + "/" HUGINN_MAP_SYN_V4), v4_map_id);
  EXPECT_NE(xdp_state(n).prog_id, 0u);
  EXPECT_TRUE(pinned_v4_has(pins.path(), during->peer));
  auto after = connection(n, l4.get(), n.server_v4() + ":" + std::to_string(port));
  ASSERT_TRUE(after);
  sys::UniqueFd g2 = client.grant_worker(7, 3);
  ASSERT_TRUE(g2);
  EXPECT_EQ(run_worker(std::move(g2), {&*after, &*during}, pins.path()), "");

  // Shutdown with detach: program gone, pins gone.
  bool down = false;
  client.shutdown(true, [&down] { down = true; });
  ASSERT_TRUE(loop.run_until([&] { return down; }));
  EXPECT_EQ(xdp_state(n).prog_id, 0u);
  EXPECT_NE(access(pins.path().c_str(), F_OK), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, PrivhelperTest,
                         ::testing::Values(helper::XdpMode::kSkb, helper::XdpMode::kNative),
                         [](const ::testing::TestParamInfo<helper::XdpMode>& i) {
                           return std::string(helper::xdp_mode_name(i.param));
                         });

// A pin path whose parent is not a bpf file system (the common case: an
// empty /sys/fs/bpf nobody mounted) fails LOAD_ATTACH with an answer that
// says so and how to mount one, instead of a bare "mkdir: No such file".
TEST(PrivhelperPinPathTest, PinPathOutsideABpfFileSystemSaysHowToMountOne) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (the helper's capabilities)";
  if (access(kHelperPath.c_str(), X_OK) != 0) GTEST_SKIP() << "helper not built: " << kHelperPath;
  Loop loop;
  PrivhelperOptions opts;
  opts.helper_path = kHelperPath;
  opts.restart_delay = std::chrono::milliseconds(60000);
  PrivhelperClient client(loop.base(), opts);
  helper::LoadAttach req;
  req.interfaces = {"lo"};
  req.mode = helper::XdpMode::kSkb;
  req.watch.ports = {8080};
  req.pin_path = "/proc/hgn-test-pins";  // procfs: mkdir fails
  req.max_entries = 1024;
  std::optional<std::pair<bool, std::string>> attached;
  std::string err;
  ASSERT_TRUE(client.start(
      req, [&](bool ok, const std::string& msg) { attached.emplace(ok, msg); }, &err))
      << err;
  ASSERT_TRUE(loop.run_until([&] { return attached.has_value(); }));
  EXPECT_FALSE(attached->first);
  EXPECT_NE(attached->second.find("mkdir /proc/hgn-test-pins"), std::string::npos) << attached->second;
  EXPECT_NE(attached->second.find("/proc is not a bpf file system: mount -t bpf bpf /proc"),
            std::string::npos)
      << attached->second;
}

// Starts the helper binary directly with the control channel on fd 3;
// `pre_exec` runs in the child before exec. Returns the child's pid.
pid_t start_raw_helper(int ctl_child_end, int log_fd, const std::function<void()>& pre_exec,
                       const std::vector<std::string>& extra_args = {}) {
  const pid_t pid = fork();
  if (pid == 0) {
    pre_exec();
    dup2(log_fd, 2);
    dup2(ctl_child_end, 3);
    std::vector<std::string> args = {kHelperPath, "--ctl-fd", "3"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kHelperPath.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

std::string drain(int fd) {
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(PrivhelperCapsTest, RefusesCapabilitiesItCannotShed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  if (access(kHelperPath.c_str(), X_OK) != 0) GTEST_SKIP() << "helper not built";
  int sv[2], lp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(pipe2(lp, O_CLOEXEC), 0);
  // Without CAP_SETPCAP in its bounding set, root's helper starts with every
  // other capability and cannot drop them from its bounding set.
  const pid_t pid = start_raw_helper(sv[1], lp[1], [] { prctl(PR_CAPBSET_DROP, CAP_SETPCAP, 0, 0, 0); });
  close(sv[1]);
  close(lp[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const std::string log = drain(lp[0]);
  close(lp[0]);
  close(sv[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << " " << log;
  EXPECT_NE(log.find("refusing to run"), std::string::npos) << log;
}

TEST(PrivhelperCapsTest, RefusesWhenARequiredCapabilityIsMissing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  if (access(kHelperPath.c_str(), X_OK) != 0) GTEST_SKIP() << "helper not built";
  int sv[2], lp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(pipe2(lp, O_CLOEXEC), 0);
  const pid_t pid = start_raw_helper(sv[1], lp[1], [] { prctl(PR_CAPBSET_DROP, CAP_PERFMON, 0, 0, 0); });
  close(sv[1]);
  close(lp[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const std::string log = drain(lp[0]);
  close(lp[0]);
  close(sv[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << " " << log;
  EXPECT_NE(log.find("missing cap_perfmon"), std::string::npos) << log;
}

// The permit table in the real binary: a request out of order closes the channel.
TEST(PrivhelperProtocolTest, UnpermittedRequestEndsTheHelper) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  if (access(kHelperPath.c_str(), X_OK) != 0) GTEST_SKIP() << "helper not built";
  struct Step {
    const char* what;
    std::function<void(int)> send;
  };
  const std::vector<Step> steps = {
      {"WORKER_GRANT before LOAD_ATTACH",
       [](int fd) {
         int pair[2];
         socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair);
         std::string e;
         helper::send_message(fd, helper::Hello{}, {}, &e);
         helper::send_message(fd, helper::WorkerGrant{1, 1}, {pair[1]}, &e);
         close(pair[0]);
         close(pair[1]);
       }},
      {"LOAD_ATTACH before HELLO",
       [](int fd) {
         helper::LoadAttach la;
         la.interfaces = {"lo"};
         la.watch.ports = {80};
         la.pin_path = "/sys/fs/bpf/hgn-never";
         std::string e;
         helper::send_message(fd, la, {}, &e);
       }},
      {"an answer type from the supervisor",
       [](int fd) {
         std::string e;
         helper::send_message(fd, helper::Hello{}, {}, &e);
         helper::send_message(fd, helper::StatsAns{}, {}, &e);
       }},
      {"a datagram of the worker protocol",
       [](int fd) {
         const uint8_t dgram[16] = {1, 0, 1, 0, 8, 0, 0, 0};
         (void)!::send(fd, dgram, sizeof dgram, 0);
       }},
  };
  for (const auto& s : steps) {
    SCOPED_TRACE(s.what);
    int sv[2], lp[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_EQ(pipe2(lp, O_CLOEXEC), 0);
    const pid_t pid = start_raw_helper(sv[1], lp[1], [] {});
    close(sv[1]);
    close(lp[1]);
    auto hello = helper::receive_message(sv[0]);
    ASSERT_EQ(hello.status, helper::RecvStatus::kMessage) << hello.error;
    EXPECT_TRUE(std::holds_alternative<helper::Hello>(hello.message));
    s.send(sv[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    const std::string log = drain(lp[0]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << " " << log;
    EXPECT_EQ(helper::receive_message(sv[0]).status, helper::RecvStatus::kClosed);
    close(lp[0]);
    close(sv[0]);
  }
}

}  // namespace
}  // namespace huginn
