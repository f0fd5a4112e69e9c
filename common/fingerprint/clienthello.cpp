#include "common/fingerprint/clienthello.h"

#include <algorithm>
#include <cstdio>

namespace huginn::fp {
namespace {

constexpr uint8_t kContentTypeHandshake = 0x16;
constexpr uint8_t kHandshakeTypeClientHello = 0x01;
constexpr size_t kRecordHeaderLen = 5;
constexpr size_t kHandshakeHeaderLen = 4;

constexpr uint16_t kExtServerName = 0x0000;
constexpr uint16_t kExtSignatureAlgorithms = 0x000d;
constexpr uint16_t kExtAlpn = 0x0010;
constexpr uint16_t kExtSupportedVersions = 0x002b;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be24(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 16) | (static_cast<uint32_t>(p[1]) << 8) | p[2];
}

std::string hex_byte(uint8_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v);
  return buf;
}
std::string hex_u16(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", v);
  return buf;
}

// Bounds-checked big-endian reader over [p, p + n).
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t remaining() const { return n_ - off_; }
  bool u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = p_[off_++];
    return true;
  }
  bool u16(uint16_t& v) {
    if (remaining() < 2) return false;
    v = be16(p_ + off_);
    off_ += 2;
    return true;
  }
  bool bytes(size_t k, const uint8_t*& out) {
    if (remaining() < k) return false;
    out = p_ + off_;
    off_ += k;
    return true;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
};

ClientHelloParse make_status(ClientHelloParse::Status s, std::string error = {}) {
  ClientHelloParse r;
  r.status = s;
  r.error = std::move(error);
  return r;
}
ClientHelloParse need_more() { return make_status(ClientHelloParse::Status::kNeedMore); }
ClientHelloParse fail(std::string error) {
  return make_status(ClientHelloParse::Status::kError, std::move(error));
}

// server_name (RFC 6066 3): an empty body is accepted (has_sni_ext, no name).
bool parse_sni(const uint8_t* p, size_t n, ClientHello& ch, std::string& err) {
  if (n == 0) return true;
  Reader r(p, n);
  uint16_t list_len = 0;
  if (!r.u16(list_len) || list_len != r.remaining()) {
    err = "malformed server_name extension: bad list length";
    return false;
  }
  bool have_name = false;
  while (r.remaining() > 0) {
    uint8_t name_type = 0;
    uint16_t name_len = 0;
    const uint8_t* name = nullptr;
    if (!r.u8(name_type) || !r.u16(name_len) || !r.bytes(name_len, name)) {
      err = "malformed server_name extension: truncated entry";
      return false;
    }
    if (name_type == 0 && !have_name) {
      ch.sni.assign(reinterpret_cast<const char*>(name), name_len);
      have_name = true;
    }
  }
  return true;
}

// application_layer_protocol_negotiation (RFC 7301 3.1). Empty names are kept
// (invalid per the RFC, but they must still be fingerprinted).
bool parse_alpn(const uint8_t* p, size_t n, ClientHello& ch, std::string& err) {
  Reader r(p, n);
  uint16_t list_len = 0;
  if (!r.u16(list_len) || list_len != r.remaining()) {
    err = "malformed ALPN extension: bad list length";
    return false;
  }
  while (r.remaining() > 0) {
    uint8_t name_len = 0;
    const uint8_t* name = nullptr;
    if (!r.u8(name_len) || !r.bytes(name_len, name)) {
      err = "malformed ALPN extension: truncated protocol name";
      return false;
    }
    ch.alpn.emplace_back(reinterpret_cast<const char*>(name), name_len);
  }
  return true;
}

bool parse_supported_versions(const uint8_t* p, size_t n, ClientHello& ch, std::string& err) {
  Reader r(p, n);
  uint8_t list_len = 0;
  if (!r.u8(list_len) || list_len != r.remaining() || list_len % 2 != 0) {
    err = "malformed supported_versions extension: bad list length";
    return false;
  }
  ch.supported_versions.reserve(list_len / 2);
  uint16_t v = 0;
  while (r.u16(v)) ch.supported_versions.push_back(v);
  return true;
}

bool parse_signature_algorithms(const uint8_t* p, size_t n, ClientHello& ch, std::string& err) {
  Reader r(p, n);
  uint16_t list_len = 0;
  if (!r.u16(list_len) || list_len != r.remaining() || list_len % 2 != 0) {
    err = "malformed signature_algorithms extension: bad list length";
    return false;
  }
  ch.signature_algorithms.reserve(list_len / 2);
  uint16_t v = 0;
  while (r.u16(v)) ch.signature_algorithms.push_back(v);
  return true;
}

// Parses the ClientHello body (after the 4-byte handshake header).
bool parse_body(const uint8_t* p, size_t n, ClientHello& ch, std::string& err) {
  Reader r(p, n);
  const uint8_t* skip = nullptr;
  if (!r.u16(ch.legacy_version)) {
    err = "ClientHello truncated in legacy_version";
    return false;
  }
  if (!r.bytes(32, skip)) {
    err = "ClientHello truncated in random";
    return false;
  }
  uint8_t sid_len = 0;
  if (!r.u8(sid_len)) {
    err = "ClientHello truncated in session_id length";
    return false;
  }
  if (sid_len > 32) {
    err = "ClientHello session_id longer than 32 bytes";
    return false;
  }
  if (!r.bytes(sid_len, skip)) {
    err = "ClientHello truncated in session_id";
    return false;
  }
  uint16_t cs_len = 0;
  if (!r.u16(cs_len)) {
    err = "ClientHello truncated in cipher_suites length";
    return false;
  }
  if (cs_len % 2 != 0) {
    err = "ClientHello cipher_suites length is odd";
    return false;
  }
  const uint8_t* cs = nullptr;
  if (!r.bytes(cs_len, cs)) {
    err = "ClientHello truncated in cipher_suites";
    return false;
  }
  ch.cipher_suites.resize(cs_len / 2);
  for (size_t i = 0; i < ch.cipher_suites.size(); ++i) ch.cipher_suites[i] = be16(cs + 2 * i);
  uint8_t cm_len = 0;
  if (!r.u8(cm_len)) {
    err = "ClientHello truncated in compression_methods length";
    return false;
  }
  if (!r.bytes(cm_len, skip)) {
    err = "ClientHello truncated in compression_methods";
    return false;
  }
  if (r.remaining() == 0) return true;  // no extensions block (pre-TLS 1.2 style)

  ch.has_extensions_block = true;
  uint16_t ext_total = 0;
  if (!r.u16(ext_total)) {
    err = "ClientHello truncated in extensions length";
    return false;
  }
  if (ext_total > r.remaining()) {
    err = "ClientHello extensions length exceeds the message";
    return false;
  }
  if (ext_total < r.remaining()) {
    err = "ClientHello has trailing bytes after the extensions";
    return false;
  }
  // Each extension takes at least 4 bytes: bounds the count before reserving.
  ch.extensions.reserve(ext_total / 4);
  bool seen_sigalgs = false;
  while (r.remaining() > 0) {
    uint16_t type = 0;
    uint16_t ext_len = 0;
    if (!r.u16(type) || !r.u16(ext_len)) {
      err = "ClientHello truncated in extension header";
      return false;
    }
    const uint8_t* body = nullptr;
    if (!r.bytes(ext_len, body)) {
      err = "ClientHello truncated in extension " + hex_u16(type) + " body";
      return false;
    }
    ch.extensions.push_back({type, std::vector<uint8_t>(body, body + ext_len)});
    // Only the first extension of each known type is decoded; duplicates are
    // kept in `extensions` (they count for JA4) but not interpreted.
    bool ok = true;
    switch (type) {
      case kExtServerName:
        if (ch.has_sni_ext) break;
        ch.has_sni_ext = true;
        ok = parse_sni(body, ext_len, ch, err);
        break;
      case kExtAlpn:
        if (ch.has_alpn_ext) break;
        ch.has_alpn_ext = true;
        ok = parse_alpn(body, ext_len, ch, err);
        break;
      case kExtSupportedVersions:
        if (ch.has_supported_versions_ext) break;
        ch.has_supported_versions_ext = true;
        ok = parse_supported_versions(body, ext_len, ch, err);
        break;
      case kExtSignatureAlgorithms:
        if (seen_sigalgs) break;
        seen_sigalgs = true;
        ok = parse_signature_algorithms(body, ext_len, ch, err);
        break;
      default:
        break;
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace

ClientHelloParse parse_client_hello(const uint8_t* data, size_t len) {
  if (data == nullptr || len == 0) return need_more();

  // SSLv2-compatible CLIENT-HELLO (RFC 5246 E.2): 2-byte header with the high
  // bit set, then msg_type 1.
  if (data[0] & 0x80) {
    if (len < 3) return need_more();
    if (data[2] == kHandshakeTypeClientHello) {
      return make_status(ClientHelloParse::Status::kUnsupported, "SSLv2-compatible ClientHello");
    }
    return fail("not a TLS handshake record (first byte " + hex_byte(data[0]) + ")");
  }
  if (data[0] != kContentTypeHandshake) {
    return fail("not a TLS handshake record (content type " + hex_byte(data[0]) + ")");
  }

  uint8_t hs_header[kHandshakeHeaderLen];
  size_t hs_header_got = 0;
  size_t body_len = 0;  // ClientHello body length, known once the header is complete
  size_t body_got = 0;
  const uint8_t* body = nullptr;  // points into `data` or `joined` once complete
  std::vector<uint8_t> joined;    // used only when the body spans records
  size_t off = 0;

  while (body == nullptr) {
    const size_t avail = len - off;
    if (avail == 0) return need_more();
    if (data[off] != kContentTypeHandshake) {
      return fail("record of content type " + hex_byte(data[off]) + " inside the ClientHello");
    }
    if (avail >= 2 && data[off + 1] != 0x03) {
      return fail("unsupported TLS record version major " + hex_byte(data[off + 1]));
    }
    if (avail < kRecordHeaderLen) return need_more();
    const size_t rec_len = be16(data + off + 3);
    if (rec_len == 0) return fail("empty handshake record");
    if (rec_len > kMaxTlsRecordPayload) return fail("TLS record longer than 16384 bytes");
    const uint8_t* frag = data + off + kRecordHeaderLen;
    const size_t frag_avail = std::min(rec_len, avail - kRecordHeaderLen);
    const bool rec_complete = frag_avail == rec_len;

    size_t i = 0;
    if (hs_header_got < kHandshakeHeaderLen) {
      while (hs_header_got < kHandshakeHeaderLen && i < frag_avail) hs_header[hs_header_got++] = frag[i++];
      if (hs_header_got < kHandshakeHeaderLen) {
        if (!rec_complete) return need_more();
        off += kRecordHeaderLen + rec_len;
        continue;
      }
      if (hs_header[0] != kHandshakeTypeClientHello) {
        return fail("first handshake message is not a ClientHello (type " + hex_byte(hs_header[0]) + ")");
      }
      body_len = be24(hs_header + 1);
      if (body_len + kHandshakeHeaderLen > kMaxClientHelloSize) return fail("client hello too large");
    }

    // Body bytes this record declares (present or not).
    const size_t rec_body = rec_len - i;
    if (body_got + rec_body > body_len) {
      return fail("ClientHello does not end at a record boundary");
    }
    const size_t present = frag_avail - i;
    if (body_got == 0 && rec_body == body_len) {
      // Whole body inside this record: parse in place, no copy.
      if (!rec_complete) return need_more();
      body = frag + i;
      body_got = body_len;
    } else {
      if (joined.capacity() == 0) joined.reserve(body_len);
      joined.insert(joined.end(), frag + i, frag + i + present);
      body_got += present;
      if (!rec_complete) return need_more();
      if (body_got == body_len) body = joined.data();
    }
    off += kRecordHeaderLen + rec_len;
  }

  ClientHelloParse r;
  if (!parse_body(body, body_len, r.hello, r.error)) {
    r.status = ClientHelloParse::Status::kError;
    r.hello = ClientHello{};
    return r;
  }
  r.status = ClientHelloParse::Status::kOk;
  r.consumed = off;
  return r;
}

}  // namespace huginn::fp
