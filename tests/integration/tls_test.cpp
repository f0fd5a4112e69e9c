// TLS and HTTP/2 through the real binaries, with real clients (curl, nghttp,
// h2load, openssl s_client, Python's h2): the fingerprint headers the
// backend receives are compared with the oracle values (same client builds as
// tests/data/oracles) and with what `huginnctl fingerprint --pcap` computes
// from a tcpdump capture of the very same connection.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <json/json.h>

#include "tests/support/backend.h"
#include "tests/support/harness.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;

bool have(const char* path) { return access(path, X_OK) == 0; }

// The `expect` block of the first flow of an oracle case.
Json::Value oracle_expect(const std::string& name) {
  std::ifstream in(std::string(HUGINN_TEST_DATA) + "/oracles/expected.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const Json::Value root = parse_json(ss.str());
  for (const auto& c : root["cases"])
    if (c["name"].asString() == name) return c["flows"][0]["expect"];
  ADD_FAILURE() << "no oracle case " << name;
  return {};
}

// A private PKI made with the openssl command line, as an operator would.
class Pki {
 public:
  explicit Pki(const TempDir& dir) : dir_(dir.path()) {}

  void make_ca(const std::string& name) {
    run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", "/CN=" + name, "-keyout", path(name + ".key"), "-out", path(name + ".crt")});
  }
  // A leaf certificate for `cn` (also its DNS SAN), signed by `ca` or self-signed when ca is empty.
  void make_leaf(const std::string& name, const std::string& cn, const std::string& ca, bool client = false) {
    const std::string ext = path(name + ".ext");
    std::ofstream(ext) << (client
                               ? "extendedKeyUsage=clientAuth\n"
                               : "subjectAltName=DNS:" + cn + ",IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    run({"/usr/bin/openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=" + cn, "-keyout", path(name + ".key"), "-out", path(name + ".csr")});
    if (ca.empty()) {
      run({"/usr/bin/openssl", "x509", "-req", "-days", "2", "-in", path(name + ".csr"), "-signkey",
           path(name + ".key"), "-extfile", ext, "-out", path(name + ".crt")});
    } else {
      run({"/usr/bin/openssl", "x509", "-req", "-days", "2", "-in", path(name + ".csr"), "-CA",
           path(ca + ".crt"), "-CAkey", path(ca + ".key"), "-CAcreateserial", "-extfile", ext, "-out",
           path(name + ".crt")});
    }
  }
  std::string crt(const std::string& name) const { return path(name + ".crt"); }
  std::string key(const std::string& name) const { return path(name + ".key"); }
  std::string path(const std::string& file) const { return dir_ + "/" + file; }

 private:
  void run(const std::vector<std::string>& argv) {
    std::string out;
    ASSERT_EQ(run_command(argv, &out), 0) << out;
  }
  std::string dir_;
};

// One TCP segment of a capture, as tcpdump prints it.
struct Segment {
  uint16_t from_port = 0;
  std::string flags;  // tcpdump's: "S", "S.", "P.", "F.", "FP.", "R" ...
  size_t length = 0;  // payload bytes
  bool fin() const { return flags.find('F') != std::string::npos; }
};

// tcpdump on loopback for one port, written to a pcap file.
class Capture {
 public:
  Capture(const std::string& file, uint16_t port, const std::string& log) : file_(file) {
    proc_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/tcpdump", "-i", "lo", "--immediate-mode", "-U", "-n", "-Z", "root",
                                 "-s", "0", "-w", file, "tcp port " + std::to_string(port)},
        log);
    ready_ = proc_->wait_log("listening on", 10000);
  }
  bool ready() const { return ready_; }
  // Stops the capture and returns huginnctl's per-flow fingerprints.
  std::vector<Json::Value> flows() {
    stop();
    std::string out;
    EXPECT_EQ(run_command({binary_path("bin/huginnctl"), "fingerprint", "--pcap", file_, "--json"}, &out), 0)
        << out;
    std::vector<Json::Value> v;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line))
      if (!line.empty()) v.push_back(parse_json(line));
    return v;
  }
  // Stops the capture and returns its segments in order.
  std::vector<Segment> segments() {
    stop();
    std::string out;
    EXPECT_EQ(run_command({"/usr/bin/tcpdump", "-r", file_, "-nn"}, &out), 0) << out;
    static const std::regex line(R"(IP \S+\.(\d+) > \S+: Flags \[([^\]]*)\].* length (\d+))");
    std::vector<Segment> v;
    std::istringstream lines(out);
    std::string l;
    std::smatch m;
    while (std::getline(lines, l))
      if (std::regex_search(l, m, line))
        v.push_back({static_cast<uint16_t>(std::stoi(m[1])), m[2], std::stoul(m[3])});
    return v;
  }

 private:
  void stop() {
    if (!proc_) return;
    std::this_thread::sleep_for(200ms);  // the last segments reach the file
    proc_->signal(SIGINT);
    proc_->wait_exit(10000);
    proc_.reset();
  }
  std::string file_;
  std::unique_ptr<Process> proc_;
  bool ready_ = false;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("/usr/bin/curl") || !have("/usr/bin/openssl"))
      GTEST_SKIP() << "curl/openssl missing (scripts/install-deps.sh installs them)";
    // The listeners bind 127.0.0.1 and ::1: the ports must be free on both.
    tls_port_ = free_dual_stack_port();
    h2c_port_ = free_dual_stack_port();
    pki_ = std::make_unique<Pki>(dir_);
    pki_->make_ca("ca");
    pki_->make_leaf("localhost", "localhost", "ca");
  }
  void TearDown() override {
    if (proxy_) {
      proxy_->signal(SIGTERM);
      proxy_->wait_exit(15000);
    }
  }

  std::string config(int workers, const std::string& tls_extra = "", const std::string& domains = "") const {
    std::string d = domains.empty() ? "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" +
                                          be_.address() + "\"\n"
                                    : domains;
    const std::string tp = std::to_string(tls_port_), cp = std::to_string(h2c_port_);
    return "workers = " + std::to_string(workers) +
           "\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + tp + "\", \"[::1]:" + tp +
           "\"]\ncleartext_addrs = [\"127.0.0.1:" + cp + "\", \"[::1]:" + cp +
           "\"]\n\n[tls]\ncert_path = \"" + pki_->crt("localhost") + "\"\nkey_path = \"" +
           pki_->key("localhost") + "\"\n" + tls_extra +
           "\n[timeout]\nshutdown_secs = 5\ntls_handshake_secs = 3\n\n[dbus]\nbus = " +
           "\"none\"\n\n[[backends]]\naddress = \"" + be_.address() + "\"\n\n" + d;
  }

  void start(const std::string& toml) {
    const std::string path = dir_.write("config.toml", toml);
    proxy_ = spawn_proxy(dir_, path);
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  std::string https(const std::string& path = "/") const {
    return "https://localhost:" + std::to_string(tls_port_) + path;
  }
  std::string resolve() const { return "localhost:" + std::to_string(tls_port_) + ":127.0.0.1"; }

  // Runs a client under a capture of `port`; returns its output and the flows.
  std::pair<std::string, std::vector<Json::Value>> captured(uint16_t port,
                                                            const std::vector<std::string>& argv,
                                                            const std::string& stdin_text = "") {
    const std::string n = std::to_string(++captures_);
    Capture cap(dir_.path() + "/c" + n + ".pcap", port, dir_.path() + "/tcpdump" + n + ".log");
    EXPECT_TRUE(cap.ready()) << "tcpdump did not start";
    std::string out;
    if (stdin_text.empty()) {
      EXPECT_EQ(run_command(argv, &out), 0) << out;
    } else {
      const std::string in = dir_.write("stdin" + std::to_string(captures_), stdin_text);
      std::string cmd;
      for (const auto& a : argv) cmd += "'" + a + "' ";
      EXPECT_EQ(run_command({"/bin/sh", "-c", cmd + "< '" + in + "'"}, &out), 0) << out;
    }
    return {out, cap.flows()};
  }

  // The backend's view of the last request.
  Request last_request() const {
    auto all = be_.received();
    EXPECT_FALSE(all.empty());
    return all.empty() ? Request{} : all.back();
  }

  static void expect_ja4(const Request& r, const Json::Value& want, const std::string& what) {
    EXPECT_EQ(r.header("x-huginn-net-ja4"), want["ja4"].asString()) << what;
    EXPECT_EQ(r.header("x-huginn-net-ja4_r"), want["ja4_r"].asString()) << what;
    EXPECT_EQ(r.header("x-huginn-net-ja4_o"), want["ja4_o"].asString()) << what;
    EXPECT_EQ(r.header("x-huginn-net-ja4_or"), want["ja4_or"].asString()) << what;
  }

  Backend be_;
  TempDir dir_;
  std::unique_ptr<Pki> pki_;
  uint16_t tls_port_ = 0;
  uint16_t h2c_port_ = 0;
  int captures_ = 0;
  std::unique_ptr<Process> proxy_;
};

TEST_F(TlsTest, CurlHttp2AndHttp11CarryTheOracleFingerprintsAndAgreeWithTheCapture) {
  if (geteuid() != 0 || !have("/usr/bin/tcpdump"))
    GTEST_SKIP() << "needs root and tcpdump to capture loopback";
  start(config(2));
  struct Case {
    std::vector<std::string> flags;
    const char* oracle;
    bool h2;
  };
  for (const Case& c :
       {Case{{"--http2"}, "curl_localhost_h2", true}, Case{{"--http1.1"}, "curl_http11", false},
        Case{{"--tlsv1.2", "--tls-max", "1.2"}, "curl_tls12_max", true}}) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS",       "--cacert",
                                     pki_->crt("ca"), "--resolve", resolve()};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    argv.push_back(https("/curl"));
    auto [out, flows] = captured(tls_port_, argv);
    const Request r = last_request();
    const Json::Value want = oracle_expect(c.oracle);
    expect_ja4(r, want, c.oracle);
    if (c.h2) {
      EXPECT_EQ(r.header("x-huginn-net-akamai"), want["akamai"].asString()) << c.oracle;
    } else {
      EXPECT_FALSE(r.header_count("x-huginn-net-akamai")) << "HTTP/1.1 has no Akamai fingerprint";
    }
    EXPECT_EQ(r.header("x-forwarded-proto"), "https");
    ASSERT_EQ(flows.size(), 1u) << out;
    EXPECT_EQ(flows[0]["ja4"].asString(), r.header("x-huginn-net-ja4")) << c.oracle;
    EXPECT_EQ(flows[0]["ja4_or"].asString(), r.header("x-huginn-net-ja4_or")) << c.oracle;
    // The live SYN fingerprint equals the one computed offline from the same capture.
    EXPECT_EQ(flows[0]["tcp"].asString(), r.header("x-huginn-net-tcp")) << c.oracle;
  }
}

TEST_F(TlsTest, NghttpAndH2loadOverTlsAndH2c) {
  if (!have("/usr/bin/nghttp") || !have("/usr/bin/h2load")) GTEST_SKIP() << "nghttp2-client is not installed";
  if (geteuid() != 0 || !have("/usr/bin/tcpdump"))
    GTEST_SKIP() << "needs root and tcpdump to capture loopback";
  start(config(2));
  struct Case {
    std::string url;
    uint16_t port;
    const char* oracle;
    bool tls;
  };
  const std::string tls_url = "https://127.0.0.1:" + std::to_string(tls_port_) + "/n";
  const std::string h2c_url = "http://127.0.0.1:" + std::to_string(h2c_port_) + "/n";
  for (const Case& c :
       {Case{"https://localhost:" + std::to_string(tls_port_) + "/n", tls_port_, "nghttp_tls", true},
        Case{h2c_url, h2c_port_, "nghttp_h2c", false}}) {
    // nghttp has no --resolve: "localhost" may resolve to ::1 or 127.0.0.1;
    // the proxy listens on both (and SNI is "localhost").
    auto [out, flows] = captured(c.port, {"/usr/bin/nghttp", c.url});
    // (nghttp's stderr warnings share the output: keep the JSON object.)
    const size_t open = out.find('{'), close = out.rfind('}');
    ASSERT_TRUE(open != std::string::npos && close != std::string::npos) << out;
    const Json::Value echo = parse_json(out.substr(open, close - open + 1));
    const Json::Value want = oracle_expect(c.oracle);
    EXPECT_EQ(echo["headers"]["x-huginn-net-akamai"].asString(), want["akamai"].asString()) << c.oracle;
    ASSERT_EQ(flows.size(), 1u);
    if (c.tls) {
      EXPECT_EQ(echo["headers"]["x-huginn-net-ja4"].asString(), want["ja4"].asString()) << c.oracle;
      EXPECT_EQ(flows[0]["ja4"].asString(), echo["headers"]["x-huginn-net-ja4"].asString());
    } else {
      EXPECT_FALSE(echo["headers"].isMember("x-huginn-net-ja4"));
      EXPECT_EQ(flows[0]["akamai"].asString(), echo["headers"]["x-huginn-net-akamai"].asString());
    }
  }
  // h2load: many multiplexed requests on several connections, every one of
  // them fingerprinted.
  for (const Case& c :
       {Case{tls_url, tls_port_, "h2load_tls", true}, Case{h2c_url, h2c_port_, "h2load_h2c", false}}) {
    const size_t before = be_.received().size();
    auto [out, flows] = captured(c.port, {"/usr/bin/h2load", "-n", "200", "-c", "4", "-m", "10", c.url});
    EXPECT_NE(out.find("200 succeeded, 0 failed, 0 errored, 0 timeout"), std::string::npos) << out;
    EXPECT_NE(out.find("200 2xx"), std::string::npos) << out;
    EXPECT_EQ(flows.size(), 4u);
    auto all = be_.received();
    ASSERT_EQ(all.size() - before, 200u);
    const Json::Value want = oracle_expect(c.oracle);
    // SNI differs from the oracle run (an IP literal sends none): compare with
    // the capture. All four connections send the same hello; on a loaded
    // machine the capture may miss the start of one flow, so take the JA4 of
    // any flow whose hello was captured.
    std::string captured_ja4;
    for (const Json::Value& f : flows)
      if (!f["ja4"].asString().empty()) captured_ja4 = f["ja4"].asString();
    if (c.tls) {
      ASSERT_FALSE(captured_ja4.empty()) << "no ClientHello in the capture";
    }
    for (size_t i = before; i < all.size(); ++i) {
      EXPECT_EQ(all[i].header("x-huginn-net-akamai"), want["akamai"].asString()) << c.oracle;
      if (c.tls) {
        EXPECT_EQ(all[i].header("x-huginn-net-ja4"), captured_ja4);
      }
    }
  }
}

TEST_F(TlsTest, OpensslSClientVersionsAndServerNames) {
  if (geteuid() != 0 || !have("/usr/bin/tcpdump"))
    GTEST_SKIP() << "needs root and tcpdump to capture loopback";
  start(config(2));
  const std::string connect = "127.0.0.1:" + std::to_string(tls_port_);
  const std::string req = "GET /s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  struct Case {
    std::vector<std::string> flags;
    std::string version;
    char sni;  // JA4 'd' (SNI present) or 'i'
  };
  for (const Case& c : {Case{{"-servername", "localhost"}, "13", 'd'}, Case{{"-noservername"}, "13", 'i'},
                        Case{{"-tls1_2", "-servername", "localhost"}, "12", 'd'},
                        Case{{"-tls1_3", "-servername", "localhost"}, "13", 'd'},
                        Case{{"-tls1_2", "-noservername"}, "12", 'i'}}) {
    std::vector<std::string> argv = {"/usr/bin/openssl", "s_client", "-quiet", "-connect", connect};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    auto [out, flows] = captured(tls_port_, argv, req);
    const Request r = last_request();
    const std::string ja4 = r.header("x-huginn-net-ja4");
    ASSERT_EQ(flows.size(), 1u) << out;
    EXPECT_EQ(ja4, flows[0]["ja4"].asString()) << out;
    EXPECT_EQ(r.header("x-huginn-net-ja4_r"), flows[0]["ja4_r"].asString());
    EXPECT_EQ(r.header("x-huginn-net-ja4_o"), flows[0]["ja4_o"].asString());
    EXPECT_EQ(r.header("x-huginn-net-ja4_or"), flows[0]["ja4_or"].asString());
    ASSERT_GE(ja4.size(), 4u);
    EXPECT_EQ(ja4.substr(1, 2), c.version) << ja4;
    EXPECT_EQ(ja4[3], c.sni) << ja4;
    EXPECT_EQ(ja4.substr(8, 2), "00") << "s_client offers no ALPN: " << ja4;
  }
}

// A response that ends its connection leaves in one segment with the TLS
// close_notify and the FIN: the output is held back with MSG_MORE once the
// close is decided, and the shutdown of the write side sends it all
// (worker/tls/held_output.h). Without the hold the response head, its body,
// the close_notify and the FIN went separately (5 and 6 segments in all).
TEST_F(TlsTest, LastResponseCloseNotifyAndFinShareOneSegment) {
  if (geteuid() != 0 || !have("/usr/bin/tcpdump"))
    GTEST_SKIP() << "needs root and tcpdump to capture loopback";
  start(config(1));
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version);
    Capture cap(dir_.path() + "/last" + std::to_string(version) + ".pcap", tls_port_,
                dir_.path() + "/tcpdump-last.log");
    ASSERT_TRUE(cap.ready()) << "tcpdump did not start";
    TlsOptions o;
    o.sni = "localhost";
    o.min_version = o.max_version = version;
    size_t body = 0;
    {
      HttpClient c("127.0.0.1", tls_port_, o);
      ASSERT_TRUE(c.connected()) << c.tls_error();
      ASSERT_TRUE(c.send("GET /last HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
      const HttpResponse r = c.read_response();
      ASSERT_TRUE(r.ok);
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.header("connection"), "close");
      body = r.body.size();
      EXPECT_TRUE(c.wait_closed()) << "close_notify, then EOF";
    }
    std::vector<Segment> server;  // the proxy's segments with payload or FIN
    for (const Segment& s : cap.segments())
      if (s.from_port == tls_port_ && (s.length > 0 || s.fin())) server.push_back(s);
    ASSERT_FALSE(server.empty());
    EXPECT_EQ(std::count_if(server.begin(), server.end(), [](const Segment& s) { return s.fin(); }), 1);
    const Segment& last = server.back();
    EXPECT_TRUE(last.fin()) << last.flags;
    // The response (head and body) and the close_notify (a record of at least 24 bytes).
    EXPECT_GT(last.length, body + 24) << "the FIN came without the response";
    // TLS 1.3: the server's flight, then everything else. TLS 1.2: two flights.
    EXPECT_EQ(server.size(), version == TLS1_3_VERSION ? 2u : 3u);
  }
}

// A client that closes its side for good (close_notify and FIN) after its
// response gets the FIN alone: it has, typically, closed its socket, and a
// close_notify would come back as a reset. One that sends only the alert may
// be waiting for ours (a bidirectional shutdown), and one that closes its
// side while its response is still due (a half-close) still reads: both get
// it. The half-closing client sends request, alert and FIN in one segment:
// sent apart, the response may be out before the alert is in, and the proxy
// then rightly takes the client for one that has left.
TEST_F(TlsTest, CloseNotifyAnswersOnlyAClientThatStillListens) {
  start(config(1));
  TlsOptions o;
  o.sni = "localhost";
  const std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  for (bool fin : {true, false}) {
    SCOPED_TRACE(fin ? "after the response: close_notify and FIN" : "after the response: close_notify alone");
    HttpClient c("127.0.0.1", tls_port_, o);
    ASSERT_TRUE(c.connected()) << c.tls_error();
    ASSERT_TRUE(c.send(request));
    ASSERT_TRUE(c.read_response().ok);
    c.pump(100);  // the TLS 1.3 tickets, read
    const HttpClient::Drained d = c.close_notify_then_drain(fin);
    EXPECT_FALSE(d.timed_out);
    EXPECT_EQ(d.app_bytes, 0u);
    EXPECT_EQ(d.close_notify, !fin);
  }
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE("half-close after the request");
    o.min_version = o.max_version = version;
    HttpClient c("127.0.0.1", tls_port_, o);
    ASSERT_TRUE(c.connected()) << c.tls_error();
    const HttpClient::Drained d = c.close_notify_then_drain(true, request);
    EXPECT_FALSE(d.timed_out);
    EXPECT_GT(d.app_bytes, 100u) << "the response";
    EXPECT_TRUE(d.close_notify) << "a client that still reads gets the close_notify";
  }
}

// Uploads over TLS arrive byte-exact, whatever the sizes of the client's
// records: the socket BIO reads small records ahead and large ones straight
// (worker/tls/acceptor.cpp), and switches with each record, so the client
// writes pieces that cross both sides of the 4 KiB boundary, and small
// requests follow on the same connection. HTTP/2 (curl) sends DATA frames.
TEST_F(TlsTest, UploadsArriveByteExactWhateverTheRecordSizes) {
  start(config(1));
  const std::vector<size_t> sizes = {1, 100, 3000, 4090, 4096, 4097, 5000, 16384, 20000, 7, 70000};
  constexpr uint64_t kBody = 3 * 1024 * 1024 + 17;
  std::string pattern(kBody, '\0');
  fnv_pattern(0, pattern.data(), pattern.size());
  const uint64_t want = fnv1a(kFnvInit, pattern.data(), pattern.size());
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version);
    TlsOptions o;
    o.sni = "localhost";
    o.min_version = o.max_version = version;
    HttpClient c("127.0.0.1", tls_port_, o);
    ASSERT_TRUE(c.connected()) << c.tls_error();
    for (int round = 0; round < 2; ++round) {
      ASSERT_TRUE(c.send("POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(kBody) +
                         "\r\n\r\n"));
      size_t i = static_cast<size_t>(round);  // the second round starts the sizes elsewhere
      for (uint64_t off = 0; off < kBody; ++i) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(sizes[i % sizes.size()], kBody - off));
        ASSERT_TRUE(c.send(pattern.substr(off, n)));
        off += n;
      }
      const HttpResponse r = c.read_response(30000);
      ASSERT_TRUE(r.ok) << r.error;
      const Json::Value j = parse_json(r.body);
      EXPECT_EQ(j["body_bytes"].asUInt64(), kBody);
      EXPECT_EQ(j["body_fnv"].asString(), std::to_string(want));
      for (int k = 0; k < 3; ++k) {
        ASSERT_TRUE(c.send("GET /small" + std::to_string(k) + " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
        const HttpResponse g = c.read_response();
        ASSERT_TRUE(g.ok) << g.error;
        EXPECT_EQ(parse_json(g.body)["path"].asString(), "/small" + std::to_string(k));
      }
    }
  }
  const std::string file = dir_.write("upload.bin", pattern);
  std::string out;
  ASSERT_EQ(run_command({"/usr/bin/curl", "-sS", "--http2", "--cacert", pki_->crt("localhost"), "--resolve",
                         resolve(), "--data-binary", "@" + file, https("/up2")},
                        &out),
            0)
      << out;
  const Json::Value j = parse_json(out);
  EXPECT_EQ(j["body_bytes"].asUInt64(), kBody);
  EXPECT_EQ(j["body_fnv"].asString(), std::to_string(want));
  EXPECT_EQ(j["method"].asString(), "POST");
}

// 312,000 bytes of pipelined requests, more than the 256 KiB the proxy reads
// ahead of its work: libevent stops reading at that watermark, possibly inside
// a TLS record whose rest OpenSSL has decrypted and holds. Reading resumes
// from those bytes when the input drains (bulk_io.h, read_tls_pending), not
// at the next socket readiness, which never comes: the client has sent all
// and waits for the answers.
TEST_F(TlsTest, PipelinedRequestsBeyondTheReadWatermarkAreAllAnswered) {
  start(config(1));
  TlsOptions o;
  o.sni = "localhost";
  HttpClient c("127.0.0.1", tls_port_, o);
  ASSERT_TRUE(c.connected()) << c.tls_error();
  const std::string one = "GET /p HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + std::string(60, 'p') + "\r\n\r\n";
  constexpr int kRequests = 3000;
  std::string all;
  for (int i = 0; i < kRequests; ++i) all += one;
  ASSERT_GT(all.size(), 256u * 1024);
  ASSERT_TRUE(c.send(all));
  for (int i = 0; i < kRequests; ++i) {
    const HttpResponse r = c.read_response(5000);
    ASSERT_TRUE(r.ok) << "response " << i << " of " << kRequests << ": " << r.error;
    ASSERT_EQ(r.status, 200) << i;
  }
}

TEST_F(TlsTest, ClientSentFingerprintHeadersNeverReachTheBackend) {
  start(config(1));
  for (const char* proto : {"--http2", "--http1.1"}) {
    std::string out;
    ASSERT_EQ(run_command({"/usr/bin/curl", "-sS", proto, "--cacert", pki_->crt("ca"), "--resolve", resolve(),
                           "-H", "X-Huginn-Net-JA4: forged", "-H", "x-huginn-net-akamai: forged", "-H",
                           "x-huginn-net-tcp: forged", https("/spoof")},
                          &out),
              0)
        << out;
    const Request r = last_request();
    EXPECT_NE(r.header("x-huginn-net-ja4"), "forged") << proto;
    EXPECT_EQ(r.header_count("x-huginn-net-ja4"), 1) << proto;
    EXPECT_NE(r.header("x-huginn-net-tcp"), "forged") << proto;
    EXPECT_NE(r.header("x-fingerprint-spoofing-detected"), "") << proto;
    if (std::string(proto) == "--http2") {
      EXPECT_EQ(r.header_count("x-huginn-net-akamai"), 1);
      EXPECT_NE(r.header("x-huginn-net-akamai"), "forged");
    } else {
      EXPECT_EQ(r.header_count("x-huginn-net-akamai"), 0)
          << "HTTP/1.1: the forged value is removed, none injected";
    }
  }
}

// 20 sequential connections against 4 workers resume every time after the
// first (shared ticket keys), for TLS 1.3 and TLS 1.2, with real s_client.
TEST_F(TlsTest, SessionResumptionWorksAcrossFourWorkers) {
  start(config(4));
  const std::string connect = "127.0.0.1:" + std::to_string(tls_port_);
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    const std::string sess = dir_.path() + "/session" + version;
    unlink(sess.c_str());
    const std::string in =
        dir_.write("req", "GET /r HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    int reused = 0;
    for (int i = 0; i < 20; ++i) {
      std::string cmd = "/usr/bin/openssl s_client " + std::string(version) + " -connect " + connect +
                        " -servername localhost -ign_eof -sess_out '" + sess + "'";
      if (i > 0) cmd += " -sess_in '" + sess + "'";
      std::string out;
      ASSERT_EQ(run_command({"/bin/sh", "-c", cmd + " < '" + in + "' 2>&1"}, &out), 0) << out;
      if (out.find("\nReused, TLSv1.") != std::string::npos) {
        ++reused;
      } else {
        EXPECT_EQ(i, 0) << version << ": connection " << i << " was not resumed:\n" << out;
      }
    }
    EXPECT_EQ(reused, 19) << version;
  }
}

// TLS 1.3 clients use a ticket once (RFC 8446 C.4): OpenSSL's client, wrk and
// browsers resume the next connection with the ticket the last one received.
// So a resumed TLS 1.3 connection must bring a fresh ticket, or every other
// connection is a full handshake. Each link of this chain offers only the
// session of the link before it, across two workers.
TEST_F(TlsTest, ResumedTls13ConnectionsGetAFreshTicketSoResumptionChains) {
  start(config(2));
  TlsOptions o;
  o.sni = "localhost";
  o.min_version = o.max_version = TLS1_3_VERSION;
  SSL_SESSION* offered = nullptr;
  for (int i = 0; i < 6; ++i) {
    o.session = offered;
    HttpClient c("127.0.0.1", tls_port_, o);
    ASSERT_TRUE(c.connected()) << c.tls_error();
    EXPECT_EQ(c.session_reused(), i > 0) << "connection " << i;
    c.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_TRUE(c.read_response().ok) << "connection " << i;
    c.pump(200);
    SSL_SESSION* got = c.get1_session();
    ASSERT_NE(got, nullptr);
    EXPECT_TRUE(SSL_SESSION_is_resumable(got)) << "connection " << i;
    if (offered != nullptr) {
      const unsigned char *t_old = nullptr, *t_new = nullptr;
      size_t n_old = 0, n_new = 0;
      SSL_SESSION_get0_ticket(offered, &t_old, &n_old);
      SSL_SESSION_get0_ticket(got, &t_new, &n_new);
      EXPECT_FALSE(n_old == n_new && std::memcmp(t_old, t_new, n_new) == 0)
          << "connection " << i << " was resumed but brought no new ticket";
      SSL_SESSION_free(offered);
    }
    offered = got;
  }
  SSL_SESSION_free(offered);
}

TEST_F(TlsTest, ResumptionCanBeTurnedOff) {
  start(config(2, "\n[tls.session_resumption]\nenabled = false\n"));
  TlsOptions o;
  o.sni = "localhost";
  HttpClient first("127.0.0.1", tls_port_, o);
  ASSERT_TRUE(first.connected()) << first.tls_error();
  first.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  ASSERT_TRUE(first.read_response().ok);
  first.pump(200);
  SSL_SESSION* s = first.get1_session();
  o.session = s;
  HttpClient second("127.0.0.1", tls_port_, o);
  ASSERT_TRUE(second.connected()) << second.tls_error();
  EXPECT_FALSE(second.session_reused());
  SSL_SESSION_free(s);
}

// Replacing the certificate files while a keep-alive connection is open: the
// old connection keeps working; a new one gets the new certificate.
TEST_F(TlsTest, CertificateHotReloadKeepsOpenConnections) {
  start(config(2));
  TlsOptions o;
  o.sni = "localhost";
  o.ca_file = pki_->crt("ca");
  HttpClient old_conn("127.0.0.1", tls_port_, o);
  ASSERT_TRUE(old_conn.connected()) << old_conn.tls_error();
  ASSERT_TRUE(old_conn.send("GET /1 HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  ASSERT_EQ(old_conn.read_response().status, 200);
  const std::string old_serial = old_conn.peer_serial();

  // Like certbot: new files written elsewhere, then renamed over the old ones.
  pki_->make_leaf("renewed", "localhost", "ca");
  const int sent_before = proxy_->log_count("TLS material 2 sent");
  ASSERT_EQ(rename(pki_->key("renewed").c_str(), pki_->key("localhost").c_str()), 0);
  ASSERT_EQ(rename(pki_->crt("renewed").c_str(), pki_->crt("localhost").c_str()), 0);
  bool reloaded = false;
  for (int i = 0; i < 500 && !reloaded; ++i) {
    reloaded = proxy_->log_count("TLS material 2 sent") > sent_before;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(reloaded) << proxy_->log();
  std::this_thread::sleep_for(200ms);  // the workers apply it

  HttpClient new_conn("127.0.0.1", tls_port_, o);
  ASSERT_TRUE(new_conn.connected()) << new_conn.tls_error();
  EXPECT_NE(new_conn.peer_serial(), old_serial);
  ASSERT_TRUE(new_conn.send("GET /2 HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_EQ(new_conn.read_response().status, 200);
  // The connection made before the change still works.
  ASSERT_TRUE(old_conn.send("GET /3 HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_EQ(old_conn.read_response().status, 200);

  // A broken file is reported and the current certificate stays.
  { std::ofstream(pki_->crt("localhost"), std::ios::trunc) << "-----BEGIN CERTIFICATE-----\nbroken\n"; }
  std::this_thread::sleep_for(1500ms);
  HttpClient after_broken("127.0.0.1", tls_port_, o);
  ASSERT_TRUE(after_broken.connected()) << after_broken.tls_error();
  EXPECT_EQ(after_broken.peer_serial(), new_conn.peer_serial());
  EXPECT_TRUE(proxy_->running());
}

TEST_F(TlsTest, MutualTlsPerDomain) {
  pki_->make_ca("clientca");
  pki_->make_ca("otherca");
  pki_->make_leaf("secure", "secure.test", "ca");
  pki_->make_leaf("alice", "alice", "clientca", true);
  pki_->make_leaf("mallory", "mallory", "otherca", true);
  const std::string domains =
      "[[domains]]\nhost = \"secure.test\"\ncert_path = \"" + pki_->crt("secure") + "\"\nkey_path = \"" +
      pki_->key("secure") + "\"\nclient_ca_path = \"" + pki_->crt("clientca") +
      "\"\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be_.address() +
      "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be_.address() + "\"\n";
  start(config(2, "", domains));
  auto get = [&](const std::string& cert, const std::string& sni) {
    TlsOptions o;
    o.sni = sni;
    o.ca_file = pki_->crt("ca");
    if (!cert.empty()) {
      o.cert_file = pki_->crt(cert);
      o.key_file = pki_->key(cert);
    }
    HttpClient c("127.0.0.1", tls_port_, o);
    HttpResponse r;
    if (!c.connected()) {
      r.error = c.tls_error();
      return r;
    }
    c.send("GET /m HTTP/1.1\r\nHost: " + sni + "\r\n\r\n");
    return c.read_response(5000);
  };
  auto ok = get("alice", "secure.test");
  ASSERT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(ok.status, 200);
  // No client certificate, or one from another CA: the handshake fails (in
  // TLS 1.3 the client learns it from the server's alert on its first read).
  EXPECT_FALSE(get("", "secure.test").ok);
  EXPECT_FALSE(get("mallory", "secure.test").ok);
  // The certificate-less default domain is unaffected, and reaching the
  // mTLS domain through another SNI is a 421.
  auto plain = get("", "localhost");
  ASSERT_TRUE(plain.ok) << plain.error;
  EXPECT_EQ(plain.status, 200);
  TlsOptions o;
  o.sni = "localhost";
  HttpClient c("127.0.0.1", tls_port_, o);
  ASSERT_TRUE(c.connected());
  c.send("GET /m HTTP/1.1\r\nHost: secure.test\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 421);
  EXPECT_NE(r.body.find("mutual_tls_host_inconsistency"), std::string::npos) << r.body;
}

TEST_F(TlsTest, SniStrictRejectsUnknownNames) {
  start(config(1, "\n[tls.options]\nsni_strict = true\n",
               "[[domains]]\nhost = \"localhost\"\ncert_path = \"" + pki_->crt("localhost") +
                   "\"\nkey_path = \"" + pki_->key("localhost") +
                   "\"\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be_.address() + "\"\n"));
  TlsOptions known;
  known.sni = "localhost";
  HttpClient a("127.0.0.1", tls_port_, known);
  EXPECT_TRUE(a.connected()) << a.tls_error();
  TlsOptions unknown;
  unknown.sni = "nobody.test";
  HttpClient b("127.0.0.1", tls_port_, unknown);
  EXPECT_FALSE(b.connected());
  EXPECT_NE(b.tls_error().find("unrecognized name"), std::string::npos) << b.tls_error();
  TlsOptions none;  // no SNI at all
  HttpClient c("127.0.0.1", tls_port_, none);
  EXPECT_FALSE(c.connected());
}

TEST_F(TlsTest, SilentClientIsClosedAtTheHandshakeDeadline) {
  start(config(1));
  HttpClient c("127.0.0.1", tls_port_);  // plain TCP: sends nothing
  ASSERT_TRUE(c.connected());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.wait_closed(10000));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 2500ms) << "closed before tls_handshake_secs = 3";
}

// Backends with http_version = "http2" get h2c (from HTTP/1.1 and HTTP/2
// clients alike), with the fingerprint headers; "preserve" follows the client.
TEST_F(TlsTest, H2cBackendsGetTheRequestOverHttp2) {
  std::string probe;
  if (run_command({"/usr/bin/python3", "-c", "import h2"}, &probe) != 0)
    GTEST_SKIP() << "python3-h2 is not installed (scripts/install-deps.sh installs it)";
  const uint16_t h2c_port = free_port();
  Process origin(
      {"/usr/bin/python3", std::string(HUGINN_SOURCE_DIR) + "/tests/integration/h2c_echo_backend.py",
       std::to_string(h2c_port)},
      dir_.path() + "/h2c-origin.log");
  ASSERT_TRUE(origin.wait_log("listening", 10000)) << origin.log();
  const std::string h2c_backend = "127.0.0.1:" + std::to_string(h2c_port);
  const std::string domains =
      "[[backends]]\naddress = \"" + h2c_backend + "\"\nhttp_version = \"http2\"\n\n" +
      "[[domains]]\n[[domains.routes]]\nprefix = \"/h2c\"\nbackend = \"" + h2c_backend +
      "\"\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be_.address() + "\"\n";
  start(config(2, "", domains));
  for (const char* proto : {"--http2", "--http1.1"}) {
    std::string out;
    ASSERT_EQ(run_command({"/usr/bin/curl", "-sS", proto, "--cacert", pki_->crt("ca"), "--resolve", resolve(),
                           "-d", "hello", https("/h2c/x?q=1")},
                          &out),
              0)
        << out;
    const Json::Value j = parse_json(out);
    EXPECT_EQ(j["protocol"].asString(), "h2c") << out;
    EXPECT_EQ(j["method"].asString(), "POST");
    EXPECT_EQ(j["path"].asString(), "/h2c/x?q=1");
    EXPECT_EQ(j["authority"].asString(), h2c_backend);
    EXPECT_EQ(j["body_bytes"].asInt(), 5);
    EXPECT_EQ(j["headers"]["x-forwarded-proto"].asString(), "https");
    EXPECT_FALSE(j["headers"]["x-huginn-net-ja4"].asString().empty()) << out;
    EXPECT_EQ(j["headers"].isMember("x-huginn-net-akamai"), std::string(proto) == "--http2") << out;
  }
  // Several requests over one keep-alive client connection reuse the backend session.
  std::string out;
  ASSERT_EQ(run_command({"/usr/bin/curl", "-sS", "--http2", "--cacert", pki_->crt("ca"), "--resolve",
                         resolve(), https("/h2c/1"), https("/h2c/2"), https("/h2c/3")},
                        &out),
            0)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '{'), 6)
      << out;  // three JSON bodies with a nested object each
}

// CVE-2023-44487: a client that opens and resets streams as fast as it can
// gets GOAWAY; the worker stays up and other clients are served meanwhile.
TEST_F(TlsTest, RapidResetClientGetsGoawayAndOthersAreUnaffected) {
  if (!have("/usr/bin/python3")) GTEST_SKIP() << "python3 missing";
  std::string probe;
  if (run_command({"/usr/bin/python3", "-c", "import h2"}, &probe) != 0)
    GTEST_SKIP() << "python3-h2 is not installed (scripts/install-deps.sh installs it)";
  start(config(1));
  const pid_t worker = children_of(proxy_->pid()).at(0);
  std::string out;
  int rc = -1;
  std::thread attacker([&] {
    rc = run_command(
        {"/usr/bin/python3", std::string(HUGINN_SOURCE_DIR) + "/tests/integration/h2_rapid_reset.py",
         "127.0.0.1", std::to_string(h2c_port_), "5000"},
        &out, 60000);
  });
  int served = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = http_request(h2c_port_, "GET", "/normal", "localhost");
    served += r.status == 200;
  }
  attacker.join();
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("GOAWAY"), std::string::npos) << out;
  EXPECT_EQ(served, 20);
  EXPECT_EQ(children_of(proxy_->pid()), std::vector<pid_t>{worker}) << "the worker was replaced";
  std::string curl_out;
  EXPECT_EQ(run_command({"/usr/bin/curl", "-sS", "--http2-prior-knowledge",
                         "http://127.0.0.1:" + std::to_string(h2c_port_) + "/after"},
                        &curl_out),
            0)
      << curl_out;
}

}  // namespace
}  // namespace huginn::testing
