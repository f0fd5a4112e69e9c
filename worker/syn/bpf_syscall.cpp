#include "worker/syn/bpf_syscall.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace huginn::worker::syn {
namespace {

int sys_bpf(int cmd, bpf_attr* attr) {
  const long rc = syscall(__NR_bpf, cmd, attr, sizeof *attr);
  return rc < 0 ? -errno : static_cast<int>(rc);
}

uint64_t ptr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

}  // namespace

int bpf_map_get_info(int fd, bpf_map_info* info) {
  std::memset(info, 0, sizeof *info);
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.info.bpf_fd = static_cast<uint32_t>(fd);
  attr.info.info_len = sizeof *info;
  attr.info.info = ptr(info);
  return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
}

int bpf_map_lookup(int fd, const void* key, void* value) {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.map_fd = static_cast<uint32_t>(fd);
  attr.key = ptr(key);
  attr.value = ptr(value);
  return sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr);
}

int bpf_map_update(int fd, const void* key, const void* value, uint64_t flags) {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.map_fd = static_cast<uint32_t>(fd);
  attr.key = ptr(key);
  attr.value = ptr(value);
  attr.flags = flags;
  return sys_bpf(BPF_MAP_UPDATE_ELEM, &attr);
}

int bpf_map_delete(int fd, const void* key) {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.map_fd = static_cast<uint32_t>(fd);
  attr.key = ptr(key);
  return sys_bpf(BPF_MAP_DELETE_ELEM, &attr);
}

}  // namespace huginn::worker::syn
