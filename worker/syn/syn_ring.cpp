#include "worker/syn/syn_ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "bpf/syn_abi_check.h"

namespace huginn::worker::syn {
namespace {

constexpr size_t kRingBytes = HUGINN_SYN_RING_SLOTS * sizeof(huginn_syn_slot);
constexpr size_t kWords = sizeof(huginn_syn_slot) / sizeof(uint64_t);
static_assert(sizeof(huginn_syn_slot) % sizeof(uint64_t) == 0);

uint32_t word(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

}  // namespace

bool read_ring_slot(const huginn_syn_slot* slots, uint32_t index, huginn_syn_slot* out) {
  const huginn_syn_slot* s = &slots[index & (HUGINN_SYN_RING_SLOTS - 1)];
  const uint32_t before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
  if (before == 0 || (before & 1) != 0) return false;
  // The writer may change the slot under us: copy it word by word with
  // atomic loads (no torn words, no data race), then check the sequence.
  const auto* src = reinterpret_cast<const uint64_t*>(s);
  uint64_t words[kWords];
  for (size_t i = 0; i < kWords; ++i) words[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != before) return false;
  std::memcpy(out, words, sizeof words);
  return true;
}

std::optional<SynRing> SynRing::attach(int fd, std::string* error) {
  // A writable shared mapping must be refused (EPERM: the map is frozen).
  void* w = mmap(nullptr, kRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (w != MAP_FAILED) {
    munmap(w, kRingBytes);
    *error = "syn_ring: the map is not frozen (it could be mapped writable)";
    return std::nullopt;
  }
  if (errno != EPERM) {
    *error = std::string("syn_ring: a writable mapping failed with ") + std::strerror(errno) +
             ", not EPERM (frozen)";
    return std::nullopt;
  }
  SynRing r;
  std::string err;
  if (!sys::SharedMapping::map_read_only(fd, kRingBytes, &r.map_, &err)) {
    *error = "syn_ring: " + err;
    return std::nullopt;
  }
  return r;
}

const huginn_syn_slot* SynRing::slots() const { return static_cast<const huginn_syn_slot*>(map_.data()); }

bool SynRing::find(const huginn_syn_key_v4& key, huginn_syn_value_v4* out) const {
  if (!valid()) return false;
  huginn_syn_slot s;
  if (!read_ring_slot(slots(), huginn_syn_ring_index(key.sport, key.saddr, 0, 0, 0), &s)) return false;
  if (s.family != HUGINN_FAMILY_V4 || s.sport != key.sport || word(s.saddr) != key.saddr) return false;
  *out = s.value.v4;
  return true;
}

bool SynRing::find(const huginn_syn_key_v6& key, huginn_syn_value_v6* out) const {
  if (!valid()) return false;
  huginn_syn_slot s;
  const uint8_t* a = key.saddr;
  const uint32_t index = huginn_syn_ring_index(key.sport, word(a), word(a + 4), word(a + 8), word(a + 12));
  if (!read_ring_slot(slots(), index, &s)) return false;
  if (s.family != HUGINN_FAMILY_V6 || s.sport != key.sport || std::memcmp(s.saddr, key.saddr, 16) != 0)
    return false;
  *out = s.value.v6;
  return true;
}

}  // namespace huginn::worker::syn
