// huginn-privhelper: spawned by the supervisor with its control channel on
// fd 3. Keeps CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON only, is not dumpable,
// dies with its parent, and serves the supervisor's requests (server.h).
//
// usage: huginn-privhelper --ctl-fd 3 [--log-level LEVEL] [--netns PATH]
// --netns joins that network namespace before the capabilities are dropped
// (setns needs CAP_SYS_ADMIN, which the helper does not keep); tests use it.
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/sys/log.h"
#include "common/sys/unique_fd.h"
#include "privhelper/caps.h"
#include "privhelper/server.h"

namespace {

void usage() {
  std::fprintf(stderr, "usage: huginn-privhelper --ctl-fd 3 [--log-level LEVEL] [--netns PATH]\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace huginn;
  int ctl_fd = -1;
  std::string netns;
  log::Options lo;
  lo.component = "privhelper";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--ctl-fd" && i + 1 < argc) {
      ctl_fd = std::atoi(argv[++i]);
    } else if (a == "--netns" && i + 1 < argc) {
      netns = argv[++i];
    } else if (a == "--log-level" && i + 1 < argc) {
      if (!log::parse_level(argv[++i], &lo.level)) {
        usage();
        return 1;
      }
    } else {
      usage();
      return 1;
    }
  }
  log::configure(lo);
  if (ctl_fd != 3) {
    usage();
    return 1;
  }
  // Die with the supervisor (spawn() set it before exec too; set it again in
  // case we were started some other way), and never leave a core behind.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) {
    HLOG_ERROR("the supervisor is gone");
    return 1;
  }
  if (!netns.empty()) {
    sys::UniqueFd ns(open(netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns || setns(ns.get(), CLONE_NEWNET) != 0) {
      HLOG_ERROR("joining network namespace %s: %s", netns.c_str(), std::strerror(errno));
      return 1;
    }
  }
  std::string err;
  if (!privhelper::restrict_capabilities(&err) || !privhelper::verify_capabilities(&err)) {
    HLOG_ERROR("refusing to run: %s", err.c_str());
    return 1;
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    HLOG_ERROR("prctl: %s", std::strerror(errno));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  return privhelper::Server(ctl_fd).run();
}
