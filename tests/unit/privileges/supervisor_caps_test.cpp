// sys::restrict_supervisor_capabilities(): the supervisor's sets after the
// call, and what a child exec'd as root (a worker, the helper) starts with.
// Each case runs in a forked child so the test process keeps its privileges.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "common/sys/privileges.h"

namespace huginn::sys {
namespace {

// SETUID SETGID SETPCAP NET_BIND_SERVICE KILL NET_ADMIN BPF PERFMON
constexpr const char* kPermitted = "000000c0000015e0";
// NET_BIND_SERVICE KILL
constexpr const char* kEffective = "0000000000000420";

std::map<std::string, std::string> parse_caps(const std::string& status) {
  std::map<std::string, std::string> out;
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Cap", 0) != 0) continue;
    const auto colon = line.find(':');
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    out[line.substr(0, colon)] = v;
  }
  return out;
}

// Runs `body` in a forked child whose stdout is returned; `*status` gets the
// wait status.
template <typename F>
std::string in_child(F body, int* status) {
  int p[2];
  if (pipe(p) != 0) return "";
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], STDOUT_FILENO);
    _exit(body());
  }
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  waitpid(pid, status, 0);
  return out;
}

int print_own_status() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 10;
  char line[512];
  while (std::fgets(line, sizeof line, f)) std::fputs(line, stdout);
  std::fclose(f);
  std::fflush(stdout);
  return 0;
}

TEST(SupervisorCaps, KeepsOnlyTheDesignSets) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  int st = 0;
  const std::string out = in_child(
      [] {
        std::string err;
        if (!restrict_supervisor_capabilities(&err)) {
          std::fprintf(stderr, "%s\n", err.c_str());
          return 20;
        }
        return print_own_status();
      },
      &st);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
  auto caps = parse_caps(out);
  EXPECT_EQ(caps["CapEff"], kEffective);
  EXPECT_EQ(caps["CapPrm"], kPermitted);
  EXPECT_EQ(caps["CapBnd"], kPermitted);
  EXPECT_EQ(caps["CapInh"], "0000000000000000");
  EXPECT_EQ(caps["CapAmb"], "0000000000000000");
}

// A child exec'd as root starts with the bounding set, with and without
// NO_NEW_PRIVS (the unit sets it): the worker can still switch user and empty
// its bounding set, the helper still gets BPF, NET_ADMIN and PERFMON.
TEST(SupervisorCaps, ExecdRootChildrenGetTheBoundingSet) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  for (bool nnp : {false, true}) {
    int st = 0;
    const std::string out = in_child(
        [nnp] {
          std::string err;
          if (!restrict_supervisor_capabilities(&err)) return 20;
          if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 21;
          execl("/bin/cat", "cat", "/proc/self/status", static_cast<char*>(nullptr));
          return 22;
        },
        &st);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << " nnp " << nnp;
    auto caps = parse_caps(out);
    EXPECT_EQ(caps["CapEff"], kPermitted) << "nnp " << nnp;
    EXPECT_EQ(caps["CapPrm"], kPermitted) << "nnp " << nnp;
    EXPECT_EQ(caps["CapBnd"], kPermitted) << "nnp " << nnp;
  }
}

// SETUID is permitted but not effective: the supervisor itself never switches
// user; its exec'd children do.
TEST(SupervisorCaps, SetuidIsNotEffectiveInTheSupervisor) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  int st = 0;
  in_child(
      [] {
        std::string err;
        if (!restrict_supervisor_capabilities(&err)) return 20;
        // setresuid needs CAP_SETUID in the effective set.
        if (setresuid(65534, 65534, 65534) == 0) return 23;
        return 0;
      },
      &st);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
}

}  // namespace
}  // namespace huginn::sys
