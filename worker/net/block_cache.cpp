#include "worker/net/block_cache.h"

#include <event2/event.h>
#include <malloc.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <new>

#include "common/sys/sanitizer.h"

namespace huginn::worker::net {

void* BlockCache::allocate(size_t n) {
  if (n >= kMinBlock && n <= kMaxBlock) {
    for (Stack& s : stacks_) {
      if (s.count == 0 || s.usable < n || s.usable - n > kSlack) continue;
      held_bytes_ -= s.usable;
      ++hits_;
      return s.blocks[--s.count];
    }
  }
  return source_.allocate(n);
}

void BlockCache::release(void* p) {
  if (p == nullptr) return;
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

void* event_malloc(size_t n) { return cache->allocate(n); }
void* event_realloc(void* p, size_t n) { return std::realloc(p, n); }  // held blocks are never in use
void event_free(void* p) { cache->release(p); }

// OpenSSL's own CRYPTO_malloc answers a request for 0 bytes with NULL.
void* crypto_malloc(size_t n, const char*, int) { return n == 0 ? nullptr : cache->allocate(n); }
void* crypto_realloc(void* p, size_t n, const char*, int) { return std::realloc(p, n); }
void crypto_free(void* p, const char*, int) { cache->release(p); }

}  // namespace

bool install_block_cache() {
  if (sys::kAddressSanitizer) return true;
  if (cache == nullptr) cache = new (cache_storage) BlockCache({&libc_allocate, &libc_release, &libc_usable});
  event_set_mem_functions(&event_malloc, &event_realloc, &event_free);
  return CRYPTO_set_mem_functions(&crypto_malloc, &crypto_realloc, &crypto_free) == 1;
}

const BlockCache* installed_block_cache() { return cache; }

}  // namespace huginn::worker::net
