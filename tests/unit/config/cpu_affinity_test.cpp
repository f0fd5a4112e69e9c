// worker_cpu_affinity: parsing, the CPUs each worker gets, and the list text.
#include "common/config/cpu_affinity.h"

#include <gtest/gtest.h>

#include "tests/unit/config/config_test_util.h"

namespace huginn::config::test {
namespace {

using Cpus = std::vector<uint32_t>;

TEST(CpuAffinity, OffUnlessConfigured) {
  auto c = ok(kListen);
  EXPECT_EQ(c->worker_cpu_affinity.mode, CpuAffinity::Mode::kOff);
  auto off = ok(std::string("worker_cpu_affinity = \"off\"\n") + kListen);
  EXPECT_EQ(off->worker_cpu_affinity.mode, CpuAffinity::Mode::kOff);
  EXPECT_TRUE(worker_cpus(off->worker_cpu_affinity, 0, {0, 1}).empty());
}

TEST(CpuAffinity, ListsAreParsedSortedAndWithoutRepeats) {
  auto c = ok(std::string("worker_cpu_affinity = [\"3,0-1\", \"5-7,6\", \"12\"]\n") + kListen);
  const auto& a = c->worker_cpu_affinity;
  ASSERT_EQ(a.mode, CpuAffinity::Mode::kLists);
  ASSERT_EQ(a.lists.size(), 3u);
  EXPECT_EQ(a.lists[0], (Cpus{0, 1, 3}));
  EXPECT_EQ(a.lists[1], (Cpus{5, 6, 7}));
  EXPECT_EQ(a.lists[2], (Cpus{12}));
  auto top = ok(std::string("worker_cpu_affinity = [\"1023\", \"0-1023\"]\n") + kListen);
  EXPECT_EQ(top->worker_cpu_affinity.lists[0], (Cpus{1023}));
  EXPECT_EQ(top->worker_cpu_affinity.lists[1].size(), 1024u);
}

TEST(CpuAffinity, AutoGivesEachWorkerTheNextAllowedCpuAndWraps) {
  auto c = ok(std::string("worker_cpu_affinity = \"auto\"\n") + kListen);
  const auto& a = c->worker_cpu_affinity;
  ASSERT_EQ(a.mode, CpuAffinity::Mode::kAuto);
  const Cpus allowed{2, 3, 6};  // e.g. systemd CPUAffinity=2-3 6
  EXPECT_EQ(worker_cpus(a, 0, allowed), (Cpus{2}));
  EXPECT_EQ(worker_cpus(a, 1, allowed), (Cpus{3}));
  EXPECT_EQ(worker_cpus(a, 2, allowed), (Cpus{6}));
  EXPECT_EQ(worker_cpus(a, 3, allowed), (Cpus{2}));
  EXPECT_TRUE(worker_cpus(a, 0, {}).empty());
}

TEST(CpuAffinity, ListsAreTakenInTurnAndCutToTheAllowedCpus) {
  auto c = ok(std::string("worker_cpu_affinity = [\"0-1\", \"2,9\", \"8\"]\n") + kListen);
  const auto& a = c->worker_cpu_affinity;
  const Cpus allowed{0, 1, 2, 3};
  EXPECT_EQ(worker_cpus(a, 0, allowed), (Cpus{0, 1}));
  EXPECT_EQ(worker_cpus(a, 1, allowed), (Cpus{2}));  // 9 is not allowed
  EXPECT_TRUE(worker_cpus(a, 2, allowed).empty());   // nothing allowed: left unpinned
  EXPECT_EQ(worker_cpus(a, 3, allowed), (Cpus{0, 1}));
}

TEST(CpuAffinity, ListText) {
  EXPECT_EQ(cpu_list_text({}), "");
  EXPECT_EQ(cpu_list_text({4}), "4");
  EXPECT_EQ(cpu_list_text({0, 1, 2, 5}), "0-2,5");
  EXPECT_EQ(cpu_list_text({0, 2, 3, 4, 7, 8}), "0,2-4,7-8");
}

}  // namespace
}  // namespace huginn::config::test
