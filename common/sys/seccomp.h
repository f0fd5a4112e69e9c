// seccomp sandboxes for the worker and the privileged helper (libseccomp).
//
// A policy is data: a list of rules built from named helpers (allow, deny with
// an errno, allow only for given argument values, forbid), modelled on OpenSSH's
// sandbox-seccomp-filter.c. Everything that is not allowed by a rule kills the
// whole process (SECCOMP_RET_KILL_PROCESS); only the native architecture is
// accepted (a foreign or x32 system call number kills as well). docs/SANDBOX.md
// explains every group of the two allowlists and how to debug a kill.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace huginn::sys {

// One condition on a system call argument: (arg[index] & mask) == value.
struct SeccompArg {
  unsigned index = 0;            // 0..5
  uint64_t mask = ~uint64_t{0};  // all bits: plain equality
  uint64_t value = 0;
};

enum class SeccompVerdict {
  kAllow,  // the call reaches the kernel
  kErrno,  // the call fails with `err`, the process lives (fail soft)
  kKill,   // the process is killed, in debug mode too
};

struct SeccompRule {
  int nr = 0;  // native system call number (SCMP_SYS(name))
  SeccompVerdict verdict = SeccompVerdict::kAllow;
  int err = 0;                   // for kErrno
  std::vector<SeccompArg> args;  // all must hold; empty: any arguments
};

// A list of rules in the order they were added. The helpers return *this so a
// policy reads as one block, one commented group after another.
class SeccompPolicy {
 public:
  SeccompPolicy& allow(int nr);
  SeccompPolicy& allow_arg_eq(int nr, unsigned arg, uint64_t value);
  SeccompPolicy& allow_arg_masked_eq(int nr, unsigned arg, uint64_t mask, uint64_t value);
  // Allowed only when every condition holds (at most one per argument).
  SeccompPolicy& allow_args(int nr, std::initializer_list<SeccompArg> args);
  // The call fails with `err` without reaching the kernel.
  SeccompPolicy& deny(int nr, int err);
  SeccompPolicy& deny_arg_eq(int nr, unsigned arg, uint64_t value, int err);
  // Never allowed. In normal mode this is what the default action does anyway;
  // stating it keeps the intent reviewable, makes validate() reject an allow
  // rule for the same call, and keeps the kill in debug mode, where the default
  // action only reports and exits.
  SeccompPolicy& forbid(int nr);

  const std::vector<SeccompRule>& rules() const { return rules_; }

  // True if some rule allows `nr` (for any arguments).
  bool has_allow_rule(int nr) const;

  // Checks the policy for mistakes libseccomp would not catch: a forbidden call
  // that is also allowed, an argument index above 5, two conditions on one
  // argument, a deny rule without an errno.
  bool validate(std::string* error) const;

  // Validates, compiles and loads the filter into the calling process and all
  // its threads. Sets NO_NEW_PRIVS. In debug mode the default action becomes
  // SECCOMP_RET_TRAP: a SIGSYS handler writes the offending call's number and
  // name to stderr and exits with kSandboxViolationExitStatus, and the kernel is
  // asked to log every non-allowed action (SECCOMP_FILTER_FLAG_LOG).
  bool install(bool debug, std::string* error) const;

 private:
  std::vector<SeccompRule> rules_;
};

// Exit status of a process that made a non-allowed system call in debug mode
// (128 + SIGSYS, as a shell would report a SIGSYS death).
inline constexpr int kSandboxViolationExitStatus = 159;

struct SandboxOptions {
  // Report the first non-allowed system call (number and name on stderr, exit
  // status kSandboxViolationExitStatus) instead of dying from SIGSYS.
  bool debug_log = false;
};

// Environment switch for debugging a sandbox kill: HUGINN_SECCOMP_DEBUG=1.
inline constexpr const char* kSeccompDebugEnv = "HUGINN_SECCOMP_DEBUG";
// debug_log = true when HUGINN_SECCOMP_DEBUG is "1".
SandboxOptions sandbox_options_from_env();

// The worker's allowlist: what the libevent event loop needs once the
// listeners are served (docs/SANDBOX.md). `self` is the worker's pid; it may
// only signal itself (abort()).
SeccompPolicy worker_policy(pid_t self);

// The privileged helper's allowlist: bpf(2) with every command, one
// NETLINK_ROUTE socket for XDP attach, its control socket, memory, exit.
SeccompPolicy privhelper_policy(pid_t self);

// Sets RLIMIT_NPROC to 0 and loads worker_policy(getpid()). Call it after
// privileges were dropped and every start-up step that opens files, resolves
// names or creates threads is done. Returns false with `*error` set; the
// caller must then exit, never run unsandboxed.
bool install_worker_sandbox(const SandboxOptions& opts, std::string* error);

// Same for the privileged helper: after the BPF objects are loaded, pinned and
// attached, before serving requests.
bool install_privhelper_sandbox(const SandboxOptions& opts, std::string* error);

}  // namespace huginn::sys
