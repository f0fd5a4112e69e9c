// The worker's seqlock reader of syn_ring (worker/syn/syn_ring.h) against a
// writer that follows the program's protocol (bpf/syn_abi.h) on plain memory:
// a read succeeds only for a published slot, and never returns a slot that was
// written while it was copied.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
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

// A writer rewrites one slot, every byte of a version filled with the same
// value; the reader must never see two values in one copy. Both sides use the
// protocol's atomics; the writer's plain stores between them are what a torn
// read would catch. The writer rests a pseudo-random while after some of its
// writes: back to back, a 124-byte write leaves a reader on another core no
// window to copy the slot whole (CI saw no read succeed in 50 million tries on
// a loaded machine), and the test needs both reads that overlap a write and
// reads that do not.
TEST(SynRingReadTest, NeverATornSlot) {
  auto r = ring();
  huginn_syn_slot* slot = &r[9];
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint8_t fill = 1;
    uint32_t rng = 0x9e3779b9;
    while (!stop.load(std::memory_order_relaxed)) {
      uint32_t seq = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
      if (!__atomic_compare_exchange_n(&slot->seq, &seq, seq + 1, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        continue;
      auto* bytes = reinterpret_cast<volatile uint8_t*>(slot);
      for (size_t i = sizeof slot->seq; i < sizeof *slot; ++i) bytes[i] = fill;
      __atomic_fetch_add(&slot->seq, 1, __ATOMIC_SEQ_CST);
      fill = static_cast<uint8_t>(fill == 255 ? 1 : fill + 1);
      rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
      if ((rng & 3) == 0) {  // a quarter of the writes: rest 0-255 spins
        for (uint32_t spin = rng >> 24; spin > 0 && !stop.load(std::memory_order_relaxed); --spin)
          __atomic_thread_fence(__ATOMIC_SEQ_CST);
      }
      if ((rng & 0xff00) == 0) std::this_thread::yield();  // one in 256: a core shared with the reader
    }
  });
  // Reads that found the slot published, and reads the writer overlapped
  // (published before the copy, rejected after it): the test is worth
  // something only with many of both.
  size_t ok = 0, overlapped = 0, torn_at = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (size_t tries = 0; torn_at == 0 && (ok < 20000 || overlapped < 200); ++tries) {
    if ((tries & 1023) == 0 && std::chrono::steady_clock::now() > deadline) break;
    const uint32_t seq = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
    huginn_syn_slot out;
    if (!read_ring_slot(r.data(), 9, &out)) {
      overlapped += seq != 0 && (seq & 1) == 0;
      continue;
    }
    ++ok;
    const auto* b = reinterpret_cast<const uint8_t*>(&out);
    for (size_t i = sizeof out.seq + 1; i < sizeof out && torn_at == 0; ++i)
      if (b[i] != b[sizeof out.seq]) torn_at = i;
  }
  stop = true;
  writer.join();
  std::printf("%zu whole reads, %zu rejected after the writer overlapped them\n", ok, overlapped);
  EXPECT_EQ(torn_at, 0u) << "torn copy at byte " << torn_at << " after " << ok << " whole reads";
  EXPECT_GE(ok, 1000u);
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
