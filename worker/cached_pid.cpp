// getpid() for the worker executable: one system call, then answered from
// memory.
//
// OpenSSL 3.0 checks for a fork on every random-number request: its DRBG
// compares getpid() with the pid it was seeded in. glibc stopped caching the
// pid in 2.25, so every request was a system call. A resumed TLS 1.3
// connection made five (server random, key share, ticket nonce and age,
// ticket IV). Each cost about 1 µs on the virtual machines this runs on
// (bench/README.md, "Runs 34 and 35"). This definition is in the executable,
// so the dynamic linker binds libcrypto's getpid to it, not to libc's.
//
// This is safe because the worker never forks. Its seccomp filter kills
// clone and fork, and RLIMIT_NPROC is 0. If a fork did happen before the
// sandbox is installed, the child would still see its own pid: a
// pthread_atfork handler clears the cache in the child.
//
// Only huginn-worker links this file: worker/CMakeLists.txt keeps it out of
// huginn_worker_lib, so test binaries keep libc's getpid. The exception is
// unit_worker_pid, which tests this file.
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace {

std::atomic<pid_t> g_pid{0};

void forget_pid() noexcept { g_pid.store(0, std::memory_order_relaxed); }

// Registered during static initialisation. A getpid() call made before that
// is answered anyway; nothing forks that early.
[[maybe_unused]] const int g_registered = pthread_atfork(nullptr, nullptr, forget_pid);

}  // namespace

// Async-signal-safe: an atomic load, or a raw system call.
extern "C" pid_t getpid() noexcept {
  pid_t p = g_pid.load(std::memory_order_relaxed);
  if (p == 0) {
    p = static_cast<pid_t>(syscall(SYS_getpid));
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}
