#include "common/fingerprint/ja4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common/fingerprint/sha256.h"

namespace huginn::fp {
namespace {

ClientHello::Extension ext(uint16_t type) { return ClientHello::Extension{type, {}}; }

// A TLS 1.3 hello with FoxIO's worked-example lists (JA4.md).
ClientHello worked_example() {
  ClientHello ch;
  ch.legacy_version = 0x0303;
  ch.cipher_suites = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
                      0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
  for (uint16_t t : {0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x000d, 0x0012, 0x0033,
                     0x002d, 0x002b, 0x001b, 0x4469, 0x0015})
    ch.extensions.push_back(ext(t));
  ch.has_extensions_block = true;
  ch.has_sni_ext = true;
  ch.sni = "example.com";
  ch.has_alpn_ext = true;
  ch.alpn = {"h2", "http/1.1"};
  ch.has_supported_versions_ext = true;
  ch.supported_versions = {0x0304, 0x0303};
  ch.signature_algorithms = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
  return ch;
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex12("abc"), "ba7816bf8f01");
  EXPECT_EQ(sha256_hex12(""), "000000000000");
}

TEST(Ja4Test, FoxIoWorkedExample) {
  const Ja4Set j = compute_ja4(worked_example());
  EXPECT_EQ(j.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
  EXPECT_EQ(j.ja4_r,
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
            "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_"
            "0403,0804,0401,0503,0805,0501,0806,0601");
  EXPECT_EQ(j.ja4_or,
            "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_"
            "0000,0017,ff01,000a,000b,0023,0010,0005,000d,0012,0033,002d,002b,001b,4469,0015_"
            "0403,0804,0401,0503,0805,0501,0806,0601");
  // JA4_o hashes the wire-order lists, SNI and ALPN included.
  EXPECT_EQ(j.ja4_o,
            "t13d1516h2_" +
                sha256_hex12("1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035") +
                "_" +
                sha256_hex12("0000,0017,ff01,000a,000b,0023,0010,0005,000d,0012,0033,002d,002b,001b,4469,"
                             "0015_0403,0804,0401,0503,0805,0501,0806,0601"));
  EXPECT_EQ(ja4_a(worked_example()), "t13d1516h2");
}

TEST(Ja4Test, GreaseIgnoredEverywhere) {
  ClientHello plain = worked_example();
  ClientHello greased = plain;
  greased.cipher_suites.insert(greased.cipher_suites.begin(), 0x0a0a);
  greased.cipher_suites.push_back(0xfafa);
  greased.extensions.insert(greased.extensions.begin(), ext(0x1a1a));
  greased.extensions.push_back(ext(0x2a2a));
  greased.supported_versions.insert(greased.supported_versions.begin(), 0x3a3a);
  greased.signature_algorithms.insert(greased.signature_algorithms.begin() + 2, 0x4a4a);
  const Ja4Set a = compute_ja4(plain);
  const Ja4Set b = compute_ja4(greased);
  EXPECT_EQ(a.ja4, b.ja4);
  EXPECT_EQ(a.ja4_r, b.ja4_r);
  EXPECT_EQ(a.ja4_o, b.ja4_o);
  EXPECT_EQ(a.ja4_or, b.ja4_or);

  // A hello whose supported_versions only holds GREASE falls back to legacy_version.
  ClientHello only_grease = plain;
  only_grease.supported_versions = {0x5a5a};
  only_grease.legacy_version = 0x0302;
  EXPECT_EQ(ja4_a(only_grease).substr(1, 2), "11");
}

TEST(Ja4Test, CountsCapAt99ButHashesUseAllValues) {
  ClientHello ch = worked_example();
  ch.cipher_suites.clear();
  for (uint16_t c = 1; c <= 120; ++c) ch.cipher_suites.push_back(c);
  ch.cipher_suites.push_back(0x0a0a);
  ch.extensions.clear();
  for (uint16_t t = 0x0100; t < 0x0100 + 110; ++t) ch.extensions.push_back(ext(t));
  ch.signature_algorithms.clear();
  const Ja4Set j = compute_ja4(ch);
  EXPECT_EQ(j.ja4.substr(0, 10), "t13d9999h2");
  std::string all_ciphers;
  for (uint16_t c = 1; c <= 120; ++c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%s%04x", c == 1 ? "" : ",", c);
    all_ciphers += buf;
  }
  EXPECT_EQ(j.ja4.substr(11, 12), sha256_hex12(all_ciphers));
  EXPECT_EQ(std::count(j.ja4_r.begin(), j.ja4_r.end(), ','), 119 + 109);

  ch.cipher_suites.resize(99);
  ch.extensions.resize(98);
  EXPECT_EQ(ja4_a(ch).substr(4, 4), "9998");
  ch.cipher_suites.resize(5);
  ch.extensions.resize(0);
  EXPECT_EQ(ja4_a(ch).substr(4, 4), "0500");
}

TEST(Ja4Test, EmptyListsGiveZeroHashes) {
  ClientHello ch;
  ch.legacy_version = 0x0303;
  Ja4Set j = compute_ja4(ch);
  EXPECT_EQ(j.ja4, "t12i000000_000000000000_000000000000");
  EXPECT_EQ(j.ja4_r, "t12i000000__");
  EXPECT_EQ(j.ja4_o, "t12i000000_000000000000_000000000000");
  EXPECT_EQ(j.ja4_or, "t12i000000__");

  // Only SNI and ALPN: the sorted list is empty (zeros), the wire-order list is
  // "0000,0010" and is hashed (spec; FoxIO's Python prints zeros).
  ch.extensions = {ext(0x0000), ext(0x0010)};
  ch.has_sni_ext = true;
  ch.has_alpn_ext = true;
  ch.alpn = {"h2"};
  ch.cipher_suites = {0x1301};
  j = compute_ja4(ch);
  EXPECT_EQ(j.ja4, "t12d0102h2_" + sha256_hex12("1301") + "_000000000000");
  EXPECT_EQ(j.ja4_r, "t12d0102h2_1301_");
  EXPECT_EQ(j.ja4_o, "t12d0102h2_" + sha256_hex12("1301") + "_" + sha256_hex12("0000,0010"));
  EXPECT_EQ(j.ja4_or, "t12d0102h2_1301_0000,0010");

  // Only GREASE values: everything counts as empty.
  ch = ClientHello{};
  ch.legacy_version = 0x0303;
  ch.cipher_suites = {0x0a0a};
  ch.extensions = {ext(0x1a1a)};
  ch.signature_algorithms = {0x2a2a};
  j = compute_ja4(ch);
  EXPECT_EQ(j.ja4, "t12i000000_000000000000_000000000000");
  EXPECT_EQ(j.ja4_r, "t12i000000__");
}

TEST(Ja4Test, SignatureAlgorithmsPart) {
  ClientHello ch;
  ch.legacy_version = 0x0303;
  ch.cipher_suites = {0x1301};
  ch.extensions = {ext(0x000d), ext(0x000a)};
  ch.signature_algorithms = {0x0601, 0x0403, 0x0601, 0x0201, 0x0804};  // wire order, dupes kept
  Ja4Set j = compute_ja4(ch);
  EXPECT_EQ(j.ja4_r, "t12i010200_1301_000a,000d_0601,0403,0601,0201,0804");
  EXPECT_EQ(j.ja4.substr(24), sha256_hex12("000a,000d_0601,0403,0601,0201,0804"));
  EXPECT_EQ(j.ja4_or, "t12i010200_1301_000d,000a_0601,0403,0601,0201,0804");

  ch.signature_algorithms.clear();  // no "_" part at all
  j = compute_ja4(ch);
  EXPECT_EQ(j.ja4_r, "t12i010200_1301_000a,000d");
  EXPECT_EQ(j.ja4.substr(24), sha256_hex12("000a,000d"));
}

struct AlpnCase {
  std::string value;
  const char* want;
};

TEST(Ja4Test, AlpnCharacters) {
  const AlpnCase cases[] = {
      {"h2", "h2"},
      {"http/1.1", "h1"},
      {"h2c", "hc"},
      {"h", "hh"},
      {"", "00"},
      {"H", "HH"},
      {"9", "99"},
      {"spdy/3", "s3"},
      {"\xab", "ab"},
      {"\x20", "20"},
      {"\xab\xcd", "ad"},
      {"\x20\x61", "21"},
      {"\x61\x20", "60"},
      {"\x30\xab", "3b"},
      {"\x30\x31\xab\xcd", "3d"},
      {"\x30\xab\xcd\x31", "01"},
      {"a-b", "ab"},
      {"-", "2d"},
      {std::string(1, '\0'), "00"},
      {std::string("\x00\xff", 2), "0f"},
      {"\xff", "ff"},
      {"a\xff", "6f"},
  };
  for (const AlpnCase& c : cases) {
    SCOPED_TRACE(c.value);
    EXPECT_EQ(ja4_alpn_chars(c.value), c.want);
    ClientHello ch;
    ch.legacy_version = 0x0303;
    ch.has_alpn_ext = true;
    ch.alpn = {c.value, "h2"};
    EXPECT_EQ(ja4_a(ch).substr(8), c.want);
  }
  ClientHello ch;
  ch.legacy_version = 0x0303;
  EXPECT_EQ(ja4_a(ch).substr(8), "00");  // no ALPN extension
  ch.has_alpn_ext = true;
  EXPECT_EQ(ja4_a(ch).substr(8), "00");  // empty protocol list
}

TEST(Ja4Test, SniFlag) {
  ClientHello ch;
  ch.legacy_version = 0x0303;
  EXPECT_EQ(ja4_a(ch)[3], 'i');
  ch.has_sni_ext = true;  // empty SNI extension still counts
  EXPECT_EQ(ja4_a(ch)[3], 'd');
  ch.sni = "127.0.0.1";
  EXPECT_EQ(ja4_a(ch)[3], 'd');
}

struct VersionCase {
  uint16_t legacy;
  bool has_sv;
  std::vector<uint16_t> sv;
  const char* want;
};

TEST(Ja4Test, VersionSelection) {
  const VersionCase cases[] = {
      {0x0303, false, {}, "12"},
      {0x0302, false, {}, "11"},
      {0x0301, false, {}, "10"},
      {0x0300, false, {}, "s3"},
      {0x0002, false, {}, "s2"},
      {0xfeff, false, {}, "d1"},
      {0xfefd, false, {}, "d2"},
      {0xfefc, false, {}, "d3"},
      {0x0305, false, {}, "00"},
      {0x0303, true, {0x0304, 0x0303}, "13"},
      {0x0303, true, {0x0301, 0x0304, 0x0302}, "13"},
      {0x0303, true, {0x0303}, "12"},
      {0x0301, true, {0x0302}, "11"},
      {0x0303, true, {0x0305, 0x0304}, "00"},
      {0x0303, true, {0x7a7a, 0x0304}, "13"},
      {0x0301, true, {}, "10"},
      {0x0301, true, {0x8a8a}, "10"},
  };
  for (const VersionCase& c : cases) {
    ClientHello ch;
    ch.legacy_version = c.legacy;
    ch.has_supported_versions_ext = c.has_sv;
    ch.supported_versions = c.sv;
    EXPECT_EQ(ja4_a(ch).substr(1, 2), c.want) << std::hex << c.legacy;
  }
}

TEST(Ja4Test, TransportCharacter) {
  const ClientHello ch = worked_example();
  EXPECT_EQ(compute_ja4(ch).ja4[0], 't');
  EXPECT_EQ(compute_ja4(ch, 'q').ja4[0], 'q');
  EXPECT_EQ(compute_ja4(ch, 'q').ja4_or[0], 'q');
  EXPECT_EQ(compute_ja4(ch, 'd').ja4_r[0], 'd');
}

TEST(Ja4Test, DuplicateExtensionsCountAndAppearInLists) {
  ClientHello ch;
  ch.legacy_version = 0x0303;
  ch.cipher_suites = {0x1301};
  ch.extensions = {ext(0x0017), ext(0x000a), ext(0x0017)};
  const Ja4Set j = compute_ja4(ch);
  EXPECT_EQ(j.ja4_r, "t12i010300_1301_000a,0017,0017");
  EXPECT_EQ(j.ja4_or, "t12i010300_1301_0017,000a,0017");
}

}  // namespace
}  // namespace huginn::fp
