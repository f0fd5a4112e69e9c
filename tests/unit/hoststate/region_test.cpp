// The host-wide state region: header validation, the exact host-wide
// connection count, slot reclaim and the slot free list.
#include "common/hoststate/region.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

namespace huginn::hoststate {
namespace {

std::unique_ptr<Region> make() {
  std::string err;
  auto r = Region::create(&err);
  EXPECT_TRUE(r) << err;
  return r;
}

// Writes `bytes` at `offset` of the region behind `fd` (another mapping).
void poke(int fd, size_t offset, const void* bytes, size_t n) {
  void* p = mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memcpy(static_cast<char*>(p) + offset, bytes, n);
  munmap(p, kRegionBytes);
}

TEST(HostStateRegion, WorkerAttachSeesTheSameMemory) {
  auto sup = make();
  std::string err;
  auto w = Region::attach(sup->fd(), kLayoutVersion, &err);
  ASSERT_TRUE(w) << err;
  EXPECT_EQ(w->seed(), sup->seed());
  EXPECT_TRUE(w->add(3, 10));
  EXPECT_EQ(sup->active(), 1);
  EXPECT_EQ(sup->slot_count(3), 1);
}

TEST(HostStateRegion, SeedsAreRandom) {
  auto a = make(), b = make();
  EXPECT_NE(a->seed(), b->seed());
}

TEST(HostStateRegion, RejectsBadRegions) {
  auto sup = make();
  std::string err;
  EXPECT_FALSE(Region::attach(sup->fd(), kLayoutVersion + 1, &err));
  EXPECT_NE(err.find("layout"), std::string::npos);

  const uint32_t bad_magic = 0xdeadbeef;
  poke(sup->fd(), offsetof(Header, magic), &bad_magic, sizeof bad_magic);
  EXPECT_FALSE(Region::attach(sup->fd(), kLayoutVersion, &err));
  EXPECT_NE(err.find("magic"), std::string::npos) << err;

  auto sup2 = make();
  const uint32_t other_layout = 7;
  poke(sup2->fd(), offsetof(Header, layout), &other_layout, sizeof other_layout);
  EXPECT_FALSE(Region::attach(sup2->fd(), kLayoutVersion, &err));
  EXPECT_NE(err.find("layout 7"), std::string::npos) << err;

  auto sup3 = make();
  const uint32_t buckets = kBuckets / 2;
  poke(sup3->fd(), offsetof(Header, buckets), &buckets, sizeof buckets);
  EXPECT_FALSE(Region::attach(sup3->fd(), kLayoutVersion, &err));
  EXPECT_NE(err.find("sizes"), std::string::npos) << err;
}

TEST(HostStateRegion, RejectsUnsealedOrWrongSizedMemory) {
  std::string err;
  // A plain memfd of the right size but without seals.
  int fd = memfd_create("x", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kRegionBytes)), 0);
  EXPECT_FALSE(Region::attach(fd, kLayoutVersion, &err));
  close(fd);
  // validate() on memory of the wrong size.
  std::vector<char> small(kHeaderBytes, 0);
  EXPECT_NE(validate(small.data(), small.size()), "");
  EXPECT_EQ(validate(nullptr, kRegionBytes).empty(), false);
}

TEST(HostStateRegion, ConnectionLimitIsExactUnderContention) {
  auto sup = make();
  constexpr int kThreads = 4, kTries = 2000;
  constexpr uint32_t kMax = 100;
  std::atomic<int> got{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i)
    ts.emplace_back([&, i] {
      for (int n = 0; n < kTries; ++n) got += sup->add(static_cast<uint32_t>(i), kMax) ? 1 : 0;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(got.load(), static_cast<int>(kMax));
  EXPECT_EQ(sup->active(), static_cast<int64_t>(kMax));
  int64_t sum = 0;
  for (uint32_t i = 0; i < kThreads; ++i) sum += sup->slot_count(i);
  EXPECT_EQ(sum, static_cast<int64_t>(kMax));
}

TEST(HostStateRegion, ReclaimSubtractsACrashedWorkersConnections) {
  auto sup = make();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sup->add(1, 5));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(sup->add(2, 5));
  EXPECT_FALSE(sup->add(3, 5));  // full
  sup->reclaim(1);               // worker of slot 1 died with 3 open connections
  EXPECT_EQ(sup->active(), 2);
  EXPECT_EQ(sup->slot_count(1), 0);
  EXPECT_TRUE(sup->add(3, 5));
  sup->remove(2);
  EXPECT_EQ(sup->active(), 2);
  EXPECT_EQ(sup->slot_count(2), 1);
}

TEST(HostStateRegion, BucketsLiveInTheRegion) {
  auto sup = make();
  std::string err;
  auto w = Region::attach(sup->fd(), kLayoutVersion, &err);
  ASSERT_TRUE(w) << err;
  const ratelimit::Limit lim{1, 1};
  const uint64_t now = 1000000000000ULL;
  EXPECT_TRUE(sup->buckets().acquire(12345, lim, now).allowed);
  EXPECT_FALSE(w->buckets().acquire(12345, lim, now).allowed);  // the other mapping sees the bucket
  EXPECT_EQ(w->buckets().size(), kBuckets);
}

TEST(SlotAllocator, LowestFreeFirstAndBounded) {
  SlotAllocator a(3);
  EXPECT_EQ(a.take(), 0u);
  EXPECT_EQ(a.take(), 1u);
  EXPECT_EQ(a.take(), 2u);
  EXPECT_FALSE(a.take());
  a.give(1);
  a.give(1);  // twice: ignored
  a.give(7);  // out of range: ignored
  EXPECT_EQ(a.available(), 1u);
  a.give(0);
  EXPECT_EQ(a.take(), 0u);
  EXPECT_EQ(a.take(), 1u);
  EXPECT_FALSE(a.take());
}

}  // namespace
}  // namespace huginn::hoststate
