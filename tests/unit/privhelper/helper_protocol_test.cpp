// The privhelper protocol codec and state tables (common/ipc/helper_protocol.h)
// and the worker's MAPS_GRANT validation against real maps.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bpf/syn_abi_check.h"
#include "common/ipc/helper_protocol.h"
#include "supervisor/privhelper_client.h"
#include "worker/syn/map_grant.h"

namespace huginn::ipc::helper {
namespace {

LoadAttach sample_load() {
  LoadAttach m;
  m.interfaces = {"eth0", "veth-1"};
  m.mode = XdpMode::kSkb;
  m.watch.ports = {80, 443};
  m.watch.dst_v4 = std::array<uint8_t, 4>{10, 0, 0, 1};
  m.watch.dst_v6 = std::array<uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8};
  m.pin_path = "/sys/fs/bpf/huginn";
  m.max_entries = 4096;
  return m;
}

MapsGrant sample_grant() {
  MapsGrant g;
  g.worker_id = 2;
  g.generation = 9;
  g.maps = {{MapRole::kSynV4, 4, 9, 8, 88, 8192, 31},
            {MapRole::kSynV6, 6, 9, 20, 96, 8192, 32},
            {MapRole::kSynRing, 0, 2, 4, 128, 2048, 33}};
  return g;
}

TEST(HelperProtocolTest, EveryMessageRoundTrips) {
  StatsAns stats;
  stats.attached = true;
  stats.mode = XdpMode::kSkb;
  stats.interfaces = {"eth0"};
  stats.v4 = {1, 2, 3};
  stats.v6 = {4, 5, 6};
  const std::vector<std::pair<Message, size_t>> msgs = {
      {Hello{kHelperVersion, 42}, 0},
      {sample_load(), 0},
      {LoadAttachAns{true, "", XdpMode::kNative, {"eth0"}, true}, 0},
      {Update{sample_load().watch}, 0},
      {UpdateAns{false, "nope"}, 0},
      {WorkerGrant{3, 4}, 1},
      {WorkerGrantAns{3, 4, true, ""}, 0},
      {StatsReq{}, 0},
      {stats, 0},
      {Shutdown{true}, 0},
      {ShutdownAns{}, 0},
      {sample_grant(), 3},
  };
  ASSERT_EQ(msgs.size(), std::variant_size_v<Message>);
  for (const auto& [m, nfds] : msgs) {
    SCOPED_TRACE(type_name(type_of(m)));
    EXPECT_EQ(fds_required(m), nfds);
    const auto bytes = encode(m);
    const DecodeResult d = decode(bytes.data(), bytes.size(), nfds);
    ASSERT_TRUE(d.ok) << d.error;
    EXPECT_TRUE(d.message == m);
    // Any other descriptor count is refused.
    EXPECT_FALSE(decode(bytes.data(), bytes.size(), nfds + 1).ok);
    // Every truncation and a trailing byte are refused.
    for (size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_FALSE(decode(bytes.data(), cut, nfds).ok) << cut;
    auto longer = bytes;
    longer.push_back(0);
    longer[4] = static_cast<uint8_t>(longer[4] + 1);
    EXPECT_FALSE(decode(longer.data(), longer.size(), nfds).ok);
  }
}

DecodeResult decode_load(const LoadAttach& m) {
  const auto b = encode(m);
  return decode(b.data(), b.size(), 0);
}

TEST(HelperProtocolTest, LoadAttachValuesAreValidated) {
  struct Bad {
    const char* what;
    void (*mutate)(LoadAttach&);
  };
  const Bad bad[] = {
      {"no interface", [](LoadAttach& m) { m.interfaces.clear(); }},
      {"interface with a slash", [](LoadAttach& m) { m.interfaces = {"a/b"}; }},
      {"interface ..", [](LoadAttach& m) { m.interfaces = {".."}; }},
      {"interface with a space", [](LoadAttach& m) { m.interfaces = {"a b"}; }},
      {"duplicate interface",
       [](LoadAttach& m) {
         m.interfaces = {"eth0", "eth0"};
       }},
      {"no port", [](LoadAttach& m) { m.watch.ports.clear(); }},
      {"port 0", [](LoadAttach& m) { m.watch.ports = {0}; }},
      {"duplicate port",
       [](LoadAttach& m) {
         m.watch.ports = {80, 80};
       }},
      {"relative pin path", [](LoadAttach& m) { m.pin_path = "sys/fs/bpf"; }},
      {"pin path with ..", [](LoadAttach& m) { m.pin_path = "/sys/fs/bpf/../etc"; }},
      {"pin path with //", [](LoadAttach& m) { m.pin_path = "/sys//bpf"; }},
      {"map size 0", [](LoadAttach& m) { m.max_entries = 0; }},
      {"map size too large", [](LoadAttach& m) { m.max_entries = kMaxMapEntries + 1; }},
  };
  ASSERT_TRUE(decode_load(sample_load()).ok);
  for (const auto& b : bad) {
    LoadAttach m = sample_load();
    b.mutate(m);
    EXPECT_FALSE(decode_load(m).ok) << b.what;
  }
  // Lists over their caps: the encoder clips, a hand-made datagram is refused.
  std::vector<uint8_t> d = encode(sample_load());
  d[8] = 17;  // interface count
  EXPECT_FALSE(decode(d.data(), d.size(), 0).ok);
  // An unknown xdp mode byte.
  LoadAttach one = sample_load();
  one.interfaces = {"e"};
  d = encode(one);
  d[8 + 2 + 2 + 1] = 2;
  EXPECT_FALSE(decode(d.data(), d.size(), 0).ok);
}

TEST(HelperProtocolTest, HeaderRules) {
  auto b = encode(Hello{kHelperVersion, 1});
  b[0] = 2;  // version
  EXPECT_FALSE(decode(b.data(), b.size(), 0).ok);
  b = encode(Hello{kHelperVersion, 1});
  b[2] = 0x01;  // type 0x101 -> 0x001 (a worker-protocol type)
  b[3] = 0x00;
  EXPECT_FALSE(decode(b.data(), b.size(), 0).ok);
  b = encode(Hello{2, 1});
  EXPECT_FALSE(decode(b.data(), b.size(), 0).ok);
  std::vector<uint8_t> big(kHelperMaxDatagram + 1, 0);
  EXPECT_FALSE(decode(big.data(), big.size(), 0).ok);
}

TEST(HelperProtocolTest, MapsGrantManifestRules) {
  MapsGrant g = sample_grant();
  g.maps[1].role = MapRole::kSynV4;
  g.maps[1].family = 4;
  auto b = encode(g);
  EXPECT_FALSE(decode(b.data(), b.size(), 3).ok) << "duplicate role";
  g = sample_grant();
  g.maps[0].family = 6;
  b = encode(g);
  EXPECT_FALSE(decode(b.data(), b.size(), 3).ok) << "role/family mismatch";
  g = sample_grant();
  g.maps[2].family = 4;
  b = encode(g);
  EXPECT_FALSE(decode(b.data(), b.size(), 3).ok) << "the ring has no family";
  g = sample_grant();
  g.maps[1] = g.maps[2];
  b = encode(g);
  EXPECT_FALSE(decode(b.data(), b.size(), 3).ok) << "two rings";
  g = sample_grant();
  b = encode(g);
  EXPECT_FALSE(decode(b.data(), b.size(), 2).ok) << "three maps, two descriptors";
  EXPECT_TRUE(decode(b.data(), b.size(), 3).ok);
  g = sample_grant();
  g.maps.clear();
  b = encode(g);
  EXPECT_FALSE(decode(b.data(), b.size(), 0).ok) << "empty grant";
}

TEST(HelperSessionTest, PermitTable) {
  using S = HelperSession::State;
  struct Row {
    S state;
    MsgType type;
    bool legal;
  };
  const Row rows[] = {
      {S::kInit, MsgType::kLoadAttach, true},     {S::kInit, MsgType::kUpdate, false},
      {S::kInit, MsgType::kWorkerGrant, false},   {S::kInit, MsgType::kStatsReq, false},
      {S::kInit, MsgType::kShutdown, true},       {S::kInit, MsgType::kHello, false},
      {S::kLoaded, MsgType::kLoadAttach, true},   {S::kLoaded, MsgType::kUpdate, false},
      {S::kLoaded, MsgType::kWorkerGrant, false}, {S::kLoaded, MsgType::kStatsReq, true},
      {S::kLoaded, MsgType::kShutdown, true},     {S::kAttached, MsgType::kLoadAttach, false},
      {S::kAttached, MsgType::kUpdate, true},     {S::kAttached, MsgType::kWorkerGrant, true},
      {S::kAttached, MsgType::kStatsReq, true},   {S::kAttached, MsgType::kShutdown, true},
      {S::kAttached, MsgType::kStatsAns, false},  {S::kAttached, MsgType::kMapsGrant, false},
      {S::kAttached, MsgType::kHello, false},     {S::kStopping, MsgType::kStatsReq, false},
      {S::kStopping, MsgType::kShutdown, false},
  };
  for (const auto& r : rows) {
    HelperSession s;
    ASSERT_EQ(s.accept(MsgType::kHello), "");
    s.set_state(r.state);
    EXPECT_EQ(s.accept(r.type).empty(), r.legal)
        << HelperSession::state_name(r.state) << " " << type_name(r.type);
  }
  HelperSession fresh;
  EXPECT_NE(fresh.accept(MsgType::kLoadAttach), "");
}

TEST(SupervisorSessionTest, AnswersMatchTheOldestRequest) {
  SupervisorSession s;
  EXPECT_NE(s.accept(MsgType::kLoadAttachAns), "");  // before HELLO
  SupervisorSession t;
  EXPECT_EQ(t.accept(MsgType::kHello), "");
  EXPECT_NE(t.accept(MsgType::kStatsAns), "");  // unsolicited
  t.expect(MsgType::kLoadAttach);
  t.expect(MsgType::kStatsReq);
  EXPECT_NE(t.accept(MsgType::kStatsAns), "");  // out of order
  SupervisorSession u;
  EXPECT_EQ(u.accept(MsgType::kHello), "");
  u.expect(MsgType::kLoadAttach);
  u.expect(MsgType::kStatsReq);
  EXPECT_EQ(u.accept(MsgType::kLoadAttachAns), "");
  EXPECT_EQ(u.accept(MsgType::kStatsAns), "");
  EXPECT_EQ(u.outstanding(), 0u);
  EXPECT_NE(u.accept(MsgType::kHello), "");
}

TEST(HelperTransportTest, DescriptorsTravelOnlyWithTheirMessage) {
  int sv[2], other[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, other), 0);
  std::string err;
  EXPECT_FALSE(send_message(sv[0], StatsReq{}, {other[0]}, &err));
  ASSERT_TRUE(send_message(sv[0], WorkerGrant{5, 6}, {other[0]}, &err)) << err;
  Received r = receive_message(sv[1]);
  ASSERT_EQ(r.status, RecvStatus::kMessage) << r.error;
  ASSERT_EQ(r.fds.size(), 1u);
  EXPECT_EQ(std::get<WorkerGrant>(r.message), (WorkerGrant{5, 6}));
  EXPECT_NE(fcntl(r.fds[0].get(), F_GETFD) & FD_CLOEXEC, 0);
  close(sv[0]);
  EXPECT_EQ(receive_message(sv[1]).status, RecvStatus::kClosed);
  close(sv[1]);
  close(other[0]);
  close(other[1]);
}

// ---- load_request_from_config ----

TEST(LoadRequestTest, ConfigAndEnvironmentOverrides) {
  config::Config cfg;
  cfg.listen.addrs = {*net::SocketAddress::parse("0.0.0.0:8443"), *net::SocketAddress::parse("[::]:8443"),
                      *net::SocketAddress::parse("127.0.0.1:8080")};
  cfg.ebpf.interfaces = {"eth0"};
  cfg.ebpf.dst_ipv4 = "192.0.2.1";
  LoadAttach r;
  std::string err;
  auto no_env = [](const char*) -> const char* { return nullptr; };
  ASSERT_TRUE(supervisor::load_request_from_config(cfg, no_env, &r, &err)) << err;
  EXPECT_EQ(r.interfaces, std::vector<std::string>{"eth0"});
  EXPECT_EQ(r.watch.ports, (std::vector<uint16_t>{8443, 8080}));
  EXPECT_EQ(r.watch.dst_v4, (std::array<uint8_t, 4>{192, 0, 2, 1}));
  EXPECT_FALSE(r.watch.dst_v6);
  EXPECT_EQ(r.pin_path, "/sys/fs/bpf/huginn");
  EXPECT_EQ(r.max_entries, 8192u);
  EXPECT_EQ(r.mode, XdpMode::kNative);

  auto env = [](const char* n) -> const char* {
    const std::string k = n;
    if (k == "HUGINN_EBPF_INTERFACE") return "eth1, eth2";
    if (k == "HUGINN_EBPF_DST_IP_V4") return "0.0.0.0";
    if (k == "HUGINN_EBPF_DST_IP_V6") return "2001:db8::1";
    if (k == "HUGINN_EBPF_DST_PORT") return "443";
    if (k == "HUGINN_EBPF_PIN_PATH") return "/sys/fs/bpf/other";
    if (k == "HUGINN_EBPF_SYN_MAP_MAX_ENTRIES") return "100";
    if (k == "HUGINN_EBPF_XDP_MODE") return "xdp-skb";
    return nullptr;
  };
  ASSERT_TRUE(supervisor::load_request_from_config(cfg, env, &r, &err)) << err;
  EXPECT_EQ(r.interfaces, (std::vector<std::string>{"eth1", "eth2"}));
  EXPECT_FALSE(r.watch.dst_v4);
  ASSERT_TRUE(r.watch.dst_v6);
  EXPECT_EQ((*r.watch.dst_v6)[15], 1);
  EXPECT_EQ(r.watch.ports, std::vector<uint16_t>{443});
  EXPECT_EQ(r.pin_path, "/sys/fs/bpf/other");
  EXPECT_EQ(r.max_entries, 100u);
  EXPECT_EQ(r.mode, XdpMode::kSkb);

  auto bad_port = [](const char* n) -> const char* {
    return std::string(n) == "HUGINN_EBPF_DST_PORT" ? "70000" : nullptr;
  };
  EXPECT_FALSE(supervisor::load_request_from_config(cfg, bad_port, &r, &err));
  config::Config no_if = cfg;
  no_if.ebpf.interfaces.clear();
  EXPECT_FALSE(supervisor::load_request_from_config(no_if, no_env, &r, &err));
  EXPECT_NE(err.find("interface"), std::string::npos);
}

// ---- the worker's grant validation, against real maps ----

class GrantValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to create maps";
    v4_.reset(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "hgn_t4", sizeof(huginn_syn_key_v4),
                             sizeof(huginn_syn_value_v4), 64, nullptr));
    v6_.reset(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "hgn_t6", sizeof(huginn_syn_key_v6),
                             sizeof(huginn_syn_value_v6), 64, nullptr));
    ASSERT_TRUE(v4_ && v6_);
  }
  static uint32_t id_of(int fd) {
    bpf_map_info info{};
    __u32 len = sizeof info;
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
  }
  static sys::UniqueFd ro(int fd) {
    LIBBPF_OPTS(bpf_get_fd_by_id_opts, o, .open_flags = BPF_F_RDONLY);
    return sys::UniqueFd(bpf_map_get_fd_by_id_opts(id_of(fd), &o));
  }
  MapsGrant manifest() const {
    MapsGrant g;
    g.worker_id = 1;
    g.generation = 2;
    g.maps = {{MapRole::kSynV4, 4, BPF_MAP_TYPE_LRU_HASH, sizeof(huginn_syn_key_v4),
               sizeof(huginn_syn_value_v4), 64, id_of(v4_.get())},
              {MapRole::kSynV6, 6, BPF_MAP_TYPE_LRU_HASH, sizeof(huginn_syn_key_v6),
               sizeof(huginn_syn_value_v6), 64, id_of(v6_.get())}};
    return g;
  }
  std::vector<sys::UniqueFd> ro_fds() const {
    std::vector<sys::UniqueFd> v;
    v.push_back(ro(v4_.get()));
    v.push_back(ro(v6_.get()));
    return v;
  }
  sys::UniqueFd v4_, v6_;
};

TEST_F(GrantValidationTest, AcceptsMatchingReadOnlyFds) {
  std::string err;
  auto g = worker::syn::validate_grant(manifest(), ro_fds(), 1, &err);
  ASSERT_TRUE(g) << err;
  EXPECT_TRUE(g->v4 && g->v6);
  EXPECT_EQ(g->generation, 2u);
}

TEST_F(GrantValidationTest, RejectsMismatches) {
  std::string err;
  // A read-write fd.
  std::vector<sys::UniqueFd> rw;
  rw.emplace_back(dup(v4_.get()));
  rw.emplace_back(dup(v6_.get()));
  EXPECT_FALSE(worker::syn::validate_grant(manifest(), std::move(rw), 1, &err));
  EXPECT_NE(err.find("read-only"), std::string::npos) << err;
  // The wrong worker.
  EXPECT_FALSE(worker::syn::validate_grant(manifest(), ro_fds(), 2, &err));
  // A manifest naming another map id / size.
  MapsGrant m = manifest();
  m.maps[0].map_id += 1000;
  EXPECT_FALSE(worker::syn::validate_grant(m, ro_fds(), 1, &err));
  m = manifest();
  m.maps[1].max_entries = 65;
  EXPECT_FALSE(worker::syn::validate_grant(m, ro_fds(), 1, &err));
  // fds swapped against the manifest.
  auto fds = ro_fds();
  std::swap(fds[0], fds[1]);
  EXPECT_FALSE(worker::syn::validate_grant(manifest(), std::move(fds), 1, &err));
  // A map whose layout is not the ABI's, even when the manifest agrees.
  sys::UniqueFd odd(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "hgn_t5", 8, 64, 64, nullptr));
  ASSERT_TRUE(odd);
  m = manifest();
  m.maps.resize(1);
  m.maps[0].value_size = 64;
  m.maps[0].map_id = id_of(odd.get());
  std::vector<sys::UniqueFd> one;
  one.push_back(ro(odd.get()));
  EXPECT_FALSE(worker::syn::validate_grant(m, std::move(one), 1, &err));
  EXPECT_NE(err.find("ABI"), std::string::npos) << err;
  // Not a map at all.
  std::vector<sys::UniqueFd> pipe_fd;
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  close(p[1]);
  pipe_fd.emplace_back(p[0]);
  m = manifest();
  m.maps.resize(1);
  EXPECT_FALSE(worker::syn::validate_grant(m, std::move(pipe_fd), 1, &err));
}

TEST_F(GrantValidationTest, ReceivesOverTheChannel) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  sys::UniqueFd a(sv[0]), b(sv[1]);
  auto fds = ro_fds();
  std::string err;
  ASSERT_TRUE(send_message(a.get(), manifest(), {fds[0].get(), fds[1].get()}, &err)) << err;
  auto g = worker::syn::receive_grant(b.get(), 1, &err);
  ASSERT_TRUE(g) << err;
  EXPECT_TRUE(g->v4 && g->v6);
  // Another message type on the maps channel is refused.
  ASSERT_TRUE(send_message(a.get(), StatsReq{}, {}, &err));
  EXPECT_FALSE(worker::syn::receive_grant(b.get(), 1, &err));
  a.reset();
  EXPECT_FALSE(worker::syn::receive_grant(b.get(), 1, &err));
  EXPECT_NE(err.find("closed"), std::string::npos);
}

}  // namespace
}  // namespace huginn::ipc::helper
