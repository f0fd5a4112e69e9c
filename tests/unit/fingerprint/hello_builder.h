// Test-only helper: builds ClientHello handshake messages and wraps them in
// TLS records, with every length field under the test's control.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace huginn::fp::testing {

using Bytes = std::vector<uint8_t>;

inline void put8(Bytes& b, uint32_t v) { b.push_back(static_cast<uint8_t>(v)); }
inline void put16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void put24(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 16));
  put16(b, v);
}
inline void append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }

struct Ext {
  uint16_t type;
  Bytes body;
};

// Extension bodies.
inline Bytes sni_body(const std::string& host) {
  Bytes b;
  put16(b, host.size() + 3);
  put8(b, 0);
  put16(b, host.size());
  b.insert(b.end(), host.begin(), host.end());
  return b;
}
inline Bytes alpn_body(const std::vector<std::string>& protos) {
  Bytes list;
  for (const auto& p : protos) {
    put8(list, p.size());
    list.insert(list.end(), p.begin(), p.end());
  }
  Bytes b;
  put16(b, list.size());
  append(b, list);
  return b;
}
inline Bytes u16_list_body16(const std::vector<uint16_t>& v) {  // 2-byte length prefix
  Bytes b;
  put16(b, v.size() * 2);
  for (uint16_t x : v) put16(b, x);
  return b;
}
inline Bytes u16_list_body8(const std::vector<uint16_t>& v) {  // 1-byte length prefix
  Bytes b;
  put8(b, v.size() * 2);
  for (uint16_t x : v) put16(b, x);
  return b;
}

struct HelloSpec {
  uint16_t legacy_version = 0x0303;
  Bytes session_id = Bytes(32, 0x11);
  std::vector<uint16_t> ciphers = {0x1301, 0x1302, 0x1303, 0xc02b};
  Bytes compression = {0x00};
  bool with_extensions_block = true;
  std::vector<Ext> extensions = {
      {0x0000, sni_body("example.com")},
      {0x0010, alpn_body({"h2", "http/1.1"})},
      {0x000d, u16_list_body16({0x0403, 0x0804, 0x0401})},
      {0x002b, u16_list_body8({0x0304, 0x0303})},
  };
};

// ClientHello body (without the 4-byte handshake header).
inline Bytes hello_body(const HelloSpec& s) {
  Bytes b;
  put16(b, s.legacy_version);
  for (int i = 0; i < 32; ++i) put8(b, i);
  put8(b, s.session_id.size());
  append(b, s.session_id);
  put16(b, s.ciphers.size() * 2);
  for (uint16_t c : s.ciphers) put16(b, c);
  put8(b, s.compression.size());
  append(b, s.compression);
  if (s.with_extensions_block) {
    Bytes exts;
    for (const Ext& e : s.extensions) {
      put16(exts, e.type);
      put16(exts, e.body.size());
      append(exts, e.body);
    }
    put16(b, exts.size());
    append(b, exts);
  }
  return b;
}

// Handshake message: type, 24-bit length, body.
inline Bytes handshake(const Bytes& body, uint8_t type = 1) {
  Bytes b;
  put8(b, type);
  put24(b, body.size());
  append(b, body);
  return b;
}

inline Bytes record(const Bytes& fragment, uint8_t content_type = 0x16, uint16_t version = 0x0301) {
  Bytes b;
  put8(b, content_type);
  put16(b, version);
  put16(b, fragment.size());
  append(b, fragment);
  return b;
}

// The handshake message cut into records of at most `max_fragment` bytes.
inline Bytes records(const Bytes& msg, size_t max_fragment) {
  Bytes out;
  for (size_t off = 0; off < msg.size(); off += max_fragment) {
    const size_t n = std::min(max_fragment, msg.size() - off);
    append(out, record(Bytes(msg.begin() + static_cast<std::ptrdiff_t>(off),
                             msg.begin() + static_cast<std::ptrdiff_t>(off + n))));
  }
  return out;
}

inline Bytes hello_record(const HelloSpec& s) { return record(handshake(hello_body(s))); }

}  // namespace huginn::fp::testing
