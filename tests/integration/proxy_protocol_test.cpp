// PROXY protocol v1/v2 on listeners, end to end: the real supervisor and
// worker, a raw TCP client that sends a header (IPv4 and IPv6 sources) and
// then HTTP or a TLS handshake, from a trusted peer (127.0.0.1) and an
// untrusted one (the client socket bound to 127.0.0.2), in require and
// optional mode. The echo backend shows the X-Forwarded-For the proxy set;
// /metrics shows the huginn_proxy_protocol_* counters.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/support/test_certs.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

std::string addr_bytes(int family, const char* text) {
  unsigned char b[16] = {};
  EXPECT_EQ(inet_pton(family, text, b), 1) << text;
  return std::string(reinterpret_cast<const char*>(b), family == AF_INET ? 4 : 16);
}

// A v2 PROXY header for a TCP client `src`:`sport` (IPv4 or IPv6), with an
// ALPN and a NOOP TLV after the addresses.
std::string v2_proxy(const char* src, uint16_t sport) {
  const bool v6 = std::strchr(src, ':') != nullptr;
  const int fam = v6 ? AF_INET6 : AF_INET;
  std::string body =
      addr_bytes(fam, src) + addr_bytes(fam, v6 ? "::1" : "127.0.0.1") + be16(sport) + be16(443);
  body += "\x01"s + be16(2) + "h2" + "\x04"s + be16(3) + "\0\0\0"s;
  return kSig + static_cast<char>(0x21) + static_cast<char>(v6 ? 0x21 : 0x11) +
         be16(static_cast<uint16_t>(body.size())) + body;
}

const std::string kV2Local = kSig + "\x20\x00\x00\x00"s;

std::string get_request() { return "GET /pp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"; }

// A blocking TCP client, optionally bound to a source address.
class RawClient {
 public:
  explicit RawClient(uint16_t port, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    const timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    if (source) {
      inet_pton(AF_INET, source, &sin.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) close_fd();
    }
    sin.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) close_fd();
  }
  ~RawClient() { close_fd(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  int fd() const { return fd_; }
  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& s) const {
    return fd_ >= 0 && ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // Everything until the peer closes (or 5 s without data).
  std::string read_all() const {
    std::string out;
    char buf[16384];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // True when the server closes (EOF or reset) without sending anything.
  bool closed_without_answer() const {
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  void close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

struct Parsed {
  int status = 0;
  Json::Value echo;  // the backend's JSON echo (null otherwise)
};

// Status and body of one HTTP/1.1 response read to EOF (Content-Length or chunked).
Parsed parse_response(const std::string& raw) {
  Parsed p;
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || raw.size() < 12) return p;
  p.status = std::atoi(raw.substr(9, 3).c_str());
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return p;
  std::string head = raw.substr(0, end);
  for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string body = raw.substr(end + 4);
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    std::string out;
    size_t pos = 0;
    for (;;) {
      const size_t eol = body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      const size_t n = std::strtoul(body.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (n == 0 || eol + 2 + n > body.size()) break;
      out += body.substr(eol + 2, n);
      pos = eol + 2 + n + 2;
    }
    body = out;
  }
  p.echo = parse_json(body);
  return p;
}

// The X-Forwarded-For the backend saw for one request sent after `preamble`;
// "" when there was no 200 response.
std::string xff_after(uint16_t port, const std::string& preamble, const char* source = nullptr) {
  RawClient c(port, source);
  if (!c.connected() || !c.send(preamble + get_request())) return "";
  const Parsed p = parse_response(c.read_all());
  if (p.status != 200) return "";
  return p.echo["headers"]["x-forwarded-for"].asString();
}

// One sample value of /metrics text; -1 when the series is absent.
double sample(const std::string& text, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = ("\n" + text).find(needle);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + needle.size() - 1, nullptr);
}

class ProxyProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    metrics_port_ = free_port();
  }
  void TearDown() override {
    if (proxy_) {
      proxy_->signal(SIGTERM);
      proxy_->wait_exit(15000);
    }
  }

  std::string config(const std::string& mode, const std::string& tls = "") const {
    return "workers = 1\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port_) +
           "\"]\nproxy_protocol = { mode = \"" + mode + "\", header_timeout_ms = 300 }\n\n" + tls +
           "[security.trusted_proxies]\ncidrs = [\"127.0.0.1/32\"]\n\n[timeout]\nshutdown_secs = 5\n\n"
           "[dbus]\nbus = \"none\"\n\n[telemetry]\nmetrics_port = " +
           std::to_string(metrics_port_) + "\n\n[[backends]]\naddress = \"" + be_.address() +
           "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be_.address() + "\"\n";
  }

  void start(const std::string& toml) {
    const std::string path = dir_.write("config.toml", toml);
    proxy_ = spawn_proxy(dir_, path);
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  double metric(const std::string& series) {
    auto r = http_request(metrics_port_, "GET", "/metrics");
    EXPECT_TRUE(r.ok) << r.error;
    return sample(r.body, series);
  }

  TempDir dir_;
  Backend be_;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
  std::unique_ptr<Process> proxy_;
};

TEST_F(ProxyProtocolTest, RequireRecoversTheClientFromV1AndV2) {
  start(config("require"));
  EXPECT_EQ(xff_after(port_, "PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n"), "198.51.100.7");
  EXPECT_EQ(xff_after(port_, "PROXY TCP6 2001:db8::7 ::1 40001 80\r\n"), "2001:db8::7");
  EXPECT_EQ(xff_after(port_, "PROXY TCP6 ::ffff:203.0.113.9 ::1 40002 80\r\n"), "203.0.113.9");
  EXPECT_EQ(xff_after(port_, v2_proxy("192.0.2.44", 40003)), "192.0.2.44");
  EXPECT_EQ(xff_after(port_, v2_proxy("2001:db8:1::44", 40004)), "2001:db8:1::44");
  // LOCAL (a balancer's own health check) and UNKNOWN: the socket peer.
  EXPECT_EQ(xff_after(port_, kV2Local), "127.0.0.1");
  EXPECT_EQ(xff_after(port_, "PROXY UNKNOWN\r\n"), "127.0.0.1");
  {
    // Header and request in pieces: the stage reads until the header is whole
    // and hands what follows it to the HTTP side.
    RawClient c(port_);
    const std::string all = v2_proxy("192.0.2.45", 40005) + get_request();
    ASSERT_TRUE(c.send(all.substr(0, 5)));
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(c.send(all.substr(5, 20)));
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(c.send(all.substr(25)));
    const Parsed p = parse_response(c.read_all());
    EXPECT_EQ(p.status, 200);
    EXPECT_EQ(p.echo["headers"]["x-forwarded-for"].asString(), "192.0.2.45");
  }
  EXPECT_EQ(metric("huginn_proxy_protocol_accepted_total"), 6);
  EXPECT_EQ(metric("huginn_proxy_protocol_no_client_addr_total"), 2);
}

TEST_F(ProxyProtocolTest, RequireDropsBadHeadersUntrustedPeersAndTimeouts) {
  start(config("require"));
  for (const std::string& bad : {"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n"s, "PROXY TCP4 1.2.3.4\r\n"s,
                                 "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"s, kSig + "\x31\x11\x00\x0c"s,
                                 "GET / HTTP/1.1\r\nHost: x\r\n\r\n"s}) {
    RawClient c(port_);
    ASSERT_TRUE(c.send(bad + get_request()));
    EXPECT_TRUE(c.closed_without_answer()) << bad;
  }
  {
    // Truncated: the peer half-closes in the middle of a header.
    RawClient c(port_);
    ASSERT_TRUE(c.send("PROXY TCP4 1.2.3.4 5.6"));
    ::shutdown(c.fd(), SHUT_WR);
    EXPECT_TRUE(c.closed_without_answer());
  }
  // Untrusted peer: closed before anything is read, even with a valid header.
  {
    RawClient c(port_, "127.0.0.2");
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send("PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n" + get_request()));
    EXPECT_TRUE(c.closed_without_answer());
  }
  // Nothing, then half a header: both closed at header_timeout_ms.
  {
    RawClient idle(port_);
    RawClient partial(port_);
    ASSERT_TRUE(partial.send("PROXY TCP6 2001:db8::1 "));
    EXPECT_TRUE(idle.closed_without_answer());
    EXPECT_TRUE(partial.closed_without_answer());
  }
  // Other connections were never affected.
  EXPECT_EQ(xff_after(port_, v2_proxy("192.0.2.1", 1)), "192.0.2.1");
  EXPECT_EQ(metric("huginn_proxy_protocol_dropped_total{reason=\"bad_header\"}"), 6);
  EXPECT_EQ(metric("huginn_proxy_protocol_dropped_total{reason=\"untrusted_require\"}"), 1);
  EXPECT_EQ(metric("huginn_proxy_protocol_dropped_total{reason=\"timeout\"}"), 2);
  EXPECT_EQ(metric("huginn_proxy_protocol_accepted_total"), 1);
}

TEST_F(ProxyProtocolTest, OptionalHonoursOnlyTrustedPeers) {
  start(config("optional"));
  // Trusted: with a header, the recovered address; without, the peer.
  EXPECT_EQ(xff_after(port_, "PROXY TCP4 198.51.100.8 127.0.0.1 40000 80\r\n"), "198.51.100.8");
  EXPECT_EQ(xff_after(port_, ""), "127.0.0.1");
  EXPECT_EQ(xff_after(port_, v2_proxy("2001:db8::8", 2)), "2001:db8::8");
  // A trusted peer that sends nothing within header_timeout_ms is a direct client.
  {
    RawClient c(port_);
    std::this_thread::sleep_for(400ms);
    ASSERT_TRUE(c.send(get_request()));
    const Parsed p = parse_response(c.read_all());
    EXPECT_EQ(p.status, 200);
    EXPECT_EQ(p.echo["headers"]["x-forwarded-for"].asString(), "127.0.0.1");
  }
  // Untrusted: a plain request is served as the direct client ...
  EXPECT_EQ(xff_after(port_, "", "127.0.0.2"), "127.0.0.2");
  // ... and a PROXY line is not parsed: it is the client's (bad) request.
  {
    const uint64_t before = be_.requests();
    RawClient c(port_, "127.0.0.2");
    ASSERT_TRUE(c.send("PROXY TCP4 198.51.100.9 127.0.0.1 40000 80\r\n" + get_request()));
    const Parsed p = parse_response(c.read_all());
    EXPECT_EQ(p.status, 400);
    EXPECT_EQ(be_.requests(), before);
  }
  // A malformed header from a trusted peer is still dropped.
  {
    RawClient c(port_);
    ASSERT_TRUE(c.send("PROXY TCP4 198.51.100.9 127.0.0.1 x 80\r\n" + get_request()));
    EXPECT_TRUE(c.closed_without_answer());
  }
  for (const auto& r : be_.received())
    EXPECT_NE(r.header("x-forwarded-for"), "198.51.100.9") << "an untrusted header was honoured";
  EXPECT_EQ(metric("huginn_proxy_protocol_accepted_total"), 2);
  EXPECT_EQ(metric("huginn_proxy_protocol_passthrough_total"), 2);
  EXPECT_EQ(metric("huginn_proxy_protocol_dropped_total{reason=\"bad_header\"}"), 1);
}

TEST_F(ProxyProtocolTest, HeaderThenTlsHandshakeKeepsJa4) {
  huginn::test::TestPki pki;
  const auto srv = pki.server("localhost", {"localhost", "127.0.0.1"});
  start(config("require",
               "[tls]\ncert_path = \"" + srv.cert_path + "\"\nkey_path = \"" + srv.key_path + "\"\n\n"));
  for (const std::string& header :
       {v2_proxy("192.0.2.77", 50000), "PROXY TCP6 2001:db8::77 ::1 50001 443\r\n"s}) {
    RawClient c(port_);
    ASSERT_TRUE(c.send(header));
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    ASSERT_TRUE(ctx);
    ASSERT_EQ(SSL_CTX_load_verify_locations(ctx.get(), pki.ca().cert_path.c_str(), nullptr), 1);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
    SSL_set_fd(ssl.get(), c.fd());
    SSL_set_tlsext_host_name(ssl.get(), "localhost");
    ASSERT_EQ(SSL_connect(ssl.get()), 1) << ERR_error_string(ERR_get_error(), nullptr);
    const std::string req = get_request();
    ASSERT_EQ(SSL_write(ssl.get(), req.data(), static_cast<int>(req.size())), static_cast<int>(req.size()));
    std::string raw;
    char buf[16384];
    int n;
    while ((n = SSL_read(ssl.get(), buf, sizeof buf)) > 0) raw.append(buf, static_cast<size_t>(n));
    const Parsed p = parse_response(raw);
    ASSERT_EQ(p.status, 200) << raw;
    const std::string want = header[0] == 'P' ? "2001:db8::77" : "192.0.2.77";
    EXPECT_EQ(p.echo["headers"]["x-forwarded-for"].asString(), want);
    const std::string ja4 = p.echo["headers"]["x-huginn-net-ja4"].asString();
    EXPECT_EQ(ja4.size(), 36u) << ja4;
    EXPECT_EQ(ja4.substr(0, 1), "t") << ja4;
  }
}

}  // namespace
}  // namespace huginn::testing
