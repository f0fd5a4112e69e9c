// The XDP SYN recorder run on crafted frames through BPF_PROG_TEST_RUN
// (Katran style: description, packet, expected verdict, expected map entry or
// none, expected counter changes). For every recorded SYN, the fields read
// back from the map must equal what fp::syn_fields_from_packet() parses from
// the same bytes, and so must the p0f signature. The oracle SYNs of
// tests/data/oracles/pcaps/crafted_syns.pcap, pushed through the program,
// must render expected.json's `expect.tcp`.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <json/json.h>
#include <linux/if_ether.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bpf/syn_abi_check.h"
#include "common/fingerprint/p0f.h"
#include "common/sys/c_handle.h"
#include "huginn_syn.skel.h"
#include "tests/unit/bpf/packet_builder.h"
#include "worker/syn/map_grant.h"
#include "worker/syn/syn_ring.h"
#include "worker/syn/syn_source.h"

namespace huginn {
namespace {

using testing::FrameBuilder;
using testing::PacketSpec;

void destroy_skel(huginn_syn* s) { huginn_syn__destroy(s); }
using Skel = sys::CHandle<huginn_syn, destroy_skel>;

struct Counters {
  uint64_t v[HUGINN_CTR_COUNT] = {};
};

class XdpProgram {
 public:
  bool load(std::string* error) {
    skel_.reset(huginn_syn__open_and_load());
    if (!skel_) {
      *error = std::string("huginn_syn__open_and_load: ") + strerror(errno);
      return false;
    }
    return true;
  }
  void watch_port(uint16_t port) {
    const uint8_t one = 1;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.watch_ports), &port, &one, BPF_ANY), 0);
  }
  void set_config(uint32_t flags) {
    huginn_syn_config c{HUGINN_SYN_ABI_VERSION, flags};
    const uint32_t zero = 0;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.syn_config), &zero, &c, BPF_ANY), 0);
  }
  void watch_dst4(const char* addr) {
    uint32_t a = 0;
    inet_pton(AF_INET, addr, &a);
    const uint8_t one = 1;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.watch_dst4), &a, &one, BPF_ANY), 0);
  }
  void watch_dst6(const char* addr) {
    uint8_t a[16] = {};
    inet_pton(AF_INET6, addr, a);
    const uint8_t one = 1;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.watch_dst6), a, &one, BPF_ANY), 0);
  }

  // Runs one frame; returns the verdict and checks that the frame came back unchanged.
  int run(const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> out(frame.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<__u32>(frame.size()),
                .data_size_out = static_cast<__u32>(out.size()), .repeat = 1);
    const int rc = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.huginn_syn_capture), &o);
    EXPECT_EQ(rc, 0) << strerror(errno);
    EXPECT_EQ(o.data_size_out, frame.size());
    out.resize(o.data_size_out);
    EXPECT_EQ(out, frame) << "the program changed the packet";
    return static_cast<int>(o.retval);
  }

  Counters counters() const {
    Counters c;
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> per(static_cast<size_t>(ncpu));
    for (uint32_t i = 0; i < HUGINN_CTR_COUNT; ++i) {
      if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.syn_counters), &i, per.data()) != 0) continue;
      for (uint64_t x : per) c.v[i] += x;
    }
    return c;
  }

  std::optional<huginn_syn_value_v4> entry_v4(const std::string& src, uint16_t sport) const {
    huginn_syn_key_v4 k{};
    k.family = HUGINN_FAMILY_V4;
    k.sport = htons(sport);
    inet_pton(AF_INET, src.c_str(), &k.saddr);
    huginn_syn_value_v4 v{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.syn_v4), &k, &v) != 0) return std::nullopt;
    return v;
  }
  std::optional<huginn_syn_value_v6> entry_v6(const std::string& src, uint16_t sport) const {
    huginn_syn_key_v6 k{};
    k.family = HUGINN_FAMILY_V6;
    k.sport = htons(sport);
    inet_pton(AF_INET6, src.c_str(), k.saddr);
    huginn_syn_value_v6 v{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.syn_v6), &k, &v) != 0) return std::nullopt;
    return v;
  }
  int v4_fd() const { return bpf_map__fd(skel_->maps.syn_v4); }
  int ring_fd() const { return bpf_map__fd(skel_->maps.syn_ring); }

  // syn_ring's slot for a key, read with bpf(2) (the test's ring is not frozen).
  huginn_syn_slot ring_slot(uint32_t index) const {
    huginn_syn_slot s{};
    EXPECT_EQ(bpf_map_lookup_elem(ring_fd(), &index, &s), 0);
    return s;
  }
  static uint32_t ring_index_v4(const std::string& src, uint16_t sport) {
    uint32_t a = 0;
    inet_pton(AF_INET, src.c_str(), &a);
    return huginn_syn_ring_index(htons(sport), a, 0, 0, 0);
  }
  static uint32_t ring_index_v6(const std::string& src, uint16_t sport) {
    uint32_t w[4] = {};
    inet_pton(AF_INET6, src.c_str(), w);
    return huginn_syn_ring_index(htons(sport), w[0], w[1], w[2], w[3]);
  }
  // The ring's copy of a recorded SYN, if its slot holds that key.
  std::optional<huginn_syn_slot> ring_entry(const PacketSpec& spec) const {
    const bool v4 = spec.family == 4;
    const huginn_syn_slot s =
        ring_slot(v4 ? ring_index_v4(spec.src4, spec.sport) : ring_index_v6(spec.src6, spec.sport));
    uint8_t addr[16] = {};
    inet_pton(v4 ? AF_INET : AF_INET6, v4 ? spec.src4.c_str() : spec.src6.c_str(), addr);
    if (s.seq == 0 || s.family != (v4 ? HUGINN_FAMILY_V4 : HUGINN_FAMILY_V6) ||
        s.sport != htons(spec.sport) || std::memcmp(s.saddr, addr, 16) != 0)
      return std::nullopt;
    return s;
  }

 private:
  Skel skel_;
};

bool same_fields(const fp::SynFields& a, const fp::SynFields& b, std::string* diff) {
#define HGN_CMP(f)                                                           \
  if (a.f != b.f) {                                                          \
    *diff = #f ": " + std::to_string(static_cast<long long>(a.f)) + " vs " + \
            std::to_string(static_cast<long long>(b.f));                     \
    return false;                                                            \
  }
  HGN_CMP(ip_version)
  HGN_CMP(ttl)
  HGN_CMP(tos)
  HGN_CMP(window)
  HGN_CMP(seq)
  HGN_CMP(ack)
  HGN_CMP(urg_ptr)
  HGN_CMP(tcp_flags)
  HGN_CMP(tcp_reserved)
  HGN_CMP(tcp_options_len)
  HGN_CMP(payload_len)
  if (a.ip_version == 4) {
    HGN_CMP(ip_id)
    HGN_CMP(df)
    HGN_CMP(mf)
    HGN_CMP(reserved_bit)
    HGN_CMP(ip_options_len)
  } else {
    HGN_CMP(flow_label)
  }
#undef HGN_CMP
  if (std::memcmp(a.tcp_options.data(), b.tcp_options.data(), a.tcp_options_len) != 0) {
    *diff = "tcp_options bytes";
    return false;
  }
  return true;
}

enum class Expect { kRecorded, kNone };

struct Case {
  const char* description;
  PacketSpec spec;
  Expect entry;
  int malformed_delta = 0;  // of the packet's family
};

PacketSpec v4_syn(uint16_t sport) {
  PacketSpec s;
  s.sport = sport;
  s.tcp_options = testing::linux_syn_options();
  return s;
}

PacketSpec v6_syn(uint16_t sport) {
  PacketSpec s = v4_syn(sport);
  s.family = 6;
  s.flow_label = 0x5a5a5;
  s.tcp_options = testing::linux_syn_options(1440);
  s.window = 64800;
  return s;
}

template <typename F>
PacketSpec with(PacketSpec s, F f) {
  f(s);
  return s;
}

std::vector<Case> cases() {
  std::vector<Case> c;
  uint16_t port = 41000;
  auto v4 = [&port](auto f) { return with(v4_syn(++port), f); };
  auto v6 = [&port](auto f) { return with(v6_syn(++port), f); };
  auto none = [](PacketSpec&) {};
  c.push_back({"v4 Linux SYN with options", v4(none), Expect::kRecorded});
  c.push_back({"v6 Linux SYN with options and flow label", v6(none), Expect::kRecorded});
  c.push_back({"v4 no options, DF clear, id 0", v4([](PacketSpec& s) {
                 s.tcp_options.clear();
                 s.df = false;
                 s.ip_id = 0;
               }),
               Expect::kRecorded});
  c.push_back({"v4 Windows-like options, ttl 128", v4([](PacketSpec& s) {
                 s.ttl = 128;
                 s.tcp_options = {2, 4, 5, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2};
               }),
               Expect::kRecorded});
  c.push_back({"v4 with 8 bytes of IP options",
               v4([](PacketSpec& s) { s.ip_options = {1, 1, 1, 1, 1, 1, 1, 0}; }), Expect::kRecorded});
  c.push_back({"v4 max TCP options (40 bytes)", v4([](PacketSpec& s) {
                 s.tcp_options = testing::linux_syn_options();
                 s.tcp_options.resize(40, 1);
               }),
               Expect::kRecorded});
  c.push_back({"v4 quirks: ECE+CWR, URG, PSH, ack, reserved bits, ECN tos", v4([](PacketSpec& s) {
                 s.flags = 0x02 | 0x40 | 0x80 | 0x20 | 0x08;
                 s.ack = 12345;
                 s.urg_ptr = 7;
                 s.reserved = 0x1;
                 s.tos = 0x03;
                 s.reserved_bit = true;
               }),
               Expect::kRecorded});
  c.push_back(
      {"v4 SYN with 10 bytes of payload", v4([](PacketSpec& s) { s.payload_len = 10; }), Expect::kRecorded});
  c.push_back({"v4 seq 0", v4([](PacketSpec& s) { s.seq = 0; }), Expect::kRecorded});
  c.push_back({"v4 802.1Q VLAN", v4([](PacketSpec& s) { s.vlan_tpids = {0x8100}; }), Expect::kRecorded});
  c.push_back({"v4 QinQ (802.1ad + 802.1Q)", v4([](PacketSpec& s) {
                 s.vlan_tpids = {0x88A8, 0x8100};
               }),
               Expect::kRecorded});
  c.push_back({"v6 QinQ", v6([](PacketSpec& s) { s.vlan_tpids = {0x88A8, 0x8100}; }), Expect::kRecorded});
  c.push_back({"v4 three VLAN tags: not walked", v4([](PacketSpec& s) {
                 s.vlan_tpids = {0x88A8, 0x8100, 0x8100};
               }),
               Expect::kNone});
  c.push_back({"v6 hop-by-hop + destination options + routing", v6([](PacketSpec& s) {
                 s.ext_headers = {{0, 8}, {60, 16}, {43, 8}};
               }),
               Expect::kRecorded});
  c.push_back({"v6 six extension headers (the bound)", v6([](PacketSpec& s) {
                 s.ext_headers = {{0, 8}, {60, 8}, {43, 8}, {60, 8}, {43, 8}, {60, 8}};
               }),
               Expect::kRecorded});
  c.push_back({"v6 seven extension headers: past the bound", v6([](PacketSpec& s) {
                 s.ext_headers = {{0, 8}, {60, 8}, {43, 8}, {60, 8}, {43, 8}, {60, 8}, {60, 8}};
               }),
               Expect::kNone});
  c.push_back({"v6 fragment header", v6([](PacketSpec& s) { s.ext_headers = {{44, 8}}; }), Expect::kNone});
  c.push_back({"v4 first fragment (MF)", v4([](PacketSpec& s) { s.mf = true; }), Expect::kNone});
  c.push_back({"v4 non-first fragment", v4([](PacketSpec& s) { s.frag_offset = 3; }), Expect::kNone});
  c.push_back({"v4 SYN-ACK", v4([](PacketSpec& s) { s.flags = 0x12; }), Expect::kNone});
  c.push_back({"v6 SYN-ACK", v6([](PacketSpec& s) { s.flags = 0x12; }), Expect::kNone});
  c.push_back({"v4 plain ACK", v4([](PacketSpec& s) { s.flags = 0x10; }), Expect::kNone});
  c.push_back({"v4 non-watched port", v4([](PacketSpec& s) { s.dport = 22; }), Expect::kNone});
  c.push_back({"v6 non-watched port", v6([](PacketSpec& s) { s.dport = 22; }), Expect::kNone});
  c.push_back({"v4 UDP", v4([](PacketSpec& s) { s.protocol = 17; }), Expect::kNone});
  c.push_back({"ARP frame", v4([](PacketSpec& s) { s.ethertype_override = 0x0806; }), Expect::kNone});
  c.push_back({"v4 ihl 4", v4([](PacketSpec& s) { s.ihl_override = 4; }), Expect::kNone, 1});
  c.push_back({"v4 ihl 0", v4([](PacketSpec& s) { s.ihl_override = 0; }), Expect::kNone, 1});
  c.push_back({"v4 doff 4", v4([](PacketSpec& s) { s.doff_override = 4; }), Expect::kNone, 1});
  c.push_back({"v6 doff 0", v6([](PacketSpec& s) { s.doff_override = 0; }), Expect::kNone, 1});
  c.push_back({"v4 total length shorter than the headers", v4([](PacketSpec& s) { s.tot_len_override = 30; }),
               Expect::kNone, 1});
  c.push_back({"v6 payload length shorter than the TCP header",
               v6([](PacketSpec& s) { s.tot_len_override = 12; }), Expect::kNone, 1});
  // Truncation at every layer (a frame is at least 14 bytes in BPF_PROG_TEST_RUN).
  c.push_back({"truncated: VLAN tag", v4([](PacketSpec& s) {
                 s.vlan_tpids = {0x8100};
                 s.truncate_to = 16;
               }),
               Expect::kNone});
  c.push_back({"truncated: Ethernet only", v4([](PacketSpec& s) { s.truncate_to = 14; }), Expect::kNone, 1});
  c.push_back(
      {"truncated: IPv4 header", v4([](PacketSpec& s) { s.truncate_to = 14 + 19; }), Expect::kNone, 1});
  c.push_back({"truncated: IPv4 options", v4([](PacketSpec& s) {
                 s.ip_options = {1, 1, 1, 0};
                 s.truncate_to = 14 + 22;
               }),
               Expect::kNone, 1});
  c.push_back(
      {"truncated: TCP header", v4([](PacketSpec& s) { s.truncate_to = 14 + 20 + 19; }), Expect::kNone, 1});
  c.push_back({"truncated: TCP options", v4([](PacketSpec& s) { s.truncate_to = 14 + 20 + 20 + 19; }),
               Expect::kNone, 1});
  c.push_back(
      {"truncated: IPv6 header", v6([](PacketSpec& s) { s.truncate_to = 14 + 39; }), Expect::kNone, 1});
  c.push_back({"truncated: IPv6 extension header", v6([](PacketSpec& s) {
                 s.ext_headers = {{0, 16}};
                 s.truncate_to = 14 + 40 + 1;
               }),
               Expect::kNone, 1});
  c.push_back({"truncated: TCP after IPv6 extension header", v6([](PacketSpec& s) {
                 s.ext_headers = {{0, 16}};
                 s.truncate_to = 14 + 40 + 16 + 10;
               }),
               Expect::kNone, 1});
  c.push_back({"truncated: TCP options over IPv6",
               v6([](PacketSpec& s) { s.truncate_to = 14 + 40 + 20 + 5; }), Expect::kNone, 1});
  c.push_back({"truncated: VLAN + TCP header", v4([](PacketSpec& s) {
                 s.vlan_tpids = {0x8100};
                 s.truncate_to = 18 + 20 + 8;
               }),
               Expect::kNone, 1});
  return c;
}

class SynCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF, CAP_PERFMON) to load the XDP program";
    std::string err;
    ASSERT_TRUE(prog_.load(&err)) << err;
    for (uint16_t p : {80, 443, 8080, 8443}) prog_.watch_port(p);
    prog_.set_config(0);
  }
  XdpProgram prog_;
};

TEST_F(SynCaptureTest, TableOfCraftedFrames) {
  size_t recorded = 0;
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.description);
    const std::vector<uint8_t> frame = FrameBuilder::build(c.spec);
    const Counters before = prog_.counters();
    EXPECT_EQ(prog_.run(frame), XDP_PASS);
    const Counters after = prog_.counters();
    const bool v4 = c.spec.family == 4;
    const int cap = v4 ? HUGINN_CTR_CAPTURED_V4 : HUGINN_CTR_CAPTURED_V6;
    const int mal = v4 ? HUGINN_CTR_MALFORMED_V4 : HUGINN_CTR_MALFORMED_V6;
    const int other_cap = v4 ? HUGINN_CTR_CAPTURED_V6 : HUGINN_CTR_CAPTURED_V4;
    EXPECT_EQ(after.v[mal] - before.v[mal], static_cast<uint64_t>(c.malformed_delta));
    EXPECT_EQ(after.v[cap] - before.v[cap], c.entry == Expect::kRecorded ? 1u : 0u);
    EXPECT_EQ(after.v[other_cap], before.v[other_cap]);
    EXPECT_EQ(after.v[HUGINN_CTR_INSERT_FAIL_V4] + after.v[HUGINN_CTR_INSERT_FAIL_V6], 0u);

    std::optional<fp::SynFields> from_map;
    const std::optional<huginn_syn_slot> ring = prog_.ring_entry(c.spec);
    if (v4) {
      if (auto e = prog_.entry_v4(c.spec.src4, c.spec.sport)) {
        from_map = worker::syn::syn_fields_from_record(*e);
        EXPECT_EQ(e->tcp.dport, c.spec.dport);
        EXPECT_GT(e->captured_ns, 0u);
        // The ring holds the same record, published (even sequence number).
        ASSERT_TRUE(ring) << "not in syn_ring";
        EXPECT_EQ(ring->seq % 2, 0u);
        EXPECT_EQ(std::memcmp(&ring->value.v4, &*e, sizeof *e), 0);
      }
    } else if (auto e = prog_.entry_v6(c.spec.src6, c.spec.sport)) {
      from_map = worker::syn::syn_fields_from_record(*e);
      EXPECT_EQ(e->ext_headers, c.spec.ext_headers.size());
      ASSERT_TRUE(ring) << "not in syn_ring";
      EXPECT_EQ(ring->seq % 2, 0u);
      EXPECT_EQ(std::memcmp(&ring->value.v6, &*e, sizeof *e), 0);
    }
    ASSERT_EQ(from_map.has_value(), c.entry == Expect::kRecorded);
    if (!from_map) {
      EXPECT_FALSE(ring) << "in syn_ring but not recorded";
    }
    if (!from_map) continue;
    ++recorded;
    // The same SYN as TCP_SAVED_SYN would return it (IP + TCP headers).
    const std::vector<uint8_t> saved = FrameBuilder::saved_syn_bytes(c.spec);
    std::string err;
    const auto parsed = fp::syn_fields_from_packet(saved.data(), saved.size(), &err);
    ASSERT_TRUE(parsed) << err;
    std::string diff;
    EXPECT_TRUE(same_fields(*from_map, *parsed, &diff)) << diff;
    EXPECT_EQ(fp::p0f_raw_sig(*from_map), fp::p0f_raw_sig(*parsed));
  }
  EXPECT_EQ(recorded, 14u);
}

TEST_F(SynCaptureTest, RecordsKnownFieldValues) {
  PacketSpec s = v4_syn(42001);
  s.payload_len = 3;
  s.ip_id = 0xBEEF;
  s.ttl = 57;
  ASSERT_EQ(prog_.run(FrameBuilder::build(s)), XDP_PASS);
  auto e = prog_.entry_v4(s.src4, s.sport);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ip_id, 0xBEEF);
  EXPECT_EQ(e->ttl, 57);
  EXPECT_EQ(e->ip_flags, HUGINN_IP_DF);
  EXPECT_EQ(e->tcp.seq, 0x11223344u);
  EXPECT_EQ(e->tcp.window, 64240);
  EXPECT_EQ(e->tcp.payload_len, 3u);
  EXPECT_EQ(e->tcp.options_len, 20);
  EXPECT_EQ(e->tcp.flags, 0x02);
  uint32_t dst = 0;
  inet_pton(AF_INET, s.dst4.c_str(), &dst);
  EXPECT_EQ(e->daddr, dst);
  EXPECT_EQ(fp::p0f_raw_sig(worker::syn::syn_fields_from_record(*e)),
            "4:57+7:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:+");
  // The capture time is CLOCK_MONOTONIC (what the worker compares it with).
  const uint64_t now = worker::syn::monotonic_ns();
  EXPECT_LE(e->captured_ns, now);
  EXPECT_LT(now - e->captured_ns, 5'000'000'000ull);
  // A retransmitted SYN overwrites the record.
  s.ttl = 63;
  ASSERT_EQ(prog_.run(FrameBuilder::build(s)), XDP_PASS);
  EXPECT_EQ(prog_.entry_v4(s.src4, s.sport)->ttl, 63);
}

TEST_F(SynCaptureTest, DestinationFilters) {
  prog_.watch_dst4("198.51.100.20");
  prog_.watch_dst6("2001:db8::20");
  prog_.set_config(HUGINN_CFG_FILTER_DST4 | HUGINN_CFG_FILTER_DST6);
  PacketSpec hit4 = v4_syn(43001),
             miss4 = with(v4_syn(43002), [](PacketSpec&s) { s.dst4 = "198.51.100.21"; });
  PacketSpec hit6 = v6_syn(43003), miss6 = with(v6_syn(43004), [](PacketSpec&s) { s.dst6 = "2001:db8::21"; });
  for (const auto* s : {&hit4, &miss4, &hit6, &miss6})
    ASSERT_EQ(prog_.run(FrameBuilder::build(*s)), XDP_PASS);
  EXPECT_TRUE(prog_.entry_v4(hit4.src4, hit4.sport));
  EXPECT_FALSE(prog_.entry_v4(miss4.src4, miss4.sport));
  EXPECT_TRUE(prog_.entry_v6(hit6.src6, hit6.sport));
  EXPECT_FALSE(prog_.entry_v6(miss6.src6, miss6.sport));
  // Without the flags the sets are not consulted.
  prog_.set_config(0);
  miss4.sport = 43005;
  ASSERT_EQ(prog_.run(FrameBuilder::build(miss4)), XDP_PASS);
  EXPECT_TRUE(prog_.entry_v4(miss4.src4, miss4.sport));
}

// ---- Oracle SYNs (tests/data/oracles) ----

const std::string kOracleDir = std::string(HUGINN_TEST_DATA) + "/oracles/";

// Frames of a classic little-endian pcap file with Ethernet link type (the
// oracle captures), read directly: pcap/bpf.h clashes with linux/bpf.h.
std::vector<std::vector<uint8_t>> read_frames(const std::string& path, std::string* error) {
  std::vector<std::vector<uint8_t>> out;
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto u32 = [&b](size_t off) {
    return static_cast<uint32_t>(b[off]) | (static_cast<uint32_t>(b[off + 1]) << 8) |
           (static_cast<uint32_t>(b[off + 2]) << 16) | (static_cast<uint32_t>(b[off + 3]) << 24);
  };
  if (b.size() < 24 || (u32(0) != 0xa1b2c3d4 && u32(0) != 0xa1b23c4d)) {
    *error = path + ": not a little-endian classic pcap file";
    return out;
  }
  if (u32(20) != 1) {
    *error = path + ": not an Ethernet capture";
    return out;
  }
  size_t off = 24;
  while (off + 16 <= b.size()) {
    const size_t caplen = u32(off + 8);
    off += 16;
    if (caplen > b.size() - off) {
      *error = path + ": truncated record";
      break;
    }
    out.emplace_back(b.begin() + static_cast<std::ptrdiff_t>(off),
                     b.begin() + static_cast<std::ptrdiff_t>(off + caplen));
    off += caplen;
  }
  return out;
}

TEST_F(SynCaptureTest, OracleCraftedSynsRenderTheirExpectedSignature) {
  std::ifstream in(kOracleDir + "expected.json");
  Json::Value root;
  Json::CharReaderBuilder b;
  std::string errs;
  ASSERT_TRUE(Json::parseFromStream(b, in, &root, &errs)) << errs;
  size_t checked = 0;
  for (const Json::Value& c : root["cases"]) {
    if (!c.isMember("syns")) continue;
    std::string err;
    const auto frames = read_frames(kOracleDir + c["pcap"].asString(), &err);
    ASSERT_TRUE(err.empty()) << err;
    ASSERT_FALSE(frames.empty());
    for (const auto& f : frames) EXPECT_EQ(prog_.run(f), XDP_PASS);
    for (const Json::Value& syn : c["syns"]) {
      SCOPED_TRACE(syn["name"].asString());
      const std::string src = syn["src"].asString();
      const auto port = static_cast<uint16_t>(syn["client_port"].asUInt());
      std::optional<fp::SynFields> f;
      if (src.find(':') == std::string::npos) {
        if (auto e = prog_.entry_v4(src, port)) f = worker::syn::syn_fields_from_record(*e);
      } else if (auto e = prog_.entry_v6(src, port)) {
        f = worker::syn::syn_fields_from_record(*e);
      }
      ASSERT_TRUE(f) << "not recorded";
      EXPECT_EQ(fp::p0f_raw_sig(*f), syn["expect"]["tcp"].asString());
      ++checked;
    }
  }
  EXPECT_EQ(checked, 30u);
}

// The worker's lookup path (raw bpf(2), staleness rule) against the loaded program's map.
TEST_F(SynCaptureTest, WorkerLookupThroughRawSyscall) {
  PacketSpec s = v4_syn(44001);
  ASSERT_EQ(prog_.run(FrameBuilder::build(s)), XDP_PASS);
  worker::syn::GrantedMaps maps;
  maps.v4.reset(dup(prog_.v4_fd()));
  worker::syn::XdpSynSource src;
  src.set_maps(std::move(maps));
  auto peer = net::SocketAddress::parse(s.src4 + ":44001");
  ASSERT_TRUE(peer);
  worker::syn::SynLookup st;
  const uint64_t now = worker::syn::monotonic_ns();
  bool ring_asked = true;
  auto f = src.lookup(*peer, now, &st, &ring_asked);
  ASSERT_TRUE(f) << worker::syn::syn_lookup_name(st);
  EXPECT_EQ(st, worker::syn::SynLookup::kHit);
  EXPECT_FALSE(ring_asked) << "no ring granted";
  EXPECT_EQ(fp::p0f_raw_sig(*f), "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0");
  // The IPv4-mapped form of the same peer finds the IPv4 record.
  auto mapped = net::SocketAddress::parse("[::ffff:" + s.src4 + "]:44001");
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(src.lookup(*mapped, now, &st));
  // Captured after the accept: a newer connection attempt's SYN.
  EXPECT_FALSE(src.lookup(*peer, now - 1'000'000'000ull, &st));
  EXPECT_EQ(st, worker::syn::SynLookup::kStale);
  // Captured more than the bound before the accept.
  EXPECT_FALSE(src.lookup(*peer, now + worker::syn::kDefaultMaxSynAgeNs + 1'000'000'000ull, &st));
  EXPECT_EQ(st, worker::syn::SynLookup::kStale);
  // Other port: miss. No IPv6 map: no maps.
  EXPECT_FALSE(src.lookup(*net::SocketAddress::parse(s.src4 + ":44002"), now, &st));
  EXPECT_EQ(st, worker::syn::SynLookup::kMiss);
  EXPECT_FALSE(src.lookup(*net::SocketAddress::parse("[2001:db8::10]:44001"), now, &st));
  EXPECT_EQ(st, worker::syn::SynLookup::kNoMaps);
}

// The slot protocol as the program writes it: published with an even
// sequence number that grows by two per write; a slot that a writer holds
// (odd) is left alone, the LRU record is written anyway.
TEST_F(SynCaptureTest, RingSlotSequence) {
  PacketSpec s = v4_syn(45001);
  const uint32_t idx = XdpProgram::ring_index_v4(s.src4, s.sport);
  const uint32_t seq0 = prog_.ring_slot(idx).seq;
  ASSERT_EQ(prog_.run(FrameBuilder::build(s)), XDP_PASS);
  auto first = prog_.ring_entry(s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->seq, seq0 + 2);
  EXPECT_EQ(first->value.v4.ttl, 64);
  s.ttl = 50;  // a retransmission overwrites the slot
  ASSERT_EQ(prog_.run(FrameBuilder::build(s)), XDP_PASS);
  auto second = prog_.ring_entry(s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->seq, seq0 + 4);
  EXPECT_EQ(second->value.v4.ttl, 50);

  // A writer on another CPU holds the slot: the program skips it.
  huginn_syn_slot held = *second;
  held.seq += 1;
  ASSERT_EQ(bpf_map_update_elem(prog_.ring_fd(), &idx, &held, BPF_ANY), 0);
  s.ttl = 40;
  ASSERT_EQ(prog_.run(FrameBuilder::build(s)), XDP_PASS);
  EXPECT_EQ(prog_.ring_slot(idx).seq, held.seq);
  EXPECT_EQ(prog_.ring_slot(idx).value.v4.ttl, 50);
  EXPECT_EQ(prog_.entry_v4(s.src4, s.sport)->ttl, 40);

  // IPv6 keys land in their own slot with the whole address.
  PacketSpec s6 = v6_syn(45002);
  ASSERT_EQ(prog_.run(FrameBuilder::build(s6)), XDP_PASS);
  auto six = prog_.ring_entry(s6);
  ASSERT_TRUE(six);
  EXPECT_EQ(six->value.v6.hop_limit, 64);
  EXPECT_EQ(six->value.v6.flow_label, 0x5a5a5u);
}

// What the worker does with the ring: refuses it unfrozen, maps it frozen,
// finds a SYN there without the LRU map, and falls back to the map when the
// slot holds another key; the answers are the map's.
TEST_F(SynCaptureTest, WorkerLookupThroughTheRing) {
  std::string err;
  EXPECT_FALSE(worker::syn::SynRing::attach(prog_.ring_fd(), &err));
  EXPECT_NE(err.find("not frozen"), std::string::npos) << err;

  PacketSpec a = v4_syn(46001);
  ASSERT_EQ(prog_.run(FrameBuilder::build(a)), XDP_PASS);
  // A second key that shares a's slot.
  PacketSpec b = a;
  const uint32_t idx = XdpProgram::ring_index_v4(a.src4, a.sport);
  for (uint32_t p = 1024; p < 65535 && b.sport == a.sport; ++p)
    if (p != a.sport && XdpProgram::ring_index_v4(a.src4, static_cast<uint16_t>(p)) == idx)
      b.sport = static_cast<uint16_t>(p);
  ASSERT_NE(b.sport, a.sport) << "no colliding port";

  ASSERT_EQ(bpf_map_freeze(prog_.ring_fd()), 0);
  auto ring = worker::syn::SynRing::attach(prog_.ring_fd(), &err);
  ASSERT_TRUE(ring) << err;
  // Frozen: bpf(2) cannot write it either.
  huginn_syn_slot zero{};
  EXPECT_NE(bpf_map_update_elem(prog_.ring_fd(), &idx, &zero, BPF_ANY), 0);
  EXPECT_EQ(errno, EPERM);

  worker::syn::GrantedMaps maps;
  maps.v4.reset(dup(prog_.v4_fd()));
  maps.ring = std::move(*ring);
  worker::syn::XdpSynSource src;
  src.set_maps(std::move(maps));
  const auto peer_a = *net::SocketAddress::parse(a.src4 + ":" + std::to_string(a.sport));
  const auto peer_b = *net::SocketAddress::parse(b.src4 + ":" + std::to_string(b.sport));
  const std::string sig = "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0";
  worker::syn::SynLookup st;
  uint64_t now = worker::syn::monotonic_ns();

  // Served by the ring alone: the LRU record is gone.
  huginn_syn_key_v4 ka{};
  ka.family = HUGINN_FAMILY_V4;
  ka.sport = htons(a.sport);
  inet_pton(AF_INET, a.src4.c_str(), &ka.saddr);
  ASSERT_EQ(bpf_map_delete_elem(prog_.v4_fd(), &ka), 0);
  bool ring_asked = false;
  auto f = src.lookup(peer_a, now, &st, &ring_asked);
  ASSERT_TRUE(f) << worker::syn::syn_lookup_name(st);
  EXPECT_EQ(st, worker::syn::SynLookup::kRingHit);
  EXPECT_TRUE(ring_asked);
  EXPECT_EQ(fp::p0f_raw_sig(*f), sig);
  // A ring record the freshness rule rejects is not used: the map decides (miss).
  EXPECT_FALSE(src.lookup(peer_a, now - 1'000'000'000ull, &st));
  EXPECT_EQ(st, worker::syn::SynLookup::kMiss);

  // b takes the slot: a is looked up in the map again, where it is no more.
  ASSERT_EQ(prog_.run(FrameBuilder::build(b)), XDP_PASS);
  now = worker::syn::monotonic_ns();
  EXPECT_FALSE(src.lookup(peer_a, now, &st));
  EXPECT_EQ(st, worker::syn::SynLookup::kMiss);
  ASSERT_TRUE(src.lookup(peer_b, now, &st));
  EXPECT_EQ(st, worker::syn::SynLookup::kRingHit);
  // a again, recorded while b holds the slot: a's SYN takes it back.
  a.ttl = 61;
  ASSERT_EQ(prog_.run(FrameBuilder::build(a)), XDP_PASS);
  f = src.lookup(peer_a, worker::syn::monotonic_ns(), &st);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->ttl, 61);
  EXPECT_EQ(st, worker::syn::SynLookup::kRingHit);
  // b's slot now holds a; b comes from the map.
  ring_asked = false;
  f = src.lookup(peer_b, worker::syn::monotonic_ns(), &st, &ring_asked);
  ASSERT_TRUE(f) << worker::syn::syn_lookup_name(st);
  EXPECT_EQ(st, worker::syn::SynLookup::kHit);
  EXPECT_TRUE(ring_asked);
  EXPECT_EQ(f->ttl, 64);
}

// The manifest check of the ring: an unfrozen ring fails the whole grant.
TEST_F(SynCaptureTest, GrantWithAnUnfrozenRingIsRefused) {
  using ipc::helper::MapRole;
  auto entry = [](MapRole role, uint8_t family, int fd) {
    bpf_map_info info{};
    __u32 len = sizeof info;
    EXPECT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    return ipc::helper::MapManifestEntry{
        role, family, info.type, info.key_size, info.value_size, info.max_entries, info.id};
  };
  ipc::helper::MapsGrant g;
  g.worker_id = 1;
  g.maps = {entry(MapRole::kSynV4, 4, prog_.v4_fd()), entry(MapRole::kSynRing, 0, prog_.ring_fd())};
  // What the helper sends: a read-only fd of syn_v4, an fd of the ring.
  auto fds = [&] {
    LIBBPF_OPTS(bpf_get_fd_by_id_opts, ro, .open_flags = BPF_F_RDONLY);
    std::vector<sys::UniqueFd> v;
    v.emplace_back(bpf_map_get_fd_by_id_opts(g.maps[0].map_id, &ro));
    v.emplace_back(dup(prog_.ring_fd()));
    return v;
  };
  std::string err;
  EXPECT_FALSE(worker::syn::validate_grant(g, fds(), 1, &err));
  EXPECT_NE(err.find("not frozen"), std::string::npos) << err;

  ASSERT_EQ(bpf_map_freeze(prog_.ring_fd()), 0);
  auto ok = worker::syn::validate_grant(g, fds(), 1, &err);
  ASSERT_TRUE(ok) << err;
  EXPECT_TRUE(ok->ring.valid());
  EXPECT_TRUE(ok->v4);

  // A second ring in the same grant is refused.
  g.maps.push_back(g.maps[1]);
  auto three = fds();
  three.emplace_back(dup(prog_.ring_fd()));
  EXPECT_FALSE(worker::syn::validate_grant(g, std::move(three), 1, &err));
  EXPECT_EQ(err, "duplicate map role");
}

TEST(SynFreshnessTest, Rule) {
  using worker::syn::capture_fresh;
  EXPECT_TRUE(capture_fresh(100, 100, 10));
  EXPECT_TRUE(capture_fresh(90, 100, 10));
  EXPECT_FALSE(capture_fresh(89, 100, 10));
  EXPECT_FALSE(capture_fresh(101, 100, 10));
  EXPECT_TRUE(capture_fresh(0, 5, 10));
}

}  // namespace
}  // namespace huginn
