// Two network namespaces joined by a veth pair, named per test process so that
// concurrent runs do not collide, removed on destruction (the veth goes with
// them). Addresses exist only inside the namespaces. Also: running code with
// the calling thread inside a namespace, and a unique bpffs pin directory.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/sys/unique_fd.h"

namespace huginn::testing {

inline int sh(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

class NetnsPair {
 public:
  // `tag` distinguishes several pairs of one process (0-9).
  explicit NetnsPair(int tag) {
    const std::string base = "hgn-" + std::to_string(getpid()) + "-" + std::to_string(tag);
    client_ = base + "-c";
    server_ = base + "-s";
    subnet_ = 200 + tag;
    ok_ = sh("ip netns add " + client_) == 0 && sh("ip netns add " + server_) == 0 &&
          sh("ip link add " + client_if() + " netns " + client_ + " type veth peer name " + server_if() +
             " netns " + server_) == 0 &&
          sh("ip -n " + client_ + " addr add " + client_v4() + "/24 dev " + client_if()) == 0 &&
          sh("ip -n " + server_ + " addr add " + server_v4() + "/24 dev " + server_if()) == 0 &&
          sh("ip -n " + client_ + " addr add " + client_v6() + "/64 dev " + client_if() + " nodad") == 0 &&
          sh("ip -n " + server_ + " addr add " + server_v6() + "/64 dev " + server_if() + " nodad") == 0 &&
          sh("ip -n " + client_ + " link set " + client_if() + " up") == 0 &&
          sh("ip -n " + server_ + " link set " + server_if() + " up") == 0 &&
          sh("ip -n " + client_ + " link set lo up") == 0 && sh("ip -n " + server_ + " link set lo up") == 0;
  }
  ~NetnsPair() {
    sh("ip netns del " + client_);
    sh("ip netns del " + server_);
  }
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  bool ok() const { return ok_; }
  std::string client_path() const { return "/var/run/netns/" + client_; }
  std::string server_path() const { return "/var/run/netns/" + server_; }
  const std::string& server_name() const { return server_; }
  std::string client_if() const { return "hgc0"; }
  std::string server_if() const { return "hgs0"; }
  std::string client_v4() const { return "10.77." + std::to_string(subnet_) + ".1"; }
  std::string server_v4() const { return "10.77." + std::to_string(subnet_) + ".2"; }
  std::string client_v6() const { return "fd00:77:" + std::to_string(subnet_) + "::1"; }
  std::string server_v6() const { return "fd00:77:" + std::to_string(subnet_) + "::2"; }

 private:
  std::string client_, server_;
  int subnet_ = 0;
  bool ok_ = false;
};

// Runs `fn` with the calling thread in the network namespace at `path`
// (sockets created there stay in it), then returns to the original one.
template <typename Fn>
bool in_netns(const std::string& path, Fn fn) {
  sys::UniqueFd self(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  sys::UniqueFd target(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!self || !target || setns(target.get(), CLONE_NEWNET) != 0) return false;
  fn();
  return setns(self.get(), CLONE_NEWNET) == 0;
}

// A fresh pin directory on a bpf file system of the test's own: a bpffs
// instance mounted on a temp directory in the host's mount namespace (the
// helper joins only a network namespace, so it sees it), unmounted on
// destruction. The host's /sys/fs/bpf is neither used nor needed (not every
// machine mounts it). Without the right to mount (not root) the path is
// under /sys/fs/bpf as before; such tests skip anyway.
class PinDir {
 public:
  explicit PinDir(int tag) {
    char tmpl[] = "/tmp/hgn-bpffs-XXXXXX";
    if (geteuid() == 0 && mkdtemp(tmpl) != nullptr) {
      if (mount("bpf", tmpl, "bpf", 0, "mode=0700") == 0) {
        mount_ = tmpl;
      } else {
        rmdir(tmpl);
      }
    }
    const std::string leaf = "hgn-test-" + std::to_string(getpid()) + "-" + std::to_string(tag);
    path_ = (mount_.empty() ? std::string("/sys/fs/bpf") : mount_) + "/" + leaf;
  }
  ~PinDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (!mount_.empty()) {
      umount2(mount_.c_str(), MNT_DETACH);
      rmdir(mount_.c_str());
    }
  }
  PinDir(const PinDir&) = delete;
  PinDir& operator=(const PinDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string mount_;  // our bpffs mount point, if any
  std::string path_;
};

}  // namespace huginn::testing
