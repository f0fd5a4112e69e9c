// Cleartext protocol detection: HTTP/2 prior knowledge vs HTTP/1.1.
#include <gtest/gtest.h>

#include <string>

#include "worker/net/cleartext_sniffer.h"

namespace huginn::worker::net {
namespace {

TEST(Sniffer, FullPrefaceIsHttp2) {
  EXPECT_EQ(sniff_protocol(kH2Preface), SniffResult::kHttp2);
  EXPECT_EQ(sniff_protocol(std::string(kH2Preface) + "\x00\x00\x00\x04"), SniffResult::kHttp2);
}

TEST(Sniffer, EveryProperPrefixOfThePrefaceNeedsMore) {
  for (size_t n = 0; n < kH2Preface.size(); ++n)
    EXPECT_EQ(sniff_protocol(kH2Preface.substr(0, n)), SniffResult::kNeedMore) << n;
}

TEST(Sniffer, AnyDeviationIsHttp1) {
  EXPECT_EQ(sniff_protocol("GET / HTTP/1.1\r\n"), SniffResult::kHttp1);
  EXPECT_EQ(sniff_protocol("G"), SniffResult::kHttp1);
  EXPECT_EQ(sniff_protocol("PRI * HTTP/1.1\r\n"), SniffResult::kHttp1);
  for (size_t i = 0; i < kH2Preface.size(); ++i) {
    std::string s(kH2Preface);
    s[i] ^= 0x20;
    EXPECT_EQ(sniff_protocol(s), SniffResult::kHttp1) << i;
  }
}

}  // namespace
}  // namespace huginn::worker::net
