// The real supervisor on a private D-Bus, driven by the real huginnctl.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include <json/json.h>

#include "common/sys/cpus.h"
#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/support/private_bus.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus_ = std::make_unique<PrivateBus>(PrivateBus::Kind::kSessionOpen);
    ASSERT_TRUE(bus_->ok()) << bus_->error();
    port_ = free_port();
  }

  std::string config(int workers, const std::string& extra = "") const {
    return "workers = " + std::to_string(workers) + "\nuser = \"nobody\"\n" + extra +
           "\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port_) + "\"]\n\n[dbus]\nbus = \"" +
           bus_->address() + "\"\n\n[[backends]]\naddress = \"" + backend_.address() +
           "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + backend_.address() +
           "\"\n";
  }

  void start(const std::string& toml) {
    path_ = dir_.write("config.toml", toml);
    proxy_ = spawn_proxy(dir_, path_);
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  int ctl(const std::vector<std::string>& args, std::string* out) const {
    std::vector<std::string> argv = {binary_path("bin/huginnctl"), "--bus", bus_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, out, 60000);
  }

  Json::Value status() const {
    std::string out;
    EXPECT_EQ(ctl({"status", "--json"}, &out), 0) << out;
    return parse_json(out);
  }

  std::unique_ptr<PrivateBus> bus_;
  Backend backend_;
  TempDir dir_;
  uint16_t port_ = 0;
  std::string path_;
  std::unique_ptr<Process> proxy_;
};

TEST_F(ControlTest, ReloadAndStatusThroughHuginnctl) {
  start(config(2));
  Json::Value s = status();
  EXPECT_EQ(s["generation"].asUInt(), 1u);
  EXPECT_EQ(s["config_path"].asString(), path_);
  EXPECT_EQ(s["workers"].size(), 2u);
  for (const auto& w : s["workers"]) EXPECT_EQ(w["state"].asString(), "ready");

  dir_.write("config.toml", config(3));
  std::string out;
  EXPECT_EQ(ctl({"reload"}, &out), 0) << out << proxy_->log();
  EXPECT_NE(out.find("reloaded: generation 2 with 3 workers"), std::string::npos) << out;
  EXPECT_EQ(status()["generation"].asUInt(), 2u);
  EXPECT_EQ(http_request(port_, "GET", "/", "c.test").status, 200);

  // Human-readable status names the generation and lists the workers.
  EXPECT_EQ(ctl({"status"}, &out), 0) << out;
  EXPECT_NE(out.find("generation"), std::string::npos) << out;
}

// Pinned workers show their CPUs in the status document and in the text;
// unpinned ones have no "cpus" key.
TEST_F(ControlTest, StatusShowsEachPinnedWorkersCpus) {
  const std::vector<uint32_t> cpus = sys::allowed_cpus();  // the proxy inherits them
  ASSERT_FALSE(cpus.empty());
  start(config(2, "worker_cpu_affinity = \"auto\""));
  Json::Value s = status();
  ASSERT_EQ(s["workers"].size(), 2u) << s;
  for (const auto& w : s["workers"])
    EXPECT_EQ(w["cpus"].asString(), std::to_string(cpus[w["slot"].asUInt() % cpus.size()])) << s;
  std::string out;
  EXPECT_EQ(ctl({"status"}, &out), 0) << out;
  EXPECT_NE(out.find("cpus=" + std::to_string(cpus[0])), std::string::npos) << out;

  dir_.write("config.toml", config(2));
  EXPECT_EQ(ctl({"reload"}, &out), 0) << out << proxy_->log();
  s = status();
  for (const auto& w : s["workers"]) {
    if (w["generation"].asUInt() == 2u) {
      EXPECT_FALSE(w.isMember("cpus")) << s;
    }
  }
}

// Issue #6's acceptance run: wrk at full speed over keep-alive and over a new
// connection per request while `huginnctl reload` runs 20 times, every other
// one changing the route table and the worker count. wrk reports any socket
// error ("Socket errors") and any non-2xx response ("Non-2xx"); neither may
// appear, and every reload must report success.
TEST_F(ControlTest, TwentyHuginnctlReloadsUnderWrkLoadFailNothing) {
  if (access("/usr/bin/wrk", X_OK) != 0)
    GTEST_SKIP() << "wrk is not installed (scripts/install-deps.sh installs it)";
  auto cfg = [&](int i) {
    if (i % 2 == 0) return config(2);
    // A different route table (an extra prefix) and worker count.
    return config(1 + i % 3) + "[[domains.routes]]\nprefix = \"/extra" + std::to_string(i) +
           "\"\nbackend = \"" + backend_.address() + "\"\n";
  };
  start(cfg(0));
  std::string out_ka, out_close;
  int rc_ka = -1, rc_close = -1;
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/wrk";
  std::thread ka([&] { rc_ka = run_command({"/usr/bin/wrk", "-t1", "-c8", "-d20s", url}, &out_ka, 60000); });
  std::thread close_each([&] {
    rc_close = run_command({"/usr/bin/wrk", "-t1", "-c4", "-d20s", "-H", "Connection: close", url},
                           &out_close, 60000);
  });
  std::this_thread::sleep_for(500ms);
  const auto t0 = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 1; i <= 20; ++i) {
    dir_.write("config.toml", cfg(i));
    std::string out;
    const int rc = ctl({"reload"}, &out);
    EXPECT_EQ(rc, 0) << "reload " << i << ": " << out;
    ok += rc == 0;
  }
  const auto spent = std::chrono::steady_clock::now() - t0;
  ka.join();
  close_each.join();
  EXPECT_EQ(ok, 20);
  EXPECT_LT(spent, 19s) << "the reloads did not all happen under load";
  EXPECT_EQ(status()["generation"].asUInt(), 21u);
  for (const auto* o : {&out_ka, &out_close}) {
    EXPECT_NE(o->find("Requests/sec"), std::string::npos) << *o;
    EXPECT_EQ(o->find("Socket errors"), std::string::npos) << *o;
    EXPECT_EQ(o->find("Non-2xx"), std::string::npos) << *o;
  }
  EXPECT_EQ(rc_ka, 0);
  EXPECT_EQ(rc_close, 0);
}

TEST_F(ControlTest, InvalidConfigurationIsReportedAndChangesNothing) {
  start(config(2));
  dir_.write("config.toml", config(2) + "\n[timeout]\nshutdown_secs = \"soon\"\n");
  std::string out;
  EXPECT_EQ(ctl({"reload"}, &out), 1) << out;
  EXPECT_NE(out.find("timeout.shutdown_secs"), std::string::npos) << out;
  EXPECT_NE(out.find("config.toml:"), std::string::npos) << out;
  EXPECT_EQ(status()["generation"].asUInt(), 1u);
  EXPECT_EQ(http_request(port_, "GET", "/", "c.test").status, 200);
  // CheckConfig on the daemon reports the same, without side effects.
  EXPECT_EQ(ctl({"check-config", path_}, &out), 1) << out;
}

TEST_F(ControlTest, ConcurrentReloadIsRefused) {
  // Three huginnctl reloads fired together: the first starts a reload of eight
  // workers, the others arrive while it runs and must be refused with a clear
  // message (exit 1) — never run twice, never fail otherwise.
  start(config(2));
  bool saw_refusal = false;
  for (int attempt = 0; attempt < 3 && !saw_refusal; ++attempt) {
    dir_.write("config.toml", config(attempt % 2 ? 2 : 8));
    std::string out[3];
    int rc[3] = {-1, -1, -1};
    std::vector<std::thread> t;
    for (int i = 0; i < 3; ++i) t.emplace_back([&, i] { rc[i] = ctl({"reload"}, &out[i]); });
    for (auto& th : t) th.join();
    int ok = 0;
    for (int i = 0; i < 3; ++i) {
      if (rc[i] == 0) {
        ++ok;
        EXPECT_NE(out[i].find("reloaded: generation"), std::string::npos) << out[i];
      } else {
        EXPECT_EQ(rc[i], 1) << out[i];
        EXPECT_NE(out[i].find("already in progress"), std::string::npos) << out[i];
        saw_refusal = true;
      }
    }
    EXPECT_GE(ok, 1);
  }
  EXPECT_TRUE(saw_refusal) << "no reload overlapped another in three attempts";
  EXPECT_EQ(http_request(port_, "GET", "/", "c.test").status, 200);
}

TEST_F(ControlTest, NoDaemonIsOneClearLineAndItsOwnExitCode) {
  std::string out;
  EXPECT_EQ(ctl({"status"}, &out), 3) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

}  // namespace
}  // namespace huginn::testing
