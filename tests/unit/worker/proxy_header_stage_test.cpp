// The PROXY stage's pure decisions: who may send a header, and what a
// connection's first bytes mean in optional and require mode.
#include "worker/net/proxy_header_stage.h"

#include <gtest/gtest.h>

#include <string>

namespace huginn::worker::net {
namespace {

using namespace std::string_literals;
using Mode = config::ProxyProtocol::Mode;
using Action = HeaderVerdict::Action;
using Event = metrics::ProxyProtocolEvent;

huginn::net::SocketAddress addr(const char* text) {
  auto a = huginn::net::SocketAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(huginn::net::SocketAddress{});
}

config::TrustedProxies trusted(std::initializer_list<const char*> cidrs, bool insecure = false) {
  config::TrustedProxies t;
  for (const char* c : cidrs) t.cidrs.push_back(*huginn::net::Cidr::parse(c));
  t.insecure = insecure;
  return t;
}

TEST(ProxyPeerTrusted, CidrsFamiliesAndInsecure) {
  const auto t = trusted({"127.0.0.1", "10.0.0.0/8", "2001:db8::/32"});
  EXPECT_TRUE(proxy_peer_trusted(t, addr("127.0.0.1:5000")));
  EXPECT_FALSE(proxy_peer_trusted(t, addr("127.0.0.2:5000")));
  EXPECT_TRUE(proxy_peer_trusted(t, addr("10.255.0.1:1")));
  EXPECT_FALSE(proxy_peer_trusted(t, addr("11.0.0.1:1")));
  EXPECT_TRUE(proxy_peer_trusted(t, addr("[2001:db8::5]:1")));
  EXPECT_FALSE(proxy_peer_trusted(t, addr("[::1]:1")));
  // A dual-stack listener sees IPv4 peers as IPv4-mapped IPv6.
  EXPECT_TRUE(proxy_peer_trusted(t, addr("[::ffff:10.1.2.3]:1")));
  EXPECT_FALSE(proxy_peer_trusted(trusted({}), addr("127.0.0.1:1")));
  EXPECT_FALSE(proxy_peer_trusted(t, huginn::net::SocketAddress{}));
  EXPECT_TRUE(proxy_peer_trusted(trusted({}, true), addr("[::1]:1")));
}

TEST(JudgeProxyHeader, ValidHeadersInBothModes) {
  for (Mode m : {Mode::kOptional, Mode::kRequire}) {
    const std::string h = "PROXY TCP4 198.51.100.7 10.0.0.1 40000 443\r\n";
    HeaderVerdict v = judge_proxy_header(m, h + "GET", false, false);
    ASSERT_EQ(v.action, Action::kProceed);
    EXPECT_EQ(v.consumed, h.size());
    ASSERT_TRUE(v.client.has_value());
    EXPECT_EQ(v.client->to_string(), "198.51.100.7:40000");
    EXPECT_EQ(v.event, Event::kAccepted);
    // IPv4-mapped source: normalised to IPv4.
    v = judge_proxy_header(m, "PROXY TCP6 ::ffff:198.51.100.7 ::1 1 2\r\n", false, false);
    ASSERT_TRUE(v.client.has_value());
    EXPECT_TRUE(v.client->is_v4());
    // A complete header still counts when the peer closed right after it.
    EXPECT_EQ(judge_proxy_header(m, h, true, false).action, Action::kProceed);
    // UNKNOWN / LOCAL: the socket peer stays.
    v = judge_proxy_header(m, "PROXY UNKNOWN\r\n", false, false);
    EXPECT_EQ(v.action, Action::kProceed);
    EXPECT_FALSE(v.client.has_value());
    EXPECT_EQ(v.event, Event::kNoClientAddr);
    v = judge_proxy_header(m, "\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"s, false, false);
    EXPECT_EQ(v.action, Action::kProceed);
    EXPECT_EQ(v.consumed, 16u);
    EXPECT_EQ(v.event, Event::kNoClientAddr);
  }
}

TEST(JudgeProxyHeader, NoHeader) {
  HeaderVerdict v = judge_proxy_header(Mode::kOptional, "GET / HTTP/1.1\r\n", false, false);
  EXPECT_EQ(v.action, Action::kProceed);
  EXPECT_EQ(v.consumed, 0u);
  EXPECT_FALSE(v.client.has_value());
  EXPECT_EQ(v.event, Event::kPassthrough);
  v = judge_proxy_header(Mode::kRequire, "GET / HTTP/1.1\r\n", false, false);
  EXPECT_EQ(v.action, Action::kDrop);
  EXPECT_EQ(v.event, Event::kDroppedBadHeader);
  v = judge_proxy_header(Mode::kRequire, "\x16\x03\x01", false, false);
  EXPECT_EQ(v.action, Action::kDrop);
}

TEST(JudgeProxyHeader, BadHeaderInBothModes) {
  for (Mode m : {Mode::kOptional, Mode::kRequire}) {
    HeaderVerdict v = judge_proxy_header(m, "PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n", false, false);
    EXPECT_EQ(v.action, Action::kDrop);
    EXPECT_EQ(v.event, Event::kDroppedBadHeader);
    EXPECT_NE(v.reason, nullptr);
    // Truncated by the peer closing.
    v = judge_proxy_header(m, "PROXY TCP4 1.2.3.4", true, false);
    EXPECT_EQ(v.action, Action::kDrop);
    EXPECT_EQ(v.event, Event::kDroppedBadHeader);
  }
}

TEST(JudgeProxyHeader, WaitAndTimeout) {
  for (Mode m : {Mode::kOptional, Mode::kRequire}) {
    EXPECT_EQ(judge_proxy_header(m, "", false, false).action, Action::kWait);
    EXPECT_EQ(judge_proxy_header(m, "PROXY TCP4 1.2", false, false).action, Action::kWait);
    HeaderVerdict v = judge_proxy_header(m, "PROXY TCP4 1.2", false, true);
    EXPECT_EQ(v.action, Action::kDrop);
    EXPECT_EQ(v.event, Event::kDroppedTimeout);
    // Closed before any byte: dropped, not counted.
    v = judge_proxy_header(m, "", true, false);
    EXPECT_EQ(v.action, Action::kDrop);
    EXPECT_FALSE(v.event.has_value());
  }
  // Nothing at all by the deadline: require drops, optional takes the peer as the client.
  HeaderVerdict v = judge_proxy_header(Mode::kRequire, "", false, true);
  EXPECT_EQ(v.action, Action::kDrop);
  EXPECT_EQ(v.event, Event::kDroppedTimeout);
  v = judge_proxy_header(Mode::kOptional, "", false, true);
  EXPECT_EQ(v.action, Action::kProceed);
  EXPECT_EQ(v.event, Event::kPassthrough);
  EXPECT_FALSE(v.client.has_value());
}

}  // namespace
}  // namespace huginn::worker::net
