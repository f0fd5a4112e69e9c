// Runs a piece of code in a forked child behind a seccomp sandbox and reports
// how the child ended. The child's stderr is captured (the debug-mode reporter
// writes there). Code running after the sandbox is installed must stick to raw
// system calls and _exit(): no gtest macros, no stdio.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/sys/seccomp.h"

namespace huginn::testing {

enum class Sandbox { kNone, kWorker, kPrivhelper };

// Exit codes a child body can return besides 0 (success) and an errno value.
inline constexpr int kChildUnexpected = 250;  // the call returned something impossible
inline constexpr int kChildInstallFailed = 251;

struct ChildEnd {
  bool exited = false;  // WIFEXITED
  int code = -1;        // WEXITSTATUS
  int signal = 0;       // WTERMSIG when killed
  bool timed_out = false;
  std::string err;  // everything the child wrote to stderr

  std::string describe() const {
    if (timed_out) return "timed out";
    std::string s =
        exited ? "exit status " + std::to_string(code) : "killed by signal " + std::to_string(signal);
    if (!err.empty()) s += "; stderr: " + err;
    return s;
  }
};

inline bool install_sandbox(Sandbox which, bool debug, std::string* error) {
  sys::SandboxOptions o;
  o.debug_log = debug;
  switch (which) {
    case Sandbox::kNone:
      return true;
    case Sandbox::kWorker:
      return sys::install_worker_sandbox(o, error);
    case Sandbox::kPrivhelper:
      return sys::install_privhelper_sandbox(o, error);
  }
  return false;
}

// Waits for `pid` up to `timeout`; kills it on timeout.
inline ChildEnd wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  ChildEnd end;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return end;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      end.timed_out = true;
      return end;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  end.exited = WIFEXITED(status);
  if (end.exited) end.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) end.signal = WTERMSIG(status);
  return end;
}

// Forks; the child installs the sandbox, runs `body` and exits with its
// result. The parent collects the child's stderr and its end.
inline ChildEnd run_sandboxed(Sandbox which, bool debug, const std::function<int()>& body,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  int errp[2];
  if (pipe2(errp, O_CLOEXEC) != 0) return {};
  const pid_t pid = fork();
  if (pid < 0) return {};
  if (pid == 0) {
    dup2(errp[1], STDERR_FILENO);
    close(errp[0]);
    std::string error;
    if (!install_sandbox(which, debug, &error)) {
      ssize_t rc = write(STDERR_FILENO, error.data(), error.size());
      (void)rc;
      _exit(kChildInstallFailed);
    }
    _exit(body());
  }
  close(errp[1]);
  // Collect stderr until EOF (the child is gone: the write end is close-on-exec
  // and never inherited further) or the deadline.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string err;
  char buf[512];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{errp[0], POLLIN, 0};
    const int pr = poll(&p, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) break;
    ssize_t n = read(errp[0], buf, sizeof buf);
    if (n > 0) {
      err.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  close(errp[0]);
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  ChildEnd end = wait_child(pid, std::max(left, std::chrono::milliseconds(100)));
  end.err = err;
  return end;
}

// errno of a failed call, 0 for success.
inline int result_of(long rc) { return rc < 0 ? errno : 0; }

}  // namespace huginn::testing
