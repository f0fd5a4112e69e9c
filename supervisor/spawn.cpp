#include "supervisor/spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

extern char** environ;

namespace huginn::supervisor {

bool Program::open(const std::string& path, Program* out, std::string* error) {
  int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    *error = path + ": " + std::strerror(errno);
    return false;
  }
  if (faccessat(fd, "", X_OK, AT_EMPTY_PATH) != 0) {
    *error = path + ": not executable: " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  out->path = path;
  out->fd.reset(fd);
  return true;
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

bool spawn(const SpawnRequest& req, Child* out, std::string* error) {
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> argv_s;
  argv_s.push_back(req.program->path);
  argv_s.insert(argv_s.end(), req.args.begin(), req.args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  // The environment: the supervisor's, with req.env's names replaced.
  std::vector<std::string> env_s;
  if (!req.env.empty()) {
    auto named_in_req = [&](const char* entry) {
      for (const auto& e : req.env) {
        const size_t eq = e.find('=');
        if (eq != std::string::npos && std::strncmp(entry, e.c_str(), eq + 1) == 0) return true;
      }
      return false;
    };
    for (char** e = environ; e != nullptr && *e != nullptr; ++e)
      if (!named_in_req(*e)) env_s.emplace_back(*e);
    env_s.insert(env_s.end(), req.env.begin(), req.env.end());
  }
  std::vector<char*> envp;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  char** const child_env = req.env.empty() ? environ : envp.data();
  const int nfds = static_cast<int>(req.fds.size());
  const int exec_fd = req.program->fd.get();
  const pid_t parent = getpid();
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  for (uint32_t c : req.cpus)
    if (c < CPU_SETSIZE) CPU_SET(c, &cpus);
  const bool pin = CPU_COUNT(&cpus) > 0;

  const pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE, SIGUSR1, SIGUSR2}) signal(s, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    // Best effort: the supervisor only asks for CPUs it may use itself.
    if (pin) sched_setaffinity(0, sizeof cpus, &cpus);
    // Move the descriptors out of the way first, then into place.
    constexpr int kHigh = 100;
    int moved[16];
    if (nfds > 16) _exit(127);
    for (int i = 0; i < nfds; ++i)
      if ((moved[i] = fcntl(req.fds[i], F_DUPFD_CLOEXEC, kHigh)) < 0) _exit(127);
    const int exec_moved = fcntl(exec_fd, F_DUPFD_CLOEXEC, kHigh);
    if (exec_moved < 0) _exit(127);
    for (int i = 0; i < nfds; ++i)
      if (dup2(moved[i], 3 + i) < 0) _exit(127);  // dup2 clears FD_CLOEXEC on the target
    const int exec_target = 3 + nfds;
    if (dup3(exec_moved, exec_target, O_CLOEXEC) < 0) _exit(127);
    syscall(SYS_close_range, exec_target + 1, ~0U, 0);
    syscall(SYS_execveat, exec_target, "", argv.data(), child_env, AT_EMPTY_PATH);
    _exit(127);
  }
  int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pfd < 0) {
    *error = std::string("pidfd_open: ") + std::strerror(errno);
    kill(pid, SIGKILL);
    return false;
  }
  out->pid = pid;
  out->pidfd.reset(pfd);
  return true;
}

}  // namespace huginn::supervisor
