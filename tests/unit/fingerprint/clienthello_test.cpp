#include "common/fingerprint/clienthello.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/fingerprint/hello_builder.h"

namespace huginn::fp {
namespace {

using namespace huginn::fp::testing;  // NOLINT(build/namespaces)
using Status = ClientHelloParse::Status;

ClientHelloParse parse(const Bytes& b) { return parse_client_hello(b.data(), b.size()); }

TEST(ClientHelloTest, ParsesAllFields) {
  HelloSpec s;
  s.legacy_version = 0x0303;
  s.ciphers = {0x0a0a, 0x1301, 0xc02f, 0x00ff};
  s.extensions = {
      {0x1a1a, {}},
      {0x0000, sni_body("example.com")},
      {0x0017, {}},
      {0x0010, alpn_body({"h2", "http/1.1"})},
      {0x000d, u16_list_body16({0x0403, 0x2a2a, 0x0804})},
      {0x002b, u16_list_body8({0x3a3a, 0x0304, 0x0303})},
  };
  const Bytes wire = hello_record(s);
  const ClientHelloParse p = parse(wire);
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_TRUE(p.error.empty());
  EXPECT_EQ(p.consumed, wire.size());
  const ClientHello& h = p.hello;
  EXPECT_EQ(h.legacy_version, 0x0303);
  EXPECT_EQ(h.cipher_suites, (std::vector<uint16_t>{0x0a0a, 0x1301, 0xc02f, 0x00ff}));
  ASSERT_EQ(h.extensions.size(), 6u);
  const std::vector<uint16_t> types = {0x1a1a, 0x0000, 0x0017, 0x0010, 0x000d, 0x002b};
  for (size_t i = 0; i < types.size(); ++i) {
    EXPECT_EQ(h.extensions[i].type, types[i]);
    EXPECT_EQ(h.extensions[i].body, s.extensions[i].body);
  }
  EXPECT_TRUE(h.has_extensions_block);
  EXPECT_TRUE(h.has_sni_ext);
  EXPECT_EQ(h.sni, "example.com");
  EXPECT_TRUE(h.has_alpn_ext);
  EXPECT_EQ(h.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_TRUE(h.has_supported_versions_ext);
  EXPECT_EQ(h.supported_versions, (std::vector<uint16_t>{0x3a3a, 0x0304, 0x0303}));
  EXPECT_EQ(h.signature_algorithms, (std::vector<uint16_t>{0x0403, 0x2a2a, 0x0804}));
}

TEST(ClientHelloTest, GreaseValues) {
  int n = 0;
  for (uint32_t v = 0; v <= 0xffff; ++v) {
    if (is_grease(static_cast<uint16_t>(v))) {
      ++n;
      EXPECT_EQ(v & 0x0f0f, 0x0a0au);
      EXPECT_EQ(v >> 8, v & 0xff);
    }
  }
  EXPECT_EQ(n, 16);
  EXPECT_TRUE(is_grease(0x0a0a));
  EXPECT_TRUE(is_grease(0xfafa));
  EXPECT_FALSE(is_grease(0x0a1a));
  EXPECT_FALSE(is_grease(0x1a0a));
  EXPECT_FALSE(is_grease(0x0b0b));
}

TEST(ClientHelloTest, NoExtensionsBlockAndEmptyBlock) {
  HelloSpec s;
  s.with_extensions_block = false;
  ClientHelloParse p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_FALSE(p.hello.has_extensions_block);
  EXPECT_TRUE(p.hello.extensions.empty());
  EXPECT_FALSE(p.hello.has_sni_ext);

  s.with_extensions_block = true;
  s.extensions.clear();
  p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_TRUE(p.hello.has_extensions_block);
  EXPECT_TRUE(p.hello.extensions.empty());
}

TEST(ClientHelloTest, EmptyCipherListAndEmptySessionId) {
  HelloSpec s;
  s.ciphers.clear();
  s.session_id.clear();
  const ClientHelloParse p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_TRUE(p.hello.cipher_suites.empty());
}

struct SniCase {
  const char* name;
  Bytes body;
  std::string want_sni;
};

TEST(ClientHelloTest, SniVariants) {
  Bytes other_then_host;  // name_type 1 entry first, then a host_name
  put16(other_then_host, 3 + 2 + 3 + 4);
  put8(other_then_host, 1);
  put16(other_then_host, 2);
  other_then_host.push_back('x');
  other_then_host.push_back('y');
  put8(other_then_host, 0);
  put16(other_then_host, 4);
  for (char c : std::string("host")) other_then_host.push_back(static_cast<uint8_t>(c));
  const SniCase cases[] = {
      {"empty body", {}, ""},
      {"hostname", sni_body("a.example"), "a.example"},
      {"ip literal", sni_body("127.0.0.1"), "127.0.0.1"},
      {"empty list", {0x00, 0x00}, ""},
      {"empty host_name", sni_body(""), ""},
      {"non-host_name entry first", other_then_host, "host"},
  };
  for (const SniCase& c : cases) {
    SCOPED_TRACE(c.name);
    HelloSpec s;
    s.extensions = {{0x0000, c.body}};
    const ClientHelloParse p = parse(hello_record(s));
    ASSERT_EQ(p.status, Status::kOk) << p.error;
    EXPECT_TRUE(p.hello.has_sni_ext);
    EXPECT_EQ(p.hello.sni, c.want_sni);
  }
  HelloSpec s;
  s.extensions = {{0x0017, {}}};
  const ClientHelloParse p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk);
  EXPECT_FALSE(p.hello.has_sni_ext);
  EXPECT_EQ(p.hello.sni, "");
}

TEST(ClientHelloTest, AlpnNamesAreRawBytesIncludingEmpty) {
  HelloSpec s;
  s.extensions = {{0x0010, alpn_body({"", std::string("\xab\xcd", 2), "h"})}};
  ClientHelloParse p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_TRUE(p.hello.has_alpn_ext);
  EXPECT_EQ(p.hello.alpn, (std::vector<std::string>{"", std::string("\xab\xcd", 2), "h"}));

  s.extensions = {{0x0010, {0x00, 0x00}}};  // empty protocol list
  p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_TRUE(p.hello.has_alpn_ext);
  EXPECT_TRUE(p.hello.alpn.empty());
}

TEST(ClientHelloTest, DuplicateExtensionsKeptButOnlyFirstDecoded) {
  HelloSpec s;
  s.extensions = {
      {0x0010, alpn_body({"h2"})},
      {0x0017, {}},
      {0x0017, {}},
      {0x0010, {0xff}},  // malformed dup
      {0x000d, u16_list_body16({0x0403})},
      {0x000d, {0x01}},
      {0x002b, u16_list_body8({0x0304})},
      {0x002b, u16_list_body8({0x0303})},
      {0x0000, sni_body("first")},
      {0x0000, sni_body("second")},
  };
  const ClientHelloParse p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_EQ(p.hello.extensions.size(), 10u);
  EXPECT_EQ(p.hello.alpn, (std::vector<std::string>{"h2"}));
  EXPECT_EQ(p.hello.signature_algorithms, (std::vector<uint16_t>{0x0403}));
  EXPECT_EQ(p.hello.supported_versions, (std::vector<uint16_t>{0x0304}));
  EXPECT_EQ(p.hello.sni, "first");
}

TEST(ClientHelloTest, SignatureAlgorithmsOnlyFromExtension000d) {
  HelloSpec s;
  s.extensions = {
      {0x0022, u16_list_body16({0x0403, 0x0503})},  // delegated_credentials
      {0x0032, u16_list_body16({0x0601})},          // signature_algorithms_cert
      {0x000d, u16_list_body16({0x0804, 0x0403})},
      {0x0032, u16_list_body16({0x0503, 0x0603})},
  };
  ClientHelloParse p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_EQ(p.hello.signature_algorithms, (std::vector<uint16_t>{0x0804, 0x0403}));

  s.extensions = {{0x0032, u16_list_body16({0x0601})}, {0x0022, u16_list_body16({0x0403})}};
  p = parse(hello_record(s));
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_TRUE(p.hello.signature_algorithms.empty());
}

TEST(ClientHelloTest, EmptyInputNeedsMore) {
  EXPECT_EQ(parse_client_hello(nullptr, 0).status, Status::kNeedMore);
  const uint8_t b = 0x16;
  EXPECT_EQ(parse_client_hello(&b, 0).status, Status::kNeedMore);
  EXPECT_EQ(parse_client_hello(&b, 1).status, Status::kNeedMore);
}

// kNeedMore at every truncation point, for several record layouts.
TEST(ClientHelloTest, NeedMoreAtEveryTruncationPoint) {
  const Bytes msg = handshake(hello_body(HelloSpec{}));
  for (size_t frag : {msg.size(), size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{7}, size_t{50}}) {
    SCOPED_TRACE("fragment size " + std::to_string(frag));
    const Bytes wire = records(msg, frag);
    for (size_t n = 0; n < wire.size(); ++n) {
      const ClientHelloParse p = parse_client_hello(wire.data(), n);
      ASSERT_EQ(p.status, Status::kNeedMore) << "at " << n << ": " << p.error;
      EXPECT_TRUE(p.error.empty());
      EXPECT_EQ(p.consumed, 0u);
    }
    const ClientHelloParse p = parse(wire);
    ASSERT_EQ(p.status, Status::kOk) << p.error;
    EXPECT_EQ(p.consumed, wire.size());
    EXPECT_EQ(p.hello.sni, "example.com");
  }
}

// Every two-record split of the handshake message gives the same hello.
TEST(ClientHelloTest, EveryTwoRecordSplitGivesSameHello) {
  const Bytes msg = handshake(hello_body(HelloSpec{}));
  const ClientHelloParse ref = parse(record(msg));
  ASSERT_EQ(ref.status, Status::kOk);
  for (size_t cut = 1; cut < msg.size(); ++cut) {
    Bytes wire = record(Bytes(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(cut)));
    append(wire, record(Bytes(msg.begin() + static_cast<std::ptrdiff_t>(cut), msg.end()), 0x16, 0x0303));
    const ClientHelloParse p = parse(wire);
    ASSERT_EQ(p.status, Status::kOk) << "cut " << cut << ": " << p.error;
    EXPECT_EQ(p.consumed, wire.size());
    EXPECT_EQ(p.hello.cipher_suites, ref.hello.cipher_suites);
    ASSERT_EQ(p.hello.extensions.size(), ref.hello.extensions.size());
    for (size_t i = 0; i < ref.hello.extensions.size(); ++i)
      EXPECT_EQ(p.hello.extensions[i].body, ref.hello.extensions[i].body);
    EXPECT_EQ(p.hello.alpn, ref.hello.alpn);
  }
}

TEST(ClientHelloTest, ConsumedStopsAtTheHelloRecords) {
  const Bytes msg = handshake(hello_body(HelloSpec{}));
  Bytes wire = records(msg, 100);
  const size_t hello_bytes = wire.size();
  append(wire, record({0x01, 0x02, 0x03}, 0x17, 0x0303));  // early data after the hello
  const ClientHelloParse p = parse(wire);
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_EQ(p.consumed, hello_bytes);
}

TEST(ClientHelloTest, SslV2CompatibleHelloIsUnsupported) {
  // SSLv2 record: 2-byte length with the high bit, msg_type 1, version 0x0301.
  const Bytes v2 = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10};
  EXPECT_EQ(parse(Bytes{0x80}).status, Status::kNeedMore);
  EXPECT_EQ(parse(Bytes{0x80, 0x2e}).status, Status::kNeedMore);
  const ClientHelloParse p = parse(v2);
  EXPECT_EQ(p.status, Status::kUnsupported);
  EXPECT_EQ(p.error, "SSLv2-compatible ClientHello");
  const ClientHelloParse q = parse(Bytes{0x80, 0x2e, 0x02});
  EXPECT_EQ(q.status, Status::kError);
  EXPECT_EQ(q.error, "not a TLS handshake record (first byte 0x80)");
}

struct ErrorCase {
  const char* name;
  Bytes wire;
  std::string error;
};

Bytes body_with_extensions(const Bytes& ext_block_contents) {
  HelloSpec s;
  s.extensions.clear();
  Bytes b = hello_body(s);
  b.erase(b.end() - 2, b.end());  // drop the empty extensions length
  put16(b, ext_block_contents.size());
  append(b, ext_block_contents);
  return b;
}

Bytes ext_bytes(uint16_t type, const Bytes& body) {
  Bytes b;
  put16(b, type);
  put16(b, body.size());
  append(b, body);
  return b;
}

TEST(ClientHelloTest, PreciseErrors) {
  const Bytes good_msg = handshake(hello_body(HelloSpec{}));
  std::vector<ErrorCase> cases;
  cases.push_back(
      {"http request", Bytes{'G', 'E', 'T', ' ', '/'}, "not a TLS handshake record (content type 0x47)"});
  cases.push_back(
      {"application data", record({1, 2, 3}, 0x17), "not a TLS handshake record (content type 0x17)"});
  cases.push_back({"record major version", Bytes{0x16, 0x02}, "unsupported TLS record version major 0x02"});
  cases.push_back({"empty record", Bytes{0x16, 0x03, 0x01, 0x00, 0x00}, "empty handshake record"});
  cases.push_back(
      {"record too long", Bytes{0x16, 0x03, 0x01, 0x40, 0x01}, "TLS record longer than 16384 bytes"});
  cases.push_back({"server hello", record(handshake(hello_body(HelloSpec{}), 2)),
                   "first handshake message is not a ClientHello (type 0x02)"});
  {
    Bytes hdr = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01};
    put24(hdr, kMaxClientHelloSize - 3);  // 4 + body = 16385
    cases.push_back({"too large (header only)", hdr, "client hello too large"});
  }
  {
    Bytes wire = records(good_msg, 40);
    wire[45] = 0x15;  // second record becomes an alert
    cases.push_back({"alert inside hello", wire, "record of content type 0x15 inside the ClientHello"});
  }
  {
    Bytes frag = good_msg;
    frag.push_back(0x00);  // another byte of handshake data in the same record
    cases.push_back({"not aligned", record(frag), "ClientHello does not end at a record boundary"});
  }
  {
    Bytes frag2(good_msg.begin() + 20, good_msg.end());
    frag2.push_back(0x0b);
    Bytes wire = record(Bytes(good_msg.begin(), good_msg.begin() + 20));
    append(wire, record(frag2));
    cases.push_back({"not aligned, second record", wire, "ClientHello does not end at a record boundary"});
  }
  {
    HelloSpec s;
    Bytes b = hello_body(s);
    b[34] = 33;  // session_id length
    cases.push_back({"session id > 32", record(handshake(b)), "ClientHello session_id longer than 32 bytes"});
  }
  {
    HelloSpec s;
    Bytes b = hello_body(s);
    b[2 + 32 + 1 + 32 + 1] |= 1;  // cipher_suites length low byte
    cases.push_back({"odd cipher length", record(handshake(b)), "ClientHello cipher_suites length is odd"});
  }
  {
    Bytes b = hello_body(HelloSpec{});
    b.push_back(0x00);
    // the extensions length now covers one byte less than what follows it
    cases.push_back(
        {"trailing bytes", record(handshake(b)), "ClientHello has trailing bytes after the extensions"});
  }
  cases.push_back({"extension header truncated", record(handshake(body_with_extensions({0x00, 0x17, 0x00}))),
                   "ClientHello truncated in extension header"});
  cases.push_back({"extension body truncated",
                   record(handshake(body_with_extensions({0x00, 0x17, 0x00, 0x05, 0x01, 0x02}))),
                   "ClientHello truncated in extension 0x0017 body"});
  cases.push_back({"sni bad list length",
                   record(handshake(body_with_extensions(ext_bytes(0x0000, {0x00, 0x05, 0x00})))),
                   "malformed server_name extension: bad list length"});
  cases.push_back({"sni one byte", record(handshake(body_with_extensions(ext_bytes(0x0000, {0x00})))),
                   "malformed server_name extension: bad list length"});
  cases.push_back(
      {"sni truncated entry",
       record(handshake(body_with_extensions(ext_bytes(0x0000, {0x00, 0x04, 0x00, 0x00, 0x05, 'a'})))),
       "malformed server_name extension: truncated entry"});
  cases.push_back({"alpn empty body", record(handshake(body_with_extensions(ext_bytes(0x0010, {})))),
                   "malformed ALPN extension: bad list length"});
  cases.push_back({"alpn truncated name",
                   record(handshake(body_with_extensions(ext_bytes(0x0010, {0x00, 0x03, 0x05, 'h', '2'})))),
                   "malformed ALPN extension: truncated protocol name"});
  cases.push_back({"supported_versions odd",
                   record(handshake(body_with_extensions(ext_bytes(0x002b, {0x03, 0x03, 0x04, 0x03})))),
                   "malformed supported_versions extension: bad list length"});
  cases.push_back({"supported_versions empty body",
                   record(handshake(body_with_extensions(ext_bytes(0x002b, {})))),
                   "malformed supported_versions extension: bad list length"});
  cases.push_back({"supported_versions length mismatch",
                   record(handshake(body_with_extensions(ext_bytes(0x002b, {0x04, 0x03, 0x04})))),
                   "malformed supported_versions extension: bad list length"});
  cases.push_back({"sigalgs odd",
                   record(handshake(body_with_extensions(ext_bytes(0x000d, {0x00, 0x03, 0x04, 0x03, 0x08})))),
                   "malformed signature_algorithms extension: bad list length"});
  cases.push_back({"sigalgs empty body", record(handshake(body_with_extensions(ext_bytes(0x000d, {})))),
                   "malformed signature_algorithms extension: bad list length"});

  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    const ClientHelloParse p = parse(c.wire);
    EXPECT_EQ(p.status, Status::kError);
    EXPECT_EQ(p.error, c.error);
    EXPECT_EQ(p.consumed, 0u);
    EXPECT_TRUE(p.hello.cipher_suites.empty());
    EXPECT_TRUE(p.hello.extensions.empty());
  }
}

// A body cut at every length (with a matching handshake length) fails with
// the error naming the field it was cut in.
TEST(ClientHelloTest, TruncatedBodyNamesTheField) {
  HelloSpec s;  // 32-byte session id, 4 ciphers, 1 compression method
  const Bytes full = hello_body(s);
  const size_t sid_len_at = 2 + 32;
  const size_t cs_len_at = sid_len_at + 1 + 32;
  const size_t cm_len_at = cs_len_at + 2 + 8;
  const size_t ext_len_at = cm_len_at + 1 + 1;
  for (size_t k = 0; k < full.size(); ++k) {
    const Bytes body(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(k));
    const ClientHelloParse p = parse(record(handshake(body)));
    std::string want;
    if (k < 2) {
      want = "ClientHello truncated in legacy_version";
    } else if (k < sid_len_at) {
      want = "ClientHello truncated in random";
    } else if (k == sid_len_at) {
      want = "ClientHello truncated in session_id length";
    } else if (k < cs_len_at) {
      want = "ClientHello truncated in session_id";
    } else if (k < cs_len_at + 2) {
      want = "ClientHello truncated in cipher_suites length";
    } else if (k < cm_len_at) {
      want = "ClientHello truncated in cipher_suites";
    } else if (k == cm_len_at) {
      want = "ClientHello truncated in compression_methods length";
    } else if (k < ext_len_at) {
      want = "ClientHello truncated in compression_methods";
    } else if (k == ext_len_at) {
      EXPECT_EQ(p.status, Status::kOk) << "hello without extensions block";
      continue;
    } else if (k == ext_len_at + 1) {
      want = "ClientHello truncated in extensions length";
    } else {
      want = "ClientHello extensions length exceeds the message";
    }
    EXPECT_EQ(p.status, Status::kError) << "k=" << k;
    EXPECT_EQ(p.error, want) << "k=" << k;
  }
}

Bytes hello_of_size(size_t msg_size) {
  HelloSpec s;
  s.extensions.clear();
  const size_t base = handshake(hello_body(s)).size();  // includes the 2-byte extensions length
  s.extensions = {{0x0015, Bytes(msg_size - base - 4, 0)}};
  Bytes msg = handshake(hello_body(s));
  EXPECT_EQ(msg.size(), msg_size);
  return msg;
}

TEST(ClientHelloTest, SixteenKiBLimit) {
  const Bytes at_limit = hello_of_size(kMaxClientHelloSize);
  ClientHelloParse p = parse(record(at_limit));  // exactly one full record
  ASSERT_EQ(p.status, Status::kOk) << p.error;
  EXPECT_EQ(p.hello.extensions.size(), 1u);
  p = parse(records(at_limit, 1000));
  ASSERT_EQ(p.status, Status::kOk) << p.error;

  const Bytes over = hello_of_size(kMaxClientHelloSize + 1);
  p = parse(records(over, 1000));
  EXPECT_EQ(p.status, Status::kError);
  EXPECT_EQ(p.error, "client hello too large");
  // Detected from the handshake header alone, before the body arrives.
  p = parse(records(Bytes(over.begin(), over.begin() + 4), 1));
  EXPECT_EQ(p.status, Status::kError);
  EXPECT_EQ(p.error, "client hello too large");
}

}  // namespace
}  // namespace huginn::fp
