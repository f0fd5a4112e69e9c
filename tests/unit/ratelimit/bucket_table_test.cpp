#include "common/ratelimit/bucket_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace huginn::ratelimit {
namespace {

constexpr uint64_t kSec = 1000000000ULL;
constexpr uint64_t kT0 = 1000 * kSec;  // any non-zero monotonic time

TEST(BucketTable, BurstThenDeny) {
  HeapBuckets mem(1024);
  BucketTable t = mem.table();
  const Limit lim{10, 5};
  for (uint32_t i = 0; i < 5; ++i) {
    auto d = t.acquire(42, lim, kT0);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 5u);
    EXPECT_EQ(d.remaining, 4 - i);
  }
  auto d = t.acquire(42, lim, kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(d.retry_after_s, 1u);  // 100 ms until the next token, rounded up
  EXPECT_EQ(d.reset_s, 1u);        // 500 ms until full
}

TEST(BucketTable, RefillsAtTheRate) {
  HeapBuckets mem(1024);
  BucketTable t = mem.table();
  const Limit lim{10, 5};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(t.acquire(7, lim, kT0).allowed);
  ASSERT_FALSE(t.acquire(7, lim, kT0).allowed);
  // 99 ms later: still no token; 100 ms: exactly one.
  EXPECT_FALSE(t.acquire(7, lim, kT0 + 99 * 1000000ULL).allowed);
  EXPECT_TRUE(t.acquire(7, lim, kT0 + 100 * 1000000ULL).allowed);
  EXPECT_FALSE(t.acquire(7, lim, kT0 + 100 * 1000000ULL).allowed);
  // After 10 s idle the bucket is full again, not fuller.
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += t.acquire(7, lim, kT0 + 10 * kSec).allowed ? 1 : 0;
  EXPECT_EQ(allowed, 5);
}

TEST(BucketTable, OverTimeBurstPlusRateTimesElapsed) {
  HeapBuckets mem(1024);
  BucketTable t = mem.table();
  const Limit lim{20, 20};
  int allowed = 0;
  // A request every millisecond for 3 s.
  for (uint64_t ms = 0; ms <= 3000; ++ms) allowed += t.acquire(9, lim, kT0 + ms * 1000000ULL).allowed ? 1 : 0;
  EXPECT_EQ(allowed, 20 + 3 * 20);
}

TEST(BucketTable, RetryAfterIsTheWaitForOneToken) {
  HeapBuckets mem(1024);
  BucketTable t = mem.table();
  const Limit lim{1, 3};  // one token per second
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t.acquire(5, lim, kT0).allowed);
  auto d = t.acquire(5, lim, kT0 + kSec / 4);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1u);  // 0.75 s → 1
  EXPECT_EQ(d.reset_s, 3u);        // 2.75 s until full → 3
  EXPECT_TRUE(t.acquire(5, lim, kT0 + kSec).allowed);
}

TEST(BucketTable, KeysAreIndependent) {
  HeapBuckets mem(1024);
  BucketTable t = mem.table();
  const Limit lim{1, 1};
  EXPECT_TRUE(t.acquire(1, lim, kT0).allowed);
  EXPECT_FALSE(t.acquire(1, lim, kT0).allowed);
  EXPECT_TRUE(t.acquire(2, lim, kT0).allowed);
  // Same home index (1024 entries: low 10 bits), different key.
  EXPECT_TRUE(t.acquire(1 + 1024, lim, kT0).allowed);
  EXPECT_FALSE(t.acquire(1 + 1024, lim, kT0).allowed);
  EXPECT_FALSE(t.acquire(1, lim, kT0).allowed);
}

TEST(BucketTable, IdleEntriesAreReusedWithoutEviction) {
  HeapBuckets mem(64);
  BucketTable t = mem.table();
  const Limit lim{10, 1};
  // Fill the probe window of home 0 with kProbe keys.
  for (uint64_t i = 0; i < kProbe; ++i) ASSERT_TRUE(t.acquire((i + 1) * 64, lim, kT0).allowed);
  // 1 s later every one of them is idle (full bucket): a new key takes one
  // over and nothing counts as an eviction.
  auto d = t.acquire(99 * 64, lim, kT0 + kSec);
  EXPECT_TRUE(d.allowed);
  EXPECT_FALSE(d.evicted);
  EXPECT_EQ(mem.evictions(), 0u);
  EXPECT_FALSE(t.acquire(99 * 64, lim, kT0 + kSec).allowed);  // it really has its own bucket now
}

TEST(BucketTable, FullWindowEvictsTheKeyClosestToIdle) {
  HeapBuckets mem(64);
  BucketTable t = mem.table();
  const Limit lim{1, 1};
  // kProbe active keys sharing home 0; key i was last used at kT0 + i ms,
  // so key 0 is the closest to idle.
  for (uint64_t i = 0; i < kProbe; ++i)
    ASSERT_TRUE(t.acquire((i + 1) * 64, lim, kT0 + i * 1000000ULL).allowed);
  const uint64_t now = kT0 + 100 * 1000000ULL;
  auto d = t.acquire(1000 * 64, lim, now);
  EXPECT_TRUE(d.allowed);  // a fresh bucket for the new key
  EXPECT_TRUE(d.evicted);
  EXPECT_EQ(mem.evictions(), 1u);
  EXPECT_FALSE(t.acquire(1000 * 64, lim, now).allowed);  // and it is limited from then on
  // The others kept their state.
  for (uint64_t i = 1; i < kProbe; ++i) EXPECT_FALSE(t.acquire((i + 1) * 64, lim, now).allowed) << i;
  // The evicted key comes back with a full bucket (evicting another one).
  EXPECT_TRUE(t.acquire(64, lim, now).allowed);
  EXPECT_EQ(mem.evictions(), 2u);
}

// Four threads hammer one key with a shared clock that moves forward by
// T/8 per request: exactly burst + elapsed/T requests pass (± 1).
TEST(BucketTable, ConcurrentHammeringOneKeyIsExact) {
  HeapBuckets mem(1024);
  BucketTable t = mem.table();
  const Limit lim{1000, 50};  // T = 1 ms
  const uint64_t step = 1000000ULL / 8;
  constexpr int kThreads = 4, kPerThread = 4000;
  std::atomic<uint64_t> clock{kT0};
  std::atomic<int> allowed{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int n = 0; n < kPerThread; ++n) {
        const uint64_t now = clock.fetch_add(step);
        if (t.acquire(777, lim, now).allowed) allowed.fetch_add(1);
      }
    });
  go = true;
  for (auto& th : threads) th.join();
  const uint64_t elapsed = clock.load() - step - kT0;  // first to last request
  const int expected = 50 + static_cast<int>(elapsed / 1000000ULL);
  EXPECT_GE(allowed.load(), expected - 1);
  EXPECT_LE(allowed.load(), expected + 1);
}

TEST(KeyHash, SipHashReferenceVector) {
  // SipHash-2-4 test vector: key 00..0f, message 00..0e (15 bytes).
  std::string msg;
  for (int i = 0; i < 15; ++i) msg.push_back(static_cast<char>(i));
  EXPECT_EQ(siphash24(0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL, msg), 0xa129ca6149be45e5ULL);
}

TEST(KeyHash, PartsAreLengthPrefixedAndSeeded) {
  EXPECT_NE(KeyBuilder().add("ab").add("c").hash(1), KeyBuilder().add("a").add("bc").hash(1));
  EXPECT_EQ(KeyBuilder().add("ab").add("c").hash(1), KeyBuilder().add("ab").add("c").hash(1));
  EXPECT_NE(KeyBuilder().add("ab").hash(1), KeyBuilder().add("ab").hash(2));
  EXPECT_NE(KeyBuilder().hash(0), 0u);
}

}  // namespace
}  // namespace huginn::ratelimit
