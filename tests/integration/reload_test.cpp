// Reload: new generations of workers replace old ones without failing a
// request; invalid configurations change nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <json/json.h>

#include "tests/support/backend.h"
#include "tests/support/harness.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;

std::string backend_name(const HttpResponse& r) {
  return parse_json(r.body)["headers"]["x-backend"].asString();
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    for (const char* name : {"A", "B"}) {
      std::string n = name;
      backends_.push_back(std::make_unique<Backend>([n](const Request& req) {
        Request copy = req;
        copy.headers.emplace_back("x-backend", n);  // echo which backend answered
        Response r;
        r.body = echo_json(copy);
        return r;
      }));
    }
  }

  std::string config(int workers, const char* backend, const std::string& extra_listen = "",
                     const std::string& extra = "") const {
    const Backend& be = *backends_[backend[0] == 'A' ? 0 : 1];
    std::string listen = "\"127.0.0.1:" + std::to_string(port_) + "\"" + extra_listen;
    return "workers = " + std::to_string(workers) + "\nuser = \"nobody\"\n" + extra +
           "\n[listen]\naddrs = [" + listen +
           "]\n\n[timeout]\nshutdown_secs = 5\n\n[dbus]\nbus = \"none\"\n\n[[backends]]\naddress = \"" +
           backends_[0]->address() + "\"\n[[backends]]\naddress = \"" + backends_[1]->address() +
           "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be.address() + "\"\n";
  }

  void start(const std::string& toml) {
    path_ = dir_.write("config.toml", toml);
    proxy_ = std::make_unique<Process>(
        std::vector<std::string>{binary_path("sbin/huginn-proxy"), "--config", path_},
        dir_.path() + "/proxy.log");
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  // Rewrites the config and sends SIGHUP; waits for the outcome in the log.
  bool reload_with(const std::string& toml, const std::string& expect) {
    const int before = proxy_->log_count(expect);
    dir_.write("config.toml", toml);
    proxy_->signal(SIGHUP);
    for (int i = 0; i < 1500; ++i) {
      if (proxy_->log_count(expect) > before) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  TempDir dir_;
  uint16_t port_ = 0;
  std::string path_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::unique_ptr<Process> proxy_;
};

TEST_F(ReloadTest, SighupSwitchesRoutesAndWorkerCount) {
  start(config(2, "A"));
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "A");
  ASSERT_TRUE(reload_with(config(3, "B"), "reloaded: generation 2 with 3 workers")) << proxy_->log();
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "B");
  // The old generation drains and exits; three workers remain.
  bool three = false;
  for (int i = 0; i < 300 && !three; ++i) {
    three = children_of(proxy_->pid()).size() == 3;
    if (!three) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(three) << proxy_->log();
  EXPECT_TRUE(proxy_->wait_log("generation 1 finished", 10000)) << proxy_->log();
}

TEST_F(ReloadTest, InvalidConfigurationChangesNothing) {
  start(config(2, "A"));
  const auto workers_before = children_of(proxy_->pid());
  ASSERT_TRUE(reload_with("workers = 2\n[listen]\naddrs = [\"127.0.0.1:1\"]\nbogus_key = true\n",
                          "reload failed: 1 configuration error"))
      << proxy_->log();
  EXPECT_NE(proxy_->log().find("bogus_key"), std::string::npos);
  EXPECT_NE(proxy_->log().find("config.toml:4:"), std::string::npos) << proxy_->log();
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "A");
  EXPECT_EQ(children_of(proxy_->pid()), workers_before);
}

TEST_F(ReloadTest, ListenersAreAddedKeptAndRemoved) {
  start(config(1, "A"));
  const uint16_t extra = free_port();
  const std::string extra_listen = ", \"127.0.0.1:" + std::to_string(extra) + "\"";
  ASSERT_TRUE(reload_with(config(1, "A", extra_listen), "reloaded: generation 2")) << proxy_->log();
  EXPECT_EQ(http_request(extra, "GET", "/", "r.test").status, 200);
  EXPECT_EQ(http_request(port_, "GET", "/", "r.test").status, 200);
  ASSERT_TRUE(reload_with(config(1, "B"), "reloaded: generation 3")) << proxy_->log();
  EXPECT_TRUE(proxy_->wait_log("closing listener 127.0.0.1:" + std::to_string(extra)));
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "B");
  bool refused = false;
  for (int i = 0; i < 300 && !refused; ++i) {  // once generation 2 has drained
    refused = !HttpClient("127.0.0.1", extra).connected();
    if (!refused) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(refused) << "the removed listener must be closed";
}

TEST_F(ReloadTest, ReloadUnderLoadFailsNoRequest) {
  start(config(2, "A"));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0}, failed{0};
  std::atomic<int> bad_generation{0};
  std::vector<std::thread> clients;
  std::string first_error;
  std::mutex mu;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      const bool keep_alive = t % 2 == 0;
      std::unique_ptr<HttpClient> c;
      while (!stop) {
        if (!c || !keep_alive) c = std::make_unique<HttpClient>("127.0.0.1", port_);
        if (!c->connected() || !c->send("GET /load HTTP/1.1\r\nHost: l.test\r\n\r\n")) {
          ++failed;
          c.reset();
          continue;
        }
        auto r = c->read_response(10000);
        if (!r.ok || r.status != 200) {
          ++failed;
          std::lock_guard lk(mu);
          if (first_error.empty()) first_error = r.ok ? "status " + std::to_string(r.status) : r.error;
          c.reset();
          continue;
        }
        const std::string b = backend_name(r);
        if (b != "A" && b != "B") ++bad_generation;
        ++ok;
        if (r.header("connection") == "close") c.reset();
      }
    });
  }
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(150ms);
    const std::string cfg = config(1 + i % 3, i % 2 ? "A" : "B");
    ASSERT_TRUE(reload_with(cfg, "reloaded: generation " + std::to_string(i + 2))) << proxy_->log();
  }
  std::this_thread::sleep_for(200ms);
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0u) << "first error: " << first_error;
  EXPECT_GT(ok.load(), 100u);
  EXPECT_EQ(bad_generation.load(), 0);
}

// wrk at full speed, keep-alive and a new connection per request, while the
// route table and the worker count change under it. wrk prints a "Socket
// errors" line for any connect/read/write error or timeout and a "Non-2xx"
// line for any other status; neither may appear.
TEST_F(ReloadTest, ReloadUnderWrkLoadKeepsEveryRequest) {
  if (access("/usr/bin/wrk", X_OK) != 0)
    GTEST_SKIP() << "wrk is not installed (scripts/install-deps.sh installs it)";
  start(config(2, "A"));
  for (const bool keep_alive : {true, false}) {
    std::vector<std::string> argv = {"/usr/bin/wrk", "-t2", "-c16", "-d4s", "--latency"};
    if (!keep_alive) argv.insert(argv.end(), {"-H", "Connection: close"});
    argv.push_back("http://127.0.0.1:" + std::to_string(port_) + "/wrk");
    std::string out;
    int rc = -1;
    std::thread load([&] { rc = run_command(argv, &out, 30000); });
    std::this_thread::sleep_for(300ms);
    static int generation = 1;
    for (int i = 0; i < 5; ++i) {
      ++generation;
      ASSERT_TRUE(reload_with(config(1 + (generation % 3), generation % 2 ? "A" : "B"),
                              "reloaded: generation " + std::to_string(generation)))
          << proxy_->log();
      std::this_thread::sleep_for(250ms);
    }
    load.join();
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("Requests/sec"), std::string::npos) << out;
    EXPECT_EQ(out.find("Socket errors"), std::string::npos) << (keep_alive ? "keep-alive" : "close") << "\n"
                                                            << out;
    EXPECT_EQ(out.find("Non-2xx"), std::string::npos) << out;
  }
}

// The same with HTTP/2 (h2c prior knowledge): h2load multiplexes 10 streams
// on each of 8 connections; old workers send GOAWAY and finish open streams,
// h2load reconnects. It prints "N failed, N errored, N timeout"; all must be 0.
TEST_F(ReloadTest, ReloadUnderH2loadKeepsEveryRequest) {
  if (access("/usr/bin/h2load", X_OK) != 0)
    GTEST_SKIP() << "h2load is not installed (scripts/install-deps.sh installs nghttp2-client)";
  start(config(2, "A"));
  std::string out;
  int rc = -1;
  std::thread load([&] {
    rc = run_command({"/usr/bin/h2load", "-D", "4", "-c", "8", "-m", "10",
                      "http://127.0.0.1:" + std::to_string(port_) + "/h2"},
                     &out, 30000);
  });
  std::this_thread::sleep_for(300ms);
  for (int generation = 2; generation <= 6; ++generation) {
    ASSERT_TRUE(reload_with(config(1 + (generation % 3), generation % 2 ? "A" : "B"),
                            "reloaded: generation " + std::to_string(generation)))
        << proxy_->log();
    std::this_thread::sleep_for(250ms);
  }
  load.join();
  ASSERT_EQ(rc, 0) << out;
  const auto pos = out.find("requests: ");
  ASSERT_NE(pos, std::string::npos) << out;
  EXPECT_NE(out.find(" 0 failed, 0 errored, 0 timeout", pos), std::string::npos) << out;
  EXPECT_NE(out.find(", 0 3xx, 0 4xx, 0 5xx"), std::string::npos) << out;
  // Not vacuous: thousands of requests were done.
  const long done = std::strtol(out.c_str() + pos + 10, nullptr, 10);
  EXPECT_GT(done, 200) << out;
}

TEST_F(ReloadTest, StopDuringNothingLeavesNoChildren) {
  start(config(2, "A"));
  ASSERT_TRUE(reload_with(config(2, "B"), "reloaded: generation 2")) << proxy_->log();
  proxy_->signal(SIGTERM);
  const int st = proxy_->wait_exit(15000);
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << proxy_->log();
}

}  // namespace
}  // namespace huginn::testing
