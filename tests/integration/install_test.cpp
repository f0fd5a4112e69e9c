// `cmake --install` produces the documented tree, and the installed supervisor
// finds its worker relative to its own location.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>

#include "tests/support/backend.h"
#include "tests/support/harness.h"

namespace huginn::testing {
namespace {

TEST(Install, InstalledTreeRunsFromItsOwnPrefix) {
  TempDir dir;
  const std::string prefix = dir.path() + "/prefix";
  std::string out;
  ASSERT_EQ(run_command({"/usr/bin/env", "cmake", "--install", HUGINN_BINARY_DIR, "--prefix", prefix}, &out,
                        120000),
            0)
      << out;
  for (const char* rel : {"sbin/huginn-proxy", "bin/huginnctl", "libexec/huginn-proxy/huginn-worker"})
    EXPECT_EQ(access((prefix + "/" + rel).c_str(), X_OK), 0) << rel << " missing from the install tree";
  for (const char* rel : {"share/man/man8/huginn-proxy.8", "share/man/man8/huginnctl.8"})
    EXPECT_EQ(access((prefix + "/" + rel).c_str(), R_OK), 0) << rel << " missing from the install tree";

  Backend be;
  const uint16_t port = free_port();
  const std::string cfg = dir.write(
      "config.toml",
      "workers = 1\nuser = \"nobody\"\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port) +
          "\"]\n[dbus]\nbus = \"none\"\n" + "[[backends]]\naddress = \"" + be.address() +
          "\"\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\n" + "backend = \"" + be.address() + "\"\n");
  Process proxy({prefix + "/sbin/huginn-proxy", "--config", cfg}, dir.path() + "/proxy.log");
  ASSERT_TRUE(proxy.wait_log("workers ready")) << proxy.log();
  EXPECT_NE(proxy.log().find(prefix + "/sbin/../libexec/huginn-proxy/huginn-worker"), std::string::npos)
      << "the installed supervisor must run the installed worker\n"
      << proxy.log();
  EXPECT_EQ(http_request(port, "GET", "/", "i.test").status, 200);
}

}  // namespace
}  // namespace huginn::testing
