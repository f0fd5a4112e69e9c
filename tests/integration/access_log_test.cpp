// The access log of the real supervisor and workers ([logging] access_log):
// HTTP/1.1, h2c and TLS HTTP/2 requests, a backend answer and a proxy 404,
// text and JSON lines, every field checked against what the client got and
// what the backend saw (the fingerprint headers the proxy injected).
#include <gtest/gtest.h>
#include <sys/time.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <json/json.h>

#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/support/test_certs.h"

namespace huginn::testing {
namespace {

// One access log line, whichever format.
struct Line {
  std::string client, time, method, path, protocol, host, backend, route, tls, sni, ja4, akamai, tcp;
  int status = 0;
  uint64_t bytes = 0;
  double rt = -1;   // seconds
  double urt = -1;  // seconds; -1 = "-"
};

int64_t now_ms() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
}

// "2026-11-28T12:27:26.123Z" → Unix ms; -1 when malformed.
int64_t parse_time(const std::string& s) {
  static const std::regex re(R"((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return -1;
  tm t{};
  t.tm_year = std::stoi(m[1]) - 1900;
  t.tm_mon = std::stoi(m[2]) - 1;
  t.tm_mday = std::stoi(m[3]);
  t.tm_hour = std::stoi(m[4]);
  t.tm_min = std::stoi(m[5]);
  t.tm_sec = std::stoi(m[6]);
  return static_cast<int64_t>(timegm(&t)) * 1000 + std::stoi(m[7]);
}

std::string dash(const std::string& v) { return v.empty() ? "-" : v; }

// Undoes the text format's \xHH escapes.
std::string unescape(const std::string& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 3 < v.size() && v[i + 1] == 'x') {
      out += static_cast<char>(std::stoi(v.substr(i + 2, 2), nullptr, 16));
      i += 3;
    } else {
      out += v[i];
    }
  }
  return out;
}

void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(25)); }

std::vector<Line> text_lines(const std::string& log) {
  static const std::regex re(
      R"re(<6>(\S+) - - \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+) host="([^"]*)" rt=(\d+\.\d{3}) urt=(\d+\.\d{3}|-) backend="([^"]*)" route="([^"]*)" tls="([^"]*)" sni="([^"]*)" ja4="([^"]*)" akamai="([^"]*)" tcp="([^"]*)")re");
  std::vector<Line> out;
  std::istringstream in(log);
  std::string s;
  while (std::getline(in, s)) {
    std::smatch m;
    if (!std::regex_match(s, m, re)) {
      EXPECT_EQ(s.find(" - - ["), std::string::npos) << "unparsable access line: " << s;
      continue;
    }
    Line l;
    l.client = m[1];
    l.time = m[2];
    l.method = m[3];
    l.path = unescape(m[4]);
    l.protocol = m[5];
    l.status = std::stoi(m[6]);
    l.bytes = std::stoull(m[7]);
    l.host = m[8];
    l.rt = std::stod(m[9]);
    l.urt = m[10] == "-" ? -1 : std::stod(m[10]);
    l.backend = m[11];
    l.route = m[12];
    l.tls = m[13];
    l.sni = m[14];
    l.ja4 = m[15];
    l.akamai = m[16];
    l.tcp = m[17];
    out.push_back(l);
  }
  return out;
}

std::vector<Line> json_lines(const std::string& log) {
  std::vector<Line> out;
  std::istringstream in(log);
  std::string s;
  while (std::getline(in, s)) {
    if (s.rfind("<6>{", 0) != 0) continue;
    const Json::Value v = parse_json(s.substr(3));
    if (v["type"].asString() != "access") continue;
    auto str = [&](const char* k) {
      EXPECT_TRUE(v.isMember(k)) << k << " missing: " << s;
      return v[k].isNull() ? std::string("-") : v[k].asString();
    };
    Line l;
    l.client = str("client");
    l.time = str("time");
    l.method = str("method");
    l.path = str("path");
    l.protocol = str("protocol");
    l.host = str("host");
    l.backend = str("backend");
    l.route = str("route");
    l.tls = str("tls_version");
    l.sni = str("sni");
    l.ja4 = str("ja4");
    l.akamai = str("akamai");
    l.tcp = str("tcp");
    l.status = v["status"].asInt();
    l.bytes = v["bytes"].asUInt64();
    l.rt = static_cast<double>(v["request_us"].asUInt64()) / 1e6;
    l.urt = v["upstream_us"].isNull() ? -1 : static_cast<double>(v["upstream_us"].asUInt64()) / 1e6;
    out.push_back(l);
  }
  return out;
}

class AccessLogTest : public ::testing::TestWithParam<bool> {  // true = JSON
 protected:
  AccessLogTest()
      : be_([](const Request& req) {
          Response r;
          r.body = echo_json(req);
          if (req.target.rfind("/api/slow", 0) == 0) r.delay_ms = 150;
          return r;
        }) {}

  void SetUp() override {
    cp_ = free_port();
    tp_ = free_port();
    srv_ = pki_.server("localhost", {"localhost", "127.0.0.1"});
    const std::string b = be_.address();
    const std::string toml =
        "workers = 2\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(tp_) +
        "\"]\ncleartext_addrs = [\"127.0.0.1:" + std::to_string(cp_) + "\"]\n\n[tls]\ncert_path = \"" +
        srv_.cert_path + "\"\nkey_path = \"" + srv_.key_path +
        "\"\n\n[logging]\naccess_log = true\nformat = \"" + (GetParam() ? "json" : "text") +
        "\"\n\n[timeout]\nshutdown_secs = 5\n\n[dbus]\nbus = \"none\"\n\n[[backends]]\naddress = \"" + b +
        "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/api\"\nbackend = \"" + b + "\"\n";
    const std::string cfg = dir_.write("config.toml", toml);
    // stderr is a pipe (as under journald), drained by cat into the log file.
    proxy_ = std::make_unique<Process>(
        std::vector<std::string>{"/bin/bash", "-c", "exec \"$0\" --config \"$1\" > >(exec cat) 2>&1",
                                 binary_path("sbin/huginn-proxy"), cfg},
        dir_.path() + "/proxy.log");
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  // curl; returns "<status> <size_download>" and the body in *body.
  std::string curl(const std::vector<std::string>& args, std::string* body) {
    const std::string out_path = dir_.path() + "/curl.out";
    std::vector<std::string> argv{"/usr/bin/curl", "-s", "-o",
                                  out_path,        "-w", "%{http_code} %{size_download}"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    EXPECT_EQ(run_command(argv, &out), 0) << out;
    std::ifstream f(out_path, std::ios::binary);
    *body = std::string(std::istreambuf_iterator<char>(f), {});
    return out;
  }

  std::optional<Request> seen(const std::string& target) const {
    for (const auto& r : be_.received())
      if (r.target == target) return r;
    return std::nullopt;
  }

  std::vector<Line> lines() const {
    return GetParam() ? json_lines(proxy_->log()) : text_lines(proxy_->log());
  }

  TempDir dir_;
  test::TestPki pki_;
  test::PemFiles srv_;
  Backend be_;
  uint16_t cp_ = 0, tp_ = 0;
  std::unique_ptr<Process> proxy_;
};

TEST_P(AccessLogTest, OneLinePerRequestWithEveryField) {
  const int64_t t0 = now_ms();
  // HTTP/1.1, cleartext: a backend answer (slow: durations have a floor) and a 404.
  HttpResponse ok = http_request(cp_, "GET", "/api/slow?x=1", "App.Example");
  ASSERT_TRUE(ok.ok) << ok.error;
  ASSERT_EQ(ok.status, 200);
  HttpResponse nf = http_request(cp_, "GET", "/nothing", "app.example");
  ASSERT_TRUE(nf.ok) << nf.error;
  ASSERT_EQ(nf.status, 404);
  // HTTP/2: h2c with prior knowledge, and TLS with ALPN h2.
  std::string h2c_body, tls_body;
  const std::string h2c =
      curl({"--http2-prior-knowledge", "http://127.0.0.1:" + std::to_string(cp_) + "/api/h2c"}, &h2c_body);
  const std::string tls = curl({"--http2", "--cacert", pki_.ca().cert_path, "--resolve",
                                "localhost:" + std::to_string(tp_) + ":127.0.0.1",
                                "https://localhost:" + std::to_string(tp_) + "/api/tls"},
                               &tls_body);
  ASSERT_EQ(h2c, "200 " + std::to_string(h2c_body.size()));
  ASSERT_EQ(tls, "200 " + std::to_string(tls_body.size()));
  // Lines are written when the request ends; wait for the last one.
  ASSERT_TRUE(proxy_->wait_log("/api/tls")) << proxy_->log();
  for (int i = 0; i < 200 && lines().size() < 4; ++i) settle();
  const int64_t t1 = now_ms();

  std::map<std::string, Line> by_path;
  for (const Line& l : lines()) {
    EXPECT_EQ(by_path.count(l.path), 0u) << "two lines for " << l.path;
    by_path[l.path] = l;
  }
  ASSERT_EQ(by_path.size(), 4u) << proxy_->log();
  for (const auto& [path, l] : by_path) {
    SCOPED_TRACE(path);
    EXPECT_EQ(l.client, "127.0.0.1");
    const int64_t t = parse_time(l.time);
    EXPECT_GE(t, t0 - 1000);  // wall clocks of two processes: allow for rounding
    EXPECT_LE(t, t1 + 1000);
    EXPECT_EQ(l.method, "GET");
    EXPECT_GE(l.rt, 0);
  }

  const Line& a = by_path["/api/slow?x=1"];
  const auto ra = seen("/api/slow?x=1");
  ASSERT_TRUE(ra);
  EXPECT_EQ(a.protocol, "HTTP/1.1");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.bytes, ok.body.size());
  EXPECT_EQ(a.host, "app.example");
  EXPECT_GE(a.urt, 0.150);
  EXPECT_GE(a.rt, a.urt);
  EXPECT_EQ(a.backend, be_.address());
  EXPECT_EQ(a.route, "/api");
  EXPECT_EQ(a.tls, "-");
  EXPECT_EQ(a.sni, "-");
  EXPECT_EQ(a.ja4, "-");
  EXPECT_EQ(a.akamai, "-");
  EXPECT_EQ(a.tcp, dash(ra->header("x-huginn-net-tcp")));

  const Line& n = by_path["/nothing"];
  EXPECT_EQ(n.protocol, "HTTP/1.1");
  EXPECT_EQ(n.status, 404);
  EXPECT_EQ(n.bytes, nf.body.size());
  EXPECT_GT(n.bytes, 0u);
  EXPECT_EQ(n.host, "app.example");
  EXPECT_EQ(n.urt, -1);
  EXPECT_EQ(n.backend, "-");
  EXPECT_EQ(n.route, "-");

  const Line& h = by_path["/api/h2c"];
  const auto rh = seen("/api/h2c");
  ASSERT_TRUE(rh);
  EXPECT_EQ(h.protocol, "HTTP/2.0");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.bytes, h2c_body.size());
  EXPECT_EQ(h.host, "127.0.0.1");
  EXPECT_GE(h.urt, 0);
  EXPECT_EQ(h.backend, be_.address());
  EXPECT_EQ(h.route, "/api");
  EXPECT_EQ(h.tls, "-");
  EXPECT_EQ(h.ja4, "-");
  EXPECT_NE(h.akamai, "-");
  EXPECT_EQ(h.akamai, rh->header("x-huginn-net-akamai"));
  EXPECT_EQ(h.tcp, dash(rh->header("x-huginn-net-tcp")));

  const Line& s = by_path["/api/tls"];
  const auto rs = seen("/api/tls");
  ASSERT_TRUE(rs);
  EXPECT_EQ(s.protocol, "HTTP/2.0");
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.bytes, tls_body.size());
  EXPECT_EQ(s.host, "localhost");
  EXPECT_EQ(s.tls, "TLSv1.3");
  EXPECT_EQ(s.sni, "localhost");
  EXPECT_NE(s.ja4, "-");
  EXPECT_EQ(s.ja4, rs->header("x-huginn-net-ja4"));
  EXPECT_EQ(s.akamai, rs->header("x-huginn-net-akamai"));
  EXPECT_EQ(s.tcp, dash(rs->header("x-huginn-net-tcp")));
}

TEST_P(AccessLogTest, ControlCharactersAreEscaped) {
  // Quotes in the target (llhttp accepts them): they must not end the quoted
  // field of the text format, nor the JSON string.
  HttpClient c("127.0.0.1", cp_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("GET " + std::string("/api/%1b[31m\"q\"") + " HTTP/1.1\r\nHost: a\r\n\r\n"));
  HttpResponse r = c.read_response();
  ASSERT_TRUE(r.ok) << r.error;
  for (int i = 0; i < 200 && lines().empty(); ++i) settle();
  const auto ls = lines();
  ASSERT_EQ(ls.size(), 1u) << proxy_->log();
  EXPECT_EQ(ls[0].path, "/api/%1b[31m\"q\"");  // parsed back: the quotes did not end the field
  const std::string log = proxy_->log();
  if (GetParam()) {
    EXPECT_NE(log.find(R"("path":"/api/%1b[31m\"q\"")"), std::string::npos) << log;
  } else {
    EXPECT_NE(log.find(R"("GET /api/%1b[31m\x22q\x22 HTTP/1.1")"), std::string::npos) << log;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, AccessLogTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Json" : "Text"; });

}  // namespace
}  // namespace huginn::testing
