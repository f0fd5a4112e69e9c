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
#include "worker/proxy/connection_fingerprints.h"

namespace huginn::worker::proxy {

inline constexpr std::string_view kSpoofingHeader = "x-fingerprint-spoofing-detected";
inline constexpr std::string_view kXForwardedFor = "X-Forwarded-For";
inline constexpr std::string_view kXForwardedProto = "X-Forwarded-Proto";
inline constexpr std::string_view kXForwardedHost = "X-Forwarded-Host";
inline constexpr std::string_view kXForwardedPort = "X-Forwarded-Port";

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
// `connection_tokens` are the lowercased names listed in Connection, less
// those dropped anyway (Keep-Alive, TE, Proxy-* and the like).
bool is_hop_by_hop(std::string_view name, const std::vector<std::string>& connection_tokens);
std::vector<std::string> connection_tokens(const http1::Headers& headers);

// True when `value` is a comma-separated list of IP address literals.
bool is_well_formed_xff(std::string_view value);

// Steps 1-6: the header list for the backend request (Host first). Takes the
// client's list and rewrites it in place (pass it with std::move when the
// caller is done with it: the kept fields are moved, not copied).
//
// With `refs`, the injected fields of steps 3 and 4 are not copied into the
// list but referenced there, which saves up to two string allocations per
// field and request:
//   - the fingerprint fields: values in the connection's interned set
//     (ctx.fingerprints), names in the configuration;
//   - X-Forwarded-For (unless the client sent a list the peer is appended to),
//     -Proto, -Host and -Port: values in ctx.peer_ip, ctx.host and static
//     strings, the port number copied into `refs` itself.
// So the references stay valid while the connection, the configuration and
// the bytes behind ctx.host do. A group of fields stays in the list instead,
// as without `refs`, when the configured manipulation (step 5) names one of
// its fields, so that its remove and add apply as before (configuration
// validation keeps them from being named like Host). Referenced fields are
// written after the list's fields.
http1::Headers rewrite_request(http1::Headers in, const RequestContext& ctx,
                               http1::HeaderRefs* refs = nullptr);

// Backend response → client: hop-by-hop removed, security headers, then the
// configured response manipulation (global → domain → route).
// Also in place, like rewrite_request.
http1::Headers rewrite_response(http1::Headers in, const RequestContext& ctx);

// Security headers for a response in this scope (route block, else domain
// block, else global); HSTS only over TLS. Also used on proxy-generated
// responses, with null domain/route where they are unknown.
http1::Headers security_headers(const config::Config& cfg, const config::Domain* domain,
                                const config::Route* route, bool tls);

// Remove, then add (overwriting) — one scope of [headers] manipulation.
void apply_header_ops(http1::Headers& headers, const config::HeaderOps& ops);

}  // namespace huginn::worker::proxy
