// Http2Connection end to end: a real nghttp2 client (or raw frames) over
// loopback TCP, a real Http2Connection on a libevent thread, and a real
// HTTP/1.1 backend (tests/support/backend.h).
#include <gtest/gtest.h>
#include <json/json.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/fingerprint/h2frames.h"
#include "common/sys/log.h"
#include "h2_harness.h"
#include "tests/support/backend.h"
#include "tests/unit/fingerprint/pcap_payloads.h"

namespace huginn::worker::h2test {
namespace {

// H2_DEBUG=1 in the environment: debug logging.
class DebugLog : public ::testing::Environment {
 public:
  void SetUp() override {
    if (getenv("H2_DEBUG") == nullptr) return;
    log::Options o;
    o.level = log::Level::kDebug;
    log::configure(o);
  }
};
const auto* const kDebugLog = ::testing::AddGlobalTestEnvironment(new DebugLog);

using huginn::testing::Backend;
using huginn::testing::Request;
using huginn::testing::Response;

std::string pattern(size_t n) {
  std::string s(n, '\0');
  huginn::testing::fnv_pattern(0, s.data(), n);
  return s;
}

uint64_t fnv(const std::string& s) {
  return huginn::testing::fnv1a(huginn::testing::kFnvInit, s.data(), s.size());
}

// Echoes the request body for POST, "ok <target>" otherwise.
Response echo_body(const Request& r) {
  Response resp;
  resp.body = r.method == "POST" ? r.body : "ok " + r.target;
  resp.headers.emplace_back("X-Backend", "yes");
  return resp;
}

void expect_json_error(const H2Response& r, int status, const std::string& reason) {
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.body, "{\"error\":\"" + reason + "\"}");
  EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
  EXPECT_EQ(r.header("x-frame-options"), "DENY");
}

bool wait_for(const std::function<bool()>& pred, int timeout_ms = 10000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(Http2Connection, GetAndPostWithExactBodies) {
  Backend be(echo_body);
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port());
  ASSERT_TRUE(c.connected());
  const int32_t get = c.request("GET", "/hello?x=1", "App.Test.", {{"cookie", "a=1"}, {"cookie", "b=2"}});
  const int32_t post =
      c.request("POST", "/submit", "app.test", {{"content-type", "text/plain"}}, std::string("hello body"));
  ASSERT_TRUE(c.wait_done(get));
  ASSERT_TRUE(c.wait_done(post));
  EXPECT_EQ(c.response(get).status, 200);
  EXPECT_EQ(c.response(get).body, "ok /hello?x=1");
  EXPECT_EQ(c.response(get).header("x-backend"), "yes");
  EXPECT_EQ(c.response(post).status, 200);
  EXPECT_EQ(c.response(post).body, "hello body");

  const auto reqs = be.received();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.version, "HTTP/1.1");
    EXPECT_EQ(r.header("x-forwarded-for"), "127.0.0.1");
    EXPECT_EQ(r.header("x-forwarded-proto"), "http");
    EXPECT_EQ(r.header("x-forwarded-host"), "app.test");
    EXPECT_EQ(r.header("host"), be.address());
    EXPECT_FALSE(r.header("x-huginn-net-akamai").empty());
    if (r.method == "GET") {
      EXPECT_EQ(r.target, "/hello?x=1");
      EXPECT_EQ(r.header("cookie"), "a=1; b=2");
      EXPECT_EQ(r.header_count("content-length"), 0);
      EXPECT_EQ(r.header_count("transfer-encoding"), 0);
    } else {
      EXPECT_EQ(r.body, "hello body");
      EXPECT_EQ(r.header("content-type"), "text/plain");
    }
  }
  EXPECT_EQ(srv.total_requests(), 2u);
}

TEST(Http2Connection, HeadKeepsTheBackendsContentLengthWithoutABody) {
  Backend be(echo_body);
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port());
  const int32_t head =
      c.request("HEAD", "/hello", "app.test", {{"user-agent", "a-client-with-a-long-name/1.0"}});
  ASSERT_TRUE(c.wait_done(head));
  EXPECT_EQ(c.response(head).status, 200);
  EXPECT_EQ(c.response(head).header("content-length"), std::to_string(std::string("ok /hello").size()));
  EXPECT_EQ(c.response(head).header("x-backend"), "yes");
  EXPECT_TRUE(c.response(head).body.empty());
  const auto reqs = be.received();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "HEAD");
  EXPECT_EQ(reqs[0].header("user-agent"), "a-client-with-a-long-name/1.0");  // moved through intact
}

TEST(Http2Connection, OneMebibyteBothWaysByteExact) {
  const size_t kSize = 1 << 20;
  Backend be([&](const Request& r) {
    Response resp;
    if (r.target == "/download") resp.stream_bytes = kSize;
    if (r.target == "/download-chunked") {
      resp.stream_bytes = kSize;
      resp.chunked = true;
    }
    if (r.method == "POST") resp.body = std::to_string(r.body_bytes) + " " + std::to_string(r.body_fnv);
    return resp;
  });
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port());
  const std::string up = huginn::test::make_body(kSize, 7);
  // With Content-Length, and without (chunked to the backend).
  const int32_t a = c.request("POST", "/upload", "app.test", {{"content-length", std::to_string(kSize)}}, up);
  const int32_t b = c.request("POST", "/upload-chunked", "app.test", {}, up);
  const int32_t d = c.request("GET", "/download");
  const int32_t e = c.request("GET", "/download-chunked");
  for (int32_t id : {a, b, d, e}) ASSERT_TRUE(c.wait_done(id, 20000)) << id;
  const std::string expect_up = std::to_string(kSize) + " " + std::to_string(fnv(up));
  EXPECT_EQ(c.response(a).body, expect_up);
  EXPECT_EQ(c.response(b).body, expect_up);
  const std::string down = pattern(kSize);
  EXPECT_EQ(c.response(d).status, 200);
  EXPECT_EQ(c.response(d).header("content-length"), std::to_string(kSize));
  EXPECT_TRUE(c.response(d).body == down);
  EXPECT_EQ(c.response(e).status, 200);
  EXPECT_TRUE(c.response(e).body == down);
  bool saw_chunked = false;
  for (const auto& r : be.received())
    if (r.target == "/upload-chunked") saw_chunked = r.header("transfer-encoding") == "chunked";
  EXPECT_TRUE(saw_chunked);
}

TEST(Http2Connection, SlowClientBackpressureStillByteExact) {
  const size_t kSize = 4 << 20;
  Backend be([&](const Request&) {
    Response resp;
    resp.stream_bytes = kSize;
    return resp;
  });
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port(), {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}}, 8 << 20);
  const int32_t id = c.request("GET", "/big");
  c.set_stop_reading(true);
  c.wait([] { return false; }, 300);  // the proxy must stop at its bounds
  c.set_stop_reading(false);
  ASSERT_TRUE(c.wait_done(id, 30000));
  EXPECT_TRUE(c.response(id).body == pattern(kSize));
}

TEST(Http2Connection, TenMultiplexedStreams) {
  Backend be([](const Request& r) {
    Response resp;
    resp.body = "ok " + r.target;
    resp.delay_ms = 300;
    return resp;
  });
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port());
  std::vector<int32_t> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(c.request("GET", "/s" + std::to_string(i)));
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(c.wait_done(ids[i]));
    EXPECT_EQ(c.response(ids[i]).status, 200);
    EXPECT_EQ(c.response(ids[i]).body, "ok /s" + std::to_string(i));
  }
  // Concurrent, not one after another (10 x 300 ms).
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  EXPECT_EQ(be.received().size(), 10u);
}

TEST(Http2Connection, AkamaiHeaderEqualsScannerOverClientBytes) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port(),
             {{NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 65536},
              {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
              {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 6291456},
              {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 262144}},
             15663105);
  const int32_t a = c.request("GET", "/one", "app.test", {{"x-huginn-net-akamai", "spoofed"}});
  ASSERT_TRUE(c.wait_done(a));
  const int32_t b = c.request("GET", "/two");
  ASSERT_TRUE(c.wait_done(b));

  fp::H2PrefaceScanner scanner;
  const std::string& sent = c.sent();
  ASSERT_EQ(scanner.feed(reinterpret_cast<const uint8_t*>(sent.data()), sent.size()),
            fp::H2PrefaceScanner::Status::kDone);
  const std::string expected = scanner.akamai();
  EXPECT_EQ(expected, "1:65536;2:0;4:6291456;6:262144|15663105|0|m,s,a,p");
  const auto reqs = be.received();
  ASSERT_EQ(reqs.size(), 2u);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.header("x-huginn-net-akamai"), expected);  // same on every request of the connection
    EXPECT_EQ(r.header_count("x-huginn-net-akamai"), 1);
  }
  EXPECT_EQ(reqs[0].header("x-fingerprint-spoofing-detected"), "x-huginn-net-akamai");
  EXPECT_EQ(reqs[1].header_count("x-fingerprint-spoofing-detected"), 0);
}

TEST(Http2Connection, NoAkamaiWhenHttpFingerprintingDisabled) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address(), "[fingerprint]\nhttp_enabled = false\n")));
  H2Client c(srv.port());
  const int32_t a = c.request("GET", "/", "app.test", {{"x-huginn-net-akamai", "spoofed"}});
  ASSERT_TRUE(c.wait_done(a));
  const auto reqs = be.received();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].header_count("x-huginn-net-akamai"), 0);  // stripped, nothing injected
}

// [fingerprint] max_capture: the first HEADERS must end within that many
// bytes of the connection for an Akamai fingerprint; the limit falls exactly
// on its byte. Past it the request is served without one.
TEST(Http2Connection, AkamaiOnlyWhenTheFirstHeadersEndsWithinMaxCapture) {
  // An extension frame nghttp2 ignores puts the HEADERS past the smallest
  // limit allowed (1024); SETTINGS and HEADERS give the fingerprint.
  const std::string bytes =
      kPreface + frame(NGHTTP2_SETTINGS, 0, 0, std::string("\x00\x04\x00\x60\x00\x00", 6)) +
      frame(0xfa, 0, 0, std::string(1000, 'x')) +
      frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, 1,
            hpack({{":method", "GET"}, {":scheme", "http"}, {":authority", "app.test"}, {":path", "/"}}));
  ASSERT_GT(bytes.size(), 1024u);
  const auto akamai_with = [&](const std::string& extra) {
    Backend be;
    H2Server srv(load_config(simple_config(be.address(), extra)));
    RawClient rc(srv.port());
    EXPECT_TRUE(rc.send(bytes));
    EXPECT_TRUE(wait_for([&] { return be.requests() >= 1; }));
    const auto reqs = be.received();
    if (reqs.empty()) return std::string("<no request>");
    return reqs[0].header_count("x-huginn-net-akamai") == 0 ? std::string("<none>")
                                                            : reqs[0].header("x-huginn-net-akamai");
  };
  const std::string expected = "4:6291456|00|0|m,s,a,p";
  EXPECT_EQ(akamai_with(""), expected);  // the default, 65536
  EXPECT_EQ(akamai_with("[fingerprint]\nmax_capture = " + std::to_string(bytes.size()) + "\n"), expected);
  EXPECT_EQ(akamai_with("[fingerprint]\nmax_capture = " + std::to_string(bytes.size() - 1) + "\n"), "<none>");
  EXPECT_EQ(akamai_with("[fingerprint]\nmax_capture = 1024\n"), "<none>");
}

// Replaying each h2c oracle client's bytes yields the oracle's Akamai value.
TEST(Http2Connection, OracleClientReplaysGiveOracleAkamai) {
  const std::string dir = std::string(HUGINN_TEST_DATA) + "/oracles/";
  Json::Value root;
  {
    std::ifstream in(dir + "expected.json");
    Json::CharReaderBuilder b;
    std::string errs;
    ASSERT_TRUE(Json::parseFromStream(b, in, &root, &errs)) << errs;
  }
  size_t replayed = 0;
  for (const Json::Value& cs : root["cases"]) {
    for (const Json::Value& flow : cs["flows"]) {
      if (!flow["expect"].isMember("akamai") || flow["dst_port"].asUInt() != 8080) continue;
      SCOPED_TRACE(cs["name"].asString());
      std::map<fp::testing::FlowKey, fp::testing::DirectionalStream> flows;
      std::string err;
      ASSERT_TRUE(fp::testing::read_tcp_streams(dir + cs["pcap"].asString(), flows, &err)) << err;
      const fp::testing::FlowKey key{flow["src"].asString(), static_cast<uint16_t>(flow["src_port"].asUInt()),
                                     flow["dst"].asString(),
                                     static_cast<uint16_t>(flow["dst_port"].asUInt())};
      auto it = flows.find(key);
      ASSERT_NE(it, flows.end());
      Backend be;
      H2Server srv(load_config(simple_config(be.address())));
      RawClient rc(srv.port());
      ASSERT_TRUE(rc.send(it->second.data));
      ASSERT_TRUE(wait_for([&] { return be.requests() >= 1; }));
      const auto reqs = be.received();
      EXPECT_EQ(reqs[0].header("x-huginn-net-akamai"), flow["expect"]["akamai"].asString());
      ++replayed;
    }
  }
  EXPECT_GE(replayed, 4u);
}

TEST(Http2Connection, PrebufferedPrefaceIsProcessedAtStart) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address())), /*prebuffer=*/true);
  H2Client c(srv.port());
  const int32_t id = c.request("GET", "/pre");
  ASSERT_TRUE(c.wait_done(id));
  EXPECT_EQ(c.response(id).status, 200)
      << c.response(id).reset << " " << c.response(id).reset_error << " goaway " << c.goaways() << " "
      << c.goaway_error() << " eof " << c.eof();
}

TEST(Http2Connection, LocalResponses) {
  Backend be;
  const std::string cfg =
      "[listen]\naddrs = [\"127.0.0.1:0\"]\n"
      "[[backends]]\naddress = \"" +
      be.address() +
      "\"\n"
      "[[backends]]\naddress = \"127.0.0.1:1\"\n"
      "[[backends]]\naddress = \"127.0.0.1:2\"\nhttp_version = \"http2\"\n"
      "[[domains]]\nhost = \"app.test\"\n"
      "[[domains.routes]]\nprefix = \"/api\"\nbackend = \"" +
      be.address() +
      "\"\n"
      "[[domains.routes]]\nprefix = \"/down\"\nbackend = \"127.0.0.1:1\"\n"
      "[[domains.routes]]\nprefix = \"/h2\"\nbackend = \"127.0.0.1:2\"\n"
      "[security.headers]\ncustom = [{name = \"x-frame-options\", value = \"DENY\"}]\n";
  H2Server srv(load_config(cfg));
  H2Client c(srv.port());
  const int32_t ok = c.request("GET", "/api/x");
  const int32_t nf = c.request("GET", "/nope");
  const int32_t mis = c.request("GET", "/api/x", "other.test");
  const int32_t down = c.request("GET", "/down");
  const int32_t h2 = c.request("GET", "/h2");
  const int32_t head = c.request("HEAD", "/nope");
  for (int32_t id : {ok, nf, mis, down, h2, head}) ASSERT_TRUE(c.wait_done(id)) << id;
  EXPECT_EQ(c.response(ok).status, 200);
  expect_json_error(c.response(nf), 404, "no_matching_route");
  expect_json_error(c.response(mis), 421, "misdirected_request");
  expect_json_error(c.response(down), 502, "backend_error");
  expect_json_error(c.response(h2), 502, "backend_error");
  EXPECT_EQ(c.response(head).status, 404);
  EXPECT_TRUE(c.response(head).body.empty());
  EXPECT_EQ(be.received().size(), 1u);
  EXPECT_EQ(srv.total_requests(), 6u);
}

TEST(Http2Connection, MalformedRequestsAreReset) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port());
  const int32_t conn = c.request("GET", "/", "app.test", {{"connection", "close"}});
  const int32_t te = c.request("GET", "/", "app.test", {{"te", "gzip"}});
  const int32_t badpath = c.request("GET", "nopath");
  const int32_t connect = c.request("CONNECT", "/", "app.test");
  for (int32_t id : {conn, te, badpath, connect}) ASSERT_TRUE(c.wait_done(id)) << id;
  EXPECT_TRUE(c.response(conn).reset);
  EXPECT_EQ(c.response(conn).reset_error, static_cast<uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_TRUE(c.response(te).reset);
  EXPECT_TRUE(c.response(badpath).reset || c.response(badpath).status == 400);
  EXPECT_TRUE(c.response(connect).reset || c.response(connect).status == 400);
  EXPECT_EQ(be.requests(), 0u);
  // The connection itself is still usable.
  const int32_t ok = c.request("GET", "/fine");
  ASSERT_TRUE(c.wait_done(ok));
  EXPECT_EQ(c.response(ok).status, 200);
}

// nghttp2's client lowercases names, so the uppercase field goes out raw.
TEST(Http2Connection, UppercaseFieldNameIsProtocolError) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address())));
  RawClient rc(srv.port());
  ASSERT_TRUE(rc.send(kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "") +
                      frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, 1,
                            hpack({{":method", "GET"},
                                   {":scheme", "http"},
                                   {":authority", "app.test"},
                                   {":path", "/"},
                                   {"X-Upper", "1"}}))));
  uint32_t stream = 0;
  std::string payload;
  ASSERT_TRUE(rc.wait_frame(NGHTTP2_RST_STREAM, &stream, &payload));
  EXPECT_EQ(stream, 1u);
  ASSERT_EQ(payload.size(), 4u);
  EXPECT_EQ(static_cast<uint8_t>(payload[3]), NGHTTP2_PROTOCOL_ERROR);
  EXPECT_EQ(be.requests(), 0u);
}

TEST(Http2Connection, RapidResetGetsGoawayOtherConnectionUnaffected) {
  Backend be([](const Request& r) {
    Response resp;
    resp.body = "ok " + r.target;
    if (r.target == "/slow") resp.delay_ms = 2000;
    return resp;
  });
  H2Server srv(load_config(simple_config(be.address())));
  H2Client good(srv.port());
  const int32_t g1 = good.request("GET", "/before");
  ASSERT_TRUE(good.wait_done(g1));

  H2Client bad(srv.port());
  for (int i = 0; i < 400 && !bad.eof(); ++i) {
    const int32_t id = bad.request("GET", "/slow");
    bad.flush();
    nghttp2_submit_rst_stream(bad.session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    bad.flush();
  }
  ASSERT_TRUE(bad.wait([&] { return bad.goaways() > 0; }));
  EXPECT_EQ(bad.goaway_error(), static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_TRUE(bad.wait_eof());

  const int32_t g2 = good.request("GET", "/after");
  ASSERT_TRUE(good.wait_done(g2));
  EXPECT_EQ(good.response(g2).status, 200);
  EXPECT_EQ(good.response(g2).body, "ok /after");
  uint64_t floods = 0;
  for (const auto& k : srv.counters()) floods += k.rapid_reset_floods;
  EXPECT_EQ(floods, 1u);
}

TEST(Http2Connection, ContinuationFloodGetsGoaway) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address())));
  RawClient rc(srv.port());
  std::string out = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  out += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1,
               hpack({{":method", "GET"}, {":scheme", "http"}, {":authority", "app.test"}, {":path", "/"}}));
  for (int i = 0; i < 40; ++i) out += frame(NGHTTP2_CONTINUATION, 0, 1, hpack({{"x-pad", "v"}}));
  ASSERT_TRUE(rc.send(out));
  uint32_t err = 0;
  ASSERT_TRUE(rc.wait_goaway(&err));
  EXPECT_EQ(err, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_TRUE(rc.wait_eof());
  EXPECT_EQ(be.requests(), 0u);
}

TEST(Http2Connection, OversizedHeaderListIsRefused) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address(), "[limits]\nmax_header_bytes = 8192\n")));
  H2Client c(srv.port());
  const int32_t id = c.request("GET", "/", "app.test", {{"x-big", std::string(10000, 'a')}});
  ASSERT_TRUE(c.wait_done(id));
  expect_json_error(c.response(id), 431, "request_header_fields_too_large");
  ASSERT_TRUE(c.wait([&] { return c.goaways() > 0; }));
  EXPECT_EQ(c.goaway_error(), static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_TRUE(c.wait_eof());
  EXPECT_EQ(be.requests(), 0u);
}

TEST(Http2Connection, PingFloodGetsGoaway) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address())));
  RawClient rc(srv.port());
  std::string out = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  for (int i = 0; i < 200; ++i) out += frame(NGHTTP2_PING, 0, 0, std::string(8, static_cast<char>(i)));
  ASSERT_TRUE(rc.send(out));
  uint32_t err = 0;
  ASSERT_TRUE(rc.wait_goaway(&err));
  EXPECT_EQ(err, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_TRUE(rc.wait_eof());
}

TEST(Http2Connection, SettingsFloodGetsGoaway) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address())));
  RawClient rc(srv.port());
  std::string out = kPreface;
  for (int i = 0; i < 100; ++i) out += frame(NGHTTP2_SETTINGS, 0, 0, "");
  ASSERT_TRUE(rc.send(out));
  uint32_t err = 0;
  ASSERT_TRUE(rc.wait_goaway(&err));
  EXPECT_EQ(err, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_TRUE(rc.wait_eof());
}

// A backend that answers before it has read the request body (an early 413):
// the client gets the whole response, then RST_STREAM(NO_ERROR) for the upload
// it is still sending (RFC 9113, section 8.1), and the connection goes on.
TEST(Http2Connection, EarlyBackendAnswerEndsTheUploadWithNoError) {
  Backend be(echo_body);
  be.reject_early_under("/up");
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port());
  ASSERT_TRUE(c.connected());
  // Far more than the stream window (256 KiB) lets through before the answer.
  const int32_t up = c.request("POST", "/up", "app.test", {}, std::string(32u << 20, 'u'));
  ASSERT_TRUE(c.wait([&] { return c.response(up).closed; }, 15000));
  const H2Response& r = c.response(up);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, "too large");
  EXPECT_TRUE(r.done) << "the response ended with END_STREAM";
  EXPECT_TRUE(r.reset) << "the rest of the upload is refused";
  EXPECT_EQ(r.reset_error, static_cast<uint32_t>(NGHTTP2_NO_ERROR));
  const int32_t next = c.request("GET", "/after", "app.test");
  ASSERT_TRUE(c.wait_done(next));
  EXPECT_EQ(c.response(next).status, 200);
  EXPECT_EQ(c.response(next).body, "ok /after");
  EXPECT_EQ(c.goaways(), 0);
  EXPECT_EQ(be.requests(), 2u);
}

TEST(Http2Connection, BackendResponseTimeoutIs504) {
  Backend be([](const Request& r) {
    Response resp;
    resp.body = "late " + r.target;
    resp.delay_ms = 2500;
    return resp;
  });
  H2Server srv(load_config(simple_config(be.address(), "[timeout]\nupstream_response_secs = 1\n")));
  H2Client c(srv.port());
  const int32_t id = c.request("POST", "/slow", "app.test", {}, std::string("x"));
  ASSERT_TRUE(c.wait_done(id, 5000));
  expect_json_error(c.response(id), 504, "gateway_timeout");
}

TEST(Http2Connection, ConcurrentStreamLimitRefusesExtraStreams) {
  Backend be([](const Request& r) {
    Response resp;
    resp.body = "ok " + r.target;
    resp.delay_ms = 300;
    return resp;
  });
  H2Server srv(load_config(simple_config(be.address(), "[limits]\nh2_max_concurrent_streams = 2\n")));
  RawClient rc(srv.port());
  // Ignore the server's SETTINGS: open 4 streams at once.
  std::string out = kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "");
  for (uint32_t s = 1; s <= 7; s += 2)
    out +=
        frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, s,
              hpack({{":method", "GET"}, {":scheme", "http"}, {":authority", "app.test"}, {":path", "/"}}));
  ASSERT_TRUE(rc.send(out));
  for (uint32_t want : {5u, 7u}) {
    uint32_t stream = 0;
    std::string payload;
    ASSERT_TRUE(rc.wait_frame(NGHTTP2_RST_STREAM, &stream, &payload));
    EXPECT_EQ(stream, want);
    ASSERT_EQ(payload.size(), 4u);
    EXPECT_EQ(static_cast<uint8_t>(payload[3]), NGHTTP2_REFUSED_STREAM);
  }
  ASSERT_TRUE(wait_for([&] { return be.requests() >= 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(be.requests(), 2u);
}

TEST(Http2Connection, DrainSendsGoawayAndFinishesInflightStream) {
  Backend be([](const Request& r) {
    Response resp;
    resp.body = "ok " + r.target;
    resp.delay_ms = 400;
    return resp;
  });
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port());
  const int32_t id = c.request("GET", "/inflight");
  ASSERT_TRUE(wait_for([&] { return srv.total_requests() == 1; }));
  srv.drain();
  ASSERT_TRUE(c.wait_done(id));
  EXPECT_EQ(c.response(id).status, 200);
  EXPECT_EQ(c.response(id).body, "ok /inflight");
  EXPECT_TRUE(c.wait_eof());
  // The shutdown notice, then the final GOAWAY naming the last stream.
  const auto g = c.raw_goaways();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0], std::make_pair(int32_t{0x7fffffff}, uint32_t{NGHTTP2_NO_ERROR}));
  EXPECT_EQ(g[1], std::make_pair(id, uint32_t{NGHTTP2_NO_ERROR}));
  EXPECT_TRUE(wait_for([&] { return srv.live() == 0; }));
}

TEST(Http2Connection, IdleConnectionGetsGoawayAndCloses) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address(), "[timeout]\nproxy_idle_ms = 300\n")));
  H2Client c(srv.port());
  const int32_t id = c.request("GET", "/");
  ASSERT_TRUE(c.wait_done(id));
  EXPECT_TRUE(c.wait_eof(5000));
  EXPECT_GE(c.goaways(), 1);
  EXPECT_EQ(c.goaway_error(), static_cast<uint32_t>(NGHTTP2_NO_ERROR));
}

TEST(Http2Connection, IncompleteRequestTimesOut) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address(), "[timeout]\nproxy_idle_ms = 300\n")));
  RawClient rc(srv.port());
  // A header block that never ends (no END_HEADERS), then silence.
  ASSERT_TRUE(rc.send(kPreface + frame(NGHTTP2_SETTINGS, 0, 0, "") +
                      frame(NGHTTP2_HEADERS, 0, 1, hpack({{":method", "GET"}, {":scheme", "http"}}))));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(rc.wait_eof(5000));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  EXPECT_EQ(be.requests(), 0u);
}

TEST(Http2Connection, PooledBackendConnectionsAreReused) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address())));
  H2Client c(srv.port());
  for (int i = 0; i < 3; ++i) {
    const int32_t id = c.request("GET", "/p" + std::to_string(i));
    ASSERT_TRUE(c.wait_done(id));
    EXPECT_EQ(c.response(id).status, 200);
  }
  EXPECT_EQ(be.connections(), 1u);
}

TEST(Http2Connection, ForceNewConnectionIsHonoured) {
  Backend be;
  H2Server srv(load_config(simple_config(be.address(), "force_new_connection = true\n")));
  H2Client c(srv.port());
  for (int i = 0; i < 3; ++i) {
    const int32_t id = c.request("GET", "/p" + std::to_string(i));
    ASSERT_TRUE(c.wait_done(id));
  }
  EXPECT_EQ(be.connections(), 3u);
  for (const auto& r : be.received()) EXPECT_EQ(r.header("connection"), "close");
}

}  // namespace
}  // namespace huginn::worker::h2test
