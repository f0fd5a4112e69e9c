// The client address for rate limiting: X-Forwarded-For walked right to left
// through security.trusted_proxies.
#include "worker/proxy/client_ip.h"

#include <gtest/gtest.h>

namespace huginn::worker::proxy {
namespace {

config::TrustedProxies trust(std::initializer_list<const char*> cidrs, bool insecure = false) {
  config::TrustedProxies t;
  for (const char* c : cidrs) t.cidrs.push_back(*huginn::net::Cidr::parse(c));
  t.insecure = insecure;
  return t;
}

http1::Headers xff(std::initializer_list<const char*> values) {
  http1::Headers h{{"Host", "x"}};
  for (const char* v : values) h.push_back({"X-Forwarded-For", v});
  return h;
}

TEST(ClientIp, UntrustedPeerIsTheClientWhateverItSends) {
  const auto t = trust({"10.0.0.0/8"});
  EXPECT_EQ(client_ip("192.0.2.7", t, xff({"198.51.100.1"})), "192.0.2.7");
  EXPECT_EQ(client_ip("192.0.2.7", trust({}), xff({"198.51.100.1"})), "192.0.2.7");
}

TEST(ClientIp, TrustedPeerWithoutHeaderIsTheClient) {
  EXPECT_EQ(client_ip("10.1.1.1", trust({"10.0.0.0/8"}), xff({})), "10.1.1.1");
}

TEST(ClientIp, WalksRightToLeftSkippingTrustedHops) {
  const auto t = trust({"10.0.0.0/8", "2001:db8::/32"});
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"203.0.113.9, 198.51.100.1, 10.2.2.2"})), "198.51.100.1");
  // Several fields are one list, in order.
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"203.0.113.9", "198.51.100.1,10.2.2.2", " 10.3.3.3 "})),
            "198.51.100.1");
  EXPECT_EQ(client_ip("2001:db8::1", t, xff({"2001:db8::5, 2001:db8::6"})),
            "2001:db8::5");  // all trusted: leftmost
  EXPECT_EQ(client_ip("2001:db8::1", t, xff({"2a00::1"})), "2a00::1");
}

TEST(ClientIp, SpoofedLeftmostEntriesDoNotMatter) {
  // A client behind a trusted proxy rotates what it puts on the left: the
  // proxy's own append on the right decides.
  const auto t = trust({"10.0.0.0/8"});
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"1.1.1.1, 198.51.100.1"})), "198.51.100.1");
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"2.2.2.2, 198.51.100.1"})), "198.51.100.1");
}

TEST(ClientIp, JunkStopsTheWalkAtTheLastTrustedHop) {
  const auto t = trust({"10.0.0.0/8"});
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"198.51.100.1, unknown, 10.2.2.2"})), "10.2.2.2");
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"not-an-ip"})), "10.0.0.1");
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({", ,"})), "10.0.0.1");  // empty entries are skipped
}

TEST(ClientIp, PortsBracketsAndMappedAddresses) {
  const auto t = trust({"10.0.0.0/8"});
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"198.51.100.1:5555"})), "198.51.100.1");
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"[2a00::1]:443"})), "2a00::1");
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"[2a00::1]"})), "2a00::1");
  EXPECT_EQ(client_ip("10.0.0.1", t, xff({"::ffff:198.51.100.1"})), "198.51.100.1");
  EXPECT_EQ(client_ip("::ffff:10.0.0.1", t, xff({"198.51.100.2"})), "198.51.100.2");
}

TEST(ClientIp, InsecureTrustsEveryHop) {
  const auto t = trust({}, true);
  EXPECT_EQ(client_ip("192.0.2.7", t, xff({"198.51.100.1, 203.0.113.9"})), "198.51.100.1");
  EXPECT_EQ(client_ip("192.0.2.7", t, xff({})), "192.0.2.7");
}

TEST(ClientIp, HeaderNameIsCaseInsensitive) {
  http1::Headers h{{"x-forwarded-for", "198.51.100.1"}};
  EXPECT_EQ(client_ip("10.0.0.1", trust({"10.0.0.0/8"}), h), "198.51.100.1");
}

}  // namespace
}  // namespace huginn::worker::proxy
