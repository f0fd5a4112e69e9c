// A per-worker cache of the large blocks that libevent and OpenSSL allocate
// and free around every read and write.
//
// Each TLS read reserves a 32 KiB chain in the input evbuffer (kTlsReadStep)
// that is freed once the input is drained, and OpenSSL's record layer, with
// SSL_MODE_RELEASE_BUFFERS (kept for idle memory), allocates a ~17 KiB read
// or write buffer whenever it needs one and frees it when it is empty: about
// 0.75 such blocks per request in the multiplexed HTTP/2 benchmark. They are
// too large for glibc's per-thread cache (1032 bytes), so each one goes
// through the arena's bins. After a burst of connections has left the heap
// fragmented (thousands of TLS connections opened and closed), those
// searches became the worker's largest cost after the kernel:
// _int_malloc went from 1.8 % to 4.7 % of the worker's samples and HTTP/2
// requests/s fell by 5-10 %, until the worker was restarted.
//
// The cache keeps freed blocks of 16-64 KiB on a few LIFO stacks, one per
// usable size, and hands them out again for requests that fit them with
// little slack: the most recently freed block, still in the CPU's caches,
// serves the next read. It holds at most kBudget bytes; anything else goes
// to malloc and free as before. Like HAProxy's buffer pools, but only for
// the sizes that churn.
//
// Which freed pointers are such blocks: the cache remembers the blocks of
// 16-64 KiB it handed out (a small open-addressing table of addresses), so
// that release() asks the allocator for a block's usable size only for
// those. Asking it for every free (malloc_usable_size reads the header of the
// next chunk, a cache line that glibc's own free of a small block does not
// touch) cost 1.1 % of the worker's samples with short-lived TLS connections,
// whose handshakes free a few hundred small OpenSSL objects each; asking
// only for tracked blocks cut the worker's CPU per connection by ~3 %
// (bench/README.md, run 47). When the table is full, further large blocks
// go untracked and back to malloc when freed.
//
// One instance serves one thread; the worker is single-threaded.
// install_block_cache() routes libevent's and OpenSSL's allocations through
// a process-wide instance; it must run before either library allocates.
#pragma once

#include <array>
#include <cstddef>

namespace huginn::worker::net {

class BlockCache {
 public:
  // Where blocks come from and go to: malloc, free, malloc_usable_size and
  // realloc in the worker; counting fakes in tests.
  struct Source {
    void* (*allocate)(size_t);
    void (*release)(void*);
    size_t (*usable)(void*);
    void* (*reallocate)(void*, size_t);
  };

  static constexpr size_t kMinBlock = 16 * 1024;
  static constexpr size_t kMaxBlock = 64 * 1024;
  // A cached block serves a request of up to this many bytes less than its
  // usable size (glibc rounds a request up by at most 24 bytes).
  static constexpr size_t kSlack = 64;
  static constexpr size_t kSizes = 8;   // distinct usable sizes kept
  static constexpr size_t kDepth = 32;  // blocks per size
  static constexpr size_t kBudget = 1024 * 1024;
  // Slots of the table of large blocks in use, and how many of them it fills
  // at most (linear probing stays short below three quarters).
  static constexpr size_t kTrackSlots = 2048;
  static constexpr size_t kMaxTracked = kTrackSlots / 4 * 3;

  explicit constexpr BlockCache(Source source) : source_(source) {}
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // malloc(n): a cached block when one fits, else the source's.
  void* allocate(size_t n);
  // realloc(p, n): the source's, keeping track of which blocks are large.
  void* reallocate(void* p, size_t n);
  // free(p): kept when p is a large block this cache handed out, its usable
  // size is in range, a stack for it exists or is free, and the budget
  // allows; else given back to the source.
  void release(void* p);
  // Gives every held block back to the source.
  void clear();

  size_t held_bytes() const { return held_bytes_; }
  size_t held_blocks() const;
  size_t hits() const { return hits_; }        // allocations served from the cache
  size_t tracked() const { return tracked_; }  // large blocks handed out and not yet freed

 private:
  static bool large(size_t n) { return n >= kMinBlock && n <= kMaxBlock; }
  static size_t slot_of(const void* p);
  void track(void* p);    // remembers p, unless the table is full
  bool untrack(void* p);  // forgets p; false when it was not remembered

  struct Stack {
    size_t usable = 0;  // 0: unused
    size_t count = 0;
    std::array<void*, kDepth> blocks{};
  };

  Source source_;
  std::array<Stack, kSizes> stacks_{};
  size_t held_bytes_ = 0;
  size_t hits_ = 0;
  std::array<void*, kTrackSlots> slots_{};  // null: empty
  size_t tracked_ = 0;
};

// Routes libevent's (event_set_mem_functions) and OpenSSL's
// (CRYPTO_set_mem_functions) allocations through one BlockCache. Call it
// first thing in main(), before any libevent or OpenSSL call; false when
// OpenSSL has already allocated (then only libevent's blocks are cached).
// Does nothing and returns true under AddressSanitizer, whose use-after-free
// checks a cache of freed blocks would blind.
bool install_block_cache();
// The instance install_block_cache() put in place, or null.
const BlockCache* installed_block_cache();

}  // namespace huginn::worker::net
