// The worker's seqlock reader of syn_ring (worker/syn/syn_ring.h) against a
// writer that follows the program's protocol (bpf/syn_abi.h) on plain memory:
// a read succeeds only for a published slot, and never returns a slot that was
// written while it was copied.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "bpf/syn_abi_check.h"
#include "worker/syn/syn_ring.h"

namespace huginn {
namespace {

using worker::syn::read_ring_slot;

std::vector<huginn_syn_slot> ring() { return std::vector<huginn_syn_slot>(HUGINN_SYN_RING_SLOTS); }

TEST(SynRingReadTest, OnlyPublishedSlots) {
  auto r = ring();
  huginn_syn_slot out{};
  EXPECT_FALSE(read_ring_slot(r.data(), 5, &out)) << "never written (sequence 0)";
  r[5].seq = 3;
  EXPECT_FALSE(read_ring_slot(r.data(), 5, &out)) << "being written (odd)";
  r[5].seq = 4;
  r[5].family = HUGINN_FAMILY_V4;
  r[5].sport = 0x5000;
  r[5].value.v4.ttl = 77;
  ASSERT_TRUE(read_ring_slot(r.data(), 5, &out));
  EXPECT_EQ(std::memcmp(&out, &r[5], sizeof out), 0);
  // The index wraps to the ring's size, as the program's does.
  ASSERT_TRUE(read_ring_slot(r.data(), 5 + HUGINN_SYN_RING_SLOTS, &out));
  EXPECT_EQ(out.value.v4.ttl, 77);
}

// A writer rewrites one slot as fast as it can, every byte of a version
// filled with the same value; the reader must never see two values in one
// copy. Both sides use the protocol's atomics; the writer's plain stores
// between them are what a torn read would catch.
TEST(SynRingReadTest, NeverATornSlot) {
  auto r = ring();
  huginn_syn_slot* slot = &r[9];
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint8_t fill = 1;
    while (!stop.load(std::memory_order_relaxed)) {
      uint32_t seq = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
      if (!__atomic_compare_exchange_n(&slot->seq, &seq, seq + 1, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        continue;
      auto* bytes = reinterpret_cast<volatile uint8_t*>(slot);
      for (size_t i = sizeof slot->seq; i < sizeof *slot; ++i) bytes[i] = fill;
      __atomic_fetch_add(&slot->seq, 1, __ATOMIC_SEQ_CST);
      fill = static_cast<uint8_t>(fill == 255 ? 1 : fill + 1);
    }
  });
  size_t ok = 0, tries = 0;
  while (ok < 20000 && tries < 50'000'000) {
    ++tries;
    huginn_syn_slot out;
    if (!read_ring_slot(r.data(), 9, &out)) continue;
    ++ok;
    const auto* b = reinterpret_cast<const uint8_t*>(&out);
    for (size_t i = sizeof out.seq + 1; i < sizeof out; ++i)
      ASSERT_EQ(b[i], b[sizeof out.seq]) << "torn copy at byte " << i << " after " << ok << " reads";
  }
  stop = true;
  writer.join();
  EXPECT_GT(ok, 0u);
}

// The program and the worker compute the same slot from the same key bytes;
// the index spreads neighbouring ports and addresses.
TEST(SynRingReadTest, IndexSpreadsKeys) {
  std::vector<int> hits(HUGINN_SYN_RING_SLOTS);
  for (uint32_t port = 0; port < 4 * HUGINN_SYN_RING_SLOTS; ++port)
    ++hits[huginn_syn_ring_index(static_cast<uint16_t>(port), 0x0100007F, 0, 0, 0)];
  int max = 0;
  for (int h : hits) max = std::max(max, h);
  EXPECT_LE(max, 16) << "4 keys per slot on average";
  EXPECT_NE(huginn_syn_ring_index(80, 1, 0, 0, 0), huginn_syn_ring_index(80, 2, 0, 0, 0));
  EXPECT_NE(huginn_syn_ring_index(80, 1, 0, 0, 0), huginn_syn_ring_index(80, 0, 0, 0, 1));
}

}  // namespace
}  // namespace huginn
