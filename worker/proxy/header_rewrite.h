// Request and response header rewriting (SPEC.md §4 "Header rewrite").
//
// Pure functions over header lists. Framing headers (Content-Length,
// Transfer-Encoding) and Connection are removed here and written by the
// caller, which knows how it frames the message it sends.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/config/model.h"
#include "worker/http1/message.h"

namespace huginn::worker::proxy {

// The fingerprints of one client connection, computed once per connection
// and repeated on each of its requests. Empty until the TLS (JA4 family),
// HTTP/2 (Akamai) and TCP SYN (p0f) sources fill it in; an absent value means
// "no header" (never an empty one: setting "" leaves the value absent).
//
// Held by every connection for its whole life, so it is compact: the values
// back to back in one exactly-sized allocation (none while empty) and 16-bit
// offsets, 56 bytes in the connection instead of six optional strings (240
// bytes and up to six allocations). A value is at most 65,535 bytes (the
// longest real one, JA4_or, is a few hundred); longer ones are not stored.
class ConnectionFingerprints {
 public:
  enum Kind : uint8_t { kJa4, kJa4R, kJa4O, kJa4Or, kAkamai, kTcp, kKinds };

  std::optional<std::string_view> get(Kind k) const {
    if (len_[k] == 0) return std::nullopt;
    return std::string_view(values_).substr(off_[k], len_[k]);
  }
  bool has(Kind k) const { return len_[k] != 0; }
  // Replaces the value of `k` (the others keep theirs).
  void set(Kind k, std::string_view value);

 private:
  std::string values_;
  std::array<uint16_t, kKinds> off_{};
  std::array<uint16_t, kKinds> len_{};
};

inline constexpr std::string_view kSpoofingHeader = "x-fingerprint-spoofing-detected";

struct RequestContext {
  const config::Config* cfg = nullptr;
  const config::Domain* domain = nullptr;
  const config::Route* route = nullptr;
  const config::Backend* backend = nullptr;
  const ConnectionFingerprints* fingerprints = nullptr;  // may be null
  std::string_view peer_ip;                              // client address, no brackets, IPv4-mapped unwrapped
  uint16_t local_port = 0;                               // the port the client connected to
  bool tls = false;
  std::string_view host;  // normalised routing host (may be empty)
};

// Hop-by-hop per RFC 9110 §7.6.1 plus Proxy-*, Trailer and the framing fields.
// `connection_tokens` are the lowercased names listed in Connection.
bool is_hop_by_hop(std::string_view name, const std::vector<std::string>& connection_tokens);
std::vector<std::string> connection_tokens(const http1::Headers& headers);

// True when `value` is a comma-separated list of IP address literals.
bool is_well_formed_xff(std::string_view value);

// Steps 1-6: the header list for the backend request (Host first).
http1::Headers rewrite_request(const http1::Headers& in, const RequestContext& ctx);

// Backend response → client: hop-by-hop removed, security headers, then the
// configured response manipulation (global → domain → route).
http1::Headers rewrite_response(const http1::Headers& in, const RequestContext& ctx);

// Security headers for a response in this scope (route block, else domain
// block, else global); HSTS only over TLS. Also used on proxy-generated
// responses, with null domain/route where they are unknown.
http1::Headers security_headers(const config::Config& cfg, const config::Domain* domain,
                                const config::Route* route, bool tls);

// Remove, then add (overwriting) — one scope of [headers] manipulation.
void apply_header_ops(http1::Headers& headers, const config::HeaderOps& ops);

}  // namespace huginn::worker::proxy
