#include "common/ratelimit/bucket_table.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace huginn::ratelimit {

namespace {

constexpr uint64_t kNsPerSec = 1000000000ULL;
// Attempts to claim an entry for a new key before giving up (each failure
// means another process changed the probe window at that moment).
constexpr int kClaimAttempts = 4;

uint64_t load(uint64_t& w) { return std::atomic_ref<uint64_t>(w).load(std::memory_order_acquire); }

bool cas(uint64_t& w, uint64_t& expected, uint64_t desired) {
  return std::atomic_ref<uint64_t>(w).compare_exchange_strong(expected, desired, std::memory_order_acq_rel,
                                                              std::memory_order_acquire);
}

uint64_t ceil_secs(uint64_t ns) { return (ns + kNsPerSec - 1) / kNsPerSec; }

uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

}  // namespace

BucketTable::BucketTable(Entry* entries, size_t count, uint64_t* evictions)
    : entries_(entries), mask_(count - 1), evictions_(evictions) {}

uint64_t BucketTable::evictions() const {
  return evictions_ ? std::atomic_ref<uint64_t>(*evictions_).load(std::memory_order_relaxed) : 0;
}

Decision BucketTable::acquire(uint64_t key, const Limit& limit, uint64_t now_ns) {
  const uint64_t rate = std::max<uint32_t>(limit.rate, 1);
  const uint64_t burst = std::max<uint32_t>(limit.burst, 1);
  const uint64_t t = std::max<uint64_t>(kNsPerSec / rate, 1);  // emission interval
  const uint64_t tau = t * burst;                              // burst tolerance
  const size_t home = static_cast<size_t>(key) & mask_;

  Decision d;
  d.limit = static_cast<uint32_t>(burst);
  Entry* e = nullptr;
  for (int attempt = 0; attempt < kClaimAttempts && !e; ++attempt) {
    Entry* free_slot = nullptr;
    uint64_t free_key = 0;
    Entry* oldest = nullptr;
    uint64_t oldest_key = 0, oldest_tat = std::numeric_limits<uint64_t>::max();
    for (size_t i = 0; i < kProbe; ++i) {
      Entry& c = entries_[(home + i) & mask_];
      const uint64_t k = load(c.key);
      if (k == key) {
        e = &c;
        break;
      }
      const uint64_t tat = load(c.tat);
      if (!free_slot && (k == 0 || tat <= now_ns)) {
        free_slot = &c;
        free_key = k;
      }
      if (tat < oldest_tat) {
        oldest = &c;
        oldest_key = k;
        oldest_tat = tat;
      }
    }
    if (e) break;
    Entry* victim = free_slot ? free_slot : oldest;
    uint64_t expected = free_slot ? free_key : oldest_key;
    if (cas(victim->key, expected, key)) {
      e = victim;
      if (!free_slot) {
        // An active key loses its state; the new key starts with a full
        // bucket unless someone used the entry in the meantime.
        d.evicted = true;
        if (evictions_) std::atomic_ref<uint64_t>(*evictions_).fetch_add(1, std::memory_order_relaxed);
        uint64_t seen = oldest_tat;
        cas(victim->tat, seen, 0);
      }
    } else if (expected == key) {
      e = victim;  // another process claimed it for the same key
    }
  }
  if (!e) {
    // The window changed under us kClaimAttempts times in a row: extreme
    // contention on one window. Fail open rather than spin.
    d.allowed = true;
    d.remaining = 0;
    return d;
  }

  uint64_t tat = load(e->tat);
  for (;;) {
    const uint64_t base = std::max(tat, now_ns);
    const uint64_t next = base + t;
    if (next - now_ns > tau) {
      d.allowed = false;
      d.remaining = 0;
      d.retry_after_s = std::max<uint64_t>(ceil_secs(next - tau - now_ns), 1);
      d.reset_s = std::max<uint64_t>(ceil_secs(base - now_ns), 1);
      return d;
    }
    if (cas(e->tat, tat, next)) {
      d.allowed = true;
      d.remaining = static_cast<uint32_t>((tau - (next - now_ns)) / t);
      d.reset_s = ceil_secs(next - now_ns);
      return d;
    }
  }
}

uint64_t siphash24(uint64_t k0, uint64_t k1, std::string_view data) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
  uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
  uint64_t v3 = 0x7465646279746573ULL ^ k1;
  auto round = [&] {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  };
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n - n % 8;
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t m = 0;
    for (int b = 7; b >= 0; --b) m = (m << 8) | p[i + static_cast<size_t>(b)];
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(n & 0xff) << 56;
  for (size_t i = whole; i < n; ++i) last |= static_cast<uint64_t>(p[i]) << (8 * (i - whole));
  v3 ^= last;
  round();
  round();
  v0 ^= last;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}

KeyBuilder& KeyBuilder::add(std::string_view part) {
  add(static_cast<uint64_t>(part.size()));
  buf_.append(part);
  return *this;
}

KeyBuilder& KeyBuilder::add(uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  buf_.append(b, sizeof b);
  return *this;
}

uint64_t KeyBuilder::hash(uint64_t seed) const {
  const uint64_t h = siphash24(seed, seed ^ 0x9e3779b97f4a7c15ULL, buf_);
  return h == 0 ? 1 : h;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace huginn::ratelimit
