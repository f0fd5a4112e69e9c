#include "worker/net/block_cache.h"

#include <event2/event.h>
#include <malloc.h>
#include <openssl/crypto.h>

#include <cstdint>
#include <cstdlib>
#include <new>

#include "common/sys/sanitizer.h"

namespace huginn::worker::net {

size_t BlockCache::slot_of(const void* p) {
  static_assert((kTrackSlots & (kTrackSlots - 1)) == 0, "a power of two");
  // Fibonacci hashing of the address without its alignment bits.
  const uint64_t h = (static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)) >> 4) * 0x9E3779B97F4A7C15ull;
  return static_cast<size_t>(h >> 32) & (kTrackSlots - 1);
}

void BlockCache::track(void* p) {
  if (p == nullptr || tracked_ >= kMaxTracked) return;
  size_t i = slot_of(p);
  while (slots_[i] != nullptr) i = (i + 1) & (kTrackSlots - 1);
  slots_[i] = p;
  ++tracked_;
}

bool BlockCache::untrack(void* p) {
  if (tracked_ == 0) return false;
  size_t i = slot_of(p);
  while (slots_[i] != p) {
    if (slots_[i] == nullptr) return false;
    i = (i + 1) & (kTrackSlots - 1);
  }
  // Backward-shift deletion: move later members of the probe run into the
  // hole when their home slot is not after it, so that no lookup stops
  // early at an empty slot.
  size_t hole = i;
  for (size_t j = (i + 1) & (kTrackSlots - 1); slots_[j] != nullptr; j = (j + 1) & (kTrackSlots - 1)) {
    const size_t home = slot_of(slots_[j]);
    // Whether home lies cyclically in (hole, j]: then slots_[j] must stay.
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    slots_[hole] = slots_[j];
    hole = j;
  }
  slots_[hole] = nullptr;
  --tracked_;
  return true;
}

void* BlockCache::allocate(size_t n) {
  if (!large(n)) return source_.allocate(n);
  for (Stack& s : stacks_) {
    if (s.count == 0 || s.usable < n || s.usable - n > kSlack) continue;
    held_bytes_ -= s.usable;
    ++hits_;
    void* p = s.blocks[--s.count];
    track(p);
    return p;
  }
  void* p = source_.allocate(n);
  track(p);
  return p;
}

void* BlockCache::reallocate(void* p, size_t n) {
  if (p == nullptr) return allocate(n);
  const bool was = untrack(p);
  void* q = source_.reallocate(p, n);
  if (q == nullptr) {
    // realloc(p, 0) may free p and return null; any other null leaves p.
    if (was && n != 0) track(p);
    return nullptr;
  }
  if (large(n)) track(q);
  return q;
}

void BlockCache::release(void* p) {
  if (p == nullptr) return;
  if (!untrack(p)) {
    source_.release(p);
    return;
  }
  const size_t usable = source_.usable(p);
  if (usable >= kMinBlock && usable <= kMaxBlock + kSlack && held_bytes_ + usable <= kBudget) {
    Stack* home = nullptr;
    for (Stack& s : stacks_) {
      if (s.usable == usable) {
        home = &s;
        break;
      }
      if (home == nullptr && s.count == 0) home = &s;  // an empty stack takes a new size
    }
    if (home != nullptr && home->count < kDepth) {
      home->usable = usable;
      home->blocks[home->count++] = p;
      held_bytes_ += usable;
      return;
    }
  }
  source_.release(p);
}

void BlockCache::clear() {
  for (Stack& s : stacks_) {
    while (s.count > 0) source_.release(s.blocks[--s.count]);
    s.usable = 0;
  }
  held_bytes_ = 0;
}

size_t BlockCache::held_blocks() const {
  size_t n = 0;
  for (const Stack& s : stacks_) n += s.count;
  return n;
}

namespace {

// Never destroyed: OpenSSL frees through it from its exit handlers.
alignas(BlockCache) unsigned char cache_storage[sizeof(BlockCache)];
BlockCache* cache = nullptr;

void* libc_allocate(size_t n) { return std::malloc(n); }
void libc_release(void* p) { std::free(p); }
size_t libc_usable(void* p) { return malloc_usable_size(p); }
void* libc_reallocate(void* p, size_t n) { return std::realloc(p, n); }

void* event_malloc(size_t n) { return cache->allocate(n); }
void* event_realloc(void* p, size_t n) { return cache->reallocate(p, n); }
void event_free(void* p) { cache->release(p); }

// OpenSSL's own CRYPTO_malloc answers a request for 0 bytes with NULL.
void* crypto_malloc(size_t n, const char*, int) { return n == 0 ? nullptr : cache->allocate(n); }
void* crypto_realloc(void* p, size_t n, const char*, int) { return cache->reallocate(p, n); }
void crypto_free(void* p, const char*, int) { cache->release(p); }

}  // namespace

bool install_block_cache() {
  if (sys::kAddressSanitizer) return true;
  if (cache == nullptr)
    cache = new (cache_storage) BlockCache({&libc_allocate, &libc_release, &libc_usable, &libc_reallocate});
  event_set_mem_functions(&event_malloc, &event_realloc, &event_free);
  return CRYPTO_set_mem_functions(&crypto_malloc, &crypto_realloc, &crypto_free) == 1;
}

const BlockCache* installed_block_cache() { return cache; }

}  // namespace huginn::worker::net
