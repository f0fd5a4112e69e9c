// The sandbox of the real worker binary, probed from inside it
// (worker/sandbox_probe.h): a refused call leaves the worker serving; a call
// the filter kills takes down that worker alone (SIGSYS), the supervisor
// restarts it, and the other worker serves every request meanwhile.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "tests/support/backend.h"
#include "tests/support/harness.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;

class SandboxProbeTest : public ::testing::TestWithParam<const char*> {
 protected:
  void start(const std::string& probe) {
    port_ = free_port();
    const std::string toml = two_worker_config(port_, be_.address());
    proxy_ =
        std::make_unique<Process>(std::vector<std::string>{binary_path("sbin/huginn-proxy"), "--config",
                                                           dir_.write("config.toml", toml)},
                                  dir_.path() + "/proxy.log",
                                  std::map<std::string, std::string>{{"HUGINN_WORKER_SANDBOX_PROBE", probe}});
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  Backend be_;
  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> proxy_;
};

TEST_F(SandboxProbeTest, OpenIsRefusedWithEaccesAndTheWorkerKeepsServing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: workers drop to nobody";
  start("1:open");
  ASSERT_TRUE(proxy_->wait_log("sandbox probe open: refused: Permission denied", 5000)) << proxy_->log();
  start("0:openat");
  ASSERT_TRUE(proxy_->wait_log("sandbox probe openat: refused: Permission denied", 5000)) << proxy_->log();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(http_request(port_, "GET", "/", "p.test").status, 200);
  EXPECT_EQ(proxy_->log_count("unexpectedly"), 0) << proxy_->log();
  EXPECT_EQ(children_of(proxy_->pid()).size(), 2u);
}

TEST_P(SandboxProbeTest, ForbiddenCallKillsOnlyThatWorker) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: workers drop to nobody";
  const std::string probe = GetParam();
  start("0:" + probe);
  // Worker 0 dies by SIGSYS right after READY, is restarted, probes again...
  ASSERT_TRUE(proxy_->wait_log("killed by signal 31 (Bad system call) unexpectedly", 5000)) << proxy_->log();
  // ... while worker 1 serves every request.
  for (int i = 0; i < 30; ++i) {
    auto r = http_request(port_, "GET", "/", "p.test");
    EXPECT_EQ(r.status, 200) << r.error;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(proxy_->running());
  EXPECT_EQ(proxy_->log_count("ALLOWED"), 0) << proxy_->log();
  EXPECT_GE(proxy_->log_count("worker 0 (pid"), 2) << "worker 0 was not restarted\n" << proxy_->log();
}

INSTANTIATE_TEST_SUITE_P(Probes, SandboxProbeTest,
                         ::testing::Values("execve", "ptrace", "mount", "raw_socket", "packet_socket",
                                           "bpf_map_create"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace huginn::testing
