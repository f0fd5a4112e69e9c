// fork + exec of a child program with a fixed descriptor layout.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/sys/unique_fd.h"

namespace huginn::supervisor {

// The executable, opened O_PATH once at start-up and executed through the fd
// (execveat), so that a package upgrade cannot mix binary versions mid-run.
struct Program {
  std::string path;
  sys::UniqueFd fd;
  static bool open(const std::string& path, Program* out, std::string* error);
};

struct SpawnRequest {
  const Program* program = nullptr;
  std::vector<std::string> args;  // argv[1..]
  // Descriptors the child receives as fd 3, 4, ... in this order; every other
  // descriptor except 0-2 is closed in the child.
  std::vector<int> fds;
  // CPUs the child may run on (sched_setaffinity before exec); empty: the
  // supervisor's own. Numbers at or above CPU_SETSIZE are ignored.
  std::vector<uint32_t> cpus;
  // "NAME=value" entries for the child's environment, each replacing the
  // supervisor's NAME if it has one; everything else is inherited.
  std::vector<std::string> env;
};

struct Child {
  pid_t pid = -1;
  sys::UniqueFd pidfd;  // readable when the child exits
};

// The child gets PR_SET_PDEATHSIG(SIGKILL), its own process group, an empty
// signal mask and default dispositions.
bool spawn(const SpawnRequest& req, Child* out, std::string* error);

// Directory of the running executable (readlink /proc/self/exe).
std::string self_dir();

}  // namespace huginn::supervisor
