#include "common/net/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

namespace huginn::net {
namespace {

struct ParseCase {
  const char* text;
  bool valid;
  int family;
  const char* formatted;
  uint16_t port;
};

class SocketAddressParse : public ::testing::TestWithParam<ParseCase> {};

TEST_P(SocketAddressParse, Parses) {
  const ParseCase& c = GetParam();
  auto a = SocketAddress::parse(c.text);
  ASSERT_EQ(a.has_value(), c.valid) << c.text;
  if (!c.valid) return;
  EXPECT_EQ(a->family(), c.family);
  EXPECT_EQ(a->to_string(), c.formatted);
  EXPECT_EQ(a->port(), c.port);
  // Formatting round-trips.
  auto again = SocketAddress::parse(a->to_string());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *a);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SocketAddressParse,
    ::testing::Values(ParseCase{"127.0.0.1:80", true, AF_INET, "127.0.0.1:80", 80},
                      ParseCase{"0.0.0.0:0", true, AF_INET, "0.0.0.0:0", 0},
                      ParseCase{"255.255.255.255:65535", true, AF_INET, "255.255.255.255:65535", 65535},
                      ParseCase{"[::1]:80", true, AF_INET6, "[::1]:80", 80},
                      ParseCase{"[::]:8443", true, AF_INET6, "[::]:8443", 8443},
                      ParseCase{"[2001:DB8::1]:1", true, AF_INET6, "[2001:db8::1]:1", 1},
                      ParseCase{"[::ffff:10.0.0.1]:53", true, AF_INET6, "[::ffff:10.0.0.1]:53", 53},
                      ParseCase{"127.0.0.1:007", true, AF_INET, "127.0.0.1:7", 7},
                      ParseCase{"127.0.0.1", false, 0, "", 0}, ParseCase{"127.0.0.1:", false, 0, "", 0},
                      ParseCase{"127.0.0.1:65536", false, 0, "", 0},
                      ParseCase{"127.0.0.1:123456", false, 0, "", 0},
                      ParseCase{"127.0.0.1:-1", false, 0, "", 0}, ParseCase{"127.0.0.1:+80", false, 0, "", 0},
                      ParseCase{"127.0.0.1: 80", false, 0, "", 0}, ParseCase{"localhost:80", false, 0, "", 0},
                      ParseCase{"::1:80", false, 0, "", 0}, ParseCase{"[::1]80", false, 0, "", 0},
                      ParseCase{"[::1]", false, 0, "", 0}, ParseCase{"[127.0.0.1]:80", false, 0, "", 0},
                      ParseCase{"[::1:80", false, 0, "", 0}, ParseCase{"1.2.3:80", false, 0, "", 0},
                      ParseCase{"256.1.1.1:80", false, 0, "", 0},
                      ParseCase{"[fe80::1%eth0]:80", false, 0, "", 0}, ParseCase{"", false, 0, "", 0},
                      ParseCase{":80", false, 0, "", 0}));

TEST(SocketAddress, EmbeddedNulIsRejected) {
  EXPECT_FALSE(SocketAddress::parse(std::string_view("127.0.0.1\0:80", 13)).has_value());
}

TEST(SocketAddress, NormalizedTurnsV4MappedIntoV4) {
  auto a = SocketAddress::parse("[::ffff:192.0.2.7]:4433");
  ASSERT_TRUE(a);
  auto n = a->normalized();
  EXPECT_TRUE(n.is_v4());
  EXPECT_EQ(n.to_string(), "192.0.2.7:4433");
  EXPECT_EQ(n.len(), static_cast<socklen_t>(sizeof(sockaddr_in)));
  auto plain = SocketAddress::parse("[2001:db8::ffff:1]:1");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->normalized(), *plain);
  auto v4 = SocketAddress::parse("10.0.0.1:1");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->normalized(), *v4);
}

TEST(SocketAddress, FromSockaddrAndAccessors) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(8080);
  inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
  auto a = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_string(), "10.1.2.3:8080");
  EXPECT_EQ(a->ip_string(), "10.1.2.3");
  EXPECT_EQ(a->addr_bytes(), std::string_view("\x0a\x01\x02\x03", 4));
  a->set_port(9);
  EXPECT_EQ(a->port(), 9);
  // Too short a length is refused.
  EXPECT_FALSE(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof(sin) - 1));
  sockaddr unix_sa{};
  unix_sa.sa_family = AF_UNIX;
  EXPECT_FALSE(SocketAddress::from_sockaddr(&unix_sa, sizeof(unix_sa)));
  EXPECT_FALSE(SocketAddress::from_sockaddr(nullptr, 0));

  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(443);
  inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
  auto b = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->to_string(), "[2001:db8::5]:443");
  EXPECT_EQ(b->ip_string(), "2001:db8::5");
  EXPECT_EQ(b->addr_bytes().size(), 16u);
  EXPECT_FALSE(*a == *b);
}

TEST(SocketAddress, DefaultIsUnspecified) {
  SocketAddress a;
  EXPECT_EQ(a.family(), AF_UNSPEC);
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.to_string(), "");
  EXPECT_TRUE(a.addr_bytes().empty());
  EXPECT_EQ(a, SocketAddress());
}

struct CidrCase {
  const char* text;
  const char* formatted;  // nullptr = invalid
};

class CidrParse : public ::testing::TestWithParam<CidrCase> {};

TEST_P(CidrParse, Parses) {
  auto c = Cidr::parse(GetParam().text);
  if (GetParam().formatted == nullptr) {
    EXPECT_FALSE(c.has_value()) << GetParam().text;
    return;
  }
  ASSERT_TRUE(c.has_value()) << GetParam().text;
  EXPECT_EQ(c->to_string(), GetParam().formatted);
  EXPECT_EQ(Cidr::parse(c->to_string()), c);
}

INSTANTIATE_TEST_SUITE_P(
    Table, CidrParse,
    ::testing::Values(CidrCase{"10.0.0.0/8", "10.0.0.0/8"}, CidrCase{"10.1.2.3/8", "10.0.0.0/8"},
                      CidrCase{"192.168.1.77/26", "192.168.1.64/26"}, CidrCase{"0.0.0.0/0", "0.0.0.0/0"},
                      CidrCase{"1.2.3.4", "1.2.3.4/32"}, CidrCase{"1.2.3.4/32", "1.2.3.4/32"},
                      CidrCase{"::1", "::1/128"}, CidrCase{"::/0", "::/0"},
                      CidrCase{"2001:db8:abcd::1/33", "2001:db8:8000::/33"},
                      CidrCase{"::ffff:10.0.0.0/104", "10.0.0.0/8"}, CidrCase{"::ffff:1.2.3.4", "1.2.3.4/32"},
                      CidrCase{"10.0.0.0/33", nullptr}, CidrCase{"::/129", nullptr},
                      CidrCase{"10.0.0.0/", nullptr}, CidrCase{"10.0.0.0/-1", nullptr},
                      CidrCase{"10.0.0.0/+8", nullptr}, CidrCase{"10.0.0.0/8/8", nullptr},
                      CidrCase{"10.0.0/8", nullptr}, CidrCase{"", nullptr}, CidrCase{"/8", nullptr},
                      CidrCase{"example.com/8", nullptr}, CidrCase{"10.0.0.0/0008", nullptr},
                      CidrCase{"10.0.0.0 /8", nullptr}));

TEST(Cidr, Contains) {
  auto net8 = *Cidr::parse("10.0.0.0/8");
  EXPECT_TRUE(net8.contains(*SocketAddress::parse("10.255.1.2:1")));
  EXPECT_FALSE(net8.contains(*SocketAddress::parse("11.0.0.1:1")));
  // IPv4-mapped peers match IPv4 prefixes.
  EXPECT_TRUE(net8.contains(*SocketAddress::parse("[::ffff:10.9.9.9]:1")));
  EXPECT_FALSE(net8.contains(*SocketAddress::parse("[2001:db8::1]:1")));

  auto odd = *Cidr::parse("192.168.1.64/26");
  EXPECT_TRUE(odd.contains(*SocketAddress::parse("192.168.1.127:1")));
  EXPECT_FALSE(odd.contains(*SocketAddress::parse("192.168.1.128:1")));
  EXPECT_FALSE(odd.contains(*SocketAddress::parse("192.168.1.63:1")));

  auto all4 = *Cidr::parse("0.0.0.0/0");
  EXPECT_TRUE(all4.contains(*SocketAddress::parse("203.0.113.1:1")));
  EXPECT_FALSE(all4.contains(*SocketAddress::parse("[::1]:1")));

  auto v6 = *Cidr::parse("2001:db8::/33");
  EXPECT_TRUE(v6.contains(*SocketAddress::parse("[2001:db8:7fff::1]:1")));
  EXPECT_FALSE(v6.contains(*SocketAddress::parse("[2001:db8:8000::1]:1")));
  EXPECT_FALSE(v6.contains(*SocketAddress::parse("10.0.0.1:1")));

  auto host = *Cidr::parse("::1");
  EXPECT_TRUE(host.contains(*SocketAddress::parse("[::1]:80")));
  EXPECT_FALSE(host.contains(*SocketAddress::parse("[::2]:80")));

  EXPECT_FALSE(Cidr{}.contains(*SocketAddress::parse("10.0.0.1:1")));
  EXPECT_EQ(Cidr{}.to_string(), "");
}

}  // namespace
}  // namespace huginn::net
