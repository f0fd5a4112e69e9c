// worker/net/block_cache: which freed blocks are kept and handed out again,
// the bounds on what is kept, and, in a child process that installs it like
// the worker does, that real OpenSSL and libevent buffers go through it.
#include "worker/net/block_cache.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/sys/c_handle.h"
#include "common/sys/sanitizer.h"
#include "tests/support/test_certs.h"

namespace huginn::worker::net {
namespace {

// A source that allocates exactly the requested size and reports it as the
// usable size, counting calls (the same under ASan and glibc).
struct FakeSource {
  static inline std::map<void*, size_t> live;
  static inline size_t allocations = 0;
  static inline size_t releases = 0;
  static inline size_t usable_calls = 0;
  static void* allocate(size_t n) {
    ++allocations;
    void* p = std::malloc(n);
    live[p] = n;
    return p;
  }
  static void release(void* p) {
    ++releases;
    live.erase(p);
    std::free(p);
  }
  static size_t usable(void* p) {
    ++usable_calls;
    return live.at(p);
  }
  // Always moves the block, so that a stale address would show.
  static void* reallocate(void* p, size_t n) {
    if (n == 0) {
      release(p);
      return nullptr;
    }
    void* q = std::malloc(n);
    std::memcpy(q, p, std::min(n, live.at(p)));
    live.erase(p);
    std::free(p);
    live[q] = n;
    return q;
  }
  static BlockCache::Source source() { return {&allocate, &release, &usable, &reallocate}; }
  static void reset() {
    allocations = 0;
    releases = 0;
    usable_calls = 0;
  }
};

class BlockCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { FakeSource::reset(); }
  void TearDown() override {
    cache.clear();
    EXPECT_TRUE(FakeSource::live.empty()) << FakeSource::live.size() << " blocks not given back";
  }
  BlockCache cache{FakeSource::source()};
};

constexpr size_t kRead = 32 * 1024;    // libevent's TLS read chain
constexpr size_t kRecord = 17 * 1024;  // about OpenSSL's record buffers

TEST_F(BlockCacheTest, TheLastFreedBlockServesTheNextRequestOfItsSize) {
  void* a = cache.allocate(kRead);
  void* b = cache.allocate(kRead);
  EXPECT_EQ(FakeSource::allocations, 2u);
  cache.release(a);
  cache.release(b);
  EXPECT_EQ(FakeSource::releases, 0u);
  EXPECT_EQ(cache.held_blocks(), 2u);
  EXPECT_EQ(cache.held_bytes(), 2 * kRead);
  EXPECT_EQ(cache.allocate(kRead), b);  // last in, first out
  EXPECT_EQ(cache.allocate(kRead), a);
  EXPECT_EQ(FakeSource::allocations, 2u);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(cache.held_bytes(), 0u);
  cache.release(a);
  cache.release(b);
}

TEST_F(BlockCacheTest, SizesOutsideTheRangeAreNeverKept) {
  for (size_t n : {size_t{64}, BlockCache::kMinBlock - 1, BlockCache::kMaxBlock + BlockCache::kSlack + 1,
                   size_t{1024 * 1024}}) {
    void* p = cache.allocate(n);
    cache.release(p);
    EXPECT_EQ(cache.held_blocks(), 0u) << n;
  }
  EXPECT_EQ(FakeSource::allocations, 4u);
  EXPECT_EQ(FakeSource::releases, 4u);
  // The bounds themselves are in range.
  cache.release(cache.allocate(BlockCache::kMinBlock));
  cache.release(cache.allocate(BlockCache::kMaxBlock));
  EXPECT_EQ(cache.held_blocks(), 2u);
}

TEST_F(BlockCacheTest, ABlockServesOnlyRequestsItFitsWithLittleSlack) {
  cache.release(cache.allocate(kRecord));
  void* larger = cache.allocate(kRecord + 1);                             // does not fit
  void* much_smaller = cache.allocate(kRecord - BlockCache::kSlack - 1);  // would waste too much
  EXPECT_EQ(cache.hits(), 0u);
  void* slightly_smaller = cache.allocate(kRecord - BlockCache::kSlack);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(FakeSource::live.at(slightly_smaller), kRecord);
  for (void* p : {larger, much_smaller, slightly_smaller}) cache.release(p);
}

TEST_F(BlockCacheTest, EachSizeKeepsAtMostItsDepth) {
  std::vector<void*> blocks;
  for (size_t i = 0; i < BlockCache::kDepth + 3; ++i) blocks.push_back(cache.allocate(kRecord));
  for (void* p : blocks) cache.release(p);
  EXPECT_EQ(cache.held_blocks(), BlockCache::kDepth);
  EXPECT_EQ(FakeSource::releases, 3u);
}

TEST_F(BlockCacheTest, AtMostKSizesAreKeptAndAnEmptiedStackTakesANewSize) {
  std::vector<void*> blocks;
  for (size_t i = 0; i <= BlockCache::kSizes; ++i) blocks.push_back(cache.allocate(20000 + i * 1000));
  for (void* p : blocks) cache.release(p);
  EXPECT_EQ(cache.held_blocks(), BlockCache::kSizes);
  EXPECT_EQ(FakeSource::releases, 1u);  // the fifth size
  // Taking the first size's block empties its stack; a new size may use it.
  void* first = cache.allocate(20000);
  EXPECT_EQ(first, blocks[0]);
  void* other = cache.allocate(50000);
  cache.release(other);
  EXPECT_EQ(cache.held_blocks(), BlockCache::kSizes);
  EXPECT_EQ(cache.allocate(50000), other);
  cache.release(first);
  cache.release(other);
}

TEST_F(BlockCacheTest, HoldsNoMoreThanItsBudget) {
  std::vector<void*> blocks;
  for (size_t n : {size_t{40000}, size_t{50000}, size_t{60000}, size_t{64000}})
    for (size_t i = 0; i < BlockCache::kDepth; ++i) blocks.push_back(cache.allocate(n));
  for (void* p : blocks) {
    cache.release(p);
    ASSERT_LE(cache.held_bytes(), BlockCache::kBudget);
  }
  EXPECT_GT(cache.held_bytes(), BlockCache::kBudget - 64000);
  EXPECT_EQ(FakeSource::releases + cache.held_blocks(), blocks.size());
  cache.clear();
  EXPECT_EQ(cache.held_bytes(), 0u);
  EXPECT_EQ(FakeSource::releases, blocks.size());
}

TEST_F(BlockCacheTest, FreeingNullDoesNothing) {
  cache.release(nullptr);
  EXPECT_EQ(FakeSource::releases, 0u);
  EXPECT_EQ(cache.held_blocks(), 0u);
}

TEST_F(BlockCacheTest, OnlyLargeBlocksItHandedOutHaveTheirSizeAsked) {
  for (size_t n : {size_t{1}, size_t{64}, size_t{4096}, BlockCache::kMinBlock - 1, BlockCache::kMaxBlock + 1})
    cache.release(cache.allocate(n));
  EXPECT_EQ(FakeSource::usable_calls, 0u);
  EXPECT_EQ(FakeSource::releases, 5u);
  cache.release(cache.allocate(kRecord));
  EXPECT_EQ(FakeSource::usable_calls, 1u);
  EXPECT_EQ(cache.held_blocks(), 1u);
  EXPECT_EQ(cache.tracked(), 0u);
  void* again = cache.allocate(kRecord);  // from the cache, and tracked again
  EXPECT_EQ(cache.tracked(), 1u);
  cache.release(again);
  EXPECT_EQ(cache.held_blocks(), 1u);
  EXPECT_EQ(cache.tracked(), 0u);
}

TEST_F(BlockCacheTest, ReallocatedBlocksAreTrackedAtTheirNewAddress) {
  void* p = cache.reallocate(nullptr, 100);  // realloc(NULL, n) is malloc(n)
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(cache.tracked(), 0u);
  p = cache.reallocate(p, kRecord);  // grows into the range
  EXPECT_EQ(cache.tracked(), 1u);
  void* q = cache.reallocate(p, kRead);  // moves (the fake always does)
  EXPECT_NE(q, p);
  EXPECT_EQ(cache.tracked(), 1u);
  cache.release(q);
  EXPECT_EQ(cache.held_blocks(), 1u);  // found at its new address: kept
  void* r = cache.allocate(kRead);
  void* small = cache.reallocate(r, 200);  // shrinks out of the range: forgotten
  EXPECT_EQ(cache.tracked(), 0u);
  cache.release(small);
  EXPECT_EQ(cache.held_blocks(), 0u);
  void* z = cache.allocate(kRead);
  EXPECT_EQ(cache.reallocate(z, 0), nullptr);  // freed, and forgotten
  EXPECT_EQ(cache.tracked(), 0u);
}

TEST_F(BlockCacheTest, BeyondTheTableLargeBlocksGoBackToTheSource) {
  std::vector<void*> blocks;
  for (size_t i = 0; i < BlockCache::kMaxTracked + 5; ++i)
    blocks.push_back(cache.allocate(BlockCache::kMinBlock));
  EXPECT_EQ(cache.tracked(), BlockCache::kMaxTracked);
  for (auto it = blocks.rbegin(); it != blocks.rbegin() + 5; ++it) cache.release(*it);  // the untracked ones
  EXPECT_EQ(FakeSource::usable_calls, 0u);
  EXPECT_EQ(FakeSource::releases, 5u);
  for (size_t i = 0; i < BlockCache::kMaxTracked; ++i) cache.release(blocks[i]);
  EXPECT_EQ(FakeSource::usable_calls, BlockCache::kMaxTracked);
  EXPECT_EQ(cache.tracked(), 0u);
}

// The table against a model: random allocations, reallocations and frees in
// random order; a block's size is asked when it is freed exactly when it was
// handed out large and the table had room, so no lookup misses a member
// (which deleting from a linear-probing table can cause) and none finds a
// stranger.
TEST_F(BlockCacheTest, TheTableAgreesWithAModelUnderChurn) {
  std::mt19937_64 rng(20261202);
  std::vector<void*> live;
  std::set<void*> tracked;
  auto size = [&] { return rng() % 3 == 0 ? size_t{64} : BlockCache::kMinBlock + rng() % 1000; };
  for (int step = 0; step < 200000; ++step) {
    const uint64_t op = rng() % 10;
    if (op < 5 || live.empty()) {
      if (live.size() >= 1500) continue;
      const size_t n = size();
      void* p = cache.allocate(n);
      ASSERT_NE(p, nullptr);
      live.push_back(p);
      if (n >= BlockCache::kMinBlock && tracked.size() < BlockCache::kMaxTracked) tracked.insert(p);
    } else if (op < 7) {
      const size_t i = rng() % live.size();
      const size_t n = size();
      tracked.erase(live[i]);
      live[i] = cache.reallocate(live[i], n);
      ASSERT_NE(live[i], nullptr);
      if (n >= BlockCache::kMinBlock && tracked.size() < BlockCache::kMaxTracked) tracked.insert(live[i]);
    } else {
      const size_t i = rng() % live.size();
      void* p = live[i];
      live[i] = live.back();
      live.pop_back();
      const size_t asked = FakeSource::usable_calls;
      cache.release(p);
      ASSERT_EQ(FakeSource::usable_calls - asked, tracked.erase(p)) << "step " << step;
    }
    ASSERT_EQ(cache.tracked(), tracked.size()) << "step " << step;
  }
  for (void* p : live) cache.release(p);
  EXPECT_EQ(cache.tracked(), 0u);
}

// Pumps a TLS 1.3 handshake and `rounds` 16 KiB messages each way between two
// in-memory SSLs with the worker's buffer mode; true when all arrived.
bool tls_exchange(const test::PemFiles& server_pem, int rounds) {
  using Ctx = sys::CHandle<SSL_CTX, SSL_CTX_free>;
  using Ssl = sys::CHandle<SSL, SSL_free>;
  Ctx sctx(SSL_CTX_new(TLS_server_method()));
  Ctx cctx(SSL_CTX_new(TLS_client_method()));
  if (!sctx || !cctx) return false;
  if (SSL_CTX_use_certificate_chain_file(sctx.get(), server_pem.cert_path.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(sctx.get(), server_pem.key_path.c_str(), SSL_FILETYPE_PEM) != 1)
    return false;
  for (SSL_CTX* c : {sctx.get(), cctx.get()}) {
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  }
  Ssl server(SSL_new(sctx.get()));
  Ssl client(SSL_new(cctx.get()));
  BIO* sb = nullptr;
  BIO* cb = nullptr;
  if (!server || !client || BIO_new_bio_pair(&sb, 64 * 1024, &cb, 64 * 1024) != 1) return false;
  SSL_set_bio(server.get(), sb, sb);
  SSL_set_bio(client.get(), cb, cb);
  SSL_set_accept_state(server.get());
  SSL_set_connect_state(client.get());
  for (int i = 0; i < 100 && !(SSL_is_init_finished(server.get()) && SSL_is_init_finished(client.get()));
       ++i) {
    SSL_do_handshake(client.get());
    SSL_do_handshake(server.get());
  }
  const std::string msg(16 * 1024, 'x');
  std::string got(msg.size(), '\0');
  for (int r = 0; r < rounds; ++r) {
    for (auto [from, to] : {std::pair{client.get(), server.get()}, std::pair{server.get(), client.get()}}) {
      if (SSL_write(from, msg.data(), static_cast<int>(msg.size())) != static_cast<int>(msg.size()))
        return false;
      size_t have = 0;
      while (have < got.size()) {
        const int n = SSL_read(to, got.data() + have, static_cast<int>(got.size() - have));
        if (n <= 0) return false;
        have += static_cast<size_t>(n);
      }
      if (got != msg) return false;
    }
  }
  return true;
}

// What a fresh process checks after installing the cache like the worker
// does: 0 when both libraries' blocks came back from it, else which check
// failed.
int installed_cache_serves_both_libraries() {
  if (!install_block_cache()) return 10;  // OpenSSL allocated first
  const BlockCache* c = installed_block_cache();
  if (c == nullptr) return 11;
  test::TestPki pki;
  const auto pem = pki.server("localhost", {"localhost"});
  const size_t before = c->hits();
  if (!tls_exchange(pem, 20)) return 12;
  const size_t tls_hits = c->hits() - before;
  // libevent: a TLS read step's reservation, freed when drained.
  sys::CHandle<evbuffer, evbuffer_free> buf(evbuffer_new());
  for (int i = 0; i < 20; ++i) {
    evbuffer_iovec v[2];
    if (evbuffer_reserve_space(buf.get(), 32 * 1024 - 256, v, 2) < 1) return 13;
    v[0].iov_len = 100;
    evbuffer_commit_space(buf.get(), v, 1);
    evbuffer_drain(buf.get(), evbuffer_get_length(buf.get()));
  }
  const size_t event_hits = c->hits() - before - tls_hits;
  if (tls_hits < 20) return 14;    // 20 rounds, each freeing and taking record buffers
  if (event_hits < 19) return 15;  // every chain after the first
  if (c->held_bytes() > BlockCache::kBudget) return 16;
  return 0;
}

// The worker installs the cache first thing in main(). The "threadsafe"
// death test style re-executes this binary for the statement, so the child
// installs it before any OpenSSL or libevent call, as the worker does.
TEST(BlockCacheInstallTest, OpenSslAndLibeventBuffersComeFromTheCache) {
  if (sys::kAddressSanitizer)
    GTEST_SKIP() << "not installed under AddressSanitizer (it would hide use-after-free)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::_Exit(installed_cache_serves_both_libraries()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace huginn::worker::net
