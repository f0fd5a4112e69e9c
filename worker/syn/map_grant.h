// The worker's side of MAPS_GRANT: receives the one message the helper sends
// on the maps channel and checks every fd against its manifest entry before
// anything uses it (DESIGN.md): opened read-only (O_ACCMODE == O_RDONLY) and
// BPF_OBJ_GET_INFO_BY_FD agreeing with the entry and with bpf/syn_abi.h
// (type LRU_HASH, key and value sizes of the ABI, max entries, map id).
// The ring (kSynRing) is the one map fd that is not read-only, because Linux
// maps MAP_SHARED only through descriptors opened for writing: it must be
// an mmap-able array of the ABI's layout that refuses a writable mapping
// (frozen); the worker maps it read-only and keeps no descriptor of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ipc/helper_protocol.h"
#include "common/sys/unique_fd.h"
#include "worker/syn/syn_ring.h"

namespace huginn::worker::syn {

struct GrantedMaps {
  uint32_t worker_id = 0;
  uint32_t generation = 0;
  sys::UniqueFd v4;  // read-only fd of syn_v4, or invalid
  sys::UniqueFd v6;  // read-only fd of syn_v6, or invalid
  SynRing ring;      // read-only mapping of syn_ring, or invalid
};

// Checks a decoded MAPS_GRANT and its fds (fds[i] belongs to grant.maps[i]).
// `expected_worker_id` must match. Returns nullopt with `*error` set.
std::optional<GrantedMaps> validate_grant(const ipc::helper::MapsGrant& grant, std::vector<sys::UniqueFd> fds,
                                          uint32_t expected_worker_id, std::string* error);

// Reads one message from the maps channel (blocking or not, as the fd is) and
// validates it. A closed channel, another message type or an invalid grant is
// an error. kAgain is reported as an error "no grant yet" with `*again` set.
std::optional<GrantedMaps> receive_grant(int channel, uint32_t expected_worker_id, std::string* error,
                                         bool* again = nullptr);

}  // namespace huginn::worker::syn
