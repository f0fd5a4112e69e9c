// The host-wide state region: one shared-memory block created once by the
// supervisor for its whole lifetime (it survives reloads, so limits and the
// connection count hold across generations) and mapped read-write by every
// worker, which receives it with HOST_STATE right after LISTENERS together
// with its own slot number.
//
//   offset 0       header (64 bytes): magic, layout version, header bytes,
//                  slot count, bucket count, probe window, total bytes,
//                  hash seed (getrandom), eviction counter
//   offset 64      connection section: the host's active-connection counter
//                  (i64, own cache line), then one i64 per worker slot, each
//                  on its own cache line
//   kBucketOffset  rate-limit buckets (common/ratelimit/bucket_table.h)
//
// max_connections: a worker takes a connection with add(slot) and gives it
// back with remove(slot); both update its slot's count and the host counter.
// When the supervisor reaps a worker it calls reclaim(slot): the slot's
// count is subtracted from the host counter and zeroed, so a worker that
// crashed with open connections does not leak them, and the slot goes back
// to the free list (SlotAllocator) for the next worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/ratelimit/bucket_table.h"
#include "common/sys/shared_memory.h"
#include "common/sys/unique_fd.h"

namespace huginn::hoststate {

inline constexpr uint32_t kMagic = 0x54534e48;  // "HNST"
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr uint32_t kHeaderBytes = 64;
inline constexpr uint32_t kLineBytes = 64;
inline constexpr uint32_t kMaxSlots = 1024;
inline constexpr uint32_t kBuckets = 1u << 16;  // 1 MiB of buckets
inline constexpr size_t kGlobalOffset = kHeaderBytes;
inline constexpr size_t kSlotsOffset = kGlobalOffset + kLineBytes;
inline constexpr size_t kBucketOffset = kSlotsOffset + size_t{kMaxSlots} * kLineBytes;
inline constexpr size_t kRegionBytes = kBucketOffset + size_t{kBuckets} * sizeof(ratelimit::Entry);

struct Header {
  uint32_t magic;
  uint32_t layout;
  uint32_t header_bytes;
  uint32_t slots;
  uint32_t buckets;
  uint32_t probe;
  uint64_t total_bytes;
  uint64_t seed;
  uint64_t evictions;  // rate-limit entries of active keys taken over (atomic)
  uint8_t reserved[16];
};
static_assert(sizeof(Header) == kHeaderBytes);

// Pure: checks a mapped region's size and header (magic, layout version,
// every size). Empty string = usable, else what is wrong.
std::string validate(const void* mem, size_t size);

class Region {
 public:
  // Supervisor: a new zeroed region in a size-sealed memfd, with a random seed.
  static std::unique_ptr<Region> create(std::string* error);
  // Worker: maps the region received with HOST_STATE (layout from the
  // message) after checking seals, exact size and header.
  static std::unique_ptr<Region> attach(int fd, uint32_t layout, std::string* error);

  int fd() const { return fd_.get(); }  // creator only (invalid after attach)
  uint64_t seed() const;
  ratelimit::BucketTable buckets() const;
  uint64_t evictions() const;

  // One connection more for worker slot `slot`, unless the host already has
  // `max` (then nothing changes and false is returned). Exact: fetch_add on
  // the host counter, undone when it went over.
  bool add(uint32_t slot, uint32_t max);
  void remove(uint32_t slot);
  int64_t active() const;
  int64_t slot_count(uint32_t slot) const;
  // Supervisor, once the slot's worker has exited (nobody writes the slot):
  // subtracts its count from the host counter and zeroes it.
  void reclaim(uint32_t slot);

 private:
  int64_t* counter(size_t offset) const;
  Header* header() const;
  sys::UniqueFd fd_;
  sys::SharedMapping map_;
};

// The supervisor's free list of worker slots (lowest free slot first).
class SlotAllocator {
 public:
  explicit SlotAllocator(uint32_t slots = kMaxSlots);
  std::optional<uint32_t> take();
  void give(uint32_t slot);
  size_t available() const { return free_.size(); }

 private:
  std::vector<uint32_t> free_;  // descending: back() is the lowest
  std::vector<bool> used_;
};

}  // namespace huginn::hoststate
