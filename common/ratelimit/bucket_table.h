// Host-wide rate limiting: a fixed-size open-addressing table of token
// buckets over a block of memory that several processes may map at once
// (the host-state region, common/hoststate) or that a test allocates on the
// heap. No locks and no allocation: every entry is two 64-bit words updated
// with atomics (std::atomic_ref), so any number of workers can share it.
//
// Algorithm: GCRA (the "generic cell rate algorithm"), which is exactly a
// token bucket with refill `rate` per second and capacity `burst`, kept as
// one number per key: the theoretical arrival time (TAT, CLOCK_MONOTONIC
// nanoseconds). A request at `now` is allowed iff
//   max(TAT, now) + T - now <= burst * T        (T = 1 s / rate)
// and then TAT becomes max(TAT, now) + T (one CAS). An entry whose TAT is
// <= now holds a full bucket, which is the same as having no entry at all:
// such an entry is idle and may be taken over by another key.
//
// Keys are 64-bit keyed hashes (key_hash(); 0 means "empty"). A key lives in
// one of kProbe consecutive entries after its home index. When none of them
// holds the key, the first empty or idle entry is claimed with a CAS on the
// key word. When all kProbe entries hold other, active keys, the one
// closest to idle (smallest TAT) is evicted and counted (its key starts
// again with a full bucket next time), as nginx's limit_req evicts its least
// recently used state; a request is never allowed merely because the table
// is full.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace huginn::ratelimit {

struct Entry {
  uint64_t key;  // 0 = empty
  uint64_t tat;  // CLOCK_MONOTONIC ns; <= now = full bucket
};
static_assert(sizeof(Entry) == 16);

inline constexpr size_t kProbe = 16;

struct Limit {
  uint32_t rate = 1;   // tokens per second, >= 1
  uint32_t burst = 1;  // capacity, >= 1
};

struct Decision {
  bool allowed = false;
  uint32_t limit = 0;          // the bucket's capacity (burst)
  uint32_t remaining = 0;      // whole tokens left after this request
  uint64_t retry_after_s = 0;  // denied: seconds until one token is back (>= 1)
  uint64_t reset_s = 0;        // seconds until the bucket is full again (>= 1 when denied)
  bool evicted = false;        // an active entry of another key was taken over
};

// The table over `count` entries at `entries` (a power of two, >= kProbe,
// zero-filled before first use, 16-byte aligned). `evictions`, when set, is
// a shared counter incremented (relaxed) for every eviction of an active key.
class BucketTable {
 public:
  BucketTable(Entry* entries, size_t count, uint64_t* evictions = nullptr);

  // One request of `key` (non-zero; see key_hash) at `now_ns` (> 0).
  Decision acquire(uint64_t key, const Limit& limit, uint64_t now_ns);

  size_t size() const { return mask_ + 1; }
  uint64_t evictions() const;

 private:
  Entry* entries_;
  size_t mask_;
  uint64_t* evictions_;
};

// Heap memory for a BucketTable (tests; code paths without a shared region).
class HeapBuckets {
 public:
  explicit HeapBuckets(size_t count) : entries_(count, Entry{0, 0}) {}
  BucketTable table() { return BucketTable(entries_.data(), entries_.size(), &evictions_); }
  uint64_t evictions() const { return evictions_; }

 private:
  std::vector<Entry> entries_;
  uint64_t evictions_ = 0;
};

// SipHash-2-4 of `data` under the 128-bit key (k0, k1).
uint64_t siphash24(uint64_t k0, uint64_t k1, std::string_view data);

// Builds the bytes a bucket key is hashed from: each part is appended with
// its length first, so ("ab","c") and ("a","bc") never collide by
// construction.
class KeyBuilder {
 public:
  KeyBuilder& add(std::string_view part);
  KeyBuilder& add(uint64_t v);
  // Keyed hash of everything added (seed: the host-state region's random
  // seed); never 0.
  uint64_t hash(uint64_t seed) const;
  const std::string& bytes() const { return buf_; }

 private:
  std::string buf_;
};

// Current CLOCK_MONOTONIC time in nanoseconds (the same clock in every
// process of the host).
uint64_t monotonic_ns();

}  // namespace huginn::ratelimit
