// worker/cached_pid.cpp: the worker's getpid() answers the true pid from
// memory. The dynamic linker binds libc's and libcrypto's callers to it, so
// OpenSSL's random numbers make no getpid system call (the child's seccomp
// filter would kill it). A forked child sees its own pid, and the real
// huginn-worker executable exports the symbol. This binary links
// cached_pid.cpp (tests/CMakeLists.txt); the other test binaries do not.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "tests/unit/sandbox/child.h"

namespace huginn::testing {
namespace {

const std::string kWorker = std::string(HUGINN_BINARY_DIR) + "/libexec/huginn-proxy/huginn-worker";

pid_t real_pid() { return static_cast<pid_t>(syscall(SYS_getpid)); }

// Kills the process on any getpid system call from here on.
bool forbid_getpid_syscall() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return false;
  const bool ok =
      seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(getpid), 0) == 0 && seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  return ok;
}

bool make_x25519_key() {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* key = nullptr;
  const bool ok = ctx && EVP_PKEY_keygen_init(ctx.get()) == 1 && EVP_PKEY_keygen(ctx.get(), &key) == 1;
  EVP_PKEY_free(key);
  return ok;
}

TEST(CachedPid, AnswersTheTruePid) { EXPECT_EQ(getpid(), real_pid()); }

TEST(CachedPid, IsTheDefinitionTheDynamicLinkerBinds) {
  // RTLD_DEFAULT searches the global scope in the order the dynamic linker
  // binds libcrypto's undefined getpid: the executable first, if it exports
  // the symbol.
  void* bound = dlsym(RTLD_DEFAULT, "getpid");
  ASSERT_NE(bound, nullptr) << dlerror();
  EXPECT_EQ(bound, reinterpret_cast<void*>(&getpid));
  void* libc_getpid = dlsym(RTLD_NEXT, "getpid");  // the next definition: libc's
  EXPECT_NE(libc_getpid, nullptr);
  EXPECT_NE(libc_getpid, bound);
}

TEST(CachedPid, OpenSslRandomNumbersMakeNoGetpidSystemCall) {
  // Control: the filter kills a process that makes the system call.
  const ChildEnd control = run_sandboxed(Sandbox::kNone, false, [] {
    if (!forbid_getpid_syscall()) return 3;
    return real_pid() > 0 ? 0 : 4;
  });
  ASSERT_EQ(control.signal, SIGSYS) << control.describe();

  const ChildEnd end = run_sandboxed(Sandbox::kNone, false, [] {
    unsigned char buf[48];
    if (getpid() != real_pid() || RAND_bytes(buf, sizeof buf) != 1) return 2;  // seeded before the filter
    if (!forbid_getpid_syscall()) return 3;
    for (int i = 0; i < 100; ++i) {
      if (RAND_bytes(buf, sizeof buf) != 1 || RAND_priv_bytes(buf, sizeof buf) != 1) return 4;
      if (!make_x25519_key()) return 5;
    }
    return 0;
  });
  EXPECT_TRUE(end.exited && end.code == 0) << end.describe() << " (SIGSYS = 31: a getpid system call)";
}

TEST(CachedPid, AForkedChildSeesItsOwnPid) {
  const pid_t parent = getpid();
  ASSERT_EQ(parent, real_pid());
  const ChildEnd end = run_sandboxed(Sandbox::kNone, false, [parent] {
    const pid_t mine = getpid();
    if (mine == parent) return 2;
    return mine == real_pid() && getpid() == mine ? 0 : 3;
  });
  EXPECT_TRUE(end.exited && end.code == 0) << end.describe();
  EXPECT_EQ(getpid(), parent);
}

// nm comes with binutils, which every build of the project has (the linker).
TEST(CachedPid, TheWorkerExecutableExportsIt) {
  const std::string cmd = "nm -D --defined-only '" + kWorker + "' 2>&1";
  std::unique_ptr<FILE, decltype(&pclose)> p(popen(cmd.c_str(), "r"), pclose);
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, n);
  EXPECT_NE(out.find(" T getpid\n"), std::string::npos) << cmd << ":\n" << out.substr(0, 2000);
}

}  // namespace
}  // namespace huginn::testing
