// supervisor/worker_env: the GLIBC_TUNABLES a worker is started with.
#include "supervisor/worker_env.h"

#include <gtest/gtest.h>

namespace huginn::supervisor {
namespace {

TEST(WorkerEnvTest, UnsetGivesOnlyTheTcacheCount) {
  EXPECT_EQ(worker_glibc_tunables(nullptr), "glibc.malloc.tcache_count=128");
  EXPECT_EQ(worker_glibc_tunables(""), "glibc.malloc.tcache_count=128");
  EXPECT_EQ(worker_env(nullptr), std::vector<std::string>{"GLIBC_TUNABLES=glibc.malloc.tcache_count=128"});
}

TEST(WorkerEnvTest, OtherTunablesAreKept) {
  EXPECT_EQ(worker_glibc_tunables("glibc.malloc.mxfast=64"),
            "glibc.malloc.mxfast=64:glibc.malloc.tcache_count=128");
  EXPECT_EQ(worker_glibc_tunables("glibc.malloc.check=0:glibc.malloc.tcache_count_x=1"),
            "glibc.malloc.check=0:glibc.malloc.tcache_count_x=1:glibc.malloc.tcache_count=128");
}

TEST(WorkerEnvTest, TheOperatorsTcacheCountWins) {
  for (const char* own : {"glibc.malloc.tcache_count=0", "glibc.malloc.mxfast=64:glibc.malloc.tcache_count=7",
                          "glibc.malloc.tcache_count=500:glibc.malloc.mxfast=64"})
    EXPECT_EQ(worker_glibc_tunables(own), own);
}

}  // namespace
}  // namespace huginn::supervisor
