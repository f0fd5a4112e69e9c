// The worker's view of syn_ring (bpf/syn_abi.h): the newest SYNs in a
// direct-mapped array that the XDP program writes and the worker reads
// through a read-only shared mapping, without a system call. A cache in front
// of the LRU maps: XdpSynSource looks there when the ring has nothing usable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/sys/shared_memory.h"

struct huginn_syn_slot;
struct huginn_syn_key_v4;
struct huginn_syn_key_v6;
struct huginn_syn_value_v4;
struct huginn_syn_value_v6;

namespace huginn::worker::syn {

// Seqlock read of slots[index] into *out: true only if the slot was written
// at least once, was not being written, and did not change while it was
// copied (the same even sequence number before and after the copy).
bool read_ring_slot(const huginn_syn_slot* slots, uint32_t index, huginn_syn_slot* out);

class SynRing {
 public:
  SynRing() = default;

  // Maps the ring whose (frozen) map `fd` the helper granted. Refuses a ring
  // that could be mapped writable, i.e. one that is not frozen: a worker
  // never holds a writable view of a map. `fd` can be closed afterwards.
  static std::optional<SynRing> attach(int fd, std::string* error);

  bool valid() const { return static_cast<bool>(map_); }

  // The record of the SYN with the LRU maps' `key`, if the ring holds it.
  // False: not there, or not readable now.
  bool find(const huginn_syn_key_v4& key, huginn_syn_value_v4* out) const;
  bool find(const huginn_syn_key_v6& key, huginn_syn_value_v6* out) const;

 private:
  const huginn_syn_slot* slots() const;
  sys::SharedMapping map_;
};

}  // namespace huginn::worker::syn
