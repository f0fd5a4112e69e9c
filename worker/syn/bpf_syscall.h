// The two bpf(2) commands a worker uses on its read-only map fds, through the
// raw syscall (the worker does not link libbpf). seccomp may restrict bpf(2)
// to exactly these commands (platform-facts §7: LOOKUP_ELEM = 1,
// OBJ_GET_INFO_BY_FD = 15).
#pragma once

#include <linux/bpf.h>

#include <cstdint>

namespace huginn::worker::syn {

// BPF_OBJ_GET_INFO_BY_FD for a map. Returns 0 or -errno.
int bpf_map_get_info(int fd, bpf_map_info* info);

// BPF_MAP_LOOKUP_ELEM. Returns 0, or -errno (-ENOENT when absent).
int bpf_map_lookup(int fd, const void* key, void* value);

// BPF_MAP_UPDATE_ELEM / BPF_MAP_DELETE_ELEM: not used by the worker; tests use
// them to prove that a read-only fd refuses writes. Return 0 or -errno.
int bpf_map_update(int fd, const void* key, const void* value, uint64_t flags);
int bpf_map_delete(int fd, const void* key);

}  // namespace huginn::worker::syn
