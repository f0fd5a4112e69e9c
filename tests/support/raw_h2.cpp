#include "tests/support/raw_h2.h"

namespace huginn::testing::raw_h2 {

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string f;
  f.reserve(9 + payload.size());
  const size_t n = payload.size();
  f += static_cast<char>((n >> 16) & 0xff);
  f += static_cast<char>((n >> 8) & 0xff);
  f += static_cast<char>(n & 0xff);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>((stream >> 24) & 0x7f);
  f += static_cast<char>((stream >> 16) & 0xff);
  f += static_cast<char>((stream >> 8) & 0xff);
  f += static_cast<char>(stream & 0xff);
  f.append(payload);
  return f;
}

std::string hpack_int(uint8_t first, int prefix_bits, uint64_t v) {
  const uint64_t max = (1u << prefix_bits) - 1;
  std::string out;
  if (v < max) {
    out += static_cast<char>(first | v);
    return out;
  }
  out += static_cast<char>(first | max);
  v -= max;
  while (v >= 128) {
    out += static_cast<char>(0x80 | (v & 0x7f));
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

std::string hpack_literal(std::string_view name, std::string_view value, bool indexed) {
  std::string out = indexed ? std::string(1, '\x40') : std::string(1, '\x00');
  out += hpack_int(0, 7, name.size());
  out.append(name);
  out += hpack_int(0, 7, value.size());
  out.append(value);
  return out;
}

std::string hpack_get_root() { return kGetRootNoAuthority + hpack_int(0, 4, 1) + "\x09localhost"; }

}  // namespace huginn::testing::raw_h2
