// The access log line formatter (text and JSON) and its non-blocking writer.
#include "worker/net/access_log.h"

#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <json/json.h>

#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"

namespace huginn::worker::net {
namespace {

AccessRecord full_record() {
  AccessRecord r;
  r.time_ms = 1764333446123;  // 2025-11-28T12:37:26.123Z
  r.client = "192.0.2.7";
  r.method = "GET";
  r.host = "app.example";
  r.path = "/api/v1?q=1";
  r.protocol = "HTTP/1.1";
  r.status = 200;
  r.body_bytes = 1234;
  r.request_us = 12345;
  r.upstream_us = 10001;
  r.backend = "127.0.0.1:9000";
  r.route = "/api";
  r.tls_version = "TLSv1.3";
  r.sni = "app.example";
  r.ja4 = "t13d1516h2_8daaf6152771_02713d6af862";
  r.akamai = "1:65536;4:6291456|15663105|0|m,a,s,p";
  r.tcp = "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0";
  return r;
}

Json::Value parse(const std::string& line) {
  Json::Value v;
  Json::CharReaderBuilder b;
  std::string errs;
  std::unique_ptr<Json::CharReader> rd(b.newCharReader());
  EXPECT_TRUE(rd->parse(line.data(), line.data() + line.size(), &v, &errs)) << errs << ": " << line;
  return v;
}

bool has_raw_control(const std::string& s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

TEST(AccessLog, Rfc3339Milliseconds) {
  EXPECT_EQ(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_ms(1764333446123), "2025-11-28T12:37:26.123Z");
  EXPECT_EQ(rfc3339_ms(951782400007), "2000-02-29T00:00:00.007Z");
}

TEST(AccessLog, TextLineHasEveryField) {
  EXPECT_EQ(format_access(full_record(), AccessFormat::kText),
            "192.0.2.7 - - [2025-11-28T12:37:26.123Z] \"GET /api/v1?q=1 HTTP/1.1\" 200 1234 "
            "host=\"app.example\" rt=0.012 urt=0.010 backend=\"127.0.0.1:9000\" route=\"/api\" "
            "tls=\"TLSv1.3\" sni=\"app.example\" ja4=\"t13d1516h2_8daaf6152771_02713d6af862\" "
            "akamai=\"1:65536;4:6291456|15663105|0|m,a,s,p\" "
            "tcp=\"4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0\"");
}

TEST(AccessLog, TextLineAbsentValuesAreDashes) {
  AccessRecord r;
  r.time_ms = 0;
  r.client = "::1";
  r.status = 400;
  r.request_us = 2500000;
  EXPECT_EQ(format_access(r, AccessFormat::kText),
            "::1 - - [1970-01-01T00:00:00.000Z] \"- - -\" 400 0 host=\"-\" rt=2.500 urt=- backend=\"-\" "
            "route=\"-\" tls=\"-\" sni=\"-\" ja4=\"-\" akamai=\"-\" tcp=\"-\"");
}

TEST(AccessLog, TextEscapesControlQuotesAndNonAscii) {
  AccessRecord r = full_record();
  r.path = "/a\"b\\c\x1b[31m\r\nX\x7f\xc3\xa9";
  r.host = "h\tst";
  r.method = "G\nET";
  const std::string line = format_access(r, AccessFormat::kText);
  EXPECT_FALSE(has_raw_control(line)) << line;
  EXPECT_NE(line.find("\"G\\x0AET /a\\x22b\\x5Cc\\x1B[31m\\x0D\\x0AX\\x7F\\xC3\\xA9 HTTP/1.1\""),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("host=\"h\\x09st\""), std::string::npos) << line;
  // Every field stays one token: exactly the quotes the format puts there.
  size_t quotes = 0;
  for (const char c : line) quotes += c == '"';
  EXPECT_EQ(quotes, 2u + 2u * 8u);
}

TEST(AccessLog, LongValuesAreCutAndMarked) {
  AccessRecord r = full_record();
  std::string path(5001, 'a');
  path[0] = '/';
  const std::string sni(1000, 's');
  r.path = path;
  r.sni = sni;
  const std::string line = format_access(r, AccessFormat::kText);
  const std::string cut = std::string(" ").append(path, 0, kAccessCapPath).append("... HTTP/1.1\"");
  EXPECT_NE(line.find(cut), std::string::npos);
  EXPECT_EQ(line.find(path.substr(0, kAccessCapPath + 1)), std::string::npos);
  EXPECT_NE(line.find("sni=\"" + sni.substr(0, kAccessCapField) + "...\""), std::string::npos);
  EXPECT_LT(line.size(), 2000u);

  const Json::Value v = parse(format_access(r, AccessFormat::kJson));
  EXPECT_EQ(v["path"].asString(), path.substr(0, kAccessCapPath) + "...");
  EXPECT_EQ(v["sni"].asString(), sni.substr(0, kAccessCapField) + "...");

  // Escaping never splits: a cut value of escapes is a whole number of them.
  const std::string newlines(3000, '\n');
  r.path = newlines;
  const std::string esc = format_access(r, AccessFormat::kText);
  std::string want;
  for (size_t i = 0; i < kAccessCapPath; ++i) want += "\\x0A";
  EXPECT_NE(esc.find(" " + want + "... HTTP/1.1\""), std::string::npos);
}

TEST(AccessLog, JsonLineHasEveryField) {
  const std::string line = format_access(full_record(), AccessFormat::kJson);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const Json::Value v = parse(line);
  EXPECT_EQ(v["type"].asString(), "access");
  EXPECT_EQ(v["time"].asString(), "2025-11-28T12:37:26.123Z");
  EXPECT_EQ(v["client"].asString(), "192.0.2.7");
  EXPECT_EQ(v["method"].asString(), "GET");
  EXPECT_EQ(v["host"].asString(), "app.example");
  EXPECT_EQ(v["path"].asString(), "/api/v1?q=1");
  EXPECT_EQ(v["protocol"].asString(), "HTTP/1.1");
  EXPECT_EQ(v["status"].asUInt(), 200u);
  EXPECT_EQ(v["bytes"].asUInt64(), 1234u);
  EXPECT_EQ(v["request_us"].asUInt64(), 12345u);
  EXPECT_EQ(v["upstream_us"].asUInt64(), 10001u);
  EXPECT_EQ(v["backend"].asString(), "127.0.0.1:9000");
  EXPECT_EQ(v["route"].asString(), "/api");
  EXPECT_EQ(v["tls_version"].asString(), "TLSv1.3");
  EXPECT_EQ(v["sni"].asString(), "app.example");
  EXPECT_EQ(v["ja4"].asString(), "t13d1516h2_8daaf6152771_02713d6af862");
  EXPECT_EQ(v["akamai"].asString(), "1:65536;4:6291456|15663105|0|m,a,s,p");
  EXPECT_EQ(v["tcp"].asString(), "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0");
  EXPECT_EQ(v.size(), 18u);
}

TEST(AccessLog, JsonAbsentValuesAreNull) {
  AccessRecord r;
  r.client = "127.0.0.1";
  r.status = 499;
  const Json::Value v = parse(format_access(r, AccessFormat::kJson));
  for (const char* k : {"method", "host", "path", "protocol", "upstream_us", "backend", "route",
                        "tls_version", "sni", "ja4", "akamai", "tcp"})
    EXPECT_TRUE(v[k].isNull()) << k;
  EXPECT_EQ(v["status"].asUInt(), 499u);
  EXPECT_EQ(v["bytes"].asUInt64(), 0u);
}

TEST(AccessLog, JsonEscapesEveryControlCharacter) {
  AccessRecord r = full_record();
  std::string path = "/";
  for (int c = 1; c < 0x20; ++c) path += static_cast<char>(c);
  path += "\x7f\"\\\xc3\xa9";
  r.path = path;
  r.host = "bad\xff\xfeutf8";
  const std::string line = format_access(r, AccessFormat::kJson);
  EXPECT_FALSE(has_raw_control(line)) << line;
  for (const char c : line) EXPECT_LT(static_cast<unsigned char>(c), 0x80u) << line;
  const Json::Value v = parse(line);
  EXPECT_EQ(v["path"].asString(), path);  // lossless for valid UTF-8
  EXPECT_FALSE(v["host"].asString().empty());
}

// ------------------------------------------------------------ writer

using BasePtr = sys::CHandle<event_base, event_base_free>;

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(AccessLogWriter, PipeLinesArriveWhole) {
  BasePtr base(event_base_new());
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  sys::UniqueFd rd(p[0]), wr(p[1]);
  ASSERT_EQ(fcntl(rd.get(), F_SETFL, O_NONBLOCK), 0);
  {
    AccessLogWriter w(base.get(), wr.get(), AccessFormat::kText);
    for (int i = 0; i < 100; ++i) w.write("line " + std::to_string(i));
    EXPECT_EQ(read_all(rd.get()), "") << "written from the event loop, not inline";
    for (int i = 0; i < 100; ++i) event_base_loop(base.get(), EVLOOP_NONBLOCK);
    std::string want;
    for (int i = 0; i < 100; ++i) want += "<6>line " + std::to_string(i) + "\n";
    EXPECT_EQ(read_all(rd.get()), want);
    EXPECT_EQ(w.dropped(), 0u);
  }
}

TEST(AccessLogWriter, FullPipeDropsInsteadOfBlocking) {
  BasePtr base(event_base_new());
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  sys::UniqueFd rd(p[0]), wr(p[1]);
  ASSERT_EQ(fcntl(rd.get(), F_SETFL, O_NONBLOCK), 0);
  // Fill the pipe, then give the writer a blocking descriptor again.
  ASSERT_EQ(fcntl(wr.get(), F_SETFL, O_NONBLOCK), 0);
  const std::string junk(4096, 'j');
  size_t filled = 0;
  while (::write(wr.get(), junk.data(), junk.size()) > 0) filled += junk.size();
  ASSERT_EQ(fcntl(wr.get(), F_SETFL, 0), 0);

  AccessLogWriter w(base.get(), wr.get(), AccessFormat::kText);
  const std::string line(999, 'x');  // 1003 bytes queued per line
  const size_t n = kAccessQueueMax / 1003 + 50;
  for (size_t i = 0; i < n; ++i) w.write(line);
  // The pipe is full: the loop must not block in the writer.
  for (int i = 0; i < 10; ++i) event_base_loop(base.get(), EVLOOP_NONBLOCK);
  EXPECT_EQ(w.dropped(), 50u);

  // The reader catches up: every queued line arrives whole, in order.
  std::string got;
  for (int i = 0; i < 100000 && got.size() < filled + (n - 50) * 1003; ++i) {
    got += read_all(rd.get());
    event_base_loop(base.get(), EVLOOP_NONBLOCK);
  }
  ASSERT_EQ(got.size(), filled + (n - 50) * 1003);
  const std::string tail = got.substr(filled);
  for (size_t i = 0; i < n - 50; ++i) ASSERT_EQ(tail.substr(i * 1003, 1003), "<6>" + line + "\n") << i;
}

TEST(AccessLogWriter, RegularFileIsWrittenAtOnce) {
  BasePtr base(event_base_new());
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    AccessLogWriter w(base.get(), fileno(f), AccessFormat::kJson);
    w.write("{\"a\":1}");
    char buf[64] = {};
    ASSERT_EQ(pread(fileno(f), buf, sizeof buf - 1, 0), 11);
    EXPECT_STREQ(buf, "<6>{\"a\":1}\n");
  }
  std::fclose(f);
}

}  // namespace
}  // namespace huginn::worker::net
