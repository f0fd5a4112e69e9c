// Slowloris (issue #7): 500 connections that trickle a request header, one
// byte every ~200 ms, against the real supervisor with 2 workers and
// `[timeout] request_header_ms = 2000`. While they are open, a normal client
// is served; every trickling connection is closed by the proxy at the header
// timeout (not before: its bytes were being accepted). The HTTP/2 variant:
// connections that send the preface and SETTINGS and then only PINGs, or a
// HEADERS frame whose header block never ends, are closed at the same timeout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/support/raw_h2.h"

namespace huginn::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kHeaderTimeoutMs = 2000;
constexpr int kTrickleMs = 200;
// Generous: the proxy closes at kHeaderTimeoutMs after its accept; a loaded
// CI machine may be late, never early.
constexpr int kDeadlineMs = kHeaderTimeoutMs + 20000;

using raw_h2::frame, raw_h2::kPreface, raw_h2::kHeaders, raw_h2::kSettings, raw_h2::kPing, raw_h2::kEndStream;
// A header block that never ends: :method GET, :scheme http, :path / and no END_HEADERS.
const std::string& kPartialBlock = raw_h2::kGetRootNoAuthority;

enum class Kind { kHttp1Trickle, kH2Ping, kH2OpenBlock };

struct Conn {
  int fd = -1;
  Kind kind = Kind::kHttp1Trickle;
  Clock::time_point connect_start;
  Clock::time_point closed_at;
  bool closed = false;
  size_t sent = 0;  // trickled units the proxy accepted (bytes or PINGs)
};

class SlowlorisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const uint64_t nofile = raise_nofile_limit(4096);  // inherited by the supervisor and its workers
    if (nofile < 1500) GTEST_SKIP() << "RLIMIT_NOFILE " << nofile << " too low for 500 connections";

    port_ = free_port();
    const std::string toml =
        "workers = 2\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port_) +
        "\"]\n\n[security]\nmax_connections = 4096\n\n[timeout]\nrequest_header_ms = " +
        std::to_string(kHeaderTimeoutMs) +
        "\nshutdown_secs = 5\n\n[dbus]\nbus = \"none\"\n\n[[backends]]\naddress = \"" + be_.address() +
        "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be_.address() + "\"\n";
    proxy_ = std::make_unique<Process>(std::vector<std::string>{binary_path("sbin/huginn-proxy"), "--config",
                                                                dir_.write("config.toml", toml)},
                                       dir_.path() + "/proxy.log");
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  void TearDown() override {
    for (auto& c : conns_)
      if (c.fd >= 0) ::close(c.fd);
  }

  // Connects and sends the opening bytes; false on failure.
  bool open(Kind kind) {
    Conn c;
    c.kind = kind;
    c.connect_start = Clock::now();
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return false;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port_);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ::close(c.fd);
      return false;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    std::string first;
    switch (kind) {
      case Kind::kHttp1Trickle:
        first = "G";
        break;
      case Kind::kH2Ping:
        first = kPreface + frame(kSettings, 0, 0, "");
        break;
      case Kind::kH2OpenBlock:  // HEADERS without END_HEADERS: the block never ends
        first = kPreface + frame(kSettings, 0, 0, "") + frame(kHeaders, kEndStream, 1, kPartialBlock);
        break;
    }
    conns_.push_back(c);
    return send_unit(conns_.back(), first);
  }

  bool send_unit(Conn& c, const std::string& bytes) {
    if (c.closed) return false;
    const ssize_t n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes.size())) {
      ++c.sent;
      return true;
    }
    if (n < 0 && errno != EAGAIN) mark_closed(c);
    return false;
  }

  void mark_closed(Conn& c) {
    if (c.closed) return;
    c.closed = true;
    c.closed_at = Clock::now();
  }

  // One trickle step for every open connection.
  void trickle(size_t step) {
    static const std::string kHead = "GET / HTTP/1.1\r\nHost: slow.test\r\nX-Slow: ";
    for (auto& c : conns_) {
      if (c.closed) continue;
      switch (c.kind) {
        case Kind::kHttp1Trickle:
          send_unit(c, std::string(1, step < kHead.size() ? kHead[step] : 'a'));
          break;
        case Kind::kH2Ping:
          send_unit(c, frame(kPing, 0, 0, std::string(8, static_cast<char>(step))));
          break;
        case Kind::kH2OpenBlock:
          break;  // nothing may follow but CONTINUATION
      }
    }
  }

  // Polls every open connection for EOF/RST for up to `ms`.
  void watch(int ms) {
    std::vector<pollfd> pfds;
    std::vector<Conn*> who;
    for (auto& c : conns_) {
      if (c.closed) continue;
      pfds.push_back(pollfd{c.fd, POLLIN | POLLRDHUP, 0});
      who.push_back(&c);
    }
    if (pfds.empty()) return;
    if (::poll(pfds.data(), pfds.size(), ms) <= 0) return;
    char buf[4096];
    for (size_t i = 0; i < pfds.size(); ++i) {
      if (pfds[i].revents == 0) continue;
      for (;;) {  // server frames (SETTINGS, GOAWAY) are read and ignored
        const ssize_t n = ::recv(pfds[i].fd, buf, sizeof buf, 0);
        if (n > 0) continue;
        if (n == 0 || errno != EAGAIN) mark_closed(*who[i]);
        break;
      }
    }
  }

  size_t open_count() const {
    size_t n = 0;
    for (const auto& c : conns_) n += !c.closed;
    return n;
  }

  TempDir dir_;
  Backend be_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> proxy_;
  std::vector<Conn> conns_;
};

TEST_F(SlowlorisTest, TricklingConnectionsAreClosedAtTheHeaderTimeoutAndOthersAreServed) {
  constexpr int kHttp1 = 500, kH2Ping = 20, kH2Block = 20;
  conns_.reserve(kHttp1 + kH2Ping + kH2Block);
  for (int i = 0; i < kHttp1; ++i) ASSERT_TRUE(open(Kind::kHttp1Trickle)) << "connection " << i;
  for (int i = 0; i < kH2Ping; ++i) ASSERT_TRUE(open(Kind::kH2Ping));
  for (int i = 0; i < kH2Block; ++i) ASSERT_TRUE(open(Kind::kH2OpenBlock));

  // A normal client while they trickle: HTTP/1.1 and h2c requests succeed.
  std::vector<int> statuses;
  std::string h2c_out;
  int h2c_rc = -1;
  std::thread normal([&] {
    for (int i = 0; i < 5; ++i) {
      HttpResponse r = http_request(port_, "GET", "/normal/" + std::to_string(i), "fast.test");
      statuses.push_back(r.ok ? r.status : -1);
      std::this_thread::sleep_for(milliseconds(100));
    }
    h2c_rc =
        run_command({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                     "--http2-prior-knowledge", "http://127.0.0.1:" + std::to_string(port_) + "/normal/h2"},
                    &h2c_out);
  });

  const auto start = Clock::now();
  size_t step = 1;
  auto next = start + milliseconds(kTrickleMs);
  while (open_count() > 0 && Clock::now() - start < milliseconds(kDeadlineMs)) {
    const auto now = Clock::now();
    if (now >= next) {
      trickle(step++);
      next += milliseconds(kTrickleMs);
      continue;
    }
    watch(static_cast<int>(std::chrono::duration_cast<milliseconds>(next - now).count()) + 1);
  }
  normal.join();

  EXPECT_EQ(statuses, std::vector<int>(5, 200));
  EXPECT_EQ(h2c_rc, 0);
  EXPECT_EQ(h2c_out, "200");

  ASSERT_EQ(open_count(), 0u) << "connections still open after " << kDeadlineMs << " ms";
  for (size_t i = 0; i < conns_.size(); ++i) {
    const Conn& c = conns_[i];
    SCOPED_TRACE("connection " + std::to_string(i));
    const auto lived = std::chrono::duration_cast<milliseconds>(c.closed_at - c.connect_start).count();
    // The proxy's deadline starts at its accept, after our connect began.
    EXPECT_GE(lived, kHeaderTimeoutMs - 100);
    if (c.kind == Kind::kHttp1Trickle) {
      EXPECT_GE(c.sent, 5u) << "its bytes were accepted while it trickled";
    } else if (c.kind == Kind::kH2Ping) {
      EXPECT_GE(c.sent, 5u) << "PINGs do not extend the header deadline";
    }
  }
  // No request of theirs reached the backend.
  for (const auto& r : be_.received()) EXPECT_EQ(r.target.rfind("/normal/", 0), 0u) << r.target;

  // The proxy is still fine.
  HttpResponse r = http_request(port_, "GET", "/normal/after", "fast.test");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
}

}  // namespace
}  // namespace huginn::testing
