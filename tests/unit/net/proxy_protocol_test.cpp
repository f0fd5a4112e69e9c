// PROXY protocol v1/v2 parser: valid and invalid vectors, every prefix of a
// valid header needs more, detection of non-PROXY first bytes.
#include "common/net/proxy_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace huginn::net::proxy_protocol {
namespace {

using namespace std::string_literals;

// A v2 header: fixed part with `ver_cmd`, `fam` and the length of `body`.
std::string v2(uint8_t ver_cmd, uint8_t fam, const std::string& body) {
  std::string h(kV2Signature);
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xff));
  return h + body;
}

std::string be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

std::string inet_block(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  in_addr s{};
  in_addr d{};
  EXPECT_EQ(inet_pton(AF_INET, src, &s), 1);
  EXPECT_EQ(inet_pton(AF_INET, dst, &d), 1);
  return std::string(reinterpret_cast<const char*>(&s), 4) +
         std::string(reinterpret_cast<const char*>(&d), 4) + be16(sport) + be16(dport);
}

std::string inet6_block(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  in6_addr s{};
  in6_addr d{};
  EXPECT_EQ(inet_pton(AF_INET6, src, &s), 1);
  EXPECT_EQ(inet_pton(AF_INET6, dst, &d), 1);
  return std::string(reinterpret_cast<const char*>(&s), 16) +
         std::string(reinterpret_cast<const char*>(&d), 16) + be16(sport) + be16(dport);
}

std::string tlv(uint8_t type, const std::string& value) {
  return std::string(1, static_cast<char>(type)) + be16(static_cast<uint16_t>(value.size())) + value;
}

// A v2 PROXY TCP4 header with a correct CRC32C TLV appended.
std::string v2_with_crc(const std::string& extra_tlvs) {
  std::string h =
      v2(0x21, 0x11, inet_block("1.2.3.4", "5.6.7.8", 1000, 443) + extra_tlvs + tlv(0x03, "\0\0\0\0"s));
  const uint32_t crc = crc32c(h);
  for (int i = 0; i < 4; ++i) h[h.size() - 4 + i] = static_cast<char>(crc >> (24 - 8 * i));
  return h;
}

void expect_error(const std::string& in, const char* what) {
  Result r = parse(in);
  EXPECT_EQ(r.status, Status::kError) << what;
  if (r.status == Status::kError) {
    EXPECT_NE(r.error, nullptr);
  }
}

TEST(ProxyProtocolCrc, KnownVector) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("6789", crc32c("12345")), 0xE3069283u);
}

TEST(ProxyProtocolV1, Tcp4) {
  const std::string h = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
  Result r = parse(h + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(r.status, Status::kDone) << (r.error ? r.error : "");
  EXPECT_EQ(r.header.version, 1);
  EXPECT_EQ(r.header.length, h.size());
  EXPECT_EQ(r.header.family, Family::kInet);
  EXPECT_TRUE(r.header.carries_client());
  EXPECT_EQ(r.header.source.to_string(), "192.168.0.1:56324");
  EXPECT_EQ(r.header.destination.to_string(), "192.168.0.11:443");
}

TEST(ProxyProtocolV1, Tcp6) {
  const std::string h = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
  Result r = parse(h);
  ASSERT_EQ(r.status, Status::kDone) << (r.error ? r.error : "");
  EXPECT_EQ(r.header.family, Family::kInet6);
  EXPECT_EQ(r.header.length, h.size());
  EXPECT_EQ(r.header.source.to_string(), "[2001:db8::1]:0");
  EXPECT_EQ(r.header.destination.to_string(), "[::1]:65535");
  // IPv4-mapped: kept as given; the caller normalises.
  r = parse("PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n");
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.header.source.normalized().ip_string(), "10.0.0.1");
}

TEST(ProxyProtocolV1, Unknown) {
  for (const char* h :
       {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", "PROXY UNKNOWN whatever\r\n"}) {
    Result r = parse(h);
    ASSERT_EQ(r.status, Status::kDone) << h;
    EXPECT_EQ(r.header.family, Family::kUnspec);
    EXPECT_FALSE(r.header.carries_client());
    EXPECT_EQ(r.header.length, std::string(h).size());
  }
}

TEST(ProxyProtocolV1, LongestValidLine) {
  // The worst case of the spec (UNKNOWN with the longest TCP6 fields): 107 bytes.
  const std::string h =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 "
      "65535\r\n";
  ASSERT_EQ(h.size(), kV1MaxLength);
  Result r = parse(h);
  ASSERT_EQ(r.status, Status::kDone) << (r.error ? r.error : "");
  EXPECT_EQ(r.header.length, kV1MaxLength);
  // The longest TCP6 line (104 bytes).
  r = parse(
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 "
      "65535\r\n");
  ASSERT_EQ(r.status, Status::kDone) << (r.error ? r.error : "");
  EXPECT_EQ(r.header.length, 104u);
  // An UNKNOWN line padded past 107 bytes is refused.
  expect_error("PROXY UNKNOWN " + std::string(100, 'x') + "\r\n", "long unknown");
  expect_error("PROXY UNKNOWN " + std::string(92, 'x') + "\r\n", "CRLF straddles byte 107");
}

TEST(ProxyProtocolV1, EveryPrefixNeedsMore) {
  const std::string h = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
  for (size_t n = 0; n < h.size(); ++n)
    EXPECT_EQ(parse(h.substr(0, n)).status, Status::kNeedMore) << n << ": " << h.substr(0, n);
  EXPECT_EQ(parse(h).status, Status::kDone);
  const std::string u = "PROXY UNKNOWN\r\n";
  for (size_t n = 0; n < u.size(); ++n) EXPECT_EQ(parse(u.substr(0, n)).status, Status::kNeedMore) << n;
}

TEST(ProxyProtocolV1, InvalidLines) {
  const std::vector<std::string> bad = {
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",                       // LF without CR
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",                      // CR without LF
      "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",                    // double space
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",                    // trailing space
      "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",                       // missing port
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",                   // extra field
      "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",                 // port out of range
      "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",                    // leading zero
      "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",                    // sign
      "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",                    // negative
      "PROXY TCP4 1.2.3.4 5.6.7.8 1x 2\r\n",                    // trailing junk
      "PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n",                // too many digits
      "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",                       // 3 octets
      "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",                   // 5 octets
      "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",                   // octet > 255
      "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",                    // octal-looking octet
      "PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n",                      // empty octet
      "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",                         // IPv6 for TCP4
      "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",                         // IPv4 for TCP6
      "PROXY TCP6 ::1%eth0 ::1 1 2\r\n",                        // scope id
      "PROXY TCP6 :::1 ::1 1 2\r\n",                            // bad IPv6
      "PROXY TCP6 [::1] ::1 1 2\r\n",                           // brackets
      "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",                     // unknown protocol
      "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",                     // case matters
      "PROXY \r\n",                                             // no protocol
      "PROXY UNKNOWNX\r\n",                                     // not UNKNOWN
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\x01\r\n"s,                // control character
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 \xff\r\n",                  // non-ASCII
      "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",                    // tab
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2" + std::string(90, ' '),  // no CRLF in 107 bytes
  };
  for (const auto& b : bad) expect_error(b, b.c_str());
}

TEST(ProxyProtocolV1, EarlyRejectOfUnknownProtocol) {
  // Decided before the CRLF: the protocol word cannot become a valid one.
  EXPECT_EQ(parse("PROXY X").status, Status::kError);
  EXPECT_EQ(parse("PROXY TCP5").status, Status::kError);
  EXPECT_EQ(parse("PROXY TCP").status, Status::kNeedMore);
}

TEST(ProxyProtocolDetect, NotProxy) {
  for (const std::string& s :
       {"GET / HTTP/1.1\r\n"s, "POST / HTTP/1.1\r\n"s, "PUT /x HTTP/1.1\r\n"s,
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"s, "PROXX "s, "PROXYZ"s, "\x16\x03\x01\x02\x00"s,
        "\r\nGET / HTTP/1.1\r\n"s, "\r\n\r\nX"s, "\r\n\r\n\0\r\nQUIT\r"s, "\0"s}) {
    EXPECT_EQ(parse(s).status, Status::kNotProxy) << s;
  }
  EXPECT_EQ(parse("").status, Status::kNeedMore);
  EXPECT_EQ(parse("P").status, Status::kNeedMore);
  EXPECT_EQ(parse("\r").status, Status::kNeedMore);
  EXPECT_EQ(parse("\r\n\r\n\0\r\nQUI"s).status, Status::kNeedMore);
}

TEST(ProxyProtocolV2, ProxyTcp4) {
  const std::string h = v2(0x21, 0x11, inet_block("203.0.113.7", "10.0.0.1", 51000, 443));
  ASSERT_EQ(h.size(), 28u);
  Result r = parse(h + "\x16\x03\x01");
  ASSERT_EQ(r.status, Status::kDone) << (r.error ? r.error : "");
  EXPECT_EQ(r.header.version, 2);
  EXPECT_EQ(r.header.length, 28u);
  EXPECT_EQ(r.header.command, Command::kProxy);
  EXPECT_TRUE(r.header.carries_client());
  EXPECT_EQ(r.header.source.to_string(), "203.0.113.7:51000");
  EXPECT_EQ(r.header.destination.to_string(), "10.0.0.1:443");
}

TEST(ProxyProtocolV2, ProxyTcp6WithTlvs) {
  const std::string body = inet6_block("2001:db8::42", "2001:db8::1", 40000, 8443) + tlv(0x01, "h2") +
                           tlv(0x04, std::string(10, '\0')) + tlv(0x20, std::string(5, 'x')) + tlv(0xEE, "");
  const std::string h = v2(0x21, 0x21, body);
  Result r = parse(h);
  ASSERT_EQ(r.status, Status::kDone) << (r.error ? r.error : "");
  EXPECT_EQ(r.header.length, h.size());
  EXPECT_EQ(r.header.family, Family::kInet6);
  EXPECT_EQ(r.header.source.to_string(), "[2001:db8::42]:40000");
  EXPECT_EQ(r.header.destination.to_string(), "[2001:db8::1]:8443");
}

TEST(ProxyProtocolV2, EveryPrefixNeedsMore) {
  const std::string h = v2(0x21, 0x11, inet_block("1.2.3.4", "5.6.7.8", 1, 2) + tlv(0x05, "abc"));
  for (size_t n = 0; n < h.size(); ++n) EXPECT_EQ(parse(h.substr(0, n)).status, Status::kNeedMore) << n;
  EXPECT_EQ(parse(h).status, Status::kDone);
}

TEST(ProxyProtocolV2, LocalKeepsPeer) {
  Result r = parse(v2(0x20, 0x00, ""));
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.header.command, Command::kLocal);
  EXPECT_FALSE(r.header.carries_client());
  EXPECT_EQ(r.header.length, 16u);
  // LOCAL with an address block (health checks of some balancers): discarded.
  r = parse(v2(0x20, 0x11, inet_block("1.2.3.4", "5.6.7.8", 1, 2)));
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_FALSE(r.header.carries_client());
  EXPECT_EQ(r.header.length, 28u);
}

TEST(ProxyProtocolV2, NoClientAddressFamilies) {
  // PROXY + UNSPEC, UNIX, and INET over DGRAM: valid, but no TCP client.
  for (const auto& [fam, body] :
       std::vector<std::pair<uint8_t, std::string>>{{0x00, ""},
                                                    {0x01, ""},
                                                    {0x31, std::string(216, 'u')},
                                                    {0x12, inet_block("1.2.3.4", "5.6.7.8", 1, 2)},
                                                    {0x10, inet_block("1.2.3.4", "5.6.7.8", 1, 2)}}) {
    Result r = parse(v2(0x21, fam, body));
    ASSERT_EQ(r.status, Status::kDone) << int(fam) << (r.error ? r.error : "");
    EXPECT_FALSE(r.header.carries_client()) << int(fam);
  }
}

TEST(ProxyProtocolV2, Crc32c) {
  const std::string good = v2_with_crc(tlv(0x01, "http/1.1"));
  Result r = parse(good);
  ASSERT_EQ(r.status, Status::kDone) << (r.error ? r.error : "");
  EXPECT_EQ(r.header.length, good.size());
  for (size_t i = 12; i < good.size(); ++i) {
    // Not covered by the checksum's verdict: the command (PROXY -> LOCAL
    // discards the block), the length, and the CRC TLV's own type byte.
    if (i == 12 || i == 14 || i == 15 || i == good.size() - 7) continue;
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(parse(bad).status, Status::kError) << i;
  }
}

TEST(ProxyProtocolV2, InvalidHeaders) {
  const std::string a4 = inet_block("1.2.3.4", "5.6.7.8", 1, 2);
  expect_error(v2(0x11, 0x11, a4), "version 1");
  expect_error(v2(0x31, 0x11, a4), "version 3");
  expect_error(v2(0x22, 0x11, a4), "command 2");
  expect_error(v2(0x2F, 0x11, a4), "command 15");
  expect_error(v2(0x21, 0x41, a4), "family 4");
  expect_error(v2(0x21, 0x13, a4), "protocol 3");
  expect_error(v2(0x21, 0x11, a4.substr(0, 11)), "short INET block");
  expect_error(v2(0x21, 0x21, a4), "short INET6 block");
  expect_error(v2(0x21, 0x31, std::string(215, 'u')), "short UNIX block");
  expect_error(v2(0x21, 0x11, a4 + "\x01"), "1-byte TLV");
  expect_error(v2(0x21, 0x11, a4 + "\x01\x00"), "2-byte TLV");
  expect_error(v2(0x21, 0x11, a4 + "\x01\x00\x05" + "abcd"), "TLV past the end");
  expect_error(v2(0x21, 0x11, a4 + tlv(0x03, "abc")), "CRC32C of 3 bytes");
  expect_error(v2(0x21, 0x11, a4 + tlv(0x03, "abcde")), "CRC32C of 5 bytes");
  expect_error(v2(0x21, 0x11, a4 + tlv(0x03, "\0\0\0\0"s)), "wrong CRC32C");
  // Early: the version is checked as soon as byte 13 is there.
  EXPECT_EQ(parse(std::string(kV2Signature) + "\x11").status, Status::kError);
}

TEST(ProxyProtocolV2, LengthCap) {
  const std::string a4 = inet_block("1.2.3.4", "5.6.7.8", 1, 2);
  const std::string at_cap = v2(0x21, 0x11, a4 + tlv(0x04, std::string(kV2MaxPayload - a4.size() - 3, '\0')));
  ASSERT_EQ(at_cap.size(), kMaxHeaderLength);
  EXPECT_EQ(parse(at_cap).status, Status::kDone);
  // One byte over: refused from the 16 fixed bytes alone, without waiting.
  const std::string over = v2(0x21, 0x11, a4 + tlv(0x04, std::string(kV2MaxPayload - a4.size() - 2, '\0')));
  EXPECT_EQ(parse(over.substr(0, 16)).status, Status::kError);
  EXPECT_EQ(parse(std::string(kV2Signature) + "\x21\x11\xff\xff"s).status, Status::kError);
}

}  // namespace
}  // namespace huginn::net::proxy_protocol
