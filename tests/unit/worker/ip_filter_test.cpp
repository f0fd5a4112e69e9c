// The IP filter: compiled prefix sets, allow/deny semantics and scope.
#include "worker/proxy/ip_filter.h"

#include <gtest/gtest.h>

#include <random>

namespace huginn::worker::proxy {
namespace {

std::vector<net::Cidr> cidrs(std::initializer_list<const char*> texts) {
  std::vector<net::Cidr> out;
  for (const char* t : texts) {
    auto c = net::Cidr::parse(t);
    EXPECT_TRUE(c) << t;
    if (c) out.push_back(*c);
  }
  return out;
}

net::SocketAddress ip(const char* text) {
  auto a = huginn::net::SocketAddress::from_ip(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(net::SocketAddress{});
}

TEST(PrefixSet, MatchesExactlyTheCoveredAddresses) {
  PrefixSet s(cidrs({"10.0.0.0/8", "192.168.1.0/24", "203.0.113.7", "2001:db8::/32", "::1/128"}));
  EXPECT_TRUE(s.contains(ip("10.0.0.0")));
  EXPECT_TRUE(s.contains(ip("10.255.255.255")));
  EXPECT_FALSE(s.contains(ip("11.0.0.0")));
  EXPECT_FALSE(s.contains(ip("9.255.255.255")));
  EXPECT_TRUE(s.contains(ip("192.168.1.200")));
  EXPECT_FALSE(s.contains(ip("192.168.2.1")));
  EXPECT_TRUE(s.contains(ip("203.0.113.7")));
  EXPECT_FALSE(s.contains(ip("203.0.113.8")));
  EXPECT_TRUE(s.contains(ip("2001:db8:ffff::1")));
  EXPECT_FALSE(s.contains(ip("2001:db9::1")));
  EXPECT_TRUE(s.contains(ip("::1")));
  EXPECT_FALSE(s.contains(ip("::2")));
  // IPv4-mapped IPv6 is checked as IPv4.
  EXPECT_TRUE(s.contains(ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(s.contains(ip("::ffff:11.1.2.3")));
}

TEST(PrefixSet, MergesOverlappingAndAdjacentRanges) {
  PrefixSet s(cidrs({"10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/24", "10.0.1.0/24", "0.0.0.0/0", "::/0"}));
  EXPECT_EQ(s.ranges(), 2u);  // everything, per family
  EXPECT_TRUE(s.contains(ip("255.255.255.255")));
  EXPECT_TRUE(s.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  PrefixSet t(cidrs({"10.0.0.0/25", "10.0.0.128/25", "10.0.2.0/24"}));
  EXPECT_EQ(t.ranges(), 2u);
  EXPECT_FALSE(t.contains(ip("10.0.1.1")));
}

TEST(PrefixSet, AgreesWithALinearScanOnRandomSets) {
  std::mt19937 rng(7);
  auto r4 = [&rng] { return static_cast<unsigned>(rng() % 4); };
  for (int round = 0; round < 50; ++round) {
    std::vector<net::Cidr> list;
    for (int i = 0; i < 20; ++i) {
      net::Cidr c;
      const bool v6 = rng() % 2;
      c.family = v6 ? AF_INET6 : AF_INET;
      c.prefix_len = static_cast<uint8_t>(rng() % (v6 ? 129 : 33));
      const size_t n = v6 ? 16 : 4;
      for (size_t b = 0; b < n; ++b)
        c.addr[b] = static_cast<uint8_t>(rng() % 4);  // dense space: many overlaps
      // Zero the host bits as Cidr::parse does.
      for (size_t b = 0; b < n; ++b) {
        const int keep = static_cast<int>(c.prefix_len) - static_cast<int>(b * 8);
        if (keep <= 0)
          c.addr[b] = 0;
        else if (keep < 8)
          c.addr[b] &= static_cast<uint8_t>(0xff << (8 - keep));
      }
      list.push_back(c);
    }
    PrefixSet s(list);
    for (int q = 0; q < 200; ++q) {
      const bool v6 = rng() % 2;
      char text[64];
      if (v6) {
        snprintf(text, sizeof text, "%x%x::%x", r4(), r4(), r4());
      } else {
        snprintf(text, sizeof text, "%u.%u.%u.%u", r4(), r4(), r4(), r4());
      }
      const auto a = ip(text);
      bool linear = false;
      for (const auto& c : list) linear = linear || c.contains(a);
      EXPECT_EQ(s.contains(a), linear) << text;
    }
  }
}

struct IpFilterScopes : ::testing::Test {
  IpFilterScopes() {
    cfg.security.ip_filter.mode = config::IpFilter::Mode::kDenylist;
    cfg.security.ip_filter.denylist = cidrs({"127.0.0.3"});
    config::Domain d;
    d.host = "a.test";
    config::IpFilter allow;
    allow.mode = config::IpFilter::Mode::kAllowlist;
    allow.allowlist = cidrs({"127.0.0.0/30", "::1"});
    d.security.ip_filter = allow;
    config::Route open;
    open.prefix = "/open";
    config::IpFilter off;
    d.routes.push_back(open);
    d.routes.back().security.ip_filter = off;
    config::Route plain;
    plain.prefix = "/";
    d.routes.push_back(plain);
    cfg.domains.push_back(d);
    config::Domain other;
    other.host = "b.test";
    cfg.domains.push_back(other);
  }
  config::Config cfg;
};

TEST_F(IpFilterScopes, RouteThenDomainThenGlobalWholeBlockOverride) {
  IpFilterSet set(cfg);
  const auto& a = cfg.domains[0];
  const auto& b = cfg.domains[1];
  // Route with its own (disabled) block: everyone passes.
  const auto& f_open = IpFilterSet::effective(cfg, &a, &a.routes[0]);
  EXPECT_TRUE(set.allows(f_open, ip("192.0.2.1")));
  // Route without a block → the domain's allowlist.
  const auto& f_plain = IpFilterSet::effective(cfg, &a, &a.routes[1]);
  EXPECT_TRUE(set.allows(f_plain, ip("127.0.0.2")));
  EXPECT_TRUE(set.allows(f_plain, ip("::1")));
  EXPECT_FALSE(set.allows(f_plain, ip("127.0.0.4")));
  EXPECT_FALSE(set.allows(f_plain, ip("::2")));
  // No route → the domain's block still applies.
  EXPECT_FALSE(set.allows(IpFilterSet::effective(cfg, &a, nullptr), ip("127.0.0.4")));
  // Another domain → the global denylist.
  const auto& f_b = IpFilterSet::effective(cfg, &b, nullptr);
  EXPECT_FALSE(set.allows(f_b, ip("127.0.0.3")));
  EXPECT_TRUE(set.allows(f_b, ip("127.0.0.4")));
}

TEST_F(IpFilterScopes, EmptyListsFollowUpstream) {
  config::Config c;
  c.security.ip_filter.mode = config::IpFilter::Mode::kAllowlist;  // empty allowlist: nobody
  IpFilterSet s1(c);
  EXPECT_FALSE(s1.allows(c.security.ip_filter, ip("127.0.0.1")));
  c.security.ip_filter.mode = config::IpFilter::Mode::kDenylist;  // empty denylist: everybody
  IpFilterSet s2(c);
  EXPECT_TRUE(s2.allows(c.security.ip_filter, ip("127.0.0.1")));
}

TEST(FromIp, AcceptsLiteralsOnly) {
  EXPECT_TRUE(huginn::net::SocketAddress::from_ip("127.0.0.1"));
  EXPECT_TRUE(huginn::net::SocketAddress::from_ip("::1"));
  EXPECT_TRUE(huginn::net::SocketAddress::from_ip("::ffff:1.2.3.4"));
  EXPECT_FALSE(huginn::net::SocketAddress::from_ip(""));
  EXPECT_FALSE(huginn::net::SocketAddress::from_ip("localhost"));
  EXPECT_FALSE(huginn::net::SocketAddress::from_ip("[::1]"));
  EXPECT_FALSE(huginn::net::SocketAddress::from_ip("1.2.3.4:80"));
  EXPECT_FALSE(huginn::net::SocketAddress::from_ip(std::string(100, '1')));
}

}  // namespace
}  // namespace huginn::worker::proxy
