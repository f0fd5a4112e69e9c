// The shipped bus policy (etc/dbus-1/org.huginn.Proxy1.conf) on a private
// system-type bus with the default-deny context of Debian's system.conf: root
// may own the name and call it, an unprivileged user can do neither. The
// service is created with bus "system", which follows DBUS_SYSTEM_BUS_ADDRESS.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/unit/dbus/dbus_fixture.h"

namespace huginn::testing {
namespace {

constexpr const char* kName = "org.huginn.Proxy1";

class SystemBusPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0)
      GTEST_SKIP() << "needs root: the policy admits root only and the test drops to nobody";
    bus_ = std::make_unique<PrivateBus>(PrivateBus::Kind::kSystemWithPolicy);
    ASSERT_TRUE(bus_->ok()) << bus_->error();
    setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_->address().c_str(), 1);
    service_ = std::make_unique<ServiceThread>("system", control_);
    ASSERT_TRUE(service_->ok()) << service_->error();
  }
  void TearDown() override {
    service_.reset();
    unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
    bus_.reset();
  }

  ProcResult ctl(const std::string& cmd, bool as_nobody) {
    return run({huginnctl_path(), "--bus", "system", cmd}, as_nobody);
  }
  ProcResult busctl(std::vector<std::string> args, bool as_nobody) {
    args.insert(args.begin(), {"/usr/bin/busctl", "--address=" + bus_->address()});
    return run(args, as_nobody);
  }

  std::unique_ptr<PrivateBus> bus_;
  FakeControl control_;
  std::unique_ptr<ServiceThread> service_;
};

TEST_F(SystemBusPolicyTest, RootMayReload) {
  const ProcResult r = ctl("reload", false);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "reloaded\n");
  EXPECT_EQ(control_.reload_calls.load(), 1);
  EXPECT_EQ(ctl("status", false).code, 0);
}

TEST_F(SystemBusPolicyTest, NobodyIsRejectedByThePolicy) {
  for (const char* cmd : {"reload", "status"}) {
    const ProcResult r = ctl(cmd, true);
    EXPECT_EQ(r.code, 4) << cmd << ": " << r.err;
    EXPECT_EQ(r.out, "");
    ASSERT_EQ(lines(r.err).size(), 1u) << r.err;
    // Rejected by the bus itself, before reaching the handler.
    EXPECT_NE(r.err.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos) << r.err;
  }
  EXPECT_EQ(control_.reload_calls.load(), 0);
  EXPECT_EQ(control_.status_calls.load(), 0);
}

TEST_F(SystemBusPolicyTest, NobodyCannotOwnTheName) {
  // Free the name first so only the policy can stop the request.
  service_.reset();
  const ProcResult r = busctl({"call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "RequestName", "su", kName, "0"},
                              true);
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.err.find("Access denied"), std::string::npos) << r.err;

  // Root may (and the service comes back).
  service_ = std::make_unique<ServiceThread>("system", control_);
  EXPECT_TRUE(service_->ok()) << service_->error();
}

}  // namespace
}  // namespace huginn::testing

namespace huginn::testing {
namespace {

// The handler's group check: members of huginn-admin (supplementary or
// primary group) may reload. The group is looked up through NSS; rather than
// adding it to this machine, the scenario runs in a child process with a
// private mount namespace whose /etc/group has the group.
constexpr gid_t kAdminGid = 4242;

int admin_group_scenario() {
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
  char group_file[] = "/tmp/huginn-group-XXXXXX";
  const int fd = mkstemp(group_file);
  if (fd < 0) return 20;
  std::ifstream in("/etc/group");
  std::stringstream text;
  text << in.rdbuf() << "huginn-admin:x:" << kAdminGid << ":\n";
  const std::string s = text.str();
  const bool written = write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  close(fd);
  chmod(group_file, 0644);
  const bool mounted = written && mount(group_file, "/etc/group", nullptr, MS_BIND, nullptr) == 0;
  unlink(group_file);
  if (!mounted) return 77;

  PrivateBus bus(PrivateBus::Kind::kSessionOpen);
  if (!bus.ok()) return 21;
  FakeControl control;
  ServiceThread service(bus.address(), control);
  if (!service.ok()) return 22;
  const std::vector<std::string> argv = {huginnctl_path(), "--bus", bus.address(), "reload"};
  struct Case {
    RunAs as;
    int want;
  };
  const Case cases[] = {
      {nobody(65534, {kAdminGid}), 0},  // supplementary member
      {nobody(kAdminGid, {}), 0},       // primary group
      {nobody(65534, {100}), 4},        // some other group
  };
  int step = 0;
  for (const Case& c : cases) {
    ++step;
    const ProcResult r = run(argv, c.as);
    if (r.code != c.want) {
      std::fprintf(stderr, "case %d: exit %d, want %d: %s", step, r.code, c.want, r.err.c_str());
      return 30 + step;
    }
  }
  return control.reload_calls.load() == 2 ? 0 : 40;
}

TEST(DbusAdminGroup, MembersMayReloadOthersMayNot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (mount namespace, setuid to nobody)";
  const pid_t pid = fork();
  if (pid == 0) _exit(admin_group_scenario());
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot make a private mount namespace here";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the scenario's stderr above";
}

}  // namespace
}  // namespace huginn::testing
