#include "common/net/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace huginn::net::proxy_protocol {

namespace {

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

Result need_more() { return Result{}; }
Result not_proxy() { return Result{Status::kNotProxy, {}, nullptr}; }
Result error(const char* why) { return Result{Status::kError, {}, why}; }

// True when `data` and `prefix` agree on their common length.
bool agrees(std::string_view data, std::string_view prefix) {
  const size_t n = std::min(data.size(), prefix.size());
  return data.substr(0, n) == prefix.substr(0, n);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Decimal 0..max, 1..digits characters, no sign, no leading zero.
bool parse_decimal(std::string_view s, size_t digits, uint32_t max, uint32_t* out) {
  if (s.empty() || s.size() > digits) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  uint32_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

bool parse_ipv4(std::string_view s, in_addr* out) {
  std::array<uint8_t, 4> b{};
  for (size_t i = 0; i < 4; ++i) {
    const size_t dot = s.find('.');
    const std::string_view part = i < 3 ? s.substr(0, dot) : s;
    if (i < 3 && dot == std::string_view::npos) return false;
    uint32_t v = 0;
    if (!parse_decimal(part, 3, 255, &v)) return false;
    b[i] = static_cast<uint8_t>(v);
    if (i < 3) s.remove_prefix(dot + 1);
  }
  std::memcpy(out, b.data(), 4);
  return true;
}

bool parse_ipv6(std::string_view s, in6_addr* out) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (s.empty() || s.size() >= sizeof buf) return false;
  for (char c : s) {
    const bool ok = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
    if (!ok) return false;
  }
  std::memcpy(buf, s.data(), s.size());
  return inet_pton(AF_INET6, buf, out) == 1;
}

SocketAddress make_v4(const in_addr& a, uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr = a;
  sin.sin_port = htons(port);
  return *SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
}

SocketAddress make_v6(const in6_addr& a, uint16_t port) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = a;
  sin6.sin6_port = htons(port);
  return *SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
}

// Splits `s` at single spaces into exactly `n` non-empty fields.
template <size_t N>
bool split_fields(std::string_view s, std::array<std::string_view, N>* out) {
  for (size_t i = 0; i < N; ++i) {
    const size_t sp = s.find(' ');
    if (i + 1 < N) {
      if (sp == std::string_view::npos || sp == 0) return false;
      (*out)[i] = s.substr(0, sp);
      s.remove_prefix(sp + 1);
    } else {
      if (sp != std::string_view::npos || s.empty()) return false;
      (*out)[i] = s;
    }
  }
  return true;
}

Result parse_v1(std::string_view data) {
  if (!agrees(data, kV1Prefix)) return not_proxy();
  if (data.size() <= kV1Prefix.size()) return need_more();
  const std::string_view window = data.substr(0, kV1MaxLength);
  // Only printable ASCII before the CR; the CR must be followed by LF.
  size_t cr = std::string_view::npos;
  for (size_t i = kV1Prefix.size(); i < window.size(); ++i) {
    const char c = window[i];
    if (c == '\r') {
      cr = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) return error("v1: invalid character in the header line");
  }
  if (cr == std::string_view::npos) {
    if (window.size() >= kV1MaxLength) return error("v1: no CRLF within 107 bytes");
    // The protocol word must be able to become TCP4, TCP6 or UNKNOWN.
    const std::string_view rest = window.substr(kV1Prefix.size());
    if (!agrees(rest, "TCP4 ") && !agrees(rest, "TCP6 ") && !agrees(rest, "UNKNOWN"))
      return error("v1: unknown protocol");
    return need_more();
  }
  if (cr + 1 >= window.size()) {
    if (cr + 1 >= kV1MaxLength) return error("v1: no CRLF within 107 bytes");
    return need_more();
  }
  if (window[cr + 1] != '\n') return error("v1: CR not followed by LF");
  const std::string_view line = window.substr(kV1Prefix.size(), cr - kV1Prefix.size());
  Result r;
  r.status = Status::kDone;
  r.header.version = 1;
  r.header.command = Command::kProxy;
  r.header.length = cr + 2;
  // "UNKNOWN" alone or followed by a space and anything (ignored).
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) {
    r.header.family = Family::kUnspec;
    return r;
  }
  std::array<std::string_view, 5> f;
  if (!split_fields(line, &f)) return error("v1: expected 5 single-space separated fields");
  uint32_t sport = 0;
  uint32_t dport = 0;
  if (!parse_decimal(f[3], 5, 65535, &sport) || !parse_decimal(f[4], 5, 65535, &dport))
    return error("v1: invalid port");
  if (f[0] == "TCP4") {
    in_addr s{};
    in_addr d{};
    if (!parse_ipv4(f[1], &s) || !parse_ipv4(f[2], &d)) return error("v1: invalid IPv4 address");
    r.header.family = Family::kInet;
    r.header.source = make_v4(s, static_cast<uint16_t>(sport));
    r.header.destination = make_v4(d, static_cast<uint16_t>(dport));
    return r;
  }
  if (f[0] == "TCP6") {
    in6_addr s{};
    in6_addr d{};
    if (!parse_ipv6(f[1], &s) || !parse_ipv6(f[2], &d)) return error("v1: invalid IPv6 address");
    r.header.family = Family::kInet6;
    r.header.source = make_v6(s, static_cast<uint16_t>(sport));
    r.header.destination = make_v6(d, static_cast<uint16_t>(dport));
    return r;
  }
  return error("v1: unknown protocol");
}

uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

constexpr uint8_t kTlvCrc32c = 0x03;

Result parse_v2(std::string_view data) {
  if (!agrees(data, kV2Signature)) return not_proxy();
  if (data.size() < kV2FixedLength) {
    // Reject a bad version/command or family byte as soon as it is there.
    if (data.size() > 12 && (static_cast<uint8_t>(data[12]) >> 4) != 2) return error("v2: version is not 2");
    return need_more();
  }
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const uint8_t ver = p[12] >> 4;
  const uint8_t cmd = p[12] & 0x0f;
  const uint8_t fam = p[13] >> 4;
  const uint8_t proto = p[13] & 0x0f;
  const size_t len = be16(p + 14);
  if (ver != 2) return error("v2: version is not 2");
  if (cmd > 1) return error("v2: unknown command");
  if (fam > 3) return error("v2: unknown address family");
  if (proto > 2) return error("v2: unknown transport protocol");
  if (len > kV2MaxPayload) return error("v2: header longer than 552 bytes");
  const size_t total = kV2FixedLength + len;
  if (data.size() < total) return need_more();

  Result r;
  r.status = Status::kDone;
  r.header.version = 2;
  r.header.command = cmd == 1 ? Command::kProxy : Command::kLocal;
  r.header.family = static_cast<Family>(fam);
  r.header.stream = proto == 1;
  r.header.length = total;
  // LOCAL: the receiver uses the real endpoints and discards the whole block.
  if (r.header.command == Command::kLocal) return r;

  static constexpr size_t kAddrLen[4] = {0, 12, 36, 216};
  const size_t addr_len = kAddrLen[fam];
  if (len < addr_len) return error("v2: address block longer than the header");
  const unsigned char* a = p + kV2FixedLength;
  if (r.header.family == Family::kInet) {
    in_addr s{};
    in_addr d{};
    std::memcpy(&s, a, 4);
    std::memcpy(&d, a + 4, 4);
    r.header.source = make_v4(s, be16(a + 8));
    r.header.destination = make_v4(d, be16(a + 10));
  } else if (r.header.family == Family::kInet6) {
    in6_addr s{};
    in6_addr d{};
    std::memcpy(&s, a, 16);
    std::memcpy(&d, a + 16, 16);
    r.header.source = make_v6(s, be16(a + 32));
    r.header.destination = make_v6(d, be16(a + 34));
  }
  // TLVs: type (1), length (2, big endian), value; they must tile the rest.
  size_t off = kV2FixedLength + addr_len;
  while (off < total) {
    if (total - off < 3) return error("v2: truncated TLV");
    const uint8_t type = p[off];
    const size_t tlv_len = be16(p + off + 1);
    if (tlv_len > total - off - 3) return error("v2: TLV longer than the header");
    if (type == kTlvCrc32c) {
      if (tlv_len != 4) return error("v2: CRC32C TLV is not 4 bytes");
      std::array<char, kMaxHeaderLength> copy;
      std::memcpy(copy.data(), data.data(), total);
      std::memset(copy.data() + off + 3, 0, 4);
      if (crc32c(std::string_view(copy.data(), total)) != be32(p + off + 3))
        return error("v2: CRC32C mismatch");
    }
    off += 3 + tlv_len;
  }
  return r;
}

}  // namespace

uint32_t crc32c(std::string_view data, uint32_t crc) {
  crc = ~crc;
  for (char ch : data) crc = kCrc32cTable[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

Result parse(std::string_view data) {
  if (data.empty()) return need_more();
  data = data.substr(0, kMaxHeaderLength);
  if (data[0] == kV1Prefix[0]) return parse_v1(data);
  if (data[0] == kV2Signature[0]) return parse_v2(data);
  return not_proxy();
}

}  // namespace huginn::net::proxy_protocol
