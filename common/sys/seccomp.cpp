#include "common/sys/seccomp.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/futex.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "common/sys/c_handle.h"
#include "common/sys/sanitizer.h"

// AddressSanitizer builds (HUGINN_SANITIZE=address,undefined; see
// docs/ROBUSTNESS.md). AddressSanitizer's
// __asan_handle_no_return(), run before every noreturn call (_exit, abort, a
// C++ throw), reads the alternate signal stack with sigaltstack(NULL, &old);
// UBSan's vptr check probes memory by writing it into a fresh pipe;
// LeakSanitizer's check at exit() stops the world with clone and ptrace,
// which the filter kills. Release builds are not affected.
#if HUGINN_ADDRESS_SANITIZER
namespace {
std::atomic<bool> g_sandboxed{false};
}  // namespace
// LeakSanitizer's hook: no leak check in a sandboxed process (it would kill it).
extern "C" int __lsan_is_turned_off() { return g_sandboxed.load() ? 1 : 0; }
#endif

namespace huginn::sys {

namespace {

// The sanitizer runtime's needs inside the filter (nothing in release builds).
void allow_sanitizer_runtime([[maybe_unused]] SeccompPolicy& p) {
#if HUGINN_ADDRESS_SANITIZER
  p.allow_arg_eq(SCMP_SYS(sigaltstack), 0, 0);
  p.allow_arg_eq(SCMP_SYS(pipe2), 1, 0);
#endif
}

// Marks this process as sandboxed when `installed` (see __lsan_is_turned_off).
bool note_sandboxed(bool installed) {
#if HUGINN_ADDRESS_SANITIZER
  if (installed) g_sandboxed.store(true);
#endif
  return installed;
}

using FilterCtx = CHandle<void, seccomp_release>;

constexpr uint64_t kAll = ~uint64_t{0};
// socket(2) type flags that do not change what kind of socket is created.
constexpr uint64_t kSockTypeMask = ~static_cast<uint64_t>(SOCK_NONBLOCK | SOCK_CLOEXEC);
// futex(2) op without the flags that only select private/clock variants.
constexpr uint64_t kFutexCmdMask = ~static_cast<uint64_t>(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);

std::string syscall_name(int nr) {
  char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  std::string s = n ? std::string(n) : std::string("#").append(std::to_string(nr));
  std::free(n);
  return s;
}

// --- debug mode: SIGSYS reporter -------------------------------------------
//
// The handler may only use async-signal-safe calls that the filter allows
// (write, getpid, exit_group), so the names are resolved before the filter is
// loaded, into a fixed table.
constexpr int kNameSlots = 512;
constexpr size_t kNameLen = 28;
char g_names[kNameSlots][kNameLen];

void fill_name_table() {
  for (int nr = 0; nr < kNameSlots; ++nr) {
    char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (n) std::strncpy(g_names[nr], n, kNameLen - 1);
    std::free(n);
  }
}

struct Out {
  char buf[200];
  size_t len = 0;
  void str(const char* s) {
    while (*s && len < sizeof buf) buf[len++] = *s++;
  }
  void num(long v) {
    char tmp[24];
    size_t n = 0;
    unsigned long u = v < 0 ? 0UL - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
    do {
      tmp[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u && n < sizeof tmp);
    if (v < 0) tmp[n++] = '-';
    while (n && len < sizeof buf) buf[len++] = tmp[--n];
  }
};

void sigsys_reporter(int, siginfo_t* si, void*) {
  const int nr = si->si_syscall;
  Out o;
  o.str("huginn: seccomp: pid ");
  o.num(static_cast<long>(getpid()));
  o.str(": system call ");
  o.num(nr);
  if (nr >= 0 && nr < kNameSlots && g_names[nr][0]) {
    o.str(" (");
    o.str(g_names[nr]);
    o.str(")");
  }
  o.str(" is not in the allowlist; exiting with status ");
  o.num(kSandboxViolationExitStatus);
  o.str(" (HUGINN_SECCOMP_DEBUG)\n");
  ssize_t rc = write(STDERR_FILENO, o.buf, o.len);
  (void)rc;
  _exit(kSandboxViolationExitStatus);
}

bool install_reporter(std::string* error) {
  fill_name_table();
  struct sigaction sa {};
  sa.sa_sigaction = sigsys_reporter;
  sa.sa_flags = SA_SIGINFO;
  sigfillset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) {
    *error = std::string("sigaction(SIGSYS): ") + std::strerror(errno);
    return false;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGSYS);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  return true;
}

bool set_attr(scmp_filter_ctx ctx, scmp_filter_attr attr, uint32_t value, const char* what,
              std::string* error) {
  const int rc = seccomp_attr_set(ctx, attr, value);
  if (rc != 0) {
    *error = std::string("seccomp_attr_set(") + what + "): " + std::strerror(-rc);
    return false;
  }
  return true;
}

}  // namespace

// --- SeccompPolicy -----------------------------------------------------------

SeccompPolicy& SeccompPolicy::allow(int nr) {
  rules_.push_back({nr, SeccompVerdict::kAllow, 0, {}});
  return *this;
}

SeccompPolicy& SeccompPolicy::allow_arg_eq(int nr, unsigned arg, uint64_t value) {
  rules_.push_back({nr, SeccompVerdict::kAllow, 0, {{arg, kAll, value}}});
  return *this;
}

SeccompPolicy& SeccompPolicy::allow_arg_masked_eq(int nr, unsigned arg, uint64_t mask, uint64_t value) {
  rules_.push_back({nr, SeccompVerdict::kAllow, 0, {{arg, mask, value}}});
  return *this;
}

SeccompPolicy& SeccompPolicy::allow_args(int nr, std::initializer_list<SeccompArg> args) {
  rules_.push_back({nr, SeccompVerdict::kAllow, 0, std::vector<SeccompArg>(args)});
  return *this;
}

SeccompPolicy& SeccompPolicy::deny(int nr, int err) {
  rules_.push_back({nr, SeccompVerdict::kErrno, err, {}});
  return *this;
}

SeccompPolicy& SeccompPolicy::deny_arg_eq(int nr, unsigned arg, uint64_t value, int err) {
  rules_.push_back({nr, SeccompVerdict::kErrno, err, {{arg, kAll, value}}});
  return *this;
}

SeccompPolicy& SeccompPolicy::forbid(int nr) {
  rules_.push_back({nr, SeccompVerdict::kKill, 0, {}});
  return *this;
}

bool SeccompPolicy::has_allow_rule(int nr) const {
  for (const auto& r : rules_)
    if (r.nr == nr && r.verdict == SeccompVerdict::kAllow) return true;
  return false;
}

bool SeccompPolicy::validate(std::string* error) const {
  for (const auto& r : rules_) {
    const std::string name = syscall_name(r.nr);
    if (r.verdict == SeccompVerdict::kKill && has_allow_rule(r.nr)) {
      *error = name + " is both forbidden and allowed";
      return false;
    }
    if (r.verdict == SeccompVerdict::kErrno && (r.err <= 0 || r.err > 4095)) {
      *error = name + ": deny rule with errno " + std::to_string(r.err);
      return false;
    }
    if (r.verdict == SeccompVerdict::kKill && !r.args.empty()) {
      *error = name + ": forbid() takes no argument conditions";
      return false;
    }
    std::set<unsigned> seen;
    for (const auto& a : r.args) {
      if (a.index > 5) {
        *error = name + ": argument index " + std::to_string(a.index) + " out of range";
        return false;
      }
      if (!seen.insert(a.index).second) {
        *error = name + ": two conditions on argument " + std::to_string(a.index);
        return false;
      }
    }
  }
  return true;
}

bool SeccompPolicy::install(bool debug, std::string* error) const {
  if (!validate(error)) return false;
  const uint32_t default_action = debug ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS;
  FilterCtx ctx(seccomp_init(default_action));
  if (!ctx) {
    *error = "seccomp_init failed";
    return false;
  }
  // seccomp_init() accepts the native architecture only; every other one
  // (i386 via int 0x80, x32) kills the process.
  if (!set_attr(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS, "ACT_BADARCH", error))
    return false;
  if (!set_attr(ctx.get(), SCMP_FLTATR_CTL_NNP, 1, "CTL_NNP", error)) return false;
  // One filter for every thread, or failure: never a half-sandboxed process.
  if (!set_attr(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1, "CTL_TSYNC", error)) return false;
  // Debug mode: the kernel also logs errno denials (open → EACCES) to the audit log.
  if (debug && !set_attr(ctx.get(), SCMP_FLTATR_CTL_LOG, 1, "CTL_LOG", error)) return false;

  for (const auto& r : rules_) {
    uint32_t action = SCMP_ACT_ALLOW;
    switch (r.verdict) {
      case SeccompVerdict::kAllow:
        action = SCMP_ACT_ALLOW;
        break;
      case SeccompVerdict::kErrno:
        action = SCMP_ACT_ERRNO(static_cast<uint32_t>(r.err));
        break;
      case SeccompVerdict::kKill:
        if (!debug) continue;  // the default action already kills
        action = SCMP_ACT_KILL_PROCESS;
        break;
    }
    std::vector<scmp_arg_cmp> cmps;
    for (const auto& a : r.args) {
      if (a.mask == kAll)
        cmps.push_back({a.index, SCMP_CMP_EQ, a.value, 0});
      else
        cmps.push_back({a.index, SCMP_CMP_MASKED_EQ, a.mask, a.value});
    }
    const int rc = seccomp_rule_add_array(ctx.get(), action, r.nr, static_cast<unsigned>(cmps.size()),
                                          cmps.empty() ? nullptr : cmps.data());
    if (rc != 0) {
      *error = "seccomp rule for " + syscall_name(r.nr) + ": " + std::strerror(-rc);
      return false;
    }
  }
  if (debug && !install_reporter(error)) return false;
  const int rc = seccomp_load(ctx.get());
  if (rc != 0) {
    *error = std::string("seccomp_load: ") + std::strerror(-rc);
    return false;
  }
  return true;
}

// --- policies ----------------------------------------------------------------

SandboxOptions sandbox_options_from_env() {
  SandboxOptions o;
  const char* v = std::getenv(kSeccompDebugEnv);
  o.debug_log = v && std::strcmp(v, "1") == 0;
  return o;
}

SeccompPolicy worker_policy(pid_t self) {
  SeccompPolicy p;
  // Event loop: libevent's epoll backend (epoll_pwait where libc has no
  // epoll_wait). The epoll instance itself exists before the sandbox.
  p.allow(SCMP_SYS(epoll_wait)).allow(SCMP_SYS(epoll_pwait)).allow(SCMP_SYS(epoll_ctl));

  // Client side: accept4 on the inherited listeners, peer/local addresses for
  // the forwarded headers and the fingerprint keys.
  p.allow(SCMP_SYS(accept4)).allow(SCMP_SYS(getsockname)).allow(SCMP_SYS(getpeername));

  // Upstream side: TCP over IPv4/IPv6 only (protocol 0 or IPPROTO_TCP, so no
  // MPTCP), then a non-blocking connect. Every other family and type (raw,
  // packet, netlink, UDP) falls to the default action and kills.
  for (uint64_t family : {AF_INET, AF_INET6})
    for (uint64_t proto : {0, static_cast<int>(IPPROTO_TCP)})
      p.allow_args(SCMP_SYS(socket), {{0, kAll, family}, {1, kSockTypeMask, SOCK_STREAM}, {2, kAll, proto}});
  p.allow(SCMP_SYS(connect));

  // Data transfer on sockets and pipes: libevent's evbuffers use readv/writev,
  // OpenSSL's socket BIO read/write, the control channel sendmsg/recvmsg
  // (SEQPACKET, fds arrive with SCM_RIGHTS); send/recv are sendto/recvfrom.
  p.allow(SCMP_SYS(read)).allow(SCMP_SYS(write)).allow(SCMP_SYS(readv)).allow(SCMP_SYS(writev));
  p.allow(SCMP_SYS(recvfrom)).allow(SCMP_SYS(sendto)).allow(SCMP_SYS(recvmsg)).allow(SCMP_SYS(sendmsg));
  // libevent sizes its reads with FIONREAD; no other ioctl (no TCGETS, no SIOC*).
  p.allow_arg_eq(SCMP_SYS(ioctl), 1, FIONREAD);
  p.allow(SCMP_SYS(close)).allow(SCMP_SYS(shutdown));

  // Socket options: all reads (SO_ERROR after connect, TCP_SAVED_SYN, TCP_INFO);
  // writes only for the options the worker sets on client and upstream
  // sockets. SO_ATTACH_FILTER, TCP_ULP, SO_MARK and the rest kill.
  p.allow(SCMP_SYS(getsockopt));
  p.allow_args(SCMP_SYS(setsockopt), {{1, kAll, IPPROTO_TCP}, {2, kAll, TCP_NODELAY}});
  p.allow_args(SCMP_SYS(setsockopt), {{1, kAll, SOL_SOCKET}, {2, kAll, SO_KEEPALIVE}});
  for (uint64_t opt : {TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT})
    p.allow_args(SCMP_SYS(setsockopt), {{1, kAll, IPPROTO_TCP}, {2, kAll, opt}});

  // fd flags: O_NONBLOCK and FD_CLOEXEC (evutil_make_socket_nonblocking /
  // _closeonexec). No F_SETOWN/F_SETSIG/F_DUPFD/locks.
  for (uint64_t cmd : {F_GETFL, F_SETFL, F_GETFD, F_SETFD}) p.allow_arg_eq(SCMP_SYS(fcntl), 1, cmd);

  // TLS material (TLS_MATERIAL, any time after start-up): a sealed memfd from
  // the supervisor, checked with F_GET_SEALS and fstat (glibc's fstat is
  // newfstatat(fd, "", AT_EMPTY_PATH); only that flag value is allowed) and
  // read with pread (sys::read_sealed_memfd).
  p.allow_arg_eq(SCMP_SYS(fcntl), 1, F_GET_SEALS);
  p.allow(SCMP_SYS(fstat)).allow_arg_eq(SCMP_SYS(newfstatat), 3, AT_EMPTY_PATH);
  p.allow(SCMP_SYS(pread64));

  // Memory: malloc (brk, mmap for large chunks, mremap for realloc, madvise
  // when trimming). Never executable mappings: PROT_EXEC kills.
  p.allow(SCMP_SYS(brk)).allow(SCMP_SYS(munmap)).allow(SCMP_SYS(mremap)).allow(SCMP_SYS(madvise));
  p.allow_arg_masked_eq(SCMP_SYS(mmap), 2, PROT_EXEC, 0);
  p.allow_arg_masked_eq(SCMP_SYS(mprotect), 2, PROT_EXEC, 0);

  // Time: normally served by the vDSO; these are the fallbacks when the
  // clock source has no vDSO support.
  p.allow(SCMP_SYS(clock_gettime)).allow(SCMP_SYS(gettimeofday));

  // Signals: libevent's SIGTERM handler (runs, returns, and its handler is
  // restored when the event_base is freed), abort() (masks signals and sends
  // SIGABRT to this process only: gettid + tgkill(self)), interrupted-call
  // restarts.
  p.allow(SCMP_SYS(rt_sigreturn)).allow(SCMP_SYS(rt_sigprocmask)).allow(SCMP_SYS(rt_sigaction));
  p.allow(SCMP_SYS(restart_syscall)).allow(SCMP_SYS(gettid));
  p.allow_arg_eq(SCMP_SYS(tgkill), 0, static_cast<uint64_t>(self));

  // Locks: futex wait/wake only (std::mutex, condition variables); no requeue
  // or PI operations.
  for (uint64_t op : {FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET})
    p.allow_arg_masked_eq(SCMP_SYS(futex), 1, kFutexCmdMask, op);

  // Identity for log lines, randomness for OpenSSL and hash seeds.
  p.allow(SCMP_SYS(getpid)).allow(SCMP_SYS(getuid)).allow(SCMP_SYS(getrandom));

  // TCP fingerprints: lookups in the read-only SYN map whose fd the helper
  // passed, and its id. Updates, deletes, map/program creation kill.
  p.allow_arg_eq(SCMP_SYS(bpf), 0, BPF_MAP_LOOKUP_ELEM);
  p.allow_arg_eq(SCMP_SYS(bpf), 0, BPF_OBJ_GET_INFO_BY_FD);

  // Leaving.
  p.allow(SCMP_SYS(exit_group)).allow(SCMP_SYS(exit));

  // Fail soft: a library that tries to read a file (OpenSSL config, locale,
  // /etc/hosts) or reach a local daemon (nscd, syslog) gets an error it
  // already handles instead of killing the worker.
  p.deny(SCMP_SYS(open), EACCES).deny(SCMP_SYS(openat), EACCES);
  p.deny_arg_eq(SCMP_SYS(socket), 0, AF_UNIX, EACCES);

  allow_sanitizer_runtime(p);

  // Never, not even in debug mode.
  p.forbid(SCMP_SYS(execve)).forbid(SCMP_SYS(execveat)).forbid(SCMP_SYS(ptrace)).forbid(SCMP_SYS(mount));
  return p;
}

SeccompPolicy privhelper_policy(pid_t self) {
  SeccompPolicy p;
  // Its reason to exist: every bpf(2) command (map updates for watched ports,
  // BPF_OBJ_GET / BPF_MAP_GET_FD_BY_ID for read-only grants, link and program
  // management). Loading the object happens before the sandbox.
  p.allow(SCMP_SYS(bpf));

  // XDP attach/detach/query over rtnetlink (libbpf's bpf_xdp_*): one
  // NETLINK_ROUTE socket, its NETLINK_EXT_ACK / GET_STRICT_CHK options, bind,
  // getsockname (libbpf reads its port id), send and receive.
  p.allow_args(SCMP_SYS(socket),
               {{0, kAll, AF_NETLINK}, {1, kSockTypeMask, SOCK_RAW}, {2, kAll, NETLINK_ROUTE}});
  p.allow_arg_eq(SCMP_SYS(setsockopt), 1, SOL_NETLINK);
  p.allow(SCMP_SYS(bind)).allow(SCMP_SYS(getsockname));
  // A worker's maps channel is checked (SO_TYPE, SO_DOMAIN) before a grant.
  p.allow(SCMP_SYS(getsockopt));
  // SHUTDOWN with detach removes the pinned link and maps and their directory.
  p.allow(SCMP_SYS(unlink)).allow(SCMP_SYS(unlinkat)).allow(SCMP_SYS(rmdir));

  // Messages: netlink traffic and the SEQPACKET channel to the supervisor,
  // which carries the granted map fds (SCM_RIGHTS).
  p.allow(SCMP_SYS(sendto)).allow(SCMP_SYS(recvfrom)).allow(SCMP_SYS(sendmsg)).allow(SCMP_SYS(recvmsg));
  p.allow(SCMP_SYS(read)).allow(SCMP_SYS(write)).allow(SCMP_SYS(close));

  // Waiting for requests: poll or epoll, whichever loop the helper runs.
  p.allow(SCMP_SYS(poll)).allow(SCMP_SYS(ppoll));
  p.allow(SCMP_SYS(epoll_wait)).allow(SCMP_SYS(epoll_pwait)).allow(SCMP_SYS(epoll_ctl));
  for (uint64_t cmd : {F_GETFL, F_SETFL, F_GETFD, F_SETFD}) p.allow_arg_eq(SCMP_SYS(fcntl), 1, cmd);

  // Memory without executable mappings, time fallbacks, signals, locks,
  // randomness, identity, exit: as for the worker.
  p.allow(SCMP_SYS(brk)).allow(SCMP_SYS(munmap)).allow(SCMP_SYS(mremap)).allow(SCMP_SYS(madvise));
  p.allow_arg_masked_eq(SCMP_SYS(mmap), 2, PROT_EXEC, 0);
  p.allow_arg_masked_eq(SCMP_SYS(mprotect), 2, PROT_EXEC, 0);
  p.allow(SCMP_SYS(clock_gettime)).allow(SCMP_SYS(gettimeofday));
  p.allow(SCMP_SYS(rt_sigreturn)).allow(SCMP_SYS(rt_sigprocmask)).allow(SCMP_SYS(rt_sigaction));
  p.allow(SCMP_SYS(restart_syscall)).allow(SCMP_SYS(gettid));
  p.allow_arg_eq(SCMP_SYS(tgkill), 0, static_cast<uint64_t>(self));
  for (uint64_t op : {FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET})
    p.allow_arg_masked_eq(SCMP_SYS(futex), 1, kFutexCmdMask, op);
  p.allow(SCMP_SYS(getpid)).allow(SCMP_SYS(getuid)).allow(SCMP_SYS(getrandom));
  p.allow(SCMP_SYS(exit_group)).allow(SCMP_SYS(exit));

  // Fail soft for files and local daemons, as for the worker. The sandbox is
  // entered after the first successful attach: pins already exist, and a
  // stale-link scan of the pin directory simply finds nothing to do.
  p.deny(SCMP_SYS(open), EACCES).deny(SCMP_SYS(openat), EACCES);
  p.deny_arg_eq(SCMP_SYS(socket), 0, AF_UNIX, EACCES);

  allow_sanitizer_runtime(p);

  // Never.
  p.forbid(SCMP_SYS(execve)).forbid(SCMP_SYS(execveat)).forbid(SCMP_SYS(ptrace)).forbid(SCMP_SYS(mount));
  return p;
}

bool install_worker_sandbox(const SandboxOptions& opts, std::string* error) {
  // No new processes even if a clone() slipped through (the filter kills
  // clone/fork anyway; this is the second fence, as in OpenSSH).
  const rlimit none{0, 0};
  if (setrlimit(RLIMIT_NPROC, &none) != 0) {
    *error = std::string("setrlimit(RLIMIT_NPROC): ") + std::strerror(errno);
    return false;
  }
  return note_sandboxed(worker_policy(getpid()).install(opts.debug_log, error));
}

bool install_privhelper_sandbox(const SandboxOptions& opts, std::string* error) {
  return note_sandboxed(privhelper_policy(getpid()).install(opts.debug_log, error));
}

}  // namespace huginn::sys
