#include "common/hoststate/region.h"

#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace huginn::hoststate {

namespace {

bool random_seed(uint64_t* out, std::string* error) {
  uint64_t v = 0;
  auto* p = reinterpret_cast<unsigned char*>(&v);
  size_t got = 0;
  while (got < sizeof v) {
    const ssize_t n = getrandom(p + got, sizeof v - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = std::string("getrandom: ") + std::strerror(errno);
      return false;
    }
    got += static_cast<size_t>(n);
  }
  *out = v;
  return true;
}

}  // namespace

std::string validate(const void* mem, size_t size) {
  if (!mem || size != kRegionBytes)
    return "host-state region is " + std::to_string(size) + " bytes, expected " +
           std::to_string(kRegionBytes);
  Header h;
  std::memcpy(&h, mem, sizeof h);
  if (h.magic != kMagic) return "host-state region: bad magic";
  if (h.layout != kLayoutVersion)
    return "host-state region: layout " + std::to_string(h.layout) + " is not ours";
  if (h.header_bytes != kHeaderBytes || h.slots != kMaxSlots || h.buckets != kBuckets ||
      h.probe != ratelimit::kProbe || h.total_bytes != kRegionBytes)
    return "host-state region: sizes in the header do not match this layout";
  return {};
}

std::unique_ptr<Region> Region::create(std::string* error) {
  auto r = std::make_unique<Region>();
  if (!sys::SharedMapping::create("huginn-hoststate", kRegionBytes, &r->fd_, &r->map_, error)) return nullptr;
  Header h{};
  h.magic = kMagic;
  h.layout = kLayoutVersion;
  h.header_bytes = kHeaderBytes;
  h.slots = kMaxSlots;
  h.buckets = kBuckets;
  h.probe = ratelimit::kProbe;
  h.total_bytes = kRegionBytes;
  if (!random_seed(&h.seed, error)) return nullptr;
  std::memcpy(r->map_.data(), &h, sizeof h);
  return r;
}

std::unique_ptr<Region> Region::attach(int fd, uint32_t layout, std::string* error) {
  if (layout != kLayoutVersion) {
    *error = "host-state layout " + std::to_string(layout) + " is not ours";
    return nullptr;
  }
  auto r = std::make_unique<Region>();
  if (!sys::SharedMapping::attach(fd, kRegionBytes, &r->map_, error)) return nullptr;
  std::string why = validate(r->map_.data(), r->map_.size());
  if (!why.empty()) {
    *error = std::move(why);
    return nullptr;
  }
  return r;
}

Header* Region::header() const { return static_cast<Header*>(map_.data()); }

int64_t* Region::counter(size_t offset) const {
  return reinterpret_cast<int64_t*>(static_cast<char*>(map_.data()) + offset);
}

uint64_t Region::seed() const { return header()->seed; }

ratelimit::BucketTable Region::buckets() const {
  auto* entries = reinterpret_cast<ratelimit::Entry*>(static_cast<char*>(map_.data()) + kBucketOffset);
  return ratelimit::BucketTable(entries, kBuckets, &header()->evictions);
}

uint64_t Region::evictions() const {
  return std::atomic_ref<uint64_t>(header()->evictions).load(std::memory_order_relaxed);
}

bool Region::add(uint32_t slot, uint32_t max) {
  if (slot >= kMaxSlots) return false;
  std::atomic_ref<int64_t> host(*counter(kGlobalOffset));
  std::atomic_ref<int64_t> mine(*counter(kSlotsOffset + size_t{slot} * kLineBytes));
  // The slot first, then the host counter (remove(): the other way round).
  // A worker killed between the two steps leaves its slot one above what it
  // holds in the host counter, so reclaim() takes one too many off: the
  // count errs by one towards admitting, never leaks a connection for good.
  mine.fetch_add(1, std::memory_order_acq_rel);
  if (host.fetch_add(1, std::memory_order_acq_rel) >= static_cast<int64_t>(max)) {
    host.fetch_sub(1, std::memory_order_acq_rel);
    mine.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }
  return true;
}

void Region::remove(uint32_t slot) {
  if (slot >= kMaxSlots) return;
  std::atomic_ref<int64_t>(*counter(kGlobalOffset)).fetch_sub(1, std::memory_order_acq_rel);
  std::atomic_ref<int64_t>(*counter(kSlotsOffset + size_t{slot} * kLineBytes))
      .fetch_sub(1, std::memory_order_acq_rel);
}

int64_t Region::active() const {
  return std::atomic_ref<int64_t>(*counter(kGlobalOffset)).load(std::memory_order_acquire);
}

int64_t Region::slot_count(uint32_t slot) const {
  if (slot >= kMaxSlots) return 0;
  return std::atomic_ref<int64_t>(*counter(kSlotsOffset + size_t{slot} * kLineBytes))
      .load(std::memory_order_acquire);
}

void Region::reclaim(uint32_t slot) {
  if (slot >= kMaxSlots) return;
  const int64_t n = std::atomic_ref<int64_t>(*counter(kSlotsOffset + size_t{slot} * kLineBytes))
                        .exchange(0, std::memory_order_acq_rel);
  if (n != 0) std::atomic_ref<int64_t>(*counter(kGlobalOffset)).fetch_sub(n, std::memory_order_acq_rel);
}

SlotAllocator::SlotAllocator(uint32_t slots) : used_(slots, false) {
  free_.reserve(slots);
  for (uint32_t i = slots; i > 0; --i) free_.push_back(i - 1);
}

std::optional<uint32_t> SlotAllocator::take() {
  if (free_.empty()) return std::nullopt;
  const uint32_t s = free_.back();
  free_.pop_back();
  used_[s] = true;
  return s;
}

void SlotAllocator::give(uint32_t slot) {
  if (slot >= used_.size() || !used_[slot]) return;
  used_[slot] = false;
  // Keep the lowest slot at the back (small lists: a linear insert is fine).
  auto it = free_.begin();
  while (it != free_.end() && *it > slot) ++it;
  free_.insert(it, slot);
}

}  // namespace huginn::hoststate
