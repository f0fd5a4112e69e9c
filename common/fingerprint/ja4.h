// JA4 family (JA4, JA4_r, JA4_o, JA4_or) of a parsed ClientHello, following
// FoxIO's technical_details/JA4.md text as pinned down in
// reference/fingerprint-rules.md section 2. Pure function.
#pragma once

#include <string>
#include <string_view>

#include "common/fingerprint/clienthello.h"

namespace huginn::fp {

struct Ja4Set {
  std::string ja4;     // sorted, hashed
  std::string ja4_r;   // sorted, raw
  std::string ja4_o;   // wire order, hashed
  std::string ja4_or;  // wire order, raw
};

// `transport`: 't' TLS over TCP, 'q' QUIC, 'd' DTLS.
Ja4Set compute_ja4(const ClientHello& ch, char transport = 't');

// Appends to `out` every input compute_ja4(ch, transport) reads, as bytes:
// the transport, the version fields, SNI presence, the first ALPN value and
// the cipher, extension-type and signature-algorithm lists (wire order,
// GREASE included; lists length-prefixed, so no two inputs give one key).
// Hellos with equal keys have equal JA4 sets; what varies per connection
// (random, session id, key shares, the SNI name, extension bodies) is not in
// it. For memoizing compute_ja4 across connections.
void ja4_input_key(const ClientHello& ch, char transport, std::string& out);

// The 10-character JA4_a part, e.g. "t13d1516h2".
std::string ja4_a(const ClientHello& ch, char transport = 't');

// The two ALPN characters of JA4_a for a first ALPN value (raw bytes).
std::string ja4_alpn_chars(std::string_view first_alpn_value);

}  // namespace huginn::fp
