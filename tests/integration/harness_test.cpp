// The test harness's own promises that fixtures rely on.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "common/sys/unique_fd.h"

#include "tests/support/harness.h"

namespace huginn::testing {
namespace {

// Fixtures take two or three ports for one proxy (TLS, cleartext, metrics); the
// kernel's port-0 choice repeats often enough that 2,000 picks collide (birthday
// odds over ~28,000 ephemeral ports), and a repeat made a CI run fail with
// "duplicate listen address".
TEST(HarnessTest, FreePortsAreNeverHandedOutTwiceInAProcess) {
  std::set<uint16_t> seen;
  for (int i = 0; i < 2000; ++i) {
    const uint16_t port = i % 2 == 0 ? free_port() : free_dual_stack_port();
    ASSERT_TRUE(seen.insert(port).second) << "port " << port << " handed out again at pick " << i;
  }
}

// A port-0 pick lies in the ephemeral range, where any client's connect() may
// take it as a source port before the proxy binds it (an ASan CI run failed
// with "bind: Address already in use"); and test processes run in parallel,
// so a port handed out here must be reserved against the others.
TEST(HarnessTest, FreePortsLieOutsideTheEphemeralRangeAndAreLockedAgainstOtherProcesses) {
  int lo = 0, hi = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> lo >> hi;
  ASSERT_LT(0, lo);
  // A second open file description of the lock file stands for another process.
  sys::UniqueFd other(open(free_port_lock_file().c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(other) << free_port_lock_file();
  for (int i = 0; i < 50; ++i) {
    const uint16_t port = i % 2 == 0 ? free_port() : free_dual_stack_port();
    EXPECT_TRUE(port < lo || port > hi) << port << " is in the ephemeral range " << lo << "-" << hi;
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = port;
    fl.l_len = 1;
    ASSERT_EQ(fcntl(other.get(), F_OFD_GETLK, &fl), 0);
    EXPECT_EQ(fl.l_type, F_WRLCK) << "port " << port << " is not reserved";
  }
}

}  // namespace
}  // namespace huginn::testing
