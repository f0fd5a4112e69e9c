// The memo keys of the fingerprint computations (fp::ja4_input_key,
// fp::p0f_canonical / fp::p0f_input_key): what varies per connection is not
// in a key, everything the computation reads is, and equal keys always mean
// equal fingerprints (checked on many random inputs drawn from small
// alphabets, so that keys collide often).
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/fingerprint/ja4.h"
#include "common/fingerprint/p0f.h"

namespace huginn::fp {
namespace {

std::string ja4_key(const ClientHello& ch, char transport = 't') {
  std::string k;
  ja4_input_key(ch, transport, k);
  return k;
}

std::string p0f_key(const SynFields& s) {
  std::string k;
  p0f_input_key(s, k);
  return k;
}

auto tie(const Ja4Set& j) { return std::tie(j.ja4, j.ja4_r, j.ja4_o, j.ja4_or); }

ClientHello browser_hello() {
  ClientHello ch;
  ch.legacy_version = 0x0303;
  ch.cipher_suites = {0x3a3a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8};
  for (const uint16_t t : {0x2a2a, 0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x000d,
                           0x0012, 0x0033, 0x002d, 0x002b, 0x001b, 0x4a4a})
    ch.extensions.push_back({t, {0x01, 0x02}});
  ch.has_extensions_block = true;
  ch.has_sni_ext = true;
  ch.sni = "www.example.com";
  ch.has_alpn_ext = true;
  ch.alpn = {"h2", "http/1.1"};
  ch.has_supported_versions_ext = true;
  ch.supported_versions = {0x5a5a, 0x0304, 0x0303};
  ch.signature_algorithms = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
  return ch;
}

TEST(Ja4InputKeyTest, PerConnectionValuesAreNotInTheKey) {
  const ClientHello a = browser_hello();
  ClientHello b = a;
  b.sni = "other.example.org";
  for (auto& e : b.extensions) e.body = {0xff, 0xee, 0xdd};  // key shares, tickets, padding...
  b.alpn.push_back("h3");                                    // JA4 reads the first value only
  EXPECT_EQ(ja4_key(a), ja4_key(b));
  EXPECT_TRUE(tie(compute_ja4(a)) == tie(compute_ja4(b)));
}

TEST(Ja4InputKeyTest, EveryInputChangesTheKey) {
  const ClientHello base = browser_hello();
  const std::string k0 = ja4_key(base);
  const std::vector<void (*)(ClientHello&)> mutations = {
      [](ClientHello& c) { c.legacy_version = 0x0301; },
      [](ClientHello& c) { c.has_supported_versions_ext = false; },
      [](ClientHello& c) { c.supported_versions.pop_back(); },
      [](ClientHello& c) { c.has_sni_ext = false; },
      [](ClientHello& c) { c.alpn.front() = "h3"; },
      [](ClientHello& c) { c.alpn.clear(); },
      [](ClientHello& c) { std::swap(c.cipher_suites[1], c.cipher_suites[2]); },
      [](ClientHello& c) { c.cipher_suites.pop_back(); },
      [](ClientHello& c) { std::swap(c.extensions[2].type, c.extensions[3].type); },
      [](ClientHello& c) { c.extensions.pop_back(); },
      [](ClientHello& c) { c.signature_algorithms.back() = 0x0201; },
      // A value moved from one list to the next: the lengths tell them apart.
      [](ClientHello& c) {
        c.signature_algorithms.insert(c.signature_algorithms.begin(), c.cipher_suites.back());
        c.cipher_suites.pop_back();
      },
  };
  for (size_t i = 0; i < mutations.size(); ++i) {
    ClientHello m = base;
    mutations[i](m);
    EXPECT_NE(ja4_key(m), k0) << "mutation " << i;
  }
  EXPECT_NE(ja4_key(base, 'q'), k0);
}

// Random hellos from small alphabets: many share a key; every pair that does
// has the same JA4 set. (Dropping any input from the key fails this.)
TEST(Ja4InputKeyTest, EqualKeysMeanEqualFingerprints) {
  std::mt19937 rng(20261201);
  const auto pick = [&rng](auto const& v) { return v[rng() % v.size()]; };
  const std::vector<uint16_t> ciphers = {0x1301, 0x1302, 0xc02b, 0x0a0a};
  const std::vector<uint16_t> exts = {0x0000, 0x0010, 0x000d, 0x002b, 0x1a1a};
  const std::vector<uint16_t> versions = {0x0301, 0x0303, 0x0304, 0x2a2a};
  const std::vector<std::string> alpns = {"h2", "http/1.1", "\x01x", ""};
  std::map<std::string, Ja4Set> seen;
  size_t repeats = 0;
  for (int n = 0; n < 20000; ++n) {
    ClientHello ch;
    ch.legacy_version = pick(versions);
    for (unsigned i = rng() % 3; i > 0; --i) ch.cipher_suites.push_back(pick(ciphers));
    for (unsigned i = rng() % 3; i > 0; --i) ch.extensions.push_back({pick(exts), {}});
    ch.has_sni_ext = rng() % 2;
    ch.has_supported_versions_ext = rng() % 2;
    for (unsigned i = rng() % 2; i > 0; --i) ch.supported_versions.push_back(pick(versions));
    for (unsigned i = rng() % 2; i > 0; --i) ch.alpn.push_back(pick(alpns));
    for (unsigned i = rng() % 2; i > 0; --i) ch.signature_algorithms.push_back(pick(ciphers));
    const char transport = rng() % 4 == 0 ? 'q' : 't';
    const Ja4Set j = compute_ja4(ch, transport);
    const auto [it, fresh] = seen.emplace(ja4_key(ch, transport), j);
    if (!fresh) {
      ++repeats;
      ASSERT_TRUE(tie(it->second) == tie(j)) << it->second.ja4_r << " vs " << j.ja4_r;
    }
  }
  EXPECT_GT(repeats, 2000u);  // the alphabets are small enough to test something
}

// Linux's SYN: mss 1460, sok, ts, nop, ws 7.
SynFields linux_syn() {
  SynFields s;
  s.ttl = 64;
  s.ip_id = 0x1234;
  s.df = true;
  s.window = 64240;
  s.seq = 0x11223344;
  s.tcp_flags = kTcpSyn;
  const uint8_t opts[] = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x01, 0x02,
                          0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07};
  std::copy(std::begin(opts), std::end(opts), s.tcp_options.begin());
  s.tcp_options_len = sizeof opts;
  return s;
}

TEST(P0fCanonicalTest, PerConnectionValuesAreNotInTheKey) {
  const SynFields a = linux_syn();
  SynFields b = a;
  b.seq = 0xdeadbeef;
  b.ip_id = 0x4321;
  b.mf = true;
  for (size_t i = 8; i < 12; ++i) b.tcp_options[i] = static_cast<uint8_t>(0x90 + i);  // TSval
  b.tcp_options[30] = 0x55;                                                           // past the options
  EXPECT_EQ(p0f_key(a), p0f_key(b));
  EXPECT_EQ(p0f_raw_sig(a), p0f_raw_sig(b));
}

TEST(P0fCanonicalTest, WhatTheSignatureShowsChangesTheKey) {
  const SynFields base = linux_syn();
  const std::string k0 = p0f_key(base);
  const std::vector<void (*)(SynFields&)> mutations = {
      [](SynFields& s) { s.ttl = 63; },
      [](SynFields& s) { s.window = 65535; },
      [](SynFields& s) { s.tcp_options[3] = 0xa8; },   // mss 1448
      [](SynFields& s) { s.tcp_options[19] = 0x08; },  // ws 8
      [](SynFields& s) { s.tcp_options[8] = s.tcp_options[9] = s.tcp_options[10] = s.tcp_options[11] = 0; },
      [](SynFields& s) { s.tcp_options[15] = 1; },  // TSecr non-zero: ts2+
      [](SynFields& s) { s.ip_id = 0; },
      [](SynFields& s) { s.df = false; },
      [](SynFields& s) { s.seq = 0; },
      [](SynFields& s) { s.ack = 7; },
      [](SynFields& s) { s.tos = 1; },
      [](SynFields& s) { s.payload_len = 3; },
      [](SynFields& s) { s.tcp_flags |= kTcpEce; },
      [](SynFields& s) { s.tcp_options_len = 16; },
  };
  for (size_t i = 0; i < mutations.size(); ++i) {
    SynFields m = base;
    mutations[i](m);
    EXPECT_NE(p0f_key(m), k0) << "mutation " << i;
  }
}

// Random SYNs, options assembled from well-formed and broken pieces.
SynFields random_syn(std::mt19937& rng, bool small) {
  const auto r = [&rng](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  SynFields s;
  s.ip_version = r(5) == 0 ? 6 : (r(20) == 0 ? 5 : 4);
  s.ttl = small ? static_cast<uint8_t>(60 + r(6)) : static_cast<uint8_t>(r(256));
  s.ip_id = small ? static_cast<uint16_t>(r(3)) : static_cast<uint16_t>(r(65536));
  s.df = r(2);
  s.mf = r(2);
  s.reserved_bit = r(8) == 0;
  s.tos = static_cast<uint8_t>(r(256));
  s.ip_options_len = static_cast<uint8_t>(r(3) * 4);
  s.flow_label = r(3) == 0 ? 0 : static_cast<uint32_t>(rng());
  s.window = small ? static_cast<uint16_t>(r(3) * 1460) : static_cast<uint16_t>(r(65536));
  s.seq = r(4) == 0 ? 0 : static_cast<uint32_t>(rng());
  s.ack = r(4) == 0 ? 0 : static_cast<uint32_t>(rng());
  s.urg_ptr = r(4) == 0 ? static_cast<uint16_t>(r(65536)) : 0;
  s.tcp_flags = static_cast<uint8_t>(r(3) == 0 ? r(256) : kTcpSyn);
  s.tcp_reserved = static_cast<uint8_t>(r(16));
  s.payload_len = r(4) == 0 ? r(100) : 0;
  size_t n = 0;
  const auto put = [&](uint8_t v) {
    if (n < kMaxTcpOptions) s.tcp_options[n++] = v;
  };
  for (uint32_t pieces = r(6); pieces > 0; --pieces) {
    switch (r(9)) {
      case 0:
        put(1);
        break;  // nop
      case 1:
        put(2);
        put(r(8) == 0 ? 5 : 4);
        put(5);
        put(small ? 0xb4 : static_cast<uint8_t>(r(256)));
        break;
      case 2:
        put(3);
        put(3);
        put(static_cast<uint8_t>(small ? 7 : r(20)));
        break;  // ws
      case 3:
        put(4);
        put(2);
        break;   // sok
      case 4: {  // ts, values random or zero
        put(8);
        put(r(8) == 0 ? 9 : 10);
        for (int i = 0; i < 8; ++i) put(r(3) == 0 ? 0 : static_cast<uint8_t>(rng()));
        break;
      }
      case 5: {  // sack with a random body
        const uint32_t len = r(4) == 0 ? r(40) : 10;
        put(5);
        put(static_cast<uint8_t>(len));
        for (uint32_t i = 2; i < len; ++i) put(static_cast<uint8_t>(rng()));
        break;
      }
      case 6: {  // an unknown option (TFO cookie, MPTCP...) with a random body
        const uint32_t len = 2 + r(10);
        put(static_cast<uint8_t>(r(2) ? 34 : 30));
        put(static_cast<uint8_t>(r(8) == 0 ? r(50) : len));
        for (uint32_t i = 2; i < len; ++i) put(static_cast<uint8_t>(rng()));
        break;
      }
      case 7:
        put(0);
        for (uint32_t i = r(4); i > 0; --i) put(r(4) == 0 ? 1 : 0);
        break;  // eol + padding
      default:
        put(static_cast<uint8_t>(rng()));
        break;  // a stray byte
    }
  }
  s.tcp_options_len = static_cast<uint8_t>(r(10) == 0 ? r(64) : n);  // now and then past the array
  if (!small)
    for (size_t i = n; i < kMaxTcpOptions; ++i) s.tcp_options[i] = static_cast<uint8_t>(rng());
  return s;
}

TEST(P0fCanonicalTest, SameSignatureAndIdempotent) {
  std::mt19937 rng(7);
  for (int n = 0; n < 50000; ++n) {
    const SynFields s = random_syn(rng, false);
    const SynFields c = p0f_canonical(s);
    ASSERT_EQ(p0f_raw_sig(c), p0f_raw_sig(s)) << "case " << n;
    ASSERT_EQ(p0f_key(c), p0f_key(s)) << "case " << n;
  }
}

TEST(P0fCanonicalTest, EqualKeysMeanEqualSignatures) {
  std::mt19937 rng(11);
  std::map<std::string, std::string> seen;
  size_t repeats = 0;
  for (int n = 0; n < 50000; ++n) {
    const SynFields s = random_syn(rng, true);
    const std::string sig = p0f_raw_sig(s);
    const auto [it, fresh] = seen.emplace(p0f_key(s), sig);
    if (!fresh) {
      ++repeats;
      ASSERT_EQ(it->second, sig) << "case " << n;
    }
  }
  EXPECT_GT(repeats, 500u);
}

}  // namespace
}  // namespace huginn::fp
