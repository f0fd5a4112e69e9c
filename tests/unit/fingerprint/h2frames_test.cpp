#include "common/fingerprint/h2frames.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/fingerprint/h2_frame_builder.h"

namespace huginn::fp {
namespace {

using namespace huginn::fp::testing;  // NOLINT(build/namespaces)
using Status = H2PrefaceScanner::Status;

constexpr uint8_t kEndStream = 0x1;
constexpr uint8_t kEndHeaders = 0x4;
constexpr uint8_t kPadded = 0x8;
constexpr uint8_t kPriority = 0x20;

H2Bytes chrome_stream() {
  H2Bytes b = preface();
  append(b, settings_frame({{1, 65536}, {2, 0}, {4, 6291456}, {6, 262144}}));
  append(b, window_update_frame(0, 15663105));
  append(b, frame(0x1, kEndStream | kEndHeaders | kPriority, 1, [] {
           H2Bytes p = priority_payload(true, 0, 255);
           append(p, hpack(chrome_request()));
           return p;
         }()));
  return b;
}

const char kChromeAkamai[] = "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p";

Status feed_all(H2PrefaceScanner& s, const H2Bytes& b) { return s.feed(b.data(), b.size()); }

TEST(H2PrefaceScannerTest, ChromeLikeConnection) {
  H2PrefaceScanner s;
  EXPECT_EQ(feed_all(s, chrome_stream()), Status::kDone) << s.error();
  EXPECT_EQ(s.akamai(), kChromeAkamai);
  EXPECT_TRUE(s.builder().complete());
  ASSERT_TRUE(s.builder().headers_priority().has_value());
  EXPECT_TRUE(s.builder().headers_priority()->exclusive);
  EXPECT_EQ(s.builder().headers_priority()->weight, 255);
}

TEST(H2PrefaceScannerTest, EverySegmentationGivesTheSameResult) {
  const H2Bytes b = chrome_stream();
  for (size_t cut = 0; cut <= b.size(); ++cut) {
    H2PrefaceScanner s;
    Status st = s.feed(b.data(), cut);
    if (cut < b.size()) {
      ASSERT_EQ(st, Status::kNeedMore) << "cut " << cut << ": " << s.error();
      st = s.feed(b.data() + cut, b.size() - cut);
    }
    ASSERT_EQ(st, Status::kDone) << "cut " << cut << ": " << s.error();
    EXPECT_EQ(s.akamai(), kChromeAkamai);
  }
  H2PrefaceScanner s;
  for (size_t i = 0; i + 1 < b.size(); ++i) ASSERT_EQ(s.feed(&b[i], 1), Status::kNeedMore) << i;
  EXPECT_EQ(s.feed(&b.back(), 1), Status::kDone);
  EXPECT_EQ(s.akamai(), kChromeAkamai);
}

TEST(H2PrefaceScannerTest, PriorityFramesSettingsAckAndIgnoredFrames) {
  H2Bytes b = preface();
  append(b, settings_frame({{3, 100}, {4, 65535}}));
  append(b, settings_frame({}, true));
  append(b, frame(0x6, 0, 0, H2Bytes(8, 0)));         // PING
  append(b, frame(0xfa, 0xff, 7, H2Bytes(3, 0xee)));  // unknown extension frame
  append(b, frame(0x3, 0, 99, H2Bytes(4, 0)));        // RST_STREAM
  append(b, window_update_frame(5, 1000));            // stream-level
  append(b, priority_frame(3, false, 0, 200));
  append(b, priority_frame(5, false, 0, 100));
  append(b, priority_frame(7, false, 0, 0));
  append(b, priority_frame(9, false, 7, 0));
  append(b, priority_frame(11, false, 3, 0));
  append(b, frame(0x1, kEndHeaders | kPriority, 13, [] {
           H2Bytes p = priority_payload(false, 11, 15);
           append(p, hpack({{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "h"}}));
           return p;
         }()));
  H2PrefaceScanner s;
  ASSERT_EQ(feed_all(s, b), Status::kDone) << s.error();
  EXPECT_EQ(s.akamai(), "3:100;4:65535|00|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1|m,p,s,a");
}

TEST(H2PrefaceScannerTest, ContinuationAndPadding) {
  const H2Bytes block = hpack({{":path", "/x"},
                               {":scheme", "http"},
                               {":authority", "example.org"},
                               {":method", "POST"},
                               {"user-agent", std::string(300, 'u')}});
  ASSERT_GT(block.size(), 20u);
  H2Bytes first;
  first.push_back(5);  // pad length
  first.insert(first.end(), block.begin(), block.begin() + 10);
  first.insert(first.end(), 5, 0);
  H2Bytes b = preface();
  append(b, settings_frame({{2, 0}, {4, 1073741823}}));
  append(b, window_update_frame(0, 1073676288));
  append(b, frame(0x1, kPadded, 1, first));
  append(b, frame(0x9, 0, 1, H2Bytes(block.begin() + 10, block.begin() + 15)));
  append(b, frame(0x9, kEndHeaders, 1, H2Bytes(block.begin() + 15, block.end())));
  H2PrefaceScanner s;
  ASSERT_EQ(feed_all(s, b), Status::kDone) << s.error();
  EXPECT_EQ(s.akamai(), "2:0;4:1073741823|1073676288|0|p,s,a,m");
}

TEST(H2PrefaceScannerTest, EmptySettingsAndNoWindowUpdate) {
  H2Bytes b = preface();
  append(b, settings_frame({}));
  append(b, frame(0x1, kEndHeaders | kEndStream, 1,
                  hpack({{":path", "/"}, {":method", "GET"}, {":authority", "a"}, {":scheme", "http"}})));
  H2PrefaceScanner s;
  ASSERT_EQ(feed_all(s, b), Status::kDone) << s.error();
  EXPECT_EQ(s.akamai(), "|00|0|p,m,a,s");
}

TEST(H2PrefaceScannerTest, DoneIgnoresLaterInput) {
  H2Bytes b = chrome_stream();
  append(b, settings_frame({{9, 9}}));
  append(b, H2Bytes(100, 0xff));  // garbage after the first HEADERS does not matter
  H2PrefaceScanner s;
  EXPECT_EQ(feed_all(s, b), Status::kDone);
  EXPECT_EQ(s.feed(b.data(), b.size()), Status::kDone);
  EXPECT_EQ(s.akamai(), kChromeAkamai);
  EXPECT_TRUE(s.error().empty());
}

TEST(H2PrefaceScannerTest, NeedsMoreUntilHeaders) {
  H2Bytes b = preface();
  append(b, settings_frame({{3, 100}}));
  H2PrefaceScanner s;
  EXPECT_EQ(feed_all(s, b), Status::kNeedMore);
  EXPECT_EQ(s.akamai(), "3:100|00|0|");
  EXPECT_EQ(s.feed(nullptr, 0), Status::kNeedMore);
}

struct ErrorCase {
  const char* name;
  H2Bytes after_preface;
  std::string error;
};

TEST(H2PrefaceScannerTest, Errors) {
  std::vector<ErrorCase> cases = {
      {"oversized frame",
       {0x00, 0x40, 0x01, 0x04, 0, 0, 0, 0, 0},
       "frame of 16385 bytes exceeds the maximum frame size 16384"},
      {"huge frame",
       {0xff, 0xff, 0xff, 0x00, 0, 0, 0, 0, 1},
       "frame of 16777215 bytes exceeds the maximum frame size 16384"},
      {"data first", frame(0x0, 0, 1, {1, 2}), "DATA frame before the first HEADERS"},
      {"headers stream 0", frame(0x1, kEndHeaders, 0, {0x82}), "HEADERS frame on stream 0"},
      {"padded without length", frame(0x1, kEndHeaders | kPadded, 1, {}),
       "PADDED HEADERS frame without pad length"},
      {"padding too long", frame(0x1, kEndHeaders | kPadded, 1, {5, 0x82}),
       "HEADERS padding exceeds the frame"},
      {"priority flag short", frame(0x1, kEndHeaders | kPriority, 1, {0, 0, 0}),
       "HEADERS frame too short for its priority fields"},
      {"priority stream 0", frame(0x2, 0, 0, priority_payload(false, 0, 1)), "PRIORITY frame on stream 0"},
      {"priority length", frame(0x2, 0, 3, {0, 0, 0, 0}), "PRIORITY frame length 4 (expected 5)"},
      {"settings stream", frame(0x4, 0, 1, {}), "SETTINGS frame on stream 1"},
      {"settings ack payload", frame(0x4, 0x1, 0, {0, 1, 0, 0, 0, 1}), "SETTINGS ACK with a payload"},
      {"settings length", frame(0x4, 0, 0, {0, 1, 0, 0, 0}),
       "SETTINGS frame length 5 is not a multiple of 6"},
      {"push promise", frame(0x5, 0, 1, {0, 0, 0, 2}), "PUSH_PROMISE frame from a client"},
      {"window update length", frame(0x8, 0, 0, {0, 0, 1}), "WINDOW_UPDATE frame length 3 (expected 4)"},
      {"stray continuation", frame(0x9, kEndHeaders, 1, {0x82}),
       "CONTINUATION frame without a preceding HEADERS"},
      {"bad hpack", frame(0x1, kEndHeaders, 1, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
       std::string("HPACK decoding failed: ") + nghttp2_strerror(NGHTTP2_ERR_HEADER_COMP)},
      {"hpack index 0", frame(0x1, kEndHeaders, 1, {0x80}),
       std::string("HPACK decoding failed: ") + nghttp2_strerror(NGHTTP2_ERR_HEADER_COMP)},
  };
  {
    H2Bytes b = frame(0x1, 0, 1, {0x82});
    append(b, settings_frame({}));
    cases.push_back({"interleaved frame", b, "expected CONTINUATION of stream 1"});
    H2Bytes c = frame(0x1, 0, 1, {0x82});
    append(c, frame(0x9, kEndHeaders, 3, {0x84}));
    cases.push_back({"continuation other stream", c, "expected CONTINUATION of stream 1"});
  }
  {
    H2Bytes b = frame(0x1, 0, 1, H2Bytes(16384, 0));
    for (int i = 0; i < 3; ++i) append(b, frame(0x9, 0, 1, H2Bytes(16384, 0)));
    append(b, frame(0x9, kEndHeaders, 1, {0}));
    cases.push_back({"header block too large", b, "header block too large"});
  }
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    H2Bytes b = preface();
    append(b, c.after_preface);
    H2PrefaceScanner s;
    EXPECT_EQ(feed_all(s, b), Status::kError);
    EXPECT_EQ(s.error(), c.error);
    EXPECT_EQ(s.status(), Status::kError);
    EXPECT_EQ(s.feed(b.data(), b.size()), Status::kError);  // sticky
    // Same outcome byte by byte.
    H2PrefaceScanner t;
    Status st = Status::kNeedMore;
    for (size_t i = 0; i < b.size() && st == Status::kNeedMore; ++i) st = t.feed(&b[i], 1);
    EXPECT_EQ(st, Status::kError);
    EXPECT_EQ(t.error(), c.error);
  }
}

TEST(H2PrefaceScannerTest, BadPreface) {
  for (const std::string& bad :
       {std::string("GET / HTTP/1.1\r\n"), std::string("PRI * HTTP/2.0\r\n\r\nXM\r\n\r\n"),
        std::string("\x16\x03\x01\x02\x00", 5)}) {
    H2PrefaceScanner s;
    EXPECT_EQ(s.feed(reinterpret_cast<const uint8_t*>(bad.data()), bad.size()), Status::kError);
    EXPECT_EQ(s.error(), "invalid HTTP/2 connection preface");
  }
  const std::string partial = "PRI * HTTP/2.0\r\n";
  H2PrefaceScanner s;
  EXPECT_EQ(s.feed(reinterpret_cast<const uint8_t*>(partial.data()), partial.size()), Status::kNeedMore);
}

TEST(H2PrefaceScannerTest, MaxSizeFrameIsAccepted) {
  H2Bytes b = preface();
  append(b, frame(0xfb, 0, 0, H2Bytes(16384, 0x55)));  // ignored unknown frame at the size limit
  append(b, frame(0x1, kEndHeaders, 1, hpack(chrome_request())));
  H2PrefaceScanner s;
  EXPECT_EQ(feed_all(s, b), Status::kDone) << s.error();
  EXPECT_EQ(s.akamai(), "|00|0|m,a,s,p");
}

}  // namespace
}  // namespace huginn::fp
