// The environment the supervisor gives its workers (supervisor/worker_env.h):
// read from /proc/PID/environ of the real, running processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/backend.h"
#include "tests/support/harness.h"

namespace huginn::testing {
namespace {

// The value of `name` in the environment `pid` was started with. glibc
// terminates each tunable it applies in place, in the very bytes
// /proc/PID/environ shows, so "a=1:b=2" reads "a=1\0b=2": for GLIBC_TUNABLES
// the pieces it cut off (entries starting "glibc.") are joined back.
std::optional<std::string> environ_value(pid_t pid, const std::string& name) {
  const std::vector<std::string> entries = proc_strings(pid, "environ");
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].rfind(name + "=", 0) != 0) continue;
    std::string value = entries[i].substr(name.size() + 1);
    if (name == "GLIBC_TUNABLES")
      while (i + 1 < entries.size() && entries[i + 1].rfind("glibc.", 0) == 0) value += ":" + entries[++i];
    return value;
  }
  return std::nullopt;
}

class WorkerEnvTest : public ::testing::Test {
 protected:
  // Starts the proxy with GLIBC_TUNABLES set to `tunables` and returns the
  // workers' values.
  std::map<pid_t, std::optional<std::string>> start(const std::string& tunables) {
    port_ = free_port();
    const std::string toml = two_worker_config(port_, be_.address());
    const std::map<std::string, std::string> env{{"GLIBC_TUNABLES", tunables}};
    proxy_ = std::make_unique<Process>(std::vector<std::string>{binary_path("sbin/huginn-proxy"), "--config",
                                                                dir_.write("config.toml", toml)},
                                       dir_.path() + "/proxy.log", env);
    std::map<pid_t, std::optional<std::string>> out;
    if (!proxy_->wait_log("workers ready")) return out;
    EXPECT_EQ(http_request(port_, "GET", "/", "e.test").status, 200);
    // The worker installed its block cache before OpenSSL's first allocation
    // (worker/main.cpp; otherwise it says so).
    EXPECT_EQ(proxy_->log_count("its buffers are not cached"), 0) << proxy_->log();
    for (pid_t pid : children_of(proxy_->pid())) {
      const auto args = proc_strings(pid, "cmdline");
      if (std::find(args.begin(), args.end(), "--worker-id") != args.end())
        out[pid] = environ_value(pid, "GLIBC_TUNABLES");
    }
    return out;
  }

  Backend be_;
  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> proxy_;
};

TEST_F(WorkerEnvTest, WorkersGetRoomForMoreFreedChunksAndKeepTheOperatorsTunables) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: workers drop to nobody";

  // Nothing of the operator's (set empty, whatever the tests themselves run with).
  auto workers = start("");
  ASSERT_EQ(workers.size(), 2u) << proxy_->log();
  for (const auto& [pid, value] : workers)
    EXPECT_EQ(value, "glibc.malloc.tcache_count=128") << "worker " << pid;
  EXPECT_EQ(environ_value(proxy_->pid(), "GLIBC_TUNABLES"), "");  // the supervisor's own is untouched

  // The operator's other tunables are kept, ours appended.
  workers = start("glibc.malloc.mxfast=64");
  ASSERT_EQ(workers.size(), 2u) << proxy_->log();
  for (const auto& [pid, value] : workers)
    EXPECT_EQ(value, "glibc.malloc.mxfast=64:glibc.malloc.tcache_count=128") << "worker " << pid;
  EXPECT_EQ(environ_value(proxy_->pid(), "GLIBC_TUNABLES"), "glibc.malloc.mxfast=64");

  // The operator's own count wins.
  workers = start("glibc.malloc.tcache_count=16");
  ASSERT_EQ(workers.size(), 2u) << proxy_->log();
  for (const auto& [pid, value] : workers)
    EXPECT_EQ(value, "glibc.malloc.tcache_count=16") << "worker " << pid;
}

}  // namespace
}  // namespace huginn::testing
