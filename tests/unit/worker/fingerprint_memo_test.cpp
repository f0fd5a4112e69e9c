// FingerprintMemo: the memoized path gives exactly what computing every time
// gives (the same interned value set), across slot collisions and different
// base sets; repeated inputs hit.
#include "worker/proxy/fingerprint_memo.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/fingerprint/ja4.h"
#include "common/fingerprint/p0f.h"

namespace huginn::worker::proxy {
namespace {

using K = ConnectionFingerprints;

fp::ClientHello hello(uint16_t first_cipher, uint16_t sigalg, const std::string& alpn) {
  fp::ClientHello ch;
  ch.legacy_version = 0x0303;
  ch.cipher_suites = {first_cipher, 0x1301, 0x1302};
  for (const uint16_t t : {0x0000, 0x0010, 0x000d, 0x002b, 0x0033}) ch.extensions.push_back({t, {}});
  ch.has_sni_ext = true;
  ch.alpn = {alpn};
  ch.has_supported_versions_ext = true;
  ch.supported_versions = {0x0304};
  ch.signature_algorithms = {sigalg, 0x0804};
  return ch;
}

fp::SynFields syn(uint8_t ttl, uint16_t window, uint32_t seq) {
  fp::SynFields s;
  s.ttl = ttl;
  s.df = true;
  s.ip_id = 1;
  s.window = window;
  s.seq = seq;
  s.tcp_flags = fp::kTcpSyn;
  const uint8_t opts[] = {0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07};
  std::copy(std::begin(opts), std::end(opts), s.tcp_options.begin());
  s.tcp_options_len = sizeof opts;
  return s;
}

// What the worker did before the memo.
K direct(const fp::SynFields* s, const fp::ClientHello* ch) {
  K f;
  if (s) f.set(K::kTcp, fp::p0f_raw_sig(*s));
  if (ch) {
    const fp::Ja4Set j = fp::compute_ja4(*ch);
    f.set({{K::kJa4, j.ja4}, {K::kJa4R, j.ja4_r}, {K::kJa4O, j.ja4_o}, {K::kJa4Or, j.ja4_or}});
  }
  return f;
}

TEST(FingerprintMemoTest, RepeatedInputsHitAndGiveTheSameSet) {
  FingerprintMemo memo;
  const fp::ClientHello ch = hello(0x1303, 0x0403, "h2");
  const K a = memo.with_ja4(memo.with_tcp(K(), syn(64, 64240, 1)), ch);
  EXPECT_EQ(memo.misses(), 2u);
  // Another connection of the same client: another sequence number.
  const K b = memo.with_ja4(memo.with_tcp(K(), syn(64, 64240, 99)), ch);
  EXPECT_EQ(memo.hits(), 2u);
  EXPECT_EQ(a.identity(), b.identity());
  const fp::SynFields s = syn(64, 64240, 5);
  const K d = direct(&s, &ch);
  EXPECT_EQ(d.identity(), a.identity());  // interned: equal values, one set
  EXPECT_EQ(*b.get(K::kTcp), fp::p0f_raw_sig(s));
  EXPECT_EQ(*b.get(K::kJa4), fp::compute_ja4(ch).ja4);
}

TEST(FingerprintMemoTest, TheBaseSetIsPartOfTheKey) {
  FingerprintMemo memo;
  const fp::ClientHello ch = hello(0x1303, 0x0403, "h2");
  const K linux_base = memo.with_tcp(K(), syn(64, 64240, 1));
  const K windows_base = memo.with_tcp(K(), syn(128, 65535, 1));
  const K a = memo.with_ja4(linux_base, ch);
  const K b = memo.with_ja4(windows_base, ch);
  const K c = memo.with_ja4(K(), ch);
  EXPECT_EQ(a.get(K::kTcp), linux_base.get(K::kTcp));
  EXPECT_EQ(b.get(K::kTcp), windows_base.get(K::kTcp));
  EXPECT_FALSE(c.has(K::kTcp));
  EXPECT_EQ(a.get(K::kJa4), c.get(K::kJa4));
}

// Many distinct clients in random order: more keys than slots, so entries are
// replaced all the time; every result must still equal the direct one.
TEST(FingerprintMemoTest, AgreesWithDirectComputationUnderCollisions) {
  FingerprintMemo memo;
  const size_t sets_before = K::interned();
  std::mt19937 rng(3);
  const std::vector<std::string> alpns = {"h2", "http/1.1"};
  for (int n = 0; n < 20000; ++n) {
    const fp::SynFields s = syn(static_cast<uint8_t>(60 + rng() % 10),
                                static_cast<uint16_t>(1460 * (rng() % 12)), static_cast<uint32_t>(rng()));
    const fp::ClientHello ch =
        hello(static_cast<uint16_t>(0xc000 + rng() % 12), static_cast<uint16_t>(rng() % 4), alpns[rng() % 2]);
    const bool with_syn = rng() % 5 != 0;
    const K base = with_syn ? memo.with_tcp(K(), s) : K();
    const K got = memo.with_ja4(base, ch);
    const K want = direct(with_syn ? &s : nullptr, &ch);
    ASSERT_EQ(got.identity(), want.identity()) << "connection " << n;
  }
  EXPECT_GT(memo.hits(), 1000u);
  EXPECT_GT(memo.misses(), 1000u);
  // The memo keeps at most two sets alive per slot.
  EXPECT_LE(K::interned(), sets_before + 2 * FingerprintMemo::kSlots);
}

// A client's connections alternate two keys (its SYN's and its
// ClientHello's), and so do two clients of one kind: any two keys must stay
// together, even when they hash to the same set. Direct-mapped, 1 pair in 64
// evicted each other on every lookup (the metrics integration test met one).
TEST(FingerprintMemoTest, AnyTwoAlternatingKeysBothStay) {
  std::mt19937 rng(11);
  for (int pair = 0; pair < 2000; ++pair) {
    FingerprintMemo memo;
    const fp::SynFields a = syn(static_cast<uint8_t>(rng() % 256), static_cast<uint16_t>(rng()), 1);
    const fp::SynFields b = syn(static_cast<uint8_t>(rng() % 256), static_cast<uint16_t>(rng()), 2);
    if (fp::p0f_raw_sig(a) == fp::p0f_raw_sig(b)) continue;
    for (int round = 0; round < 3; ++round) {
      memo.with_tcp(K(), a);
      memo.with_tcp(K(), b);
    }
    ASSERT_EQ(memo.misses(), 2u) << "pair " << pair << ": " << fp::p0f_raw_sig(a) << " / "
                                 << fp::p0f_raw_sig(b);
  }
}

TEST(FingerprintMemoTest, OversizedKeysAreComputedEveryTime) {
  FingerprintMemo memo;
  fp::ClientHello ch = hello(0x1303, 0x0403, "h2");
  ch.cipher_suites.assign(FingerprintMemo::kMaxKey, 0x1301);  // key > kMaxKey bytes
  const K a = memo.with_ja4(K(), ch);
  const K b = memo.with_ja4(K(), ch);
  EXPECT_EQ(memo.hits(), 0u);
  EXPECT_EQ(a.identity(), b.identity());
  EXPECT_EQ(*a.get(K::kJa4R), fp::compute_ja4(ch).ja4_r);
}

}  // namespace
}  // namespace huginn::worker::proxy
