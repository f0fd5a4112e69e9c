// Integration tests: the real huginn-proxy supervisor and workers, started with
// generated configs on free loopback ports, in front of real HTTP backends.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <thread>

#include <json/json.h>

#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/support/worker_harness.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;
using test::connect_loopback;
using test::write_all;

uint64_t pattern_fnv(uint64_t n) {
  uint64_t h = kFnvInit;
  char buf[65536];
  for (uint64_t off = 0; off < n; off += sizeof buf) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(sizeof buf, n - off));
    fnv_pattern(off, buf, k);
    h = fnv1a(h, buf, k);
  }
  return h;
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override { port_ = free_port(); }

  // Common head of every config: our listener, unprivileged workers.
  std::string head(int workers) const {
    return "workers = " + std::to_string(workers) +
           "\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port_) +
           "\"]\n\n[timeout]\nshutdown_secs = 10\nupstream_connect_ms = 1000\n" +
           "upstream_response_secs = 1\n\n[dbus]\nbus = \"none\"\n\n";
  }

  static std::string backend_block(const std::string& address) {
    return "[[backends]]\naddress = \"" + address + "\"\n\n";
  }

  // One backend and one catch-all route to it.
  static std::string route_all_to(const std::string& address) {
    return backend_block(address) + "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" +
           address + "\"\n";
  }

  void start(const std::string& toml) {
    config_path_ = dir_.write("config.toml", toml);
    proxy_ = spawn_proxy(dir_, config_path_);
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  std::vector<pid_t> workers() const { return children_of(proxy_->pid()); }

  TempDir dir_;
  uint16_t port_ = 0;
  std::string config_path_;
  std::unique_ptr<Process> proxy_;
};

TEST_F(ProxyTest, ProxiesRequestsAndSetsForwardedHeaders) {
  Backend be;
  start(head(2) + route_all_to(be.address()));
  auto r = http_request(port_, "GET", "/hello?x=1", "Example.COM.");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  auto j = parse_json(r.body);
  EXPECT_EQ(j["method"].asString(), "GET");
  EXPECT_EQ(j["path"].asString(), "/hello?x=1");
  EXPECT_EQ(j["headers"]["x-forwarded-for"].asString(), "127.0.0.1");
  EXPECT_EQ(j["headers"]["x-forwarded-proto"].asString(), "http");
  EXPECT_EQ(j["headers"]["x-forwarded-port"].asString(), std::to_string(port_));
  EXPECT_EQ(j["headers"]["host"].asString(), be.address())
      << "preserve_host = false sends the backend address";

  // A well-formed client X-Forwarded-For is appended to; garbage is replaced;
  // X-Forwarded-Proto/Host/Port from the client are always replaced.
  r = http_request(port_, "GET", "/", "a.test",
                   "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n");
  ASSERT_TRUE(r.ok) << r.error;
  j = parse_json(r.body);
  EXPECT_EQ(j["headers"]["x-forwarded-for"].asString(), "203.0.113.7, 127.0.0.1");
  EXPECT_EQ(j["headers"]["x-forwarded-proto"].asString(), "http");
  r = http_request(port_, "GET", "/", "a.test", "X-Forwarded-For: <script>\r\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(parse_json(r.body)["headers"]["x-forwarded-for"].asString(), "127.0.0.1");
}

TEST_F(ProxyTest, PreserveHostForwardsTheClientHost) {
  Backend be;
  start("preserve_host = true\n" + head(1) + backend_block(be.address()) +
        "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be.address() + "\"\n");
  auto r = http_request(port_, "GET", "/", "Client.Example:8080");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(parse_json(r.body)["headers"]["host"].asString(), "Client.Example:8080");
}

TEST_F(ProxyTest, StreamsTenMebibyteBodiesBothWaysByteExact) {
  constexpr uint64_t kSize = 10 * 1024 * 1024;
  Backend be([](const Request& req) {
    Response resp;
    if (req.target == "/download-cl") {
      resp.stream_bytes = kSize;
    } else if (req.target == "/download-chunked") {
      resp.stream_bytes = kSize;
      resp.chunked = true;
    } else {
      resp.body = echo_json(req);
    }
    return resp;
  });
  start(head(2) + route_all_to(be.address()));
  const uint64_t expect = pattern_fnv(kSize);
  for (bool chunked : {false, true}) {
    HttpClient c("127.0.0.1", port_);
    ASSERT_TRUE(c.connected());
    std::string h = "POST /upload HTTP/1.1\r\nHost: up.test\r\n";
    h += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                 : "Content-Length: " + std::to_string(kSize) + "\r\n\r\n";
    ASSERT_TRUE(c.send(h));
    ASSERT_TRUE(c.send_pattern_body(kSize, chunked));
    auto r = c.read_response(30000);
    ASSERT_TRUE(r.ok) << r.error;
    auto j = parse_json(r.body);
    EXPECT_EQ(j["body_bytes"].asUInt64(), kSize) << (chunked ? "chunked" : "content-length");
    EXPECT_EQ(j["body_fnv"].asString(), std::to_string(expect)) << (chunked ? "chunked" : "content-length");
  }
  for (const char* path : {"/download-cl", "/download-chunked"}) {
    HttpClient c("127.0.0.1", port_);
    ASSERT_TRUE(c.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: down.test\r\n\r\n"));
    auto r = c.read_response(30000, false, 0);
    ASSERT_TRUE(r.ok) << path << ": " << r.error;
    EXPECT_EQ(r.body_bytes, kSize) << path;
    EXPECT_EQ(r.body_fnv, expect) << path;
  }
}

// A backend that answers before it has read the request body (an early 413):
// the client gets the response, and since the rest of its body can no longer
// be framed for anyone, its connection is closed after it. Other clients and
// new connections are served as before.
TEST_F(ProxyTest, EarlyBackendAnswerIsPassedOnAndClosesTheUploadConnection) {
  Backend be;
  be.reject_early_under("/up");
  start(head(1) + route_all_to(be.address()));
  HttpClient c("127.0.0.1", port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("POST /up HTTP/1.1\r\nHost: up.test\r\nContent-Length: " + std::to_string(32u << 20) +
                     "\r\n\r\n" + std::string(64 * 1024, 'u')));
  const HttpResponse r = c.read_response();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, "too large");
  EXPECT_TRUE(c.wait_closed()) << "the upload's connection ends after the response";
  const HttpResponse after = http_request(port_, "GET", "/after", "up.test");
  ASSERT_TRUE(after.ok) << after.error;
  EXPECT_EQ(after.status, 200);
}

TEST_F(ProxyTest, RoutesWithTheSamePrefixAlternateRoundRobin) {
  Backend a, b;
  start(head(1) + backend_block(a.address()) + backend_block(b.address()) +
        "[[domains]]\n[[domains.routes]]\nprefix = \"/rr\"\nbackend = \"" + a.address() +
        "\"\n[[domains.routes]]\nprefix = \"/rr\"\nbackend = \"" + b.address() + "\"\n");
  std::string order;
  for (int i = 0; i < 6; ++i) {
    const uint64_t before_a = a.requests();
    auto r = http_request(port_, "GET", "/rr/x", "rr.test");
    ASSERT_TRUE(r.ok) << r.error;
    order += a.requests() > before_a ? 'a' : 'b';
  }
  // One worker: strict alternation.
  EXPECT_TRUE(order == "ababab" || order == "bababa") << order;
}

TEST_F(ProxyTest, ReusesKeepAliveConnectionsToTheBackend) {
  Backend be;
  start(head(1) + route_all_to(be.address()));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(http_request(port_, "GET", "/a", "k.test").ok);
  HttpClient c("127.0.0.1", port_);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c.send("GET /b HTTP/1.1\r\nHost: k.test\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(be.requests(), 20u);
  EXPECT_LT(be.connections(), 5u) << "the pool should have reused backend connections";
}

TEST_F(ProxyTest, ForceNewConnectionAndDisabledPoolOpenOneConnectionPerRequest) {
  Backend pooled, forced;
  start(head(1) + backend_block(pooled.address()) + backend_block(forced.address()) +
        "[[domains]]\n[[domains.routes]]\nprefix = \"/forced\"\nbackend = \"" + forced.address() +
        "\"\nforce_new_connection = true\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" +
        pooled.address() + "\"\n");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(http_request(port_, "GET", "/forced/x", "f.test").ok);
    ASSERT_TRUE(http_request(port_, "GET", "/pooled", "f.test").ok);
  }
  EXPECT_EQ(forced.connections(), 5u);
  EXPECT_EQ(pooled.connections(), 1u);
}

TEST_F(ProxyTest, DisabledBackendPoolReallyDisablesPooling) {
  Backend be;
  start(head(1) + backend_block(be.address()) + "[backend_pool]\nenabled = false\n\n" +
        "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be.address() + "\"\n");
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(http_request(port_, "GET", "/", "p.test").ok);
  EXPECT_EQ(be.connections(), 4u);
}

TEST_F(ProxyTest, AnswersRoutingAndUpstreamFailuresWithJsonErrors) {
  Backend slow([](const Request& req) {
    Response r;
    r.body = echo_json(req);
    if (req.target.rfind("/slow", 0) == 0) r.delay_ms = 2500;
    return r;
  });
  const std::string dead = "127.0.0.1:" + std::to_string(free_port());
  start(head(1) + backend_block(slow.address()) + backend_block(dead) +
        "[[domains]]\nhost = \"app.test\"\n[[domains.routes]]\nprefix = \"/api\"\nbackend = \"" +
        slow.address() + "\"\n[[domains.routes]]\nprefix = \"/slow\"\nbackend = \"" + slow.address() +
        "\"\n[[domains.routes]]\nprefix = \"/dead\"\nbackend = \"" + dead + "\"\n");
  struct Case {
    const char* host;
    const char* path;
    int status;
    const char* error;
  };
  for (const Case& c :
       {Case{"app.test", "/api/v1", 200, nullptr}, Case{"app.test", "/apix", 404, "no_matching_route"},
        Case{"other.test", "/api", 421, "misdirected_request"},
        Case{"app.test", "/dead", 502, "backend_error"}, Case{"app.test", "/slow", 504, "gateway_timeout"}}) {
    auto r = http_request(port_, "GET", c.path, c.host);
    ASSERT_TRUE(r.ok) << c.path << ": " << r.error;
    EXPECT_EQ(r.status, c.status) << c.host << c.path;
    if (c.error) {
      EXPECT_EQ(parse_json(r.body)["error"].asString(), c.error) << c.host << c.path << ": " << r.body;
      EXPECT_EQ(r.header("content-type"), "application/json");
    }
  }
}

TEST_F(ProxyTest, RejectsRequestSmugglingShapesWithBadRequestAndClose) {
  Backend be;
  start(head(1) + route_all_to(be.address()));
  const std::vector<std::pair<const char*, std::string>> shapes = {
      {"CL+TE",
       "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"differing CL", "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"},
      {"bad chunk size",
       "POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: s\r\nX-A: a\r\n  folded\r\n\r\n"},
      {"bad header name", "GET / HTTP/1.1\r\nHost: s\r\nBad Name: x\r\n\r\n"},
      {"bare LF", "GET / HTTP/1.1\nHost: s\n\n"},
      {"TE not chunked", "POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: gzip\r\n\r\nabc"},
  };
  for (const auto& [name, bytes] : shapes) {
    HttpClient c("127.0.0.1", port_);
    ASSERT_TRUE(c.send(bytes)) << name;
    auto r = c.read_response(5000);
    ASSERT_TRUE(r.ok) << name << ": " << r.error;
    EXPECT_EQ(r.status, 400) << name;
    EXPECT_TRUE(c.wait_closed()) << name << ": connection must be closed after 400";
  }
  EXPECT_EQ(be.requests(), 0u) << "no smuggling shape may reach the backend";
}

// Lingering close. Closing a socket with unread input makes the kernel send a
// reset, and bytes that arrive after the close are answered with one; a reset
// discards the part of the response the client has not read yet. The proxy
// lingers (shuts down its side, then reads and discards until the client
// closes) whenever the client may still be sending, and closes at once when
// the client's last request (`Connection: close`) arrived whole and nothing
// it sent is unread, as nginx's `lingering_close on` does.
namespace {

bool send_all(int fd, std::string_view data) { return write_all(fd, data.data(), data.size()); }

// Reads until EOF or an error; *err is the error (0 at EOF).
std::string read_to_end(int fd, int* err) {
  std::string got;
  char buf[65536];
  *err = 0;
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0) *err = errno;
    return got;
  }
}

// Sends one byte at a time after a finished response, up to `tries` times
// 20 ms apart; true when the peer answers with a reset (its socket is gone).
bool peer_resets(int fd, int tries) {
  for (int i = 0; i < tries; ++i) {
    if (::send(fd, "x", 1, MSG_NOSIGNAL) < 0) return errno == ECONNRESET || errno == EPIPE;
    char b = 0;
    if (recv(fd, &b, 1, MSG_DONTWAIT) < 0 && errno == ECONNRESET) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

size_t body_size(const std::string& response) {
  const size_t head_end = response.find("\r\n\r\n");
  return head_end == std::string::npos ? 0 : response.size() - head_end - 4;
}

}  // namespace

// A keep-alive client (HTTP/1.0 with `Connection: keep-alive`, answered with
// `Connection: close`) sends its next request while most of a 2 MiB response
// still waits in the proxy's send queue, and reads slowly.
TEST_F(ProxyTest, ClosingWhileTheClientStillSendsDoesNotTruncateTheResponse) {
  Backend be([](const Request&) {
    Response r;
    r.stream_bytes = 2 << 20;
    return r;
  });
  start(head(1) + route_all_to(be.address()));
  const int fd = connect_loopback(port_, 4096);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /big HTTP/1.0\r\nHost: x.test\r\nConnection: keep-alive\r\n\r\n"));
  // The proxy writes the whole response into its socket and closes its side;
  // most of it waits in its send queue (our window is small). Then the next
  // request arrives, which the proxy will not read.
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(send_all(fd, "GET /next HTTP/1.0\r\nHost: x.test\r\n\r\n" + std::string(4096, 'j')));
  std::this_thread::sleep_for(200ms);
  int err = 0;
  const std::string got = read_to_end(fd, &err);
  close(fd);
  EXPECT_EQ(err, 0) << strerror(err) << " after " << got.size() << " bytes";
  EXPECT_NE(got.find("Connection: close"), std::string::npos);
  EXPECT_EQ(body_size(got), size_t{2} << 20);
}

// The client's last request arrived whole and nothing else did: no lingering.
// The proxy's socket is gone once the response is read, so a byte sent after
// it is answered with a reset (a lingering proxy would read and discard it).
TEST_F(ProxyTest, TheClientsLastRequestIsAnsweredWithoutLingering) {
  Backend be;
  start(head(1) + route_all_to(be.address()));
  const int fd = connect_loopback(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET / HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n"));
  int err = 0;
  const std::string got = read_to_end(fd, &err);
  ASSERT_EQ(err, 0) << strerror(err);
  EXPECT_NE(got.find("200"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  // The reset comes back to the first byte; the second send or the recv
  // reports it.
  const bool reset = peer_resets(fd, 50);
  close(fd);
  EXPECT_TRUE(reset) << "a byte sent after the response must meet a closed socket";
}

// The same last request, but bytes the proxy will not read (a request sent
// against the protocol) came with it: the proxy lingers, so a byte sent
// after the response is read and discarded, and the client sees a clean EOF.
TEST_F(ProxyTest, TheLastRequestWithUnreadBytesBehindItLingers) {
  Backend be;
  start(head(1) + route_all_to(be.address()));
  const int fd = connect_loopback(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd,
                       "GET / HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n"
                       "GET /more HTTP/1.1\r\nHost: x.test\r\n\r\n"));
  int err = 0;
  const std::string got = read_to_end(fd, &err);
  ASSERT_EQ(err, 0) << strerror(err);
  EXPECT_NE(got.find("200"), std::string::npos) << got;
  EXPECT_EQ(got.find("/more"), std::string::npos) << "the second request is not answered";
  const bool reset = peer_resets(fd, 10);
  close(fd);
  EXPECT_FALSE(reset) << "the lingering proxy reads and discards what the client still sends";
}

TEST_F(ProxyTest, CheckConfigPrintsEveryErrorWithItsPosition) {
  std::string out;
  const std::string bad =
      dir_.write("bad.toml",
                 "workers = 0\n[listen]\naddrs = [\"127.0.0.1:1\"]\nbogus = 1\n"
                 "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"10.0.0.9:80\"\n");
  EXPECT_EQ(run_command({binary_path("sbin/huginn-proxy"), "--check-config", "--config", bad}, &out), 1)
      << out;
  EXPECT_NE(out.find("workers"), std::string::npos) << out;
  EXPECT_NE(out.find("bad.toml:1:"), std::string::npos) << out;
  EXPECT_NE(out.find("listen.bogus"), std::string::npos) << out;
  EXPECT_NE(out.find("domains[0].routes[0].backend"), std::string::npos) << out;
  EXPECT_NE(out.find("bad.toml:8:"), std::string::npos) << out;

  const std::string good = dir_.write(
      "good.toml", "[listen]\naddrs = [\"127.0.0.1:1\"]\n[[backends]]\naddress = \"127.0.0.1:2\"\n");
  EXPECT_EQ(run_command({binary_path("sbin/huginn-proxy"), "--check-config", "--config", good}, &out), 0)
      << out;
  EXPECT_EQ(out, "config OK\n");
  EXPECT_EQ(run_command({binary_path("bin/huginnctl"), "check-config", good}, &out), 0) << out;
  EXPECT_EQ(
      run_command({binary_path("sbin/huginn-proxy"), "--print-effective-config", "--config", good}, &out), 0);
  auto j = parse_json(out);
  EXPECT_TRUE(j.isObject()) << out;
}

TEST_F(ProxyTest, WorkersRunUnprivilegedWithNoCapabilities) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to start workers that drop to another uid";
  Backend be;
  start(head(3) + route_all_to(be.address()));
  auto pids = workers();
  ASSERT_EQ(pids.size(), 3u) << proxy_->log();
  for (pid_t pid : pids) {
    const std::string uid = proc_status_field(pid, "Uid");
    EXPECT_EQ(uid.find("0\t"), std::string::npos) << "worker " << pid << " Uid: " << uid;
    EXPECT_NE(uid.rfind("65534", 0), std::string::npos) << uid;
    EXPECT_EQ(proc_status_field(pid, "Gid").rfind("0\t", 0), std::string::npos);
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
      EXPECT_EQ(proc_status_field(pid, set), "0000000000000000") << set << " of worker " << pid;
    EXPECT_EQ(proc_status_field(pid, "NoNewPrivs"), "1");
    EXPECT_EQ(proc_status_field(pid, "Seccomp"), "2")
        << "worker " << pid << " runs without its seccomp filter";
  }
  EXPECT_EQ(http_request(port_, "GET", "/", "w.test").status, 200);
}

TEST_F(ProxyTest, AKilledWorkerIsReplacedAndServiceContinues) {
  Backend be;
  start(head(2) + route_all_to(be.address()));
  auto before = workers();
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(kill(before[0], SIGKILL), 0);
  std::set<pid_t> now;
  for (int i = 0; i < 200; ++i) {
    auto w = workers();
    now = std::set<pid_t>(w.begin(), w.end());
    if (now.size() == 2 && !now.count(before[0])) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(now.size(), 2u);
  EXPECT_FALSE(now.count(before[0]));
  EXPECT_TRUE(proxy_->wait_log("ready", 2000));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(http_request(port_, "GET", "/", "k.test").status, 200);
  EXPECT_TRUE(proxy_->running());
}

// kill -9 of a worker under load: only requests in flight on that worker fail
// (at most one per client connection it held), and a replacement serves
// within a second.
TEST_F(ProxyTest, KillingAWorkerUnderLoadLosesOnlyItsInFlightRequests) {
  Backend be;
  start(head(2) + route_all_to(be.address()));
  constexpr int kClients = 6;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&] {
      std::unique_ptr<HttpClient> c;
      while (!stop) {
        if (!c) c = std::make_unique<HttpClient>("127.0.0.1", port_);
        if (!c->connected() || !c->send("GET /k HTTP/1.1\r\nHost: k.test\r\n\r\n")) {
          ++failed;
          c.reset();
          continue;
        }
        auto r = c->read_response(10000);
        if (!r.ok || r.status != 200) {
          ++failed;
          c.reset();
          continue;
        }
        ++ok;
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  const auto before = workers();
  ASSERT_EQ(before.size(), 2u);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(before[0], SIGKILL), 0);
  bool replaced = false;
  while (!replaced && std::chrono::steady_clock::now() - killed_at < 1s) {
    auto now = workers();
    replaced = now.size() == 2 && std::find(now.begin(), now.end(), before[0]) == now.end();
    if (!replaced) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(replaced) << "no replacement worker within a second";
  std::this_thread::sleep_for(500ms);
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_GT(ok.load(), 100u);
  EXPECT_LE(failed.load(), static_cast<uint64_t>(kClients))
      << "more failures than connections the worker held";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(http_request(port_, "GET", "/", "k.test").status, 200);
}

TEST_F(ProxyTest, SigtermLetsAnInFlightRequestFinishThenExitsCleanly) {
  Backend be([](const Request& req) {
    Response r;
    r.body = echo_json(req);
    r.delay_ms = 700;
    return r;
  });
  start(head(2) + "[timeout.keep_alive]\nenabled = true\n" + backend_block(be.address()) +
        "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be.address() + "\"\n");
  // upstream_response_secs = 1 in head(); the backend answers after 0.7 s.
  HttpClient c("127.0.0.1", port_);
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: t.test\r\n\r\n"));
  std::this_thread::sleep_for(200ms);
  proxy_->signal(SIGTERM);
  auto r = c.read_response(10000);
  ASSERT_TRUE(r.ok) << r.error << "\n" << proxy_->log();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("connection"), "close") << "a draining worker closes keep-alive connections";
  int st = proxy_->wait_exit(15000);
  ASSERT_NE(st, -1) << "supervisor did not exit";
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << proxy_->log();
  // New connections are refused once stopped.
  EXPECT_FALSE(HttpClient("127.0.0.1", port_).connected());
}

TEST_F(ProxyTest, SigintStopsFast) {
  Backend be;
  start(head(2) + route_all_to(be.address()));
  proxy_->signal(SIGINT);
  int st = proxy_->wait_exit(5000);
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << proxy_->log();
}

TEST_F(ProxyTest, RuntimeFailureToBindExitsWithStatusTwo) {
  Backend be;  // occupies a port we then ask the proxy to listen on
  const std::string toml = "user = \"nobody\"\n[listen]\naddrs = [\"" + be.address() + "\"]\n";
  std::string out;
  EXPECT_EQ(run_command({binary_path("sbin/huginn-proxy"), "--config", dir_.write("busy.toml", toml)}, &out),
            2)
      << out;
  EXPECT_NE(out.find("cannot listen"), std::string::npos) << out;
}

}  // namespace
}  // namespace huginn::testing
