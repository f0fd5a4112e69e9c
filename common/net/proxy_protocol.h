// PROXY protocol v1 (text) and v2 (binary) headers, as HAProxy specifies
// them (doc/proxy-protocol.txt): a pure, incremental parser. Call parse()
// with every byte received so far on a connection; it says whether the bytes
// begin a PROXY header at all, whether more are needed, whether the header is
// invalid, or what it carries and how many bytes it occupies (the rest belong
// to the client's own stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/net/address.h"

namespace huginn::net::proxy_protocol {

// The v2 signature (12 bytes) that starts every binary header.
inline constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
inline constexpr std::string_view kV1Prefix = "PROXY ";
// A v1 line including "PROXY " and the final CRLF (spec §2.1).
inline constexpr size_t kV1MaxLength = 107;
// The fixed part of a v2 header: signature, version/command, family/protocol, length.
inline constexpr size_t kV2FixedLength = 16;
// Most bytes a v2 header may announce after the fixed part (addresses and
// TLVs); HAProxy's bound too. A longer header is refused, never buffered.
inline constexpr size_t kV2MaxPayload = 536;
// Most bytes a caller ever has to buffer to get a decision.
inline constexpr size_t kMaxHeaderLength = kV2FixedLength + kV2MaxPayload;

enum class Status {
  kNeedMore,  // a prefix of a valid header so far: read more
  kNotProxy,  // the bytes do not begin a PROXY header (nothing consumed)
  kError,     // a PROXY header, but not a valid one (Result::error says why)
  kDone,      // a complete valid header of Header::length bytes
};

enum class Command { kLocal, kProxy };  // v1 is always kProxy
// v1: TCP4 → kInet, TCP6 → kInet6, UNKNOWN → kUnspec.
enum class Family { kUnspec, kInet, kInet6, kUnix };

struct Header {
  int version = 0;  // 1 or 2
  Command command = Command::kProxy;
  Family family = Family::kUnspec;
  bool stream = true;  // v2 transport nibble STREAM (v1: always)
  // Set only when carries_client() is true.
  SocketAddress source;
  SocketAddress destination;
  size_t length = 0;  // bytes of the header, to be consumed

  // True when the header names the client of a TCP connection over IPv4 or
  // IPv6 (v1 TCP4/TCP6, v2 PROXY + INET/INET6 + STREAM). Otherwise (LOCAL,
  // UNKNOWN, UNSPEC, UNIX, DGRAM) the receiver keeps the socket's peer.
  bool carries_client() const {
    return command == Command::kProxy && stream && (family == Family::kInet || family == Family::kInet6);
  }
};

struct Result {
  Status status = Status::kNeedMore;
  Header header;                // valid when status == kDone
  const char* error = nullptr;  // static text when status == kError
};

// `data`: every byte received so far on the connection (only the first
// kMaxHeaderLength bytes are ever looked at). v1 fields are checked strictly:
// single spaces, an IPv4 dotted quad without leading zeros for TCP4, an IPv6
// address for TCP6, decimal ports 0-65535 without sign or leading zeros. v2:
// version 2, command LOCAL or PROXY, known family and protocol nibbles, an
// address block that fits the announced length, TLVs that end exactly at the
// header end, and a PP2_TYPE_CRC32C TLV (when present) that matches.
Result parse(std::string_view data);

// CRC-32C (Castagnoli), as PP2_TYPE_CRC32C uses it.
uint32_t crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace huginn::net::proxy_protocol
