// Bounded TLS ClientHello parser: the raw bytes a client sent first on a TCP
// connection (one or more TLS records) in, the parsed ClientHello out.
// Pure function: no I/O, no logging, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace huginn::fp {

// Largest handshake message (4-byte header + body) that is reassembled.
inline constexpr size_t kMaxClientHelloSize = 16 * 1024;
// Largest TLSPlaintext fragment a record may carry (RFC 8446 5.1).
inline constexpr size_t kMaxTlsRecordPayload = 16 * 1024;

struct ClientHello {
  uint16_t legacy_version = 0;
  std::vector<uint16_t> cipher_suites;  // wire order, GREASE included
  struct Extension {
    uint16_t type = 0;
    std::vector<uint8_t> body;
  };
  std::vector<Extension> extensions;           // wire order, GREASE and duplicates included
  bool has_extensions_block = false;           // false when the hello ends after compression methods
  bool has_sni_ext = false;                    // extension 0x0000 present (body may be empty)
  std::string sni;                             // first host_name entry of the first 0x0000 extension
  bool has_alpn_ext = false;                   // extension 0x0010 present
  std::vector<std::string> alpn;               // protocol names of the first 0x0010 extension (raw bytes)
  bool has_supported_versions_ext = false;     // extension 0x002b present
  std::vector<uint16_t> supported_versions;    // first 0x002b extension, wire order, GREASE included
  std::vector<uint16_t> signature_algorithms;  // first 0x000d extension only, wire order
};

struct ClientHelloParse {
  enum class Status {
    kOk,          // `hello` is valid, `consumed` is set
    kNeedMore,    // the input ends before the ClientHello does; retry with more bytes
    kError,       // malformed or not a TLS handshake; `error` says why
    kUnsupported  // SSLv2-compatible ClientHello
  };
  Status status = Status::kNeedMore;
  std::string error;
  ClientHello hello;
  size_t consumed = 0;  // bytes of the TLS records that made up the hello (kOk only)
};

// `data` = the bytes a client sent first on a TCP connection, from the start.
// Reassembles a handshake message spanning several records (up to
// kMaxClientHelloSize bytes). Never reads outside [data, data + len).
ClientHelloParse parse_client_hello(const uint8_t* data, size_t len);

// True for the 16 GREASE values 0x0a0a, 0x1a1a, ..., 0xfafa (RFC 8701).
constexpr bool is_grease(uint16_t v) { return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff); }

}  // namespace huginn::fp
