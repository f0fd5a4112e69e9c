// Active health checks end to end: the real supervisor probes two echo
// backends and publishes their state to two workers. A backend that goes
// down leaves the round-robin within its thresholds (and stays out across a
// reload), comes back when it answers again; with both down requests get
// 502 {"error":"upstream_unhealthy"}; an http check whose status does not
// match takes its backend out; /metrics and `huginnctl status` show them.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/support/private_bus.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// An echo backend that names itself in the body; /healthz answers `health_status`.
Backend::Handler named(const std::string& name, int health_status = 200) {
  return [name, health_status](const Request& req) {
    Response r;
    r.status = req.target == "/healthz" ? health_status : 200;
    r.body = name;
    return r;
  };
}

// One sample value of /metrics text; -1 when the series is absent.
double sample(const std::string& text, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = ("\n" + text).find(needle);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + needle.size() - 1, nullptr);
}

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    metrics_port_ = free_port();
  }

  // Two backends in one round-robin group ("/"), each with `check` (a TOML
  // inline table body).
  std::string config(const std::string& a, const std::string& b, const std::string& check,
                     const std::string& bus = "none") const {
    return "workers = 2\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port_) +
           "\"]\n\n[timeout]\nshutdown_secs = 2\nupstream_connect_ms = 1000\n\n[dbus]\nbus = \"" + bus +
           "\"\n\n"
           "[telemetry]\nmetrics_port = " +
           std::to_string(metrics_port_) + "\nmetrics_address = \"127.0.0.1\"\n\n[[backends]]\naddress = \"" +
           a + "\"\nhealth_check = { " + check + " }\n\n[[backends]]\naddress = \"" + b +
           "\"\nhealth_check = { " + check +
           " }\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + a +
           "\"\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + b + "\"\n";
  }

  void start(const std::string& toml) {
    path_ = dir_.write("config.toml", toml);
    proxy_ = spawn_proxy(dir_, path_);
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  // Polls (one request per connection, so both workers serve) until `pred`
  // holds for `in_a_row` consecutive responses; false after `limit`.
  bool until_steady(const std::function<bool(const HttpResponse&)>& pred, int in_a_row,
                    std::chrono::seconds limit = 15s) {
    int run = 0;
    for (auto until = Clock::now() + limit; Clock::now() < until;) {
      auto r = http_request(port_, "GET", "/x");
      run = pred(r) ? run + 1 : 0;
      if (run >= in_a_row) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::string metrics_text() { return http_request(metrics_port_, "GET", "/metrics").body; }

  TempDir dir_;
  std::string path_;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
  std::unique_ptr<Process> proxy_;
};

auto body_is(const std::string& name) {
  return [name](const HttpResponse& r) { return r.ok && r.status == 200 && r.body == name; };
}

TEST_F(HealthTest, TcpCheckTakesADownBackendOutAndBringsItBack) {
  auto a = std::make_unique<Backend>(named("A"));
  Backend b(named("B"));
  const uint16_t a_port = a->port();
  const std::string a_addr = a->address(), b_addr = b.address();
  const std::string check =
      "type = \"tcp\", interval_secs = 1, timeout_secs = 1, unhealthy_threshold = 2, healthy_threshold = 1";
  start(config(a_addr, b_addr, check));

  // Both in rotation.
  bool saw_a = false, saw_b = false;
  for (int i = 0; i < 20 && !(saw_a && saw_b); ++i) {
    auto r = http_request(port_, "GET", "/x");
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_EQ(r.status, 200) << r.body;
    saw_a |= r.body == "A";
    saw_b |= r.body == "B";
  }
  EXPECT_TRUE(saw_a && saw_b);

  // A stops: two failed probes (about 2 s) take it out; then only B answers.
  a->stop();
  a.reset();
  ASSERT_TRUE(until_steady(body_is("B"), 10)) << proxy_->log();
  ASSERT_TRUE(proxy_->wait_log("backend " + a_addr + " is down")) << proxy_->log();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(http_request(port_, "GET", "/x").body, "B");

  std::string text = metrics_text();
  EXPECT_EQ(sample(text, "huginn_backend_healthy{backend=\"" + a_addr + "\"}"), 0) << text;
  EXPECT_EQ(sample(text, "huginn_backend_healthy{backend=\"" + b_addr + "\"}"), 1) << text;
  EXPECT_GE(sample(text, "huginn_health_check_probes_total{backend=\"" + a_addr + "\",result=\"fail\"}"), 2)
      << text;
  EXPECT_GE(sample(text, "huginn_health_check_probes_total{backend=\"" + b_addr + "\",result=\"ok\"}"), 2)
      << text;
  EXPECT_EQ(sample(text, "huginn_health_check_probes_total{backend=\"" + b_addr + "\",result=\"fail\"}"), 0)
      << text;

  // A reload with the same backends and checks keeps A out: the new
  // generation starts from the prober's state, not from "healthy".
  const int reloads = proxy_->log_count("reloaded: generation 2");
  proxy_->signal(SIGHUP);
  for (auto until = Clock::now() + 15s; proxy_->log_count("reloaded: generation 2") == reloads;) {
    ASSERT_LT(Clock::now(), until) << proxy_->log();
    std::this_thread::sleep_for(10ms);
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(http_request(port_, "GET", "/x").body, "B") << proxy_->log();
  EXPECT_EQ(proxy_->log_count("is down"), 1) << proxy_->log();

  // A answers again on the same port: one good probe brings it back.
  a = std::make_unique<Backend>(named("A2"), "127.0.0.1", a_port);
  bool back = false;
  for (auto until = Clock::now() + 15s; !back && Clock::now() < until;) {
    back = http_request(port_, "GET", "/x").body == "A2";
    if (!back) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(back) << proxy_->log();
  EXPECT_TRUE(proxy_->wait_log("backend " + a_addr + " is healthy again")) << proxy_->log();

  // Both down: 502 with the JSON reason once the checks have noticed.
  a->stop();
  b.stop();
  auto unhealthy = [](const HttpResponse& r) {
    return r.ok && r.status == 502 && r.body == R"({"error":"upstream_unhealthy"})";
  };
  ASSERT_TRUE(until_steady(unhealthy, 6)) << proxy_->log();
  auto r = http_request(port_, "GET", "/x");
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.header("content-type"), "application/json");
  text = metrics_text();
  EXPECT_EQ(sample(text, "huginn_backend_healthy{backend=\"" + b_addr + "\"}"), 0) << text;
}

TEST_F(HealthTest, HttpCheckWithUnexpectedStatusMarksDown) {
  Backend good(named("good", 200));
  Backend bad(named("bad", 500));  // serves requests, but its /healthz says 500
  const std::string check =
      "type = \"http\", path = \"/healthz\", expected_status = 200, interval_secs = 1, timeout_secs = 1, "
      "unhealthy_threshold = 1, healthy_threshold = 1";
  PrivateBus bus(PrivateBus::Kind::kSessionOpen);
  ASSERT_TRUE(bus.ok()) << bus.error();
  start(config(good.address(), bad.address(), check, bus.address()));
  ASSERT_TRUE(until_steady(body_is("good"), 10)) << proxy_->log();
  EXPECT_TRUE(proxy_->wait_log("backend " + bad.address() +
                               " is down: 1 consecutive failed health checks "
                               "(last: status 500, expected 200)"))
      << proxy_->log();
  EXPECT_EQ(proxy_->log_count("backend " + good.address() + " is down"), 0) << proxy_->log();

  // The probe as the backend saw it.
  bool saw_probe = false;
  for (const auto& req : bad.received()) {
    if (req.target != "/healthz") continue;
    saw_probe = true;
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.header("host"), bad.address());
    EXPECT_EQ(req.header("connection"), "close");
  }
  EXPECT_TRUE(saw_probe);
  // huginnctl status lists the backends with their state.
  std::string out;
  ASSERT_EQ(run_command({binary_path("bin/huginnctl"), "--bus", bus.address(), "status", "--json"}, &out), 0)
      << out;
  const Json::Value backends = parse_json(out)["backends"];
  ASSERT_EQ(backends.size(), 2u) << out;
  EXPECT_EQ(backends[0]["address"].asString(), good.address());
  EXPECT_TRUE(backends[0]["healthy"].asBool()) << out;
  EXPECT_EQ(backends[1]["address"].asString(), bad.address());
  EXPECT_FALSE(backends[1]["healthy"].asBool()) << out;
  EXPECT_EQ(backends[1]["health_check"].asString(), "http");
  EXPECT_EQ(backends[1]["last_error"].asString(), "status 500, expected 200") << out;

  const std::string text = metrics_text();
  EXPECT_GE(
      sample(text, "huginn_health_check_probes_total{backend=\"" + bad.address() + "\",result=\"fail\"}"), 1)
      << text;
  EXPECT_EQ(
      sample(text, "huginn_health_check_probes_total{backend=\"" + good.address() + "\",result=\"fail\"}"), 0)
      << text;
}

}  // namespace
}  // namespace huginn::testing
