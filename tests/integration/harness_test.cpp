// The test harness's own promises that fixtures rely on.
#include <gtest/gtest.h>

#include <set>

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

}  // namespace
}  // namespace huginn::testing
