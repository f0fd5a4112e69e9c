// The supervisor's health prober: the status-line parser, the thresholds,
// and real probes (tcp and http) on a libevent loop against loopback
// backends, with state kept across generations that share a check.
#include "supervisor/health_prober.h"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/sys/c_handle.h"
#include "tests/support/backend.h"
#include "tests/support/harness.h"

namespace huginn::supervisor {
namespace {

using EventBase = sys::CHandle<event_base, event_base_free>;
using R = StatusLine::Result;

TEST(StatusLineParser, Table) {
  struct Case {
    std::string in;
    R result;
    uint16_t status;
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\n", R::kOk, 200},
      {"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", R::kOk, 503},
      {"HTTP/1.1 204\r\n", R::kOk, 204},
      {"HTTP/1.1 404 Not Found\n", R::kOk, 404},
      {"HTTP/1.1 200 OK", R::kNeedMore, 0},
      {"", R::kNeedMore, 0},
      {"HTTP/1.1 20", R::kNeedMore, 0},
      {"HTTP/1.1 2000 OK\r\n", R::kBad, 0},
      {"HTTP/1.1 20x OK\r\n", R::kBad, 0},
      {"HTTP/1.1 099 Low\r\n", R::kBad, 0},
      {"HTTP/1.1 600 High\r\n", R::kBad, 0},
      {"HTTP/2 200\r\n", R::kBad, 0},
      {"http/1.1 200 OK\r\n", R::kBad, 0},
      {"SSH-2.0-OpenSSH_9.2\r\n", R::kBad, 0},
      {"HTTP/1.1  200 OK\r\n", R::kBad, 0},
      {"\r\n", R::kBad, 0},
  };
  for (const auto& c : cases) {
    const StatusLine sl = parse_status_line(c.in);
    EXPECT_EQ(sl.result, c.result) << c.in;
    if (c.result == R::kOk) {
      EXPECT_EQ(sl.status, c.status) << c.in;
    }
  }
}

TEST(StatusLineParser, LengthCap) {
  std::string line = "HTTP/1.1 200 " + std::string(kMaxProbeStatusLine, 'x');
  EXPECT_EQ(parse_status_line(line).result, R::kBad);
  line += "\r\n";  // the line end beyond the cap does not help
  EXPECT_EQ(parse_status_line(line).result, R::kBad);
  EXPECT_EQ(parse_status_line(std::string(kMaxProbeStatusLine - 1, 'H')).result, R::kNeedMore);
}

TEST(HealthCounter, Hysteresis) {
  HealthCounter c;
  EXPECT_TRUE(c.healthy);
  // unhealthy_threshold 3, healthy_threshold 2
  EXPECT_FALSE(c.record(false, 3, 2));
  EXPECT_FALSE(c.record(false, 3, 2));
  EXPECT_FALSE(c.record(true, 3, 2));  // a success resets the failure run
  EXPECT_FALSE(c.record(false, 3, 2));
  EXPECT_FALSE(c.record(false, 3, 2));
  EXPECT_TRUE(c.healthy);
  EXPECT_TRUE(c.record(false, 3, 2));
  EXPECT_FALSE(c.healthy);
  EXPECT_FALSE(c.record(false, 3, 2));  // already down: no change reported
  EXPECT_FALSE(c.record(true, 3, 2));
  EXPECT_FALSE(c.record(false, 3, 2));  // a failure resets the success run
  EXPECT_FALSE(c.record(true, 3, 2));
  EXPECT_FALSE(c.healthy);
  EXPECT_TRUE(c.record(true, 3, 2));
  EXPECT_TRUE(c.healthy);
  EXPECT_FALSE(c.record(true, 3, 2));
}

TEST(HealthCounter, ThresholdOne) {
  HealthCounter c;
  EXPECT_TRUE(c.record(false, 1, 1));
  EXPECT_FALSE(c.healthy);
  EXPECT_TRUE(c.record(true, 1, 1));
  EXPECT_TRUE(c.healthy);
}

config::Backend backend(const std::string& host, uint16_t port, std::optional<config::HealthCheck> hc) {
  config::Backend b;
  b.host = host;
  b.port = port;
  b.address = host + ":" + std::to_string(port);
  b.health_check = std::move(hc);
  return b;
}

config::HealthCheck tcp_check() {
  config::HealthCheck h;
  h.interval_secs = 60;  // only the immediate first probe runs during a test
  h.timeout_secs = 5;
  h.unhealthy_threshold = 1;
  h.healthy_threshold = 1;
  return h;
}

config::HealthCheck http_check(const std::string& path, uint32_t expected) {
  config::HealthCheck h = tcp_check();
  h.type = config::HealthCheck::Type::kHttp;
  h.path = path;
  h.expected_status = expected;
  return h;
}

// A loopback port with nothing listening on it.
uint16_t closed_port() { return testing::free_port(); }

class ProberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_.reset(event_base_new());
    prober_ = std::make_unique<HealthProber>(base_.get(), [this](uint32_t id) { changes_.push_back(id); });
  }
  // Runs the loop until `done` holds (or 10 s pass; the caller's EXPECTs then fail).
  void run_until(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < until) {
      timeval slice{0, 20000};
      event_base_loopexit(base_.get(), &slice);
      event_base_dispatch(base_.get());
    }
  }
  EventBase base_;
  std::unique_ptr<HealthProber> prober_;
  std::vector<uint32_t> changes_;
};

TEST_F(ProberTest, TcpProbeDownAndUp) {
  testing::Backend up;
  const uint16_t down = closed_port();
  config::Config cfg;
  cfg.backends.push_back(backend("127.0.0.1", up.port(), tcp_check()));
  cfg.backends.push_back(backend("127.0.0.1", down, tcp_check()));
  cfg.backends.push_back(backend("127.0.0.1", closed_port(), std::nullopt));  // no check: always healthy
  prober_->add_generation(1, cfg);
  EXPECT_EQ(prober_->states(1), (std::vector<uint8_t>{1, 1, 1}));  // optimistic start
  run_until([&] { return !changes_.empty(); });
  EXPECT_EQ(prober_->states(1), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(changes_, std::vector<uint32_t>{1});
  EXPECT_TRUE(prober_->states(2).empty());

  const std::string text = prober_->render_metrics();
  const std::string up_addr = cfg.backends[0].address, down_addr = cfg.backends[1].address;
  EXPECT_NE(text.find("# TYPE huginn_health_check_probes_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE huginn_backend_healthy gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("huginn_health_check_probes_total{backend=\"" + down_addr + "\",result=\"fail\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("huginn_backend_healthy{backend=\"" + down_addr + "\"} 0\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("huginn_backend_healthy{backend=\"" + up_addr + "\"} 1\n"), std::string::npos) << text;

  const Json::Value js = prober_->status_json(1);
  ASSERT_EQ(js.size(), 3u);
  EXPECT_EQ(js[1]["healthy"].asBool(), false);
  EXPECT_EQ(js[1]["health_check"].asString(), "tcp");
  EXPECT_FALSE(js[1]["last_error"].asString().empty());
  EXPECT_TRUE(js[2]["health_check"].isNull());
}

TEST_F(ProberTest, HttpProbeChecksTheStatusAndSendsTheRequest) {
  testing::Backend be([](const testing::Request& req) {
    testing::Response r;
    r.status = req.target == "/healthz" ? 200 : 503;
    r.body = "x";
    return r;
  });
  config::Config cfg;
  cfg.backends.push_back(backend("127.0.0.1", be.port(), http_check("/healthz", 200)));
  cfg.backends.push_back(backend("127.0.0.1", be.port(), http_check("/other", 200)));  // 503 ≠ 200
  cfg.backends.push_back(backend("127.0.0.1", be.port(), http_check("/other", 503)));  // as expected
  prober_->add_generation(7, cfg);
  run_until([&] { return !changes_.empty() && be.requests() >= 3; });
  EXPECT_EQ(prober_->states(7), (std::vector<uint8_t>{1, 0, 1}));
  bool saw = false;
  for (const auto& req : be.received()) {
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.version, "HTTP/1.1");
    EXPECT_EQ(req.header("connection"), "close");
    if (req.target == "/healthz") {
      saw = true;
      EXPECT_EQ(req.header("host"), cfg.backends[0].address);
    }
  }
  EXPECT_TRUE(saw);
  const Json::Value js = prober_->status_json(7);
  EXPECT_EQ(js[1]["last_error"].asString(), "status 503, expected 200");
}

TEST_F(ProberTest, NotHttpFails) {
  // A server that answers with something that is not an HTTP status line.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  config::Config cfg;
  cfg.backends.push_back(backend("127.0.0.1", ntohs(sa.sin_port), http_check("/", 200)));
  prober_->add_generation(1, cfg);
  int conn = -1;
  run_until([&] {
    if (conn < 0) {
      conn = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK);
      if (conn >= 0) {
        const char junk[] = "SSH-2.0-OpenSSH_9.2\r\n";
        EXPECT_EQ(write(conn, junk, sizeof junk - 1), static_cast<ssize_t>(sizeof junk - 1));
      }
    }
    return !changes_.empty();
  });
  EXPECT_EQ(prober_->states(1), std::vector<uint8_t>{0});
  EXPECT_EQ(prober_->status_json(1)[0]["last_error"].asString(), "not an HTTP/1.x status line");
  if (conn >= 0) close(conn);
  close(fd);
}

TEST_F(ProberTest, StateSurvivesANewGenerationWithTheSameCheck) {
  const uint16_t down = closed_port();
  config::Config a;
  a.backends.push_back(backend("127.0.0.1", down, tcp_check()));
  prober_->add_generation(1, a);
  run_until([&] { return !changes_.empty(); });
  ASSERT_EQ(prober_->states(1), std::vector<uint8_t>{0});

  // Generation 2 keeps the backend and its check (and adds one): still down
  // at once; generation 1 goes away without stopping the shared target.
  config::Config b;
  b.backends.push_back(backend("127.0.0.1", closed_port(), std::nullopt));
  b.backends.push_back(backend("127.0.0.1", down, tcp_check()));
  prober_->add_generation(2, b);
  EXPECT_EQ(prober_->states(2), (std::vector<uint8_t>{1, 0}));
  prober_->remove_generation(1);
  EXPECT_TRUE(prober_->states(1).empty());
  EXPECT_EQ(prober_->states(2), (std::vector<uint8_t>{1, 0}));
  EXPECT_NE(prober_->render_metrics().find("result=\"fail\"} 1\n"), std::string::npos);

  // A changed check is a new target: it starts healthy.
  config::Config c;
  config::HealthCheck other = tcp_check();
  other.healthy_threshold = 2;
  c.backends.push_back(backend("127.0.0.1", down, other));
  prober_->add_generation(3, c);
  EXPECT_EQ(prober_->states(3), std::vector<uint8_t>{1});
  // Both generations hear about changes of their own targets only.
  changes_.clear();
  run_until([&] { return !changes_.empty(); });
  EXPECT_EQ(changes_, std::vector<uint32_t>{3});
  EXPECT_EQ(prober_->states(3), std::vector<uint8_t>{0});

  prober_->remove_generation(2);
  prober_->remove_generation(3);
  const std::string text = prober_->render_metrics();
  EXPECT_EQ(text.find("huginn_health_check_probes_total{"), std::string::npos) << text;
  EXPECT_EQ(text.find("huginn_backend_healthy{"), std::string::npos) << text;
}

TEST_F(ProberTest, UnresolvableHostFails) {
  config::Config cfg;
  cfg.backends.push_back(backend("no-such-host.invalid", 80, tcp_check()));
  prober_->add_generation(1, cfg);
  run_until([&] { return !changes_.empty(); });
  EXPECT_EQ(prober_->states(1), std::vector<uint8_t>{0});
}

}  // namespace
}  // namespace huginn::supervisor
