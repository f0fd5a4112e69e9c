#include "common/fingerprint/akamai.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace huginn::fp {
namespace {

const std::vector<std::string> kMasp = {":method", ":authority", ":scheme", ":path"};

TEST(AkamaiBuilderTest, ChromeLikeSequence) {
  AkamaiBuilder b;
  b.on_settings({{1, 65536}, {2, 0}, {4, 6291456}, {6, 262144}}, false);
  b.on_window_update(0, 15663105);
  EXPECT_FALSE(b.complete());
  b.on_headers(1, kMasp);
  EXPECT_TRUE(b.complete());
  EXPECT_EQ(b.value(), "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p");
  EXPECT_EQ(b.headers_stream_id(), 1u);
}

TEST(AkamaiBuilderTest, EmptySettingsFrameGivesEmptyField) {
  AkamaiBuilder b;
  b.on_settings({}, false);
  b.on_headers(1, {":path", ":method", ":authority", ":scheme"});
  EXPECT_EQ(b.value(), "|00|0|p,m,a,s");
}

TEST(AkamaiBuilderTest, NoFramesBeforeHeaders) {
  AkamaiBuilder b;
  EXPECT_EQ(b.value(), "|00|0|");
  b.on_headers(1, kMasp);
  EXPECT_EQ(b.value(), "|00|0|m,a,s,p");
}

TEST(AkamaiBuilderTest, OnlyFirstNonAckSettingsCounts) {
  AkamaiBuilder b;
  b.on_settings({}, true);  // ACK of the server's SETTINGS first (ignored)
  b.on_settings({{3, 100}, {4, 33554432}, {2, 0}}, false);
  b.on_settings({{1, 4096}}, false);
  b.on_settings({}, true);
  b.on_headers(1, {":method", ":path", ":scheme", ":authority"});
  EXPECT_EQ(b.value(), "3:100;4:33554432;2:0|00|0|m,p,s,a");
}

TEST(AkamaiBuilderTest, SettingsKeepWireOrderDuplicatesAndUnknownIds) {
  AkamaiBuilder b;
  b.on_settings({{2, 0}, {3, 100}, {4, 2097152}, {8, 1}, {9, 1}, {0x1234, 4294967295u}, {2, 1}}, false);
  b.on_headers(1, {":method", ":scheme", ":authority", ":path"});
  EXPECT_EQ(b.value(), "2:0;3:100;4:2097152;8:1;9:1;4660:4294967295;2:1|00|0|m,s,a,p");
}

TEST(AkamaiBuilderTest, WindowUpdateFirstConnectionLevelOnly) {
  AkamaiBuilder b;
  b.on_settings({{2, 0}}, false);
  b.on_window_update(1, 999);  // stream-level: ignored
  b.on_window_update(0, 10485760);
  b.on_window_update(0, 5);  // second connection-level: ignored
  b.on_headers(1, kMasp);
  EXPECT_EQ(b.value(), "2:0|10485760|0|m,a,s,p");
}

TEST(AkamaiBuilderTest, PriorityFramesWeightPlusOneAndExclusive) {
  AkamaiBuilder b;
  b.on_settings({{3, 100}, {4, 65535}}, false);
  b.on_priority(3, false, 0, 200);
  b.on_priority(5, false, 0, 100);
  b.on_priority(7, false, 0, 0);
  b.on_priority(9, false, 7, 0);
  b.on_priority(11, true, 3, 255);
  b.on_headers(13, {":method", ":path", ":scheme", ":authority"}, H2Priority{false, 11, 15});
  EXPECT_EQ(b.value(), "3:100;4:65535|00|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:1:3:256|m,p,s,a");
  ASSERT_TRUE(b.headers_priority().has_value());
  EXPECT_EQ(b.headers_priority()->depends_on, 11u);
  EXPECT_EQ(b.headers_priority()->weight, 15);
}

TEST(AkamaiBuilderTest, HeadersPriorityIsNotPartOfTheString) {
  AkamaiBuilder with, without;
  with.on_headers(1, kMasp, H2Priority{true, 0, 255});
  without.on_headers(1, kMasp);
  EXPECT_EQ(with.value(), without.value());
  EXPECT_EQ(with.value(), "|00|0|m,a,s,p");
}

TEST(AkamaiBuilderTest, FramesAfterFirstHeadersAreIgnored) {
  AkamaiBuilder b;
  b.on_settings({{4, 1}}, false);
  b.on_headers(1, kMasp);
  const std::string fixed = b.value();
  b.on_settings({{5, 2}}, false);
  b.on_window_update(0, 77);
  b.on_priority(3, false, 0, 1);
  b.on_headers(3, {":path"});
  EXPECT_EQ(b.value(), fixed);
  EXPECT_EQ(fixed, "4:1|00|0|m,a,s,p");
  EXPECT_EQ(b.headers_stream_id(), 1u);
}

TEST(AkamaiBuilderTest, PseudoHeaderLetters) {
  AkamaiBuilder b;
  b.on_headers(1, {":authority", ":method", ":path", ":scheme", ":protocol", "x", ":", "regular"});
  EXPECT_EQ(b.value(), "|00|0|a,m,p,s,p");
}

TEST(AkamaiBuilderTest, EntriesAreBounded) {
  AkamaiBuilder b;
  std::vector<std::pair<uint16_t, uint32_t>> many;
  for (uint16_t i = 0; i < 500; ++i) many.emplace_back(i, i);
  b.on_settings(many, false);
  for (uint32_t i = 0; i < 500; ++i) b.on_priority(2 * i + 1, false, 0, 0);
  std::vector<std::string> pseudo(500, ":method");
  b.on_headers(1, pseudo);
  const std::string v = b.value();
  const size_t p1 = v.find('|');
  const size_t p2 = v.find('|', p1 + 1);
  const size_t p3 = v.find('|', p2 + 1);
  const std::string settings = v.substr(0, p1);
  const std::string prio = v.substr(p2 + 1, p3 - p2 - 1);
  const std::string ps = v.substr(p3 + 1);
  EXPECT_EQ(std::count(settings.begin(), settings.end(), ';'), static_cast<long>(kAkamaiMaxEntries - 1));
  EXPECT_EQ(std::count(prio.begin(), prio.end(), ','), static_cast<long>(kAkamaiMaxEntries - 1));
  EXPECT_EQ(ps.size(), 2 * kAkamaiMaxEntries - 1);
  EXPECT_EQ(settings.substr(settings.rfind(';') + 1), "63:63");
}

}  // namespace
}  // namespace huginn::fp
