// The worker's SYN sources over loopback: TCP_SAVED_SYN, and the
// `[fingerprint] tcp_source` choice (xdp | saved_syn | auto) with and without
// a map grant. Saved SYN needs no privilege; the map cases need root.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bpf/syn_abi_check.h"
#include "common/fingerprint/p0f.h"
#include "common/net/address.h"
#include "common/sys/unique_fd.h"
#include "worker/syn/saved_syn.h"
#include "worker/syn/tcp_syn.h"

namespace huginn::worker::syn {
namespace {

using Source = TcpSynResolver::Source;
using Origin = SynTrace::Origin;
using E = metrics::SynLookupEvent;

std::vector<E> events_of(const SynTrace& t) {
  std::array<E, 3> a{};
  const size_t n = syn_lookup_events(t, a);
  return {a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n)};
}

struct Conn {
  sys::UniqueFd client, server;
  net::SocketAddress peer;
  uint64_t accept_ns = 0;
};

class LoopbackListener {
 public:
  explicit LoopbackListener(bool v6, const TcpSynResolver* resolver, bool save = true) {
    fd_.reset(socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto sa = net::SocketAddress::parse(v6 ? "[::1]:0" : "127.0.0.1:0");
    EXPECT_EQ(bind(fd_.get(), sa->sa(), sa->len()), 0);
    std::string err;
    if (resolver) {
      EXPECT_TRUE(resolver->prepare_listener(fd_.get(), &err)) << err;
    } else if (save) {
      EXPECT_TRUE(enable_save_syn(fd_.get(), &err)) << err;
    }
    EXPECT_EQ(listen(fd_.get(), 8), 0);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    addr_ = *net::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  }
  std::optional<Conn> connect_one() {
    Conn c;
    c.client.reset(socket(addr_.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(c.client.get(), addr_.sa(), addr_.len()) != 0) return std::nullopt;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    c.server.reset(accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
    c.accept_ns = monotonic_ns();
    if (!c.server) return std::nullopt;
    c.peer = *net::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    return c;
  }

 private:
  sys::UniqueFd fd_;
  net::SocketAddress addr_;
};

TEST(SavedSynTest, ReadsOnceOverIPv4AndIPv6) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    LoopbackListener l(v6, nullptr);
    auto c = l.connect_one();
    ASSERT_TRUE(c);
    std::string err;
    auto f = read_saved_syn(c->server.get(), &err);
    ASSERT_TRUE(f) << err;
    EXPECT_EQ(f->ip_version, v6 ? 6 : 4);
    EXPECT_EQ(f->tcp_flags & (fp::kTcpSyn | fp::kTcpAck), fp::kTcpSyn);
    // Loopback MSS: 65495 (IPv4) / 65476 (IPv6).
    const std::string sig = fp::p0f_raw_sig(*f);
    EXPECT_EQ(sig.rfind(v6 ? "6:64+0:0:65476:" : "4:64+0:0:65495:", 0), 0u) << sig;
    // The kernel frees it after the first read.
    EXPECT_FALSE(read_saved_syn(c->server.get(), &err));
  }
}

TEST(SavedSynTest, NothingWithoutTcpSaveSyn) {
  LoopbackListener l(false, nullptr, false);
  auto c = l.connect_one();
  ASSERT_TRUE(c);
  std::string err;
  EXPECT_FALSE(read_saved_syn(c->server.get(), &err));
  EXPECT_FALSE(err.empty());
}

TEST(TcpSynResolverTest, SourcesWithoutAGrant) {
  struct Row {
    Source source;
    Origin want;
  };
  for (const Row& r : {Row{Source::kSavedSyn, Origin::kSavedSyn}, Row{Source::kAuto, Origin::kSavedSyn},
                       Row{Source::kXdp, Origin::kNone}}) {
    TcpSynResolver resolver(r.source);
    LoopbackListener l(false, &resolver);
    auto c = l.connect_one();
    ASSERT_TRUE(c);
    SynTrace t;
    t.saved_syn_hit = true;  // resolve() starts the trace afresh
    auto f = resolver.resolve(c->server.get(), c->peer, c->accept_ns, &t);
    EXPECT_EQ(t.origin(), r.want);
    EXPECT_EQ(f.has_value(), r.want != Origin::kNone);
    // Without a grant the XDP source answers "no maps"; the ring is not asked.
    const std::vector<E> want = r.source == Source::kSavedSyn ? std::vector<E>{E::kSavedSynHit}
                                : r.source == Source::kAuto ? std::vector<E>{E::kMapNoGrant, E::kSavedSynHit}
                                                            : std::vector<E>{E::kMapNoGrant};
    EXPECT_EQ(events_of(t), want);
  }
}

// Every trace a resolve() can leave maps to the sources it asked, in order,
// and names the source whose SYN was returned.
TEST(TcpSynResolverTest, LookupEventsOfEveryTrace) {
  struct Row {
    SynTrace t;
    std::vector<E> want;
    Origin origin;
  };
  auto xdp = [](SynLookup st, bool ring, bool saved_asked = false, bool saved_hit = false) {
    SynTrace t;
    t.xdp_asked = true;
    t.xdp = st;
    t.ring_asked = ring;
    t.saved_syn_asked = saved_asked;
    t.saved_syn_hit = saved_hit;
    return t;
  };
  SynTrace saved_miss;
  saved_miss.saved_syn_asked = true;
  SynTrace saved_hit = saved_miss;
  saved_hit.saved_syn_hit = true;
  const Row rows[] = {
      {SynTrace{}, {}, Origin::kNone},
      {saved_miss, {E::kSavedSynMiss}, Origin::kNone},
      {saved_hit, {E::kSavedSynHit}, Origin::kSavedSyn},
      {xdp(SynLookup::kRingHit, true), {E::kRingHit}, Origin::kXdp},
      {xdp(SynLookup::kHit, true), {E::kRingMiss, E::kMapHit}, Origin::kXdp},
      {xdp(SynLookup::kHit, false), {E::kMapHit}, Origin::kXdp},
      {xdp(SynLookup::kMiss, true, true, true),
       {E::kRingMiss, E::kMapNotFound, E::kSavedSynHit},
       Origin::kSavedSyn},
      {xdp(SynLookup::kStale, true, true, false),
       {E::kRingMiss, E::kMapStale, E::kSavedSynMiss},
       Origin::kNone},
      {xdp(SynLookup::kInvalid, false), {E::kMapInvalid}, Origin::kNone},
      {xdp(SynLookup::kError, true), {E::kRingMiss, E::kMapError}, Origin::kNone},
      {xdp(SynLookup::kNoMaps, false, true, true), {E::kMapNoGrant, E::kSavedSynHit}, Origin::kSavedSyn},
  };
  for (size_t i = 0; i < std::size(rows); ++i) {
    EXPECT_EQ(events_of(rows[i].t), rows[i].want) << "row " << i;
    EXPECT_EQ(rows[i].t.origin(), rows[i].origin) << "row " << i;
  }
}

// With a grant: a fresh record wins in xdp and auto; a miss in auto falls back
// to the saved SYN; saved_syn never looks at the maps.
TEST(TcpSynResolverTest, GrantedMaps) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF) to create a map";
  sys::UniqueFd map(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "hgn_tsr", sizeof(huginn_syn_key_v4),
                                   sizeof(huginn_syn_value_v4), 16, nullptr));
  ASSERT_TRUE(map);
  auto grant = [&map] {
    GrantedMaps g;
    g.v4.reset(dup(map.get()));
    return g;
  };
  // A record for a connection: what the XDP program would have written, with a
  // TTL the loopback SYN does not have so the origin is visible in the fields.
  auto record = [&map](const Conn& c, uint64_t captured_ns) {
    huginn_syn_key_v4 k{};
    k.family = HUGINN_FAMILY_V4;
    k.sport = htons(c.peer.port());
    std::memcpy(&k.saddr, c.peer.addr_bytes().data(), 4);
    huginn_syn_value_v4 v{};
    v.captured_ns = captured_ns;
    v.ttl = 99;
    v.tcp.flags = fp::kTcpSyn;
    v.tcp.window = 1234;
    ASSERT_EQ(bpf_map_update_elem(map.get(), &k, &v, BPF_ANY), 0);
  };
  {
    TcpSynResolver r(Source::kAuto);
    r.set_grant(grant());
    LoopbackListener l(false, &r);
    auto hit = l.connect_one();
    ASSERT_TRUE(hit);
    record(*hit, hit->accept_ns - 1000);
    SynTrace t;
    auto f = r.resolve(hit->server.get(), hit->peer, hit->accept_ns, &t);
    ASSERT_TRUE(f);
    EXPECT_EQ(t.origin(), Origin::kXdp);
    EXPECT_EQ(f->ttl, 99);
    EXPECT_EQ(events_of(t), std::vector<E>{E::kMapHit}) << "no ring granted: the map alone, not a ring miss";
    // A stale record (captured after the accept) falls back to the saved SYN.
    auto stale = l.connect_one();
    ASSERT_TRUE(stale);
    record(*stale, stale->accept_ns + 1'000'000);
    f = r.resolve(stale->server.get(), stale->peer, stale->accept_ns, &t);
    ASSERT_TRUE(f);
    EXPECT_EQ(t.origin(), Origin::kSavedSyn);
    EXPECT_EQ(f->ttl, 64);
    EXPECT_EQ(events_of(t), (std::vector<E>{E::kMapStale, E::kSavedSynHit}));
    // No record at all: saved SYN too; after drop_grant() likewise.
    r.drop_grant();
    EXPECT_FALSE(r.has_grant());
    auto later = l.connect_one();
    ASSERT_TRUE(later);
    record(*later, later->accept_ns - 1000);
    f = r.resolve(later->server.get(), later->peer, later->accept_ns, &t);
    ASSERT_TRUE(f);
    EXPECT_EQ(t.origin(), Origin::kSavedSyn);
  }
  {
    TcpSynResolver r(Source::kXdp);
    r.set_grant(grant());
    LoopbackListener l(false, &r);
    auto c = l.connect_one();
    ASSERT_TRUE(c);
    SynTrace t;
    EXPECT_FALSE(r.resolve(c->server.get(), c->peer, c->accept_ns, &t));  // miss, and no fallback
    EXPECT_EQ(t.origin(), Origin::kNone);
    EXPECT_EQ(events_of(t), std::vector<E>{E::kMapNotFound});
    record(*c, c->accept_ns - 1000);
    EXPECT_TRUE(r.resolve(c->server.get(), c->peer, c->accept_ns, &t));
    EXPECT_EQ(t.origin(), Origin::kXdp);
  }
  {
    TcpSynResolver r(Source::kSavedSyn);
    r.set_grant(grant());
    LoopbackListener l(false, &r);
    auto c = l.connect_one();
    ASSERT_TRUE(c);
    record(*c, c->accept_ns - 1000);
    SynTrace t;
    auto f = r.resolve(c->server.get(), c->peer, c->accept_ns, &t);
    ASSERT_TRUE(f);
    EXPECT_EQ(t.origin(), Origin::kSavedSyn);
    EXPECT_EQ(f->ttl, 64);
  }
}

}  // namespace
}  // namespace huginn::worker::syn
