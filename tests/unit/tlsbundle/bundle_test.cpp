// tls::Bundle codec: exact round trips and every malformed shape rejected
// (truncations at every offset, oversized lengths, bad magic/version,
// trailing bytes, duplicates).
#include "common/tls/bundle.h"

#include <gtest/gtest.h>

#include <string>

namespace huginn::tls {
namespace {

Bundle sample() {
  Bundle b;
  b.serial = 0x0102030405060708ULL;
  b.ticket_lifetime_secs = 7200;
  b.files = {{"/etc/huginn/cert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
             {"key.pem", std::string("\0\1\2binary", 9)},
             {"empty.pem", ""}};
  for (int i = 0; i < 3; ++i) {
    TicketKey k;
    k.name.fill(static_cast<uint8_t>(i + 1));
    k.aes_key.fill(static_cast<uint8_t>(0x10 + i));
    k.hmac_key.fill(static_cast<uint8_t>(0x20 + i));
    b.ticket_keys.push_back(k);
  }
  return b;
}

void put_u16(std::string& s, size_t off, uint16_t v) {
  s[off] = static_cast<char>(v & 0xff);
  s[off + 1] = static_cast<char>(v >> 8);
}
void put_u32(std::string& s, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Offsets in the encoding of a bundle whose first file has path `p0`.
constexpr size_t kFilesCountOff = 4 + 4 + 8 + 4;
constexpr size_t kFirstPathLenOff = kFilesCountOff + 2;

TEST(TlsBundle, RoundTripIsExact) {
  for (const Bundle& b : {Bundle{}, sample()}) {
    ASSERT_EQ(check(b), "");
    std::string err;
    auto d = decode(encode(b), &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(*d, b);
  }
}

TEST(TlsBundle, EncodingStartsWithMagicAndVersion) {
  const std::string e = encode(Bundle{});
  ASSERT_GE(e.size(), 8u);
  EXPECT_EQ(e.substr(0, 4), "HTLS");
  EXPECT_EQ(e.substr(4, 4), std::string("\1\0\0\0", 4));
  EXPECT_EQ(e.size(), 4u + 4 + 8 + 4 + 2 + 2);
}

TEST(TlsBundle, FindLooksUpByConfiguredPath) {
  const Bundle b = sample();
  ASSERT_NE(b.find("key.pem"), nullptr);
  EXPECT_EQ(b.find("key.pem")->pem.size(), 9u);
  EXPECT_EQ(b.find("nope"), nullptr);
}

TEST(TlsBundle, EveryTruncationIsRejected) {
  const std::string e = encode(sample());
  for (size_t n = 0; n < e.size(); ++n) {
    std::string err;
    EXPECT_FALSE(decode(std::string_view(e).substr(0, n), &err)) << "prefix of " << n << " bytes";
    EXPECT_FALSE(err.empty()) << n;
  }
}

TEST(TlsBundle, TrailingBytesAreRejected) {
  std::string e = encode(sample());
  e.push_back('\0');
  std::string err;
  EXPECT_FALSE(decode(e, &err));
  EXPECT_NE(err.find("trailing bytes"), std::string::npos) << err;
}

TEST(TlsBundle, BadMagicAndVersionAreRejected) {
  std::string err;
  std::string e = encode(sample());
  e[0] = 'X';
  EXPECT_FALSE(decode(e, &err));
  EXPECT_NE(err.find("bad magic"), std::string::npos) << err;
  e = encode(sample());
  put_u32(e, 4, 2);
  EXPECT_FALSE(decode(e, &err));
  EXPECT_NE(err.find("format version 2"), std::string::npos) << err;
}

TEST(TlsBundle, OversizedLengthsAreRejectedBeforeAllocation) {
  std::string err;
  {  // file count over the limit
    std::string e = encode(Bundle{});
    put_u16(e, kFilesCountOff, static_cast<uint16_t>(kMaxBundleFiles + 1));
    EXPECT_FALSE(decode(e, &err));
    EXPECT_NE(err.find("file count"), std::string::npos) << err;
  }
  {  // file count within the limit but past the end of the input
    std::string e = encode(Bundle{});
    put_u16(e, kFilesCountOff, 1000);
    EXPECT_FALSE(decode(e, &err));
    EXPECT_NE(err.find("file count"), std::string::npos) << err;
  }
  const Bundle b = sample();
  const size_t p0 = b.files[0].path.size();
  {  // path length over kMaxPathLength
    std::string e = encode(b);
    put_u16(e, kFirstPathLenOff, static_cast<uint16_t>(kMaxPathLength + 1));
    EXPECT_FALSE(decode(e, &err));
  }
  {  // PEM length over kMaxPemSize
    std::string e = encode(b);
    put_u32(e, kFirstPathLenOff + 2 + p0, static_cast<uint32_t>(kMaxPemSize + 1));
    EXPECT_FALSE(decode(e, &err));
    EXPECT_NE(err.find("over limit or past the end"), std::string::npos) << err;
  }
  {  // PEM length past the end
    std::string e = encode(b);
    put_u32(e, kFirstPathLenOff + 2 + p0, 0xffffffffu);
    EXPECT_FALSE(decode(e, &err));
  }
  {  // ticket key count over the limit / past the end
    std::string e = encode(Bundle{});
    put_u16(e, e.size() - 2, static_cast<uint16_t>(kMaxTicketKeys + 1));
    EXPECT_FALSE(decode(e, &err));
    EXPECT_NE(err.find("ticket key count"), std::string::npos) << err;
    put_u16(e, e.size() - 2, 1);
    EXPECT_FALSE(decode(e, &err));
  }
  {  // whole input over kMaxBundleSize
    std::string e(kMaxBundleSize + 1, '\0');
    EXPECT_FALSE(decode(e, &err));
    EXPECT_NE(err.find("encoding over"), std::string::npos) << err;
  }
}

TEST(TlsBundle, EmptyAndDuplicatePathsAreRejected) {
  std::string err;
  Bundle dup;
  dup.files = {{"a.pem", "1"}, {"a.pem", "2"}};
  EXPECT_NE(check(dup), "");
  EXPECT_FALSE(decode(encode(dup), &err));
  EXPECT_NE(err.find("duplicate file a.pem"), std::string::npos) << err;
  Bundle empty;
  empty.files = {{"", "x"}};
  EXPECT_NE(check(empty), "");
  EXPECT_FALSE(decode(encode(empty), &err));
  EXPECT_NE(err.find("empty path"), std::string::npos) << err;
}

TEST(TlsBundle, CheckRejectsWhatCannotBeDecoded) {
  Bundle b;
  b.files = {{std::string(kMaxPathLength + 1, 'p'), ""}};
  EXPECT_NE(check(b), "");
  b.files = {{"big.pem", std::string(kMaxPemSize + 1, 'x')}};
  EXPECT_NE(check(b), "");
  b.files.clear();
  b.ticket_keys.resize(kMaxTicketKeys + 1);
  EXPECT_NE(check(b), "");
  b.ticket_keys.resize(kMaxTicketKeys);
  EXPECT_EQ(check(b), "");
  std::string err;
  EXPECT_TRUE(decode(encode(b), &err)) << err;
}

}  // namespace
}  // namespace huginn::tls
