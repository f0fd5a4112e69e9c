// Hand-built HTTP/2 bytes for tests that must send what no well-behaved client
// library would: half-finished header blocks, floods of SETTINGS or PING,
// CONTINUATION chains, HPACK literals of any size (RFC 9113 §4.1, RFC 7541).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace huginn::testing::raw_h2 {

inline const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

inline constexpr uint8_t kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kPing = 0x6, kGoaway = 0x7,
                         kContinuation = 0x9;
inline constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4;
inline constexpr uint32_t kEnhanceYourCalm = 0xb;

// One frame: the 9-byte header (24-bit length, type, flags, 31-bit stream id) and the payload.
std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload);

// HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the flag bits.
std::string hpack_int(uint8_t first, int prefix_bits, uint64_t v);

// Literal field with a new name; `indexed` = with incremental indexing (§6.2.1), else without (§6.2.2).
std::string hpack_literal(std::string_view name, std::string_view value, bool indexed);

// :method GET, :scheme http, :path / from the static table (no :authority).
inline const std::string kGetRootNoAuthority("\x82\x86\x84", 3);

// :method GET, :scheme http, :path / and :authority localhost.
std::string hpack_get_root();

}  // namespace huginn::testing::raw_h2
