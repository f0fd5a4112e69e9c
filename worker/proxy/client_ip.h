// The client address used for rate limiting: the peer itself, or, when the
// peer is a trusted proxy (`security.trusted_proxies`), the address its
// X-Forwarded-For names. Pure.
#pragma once

#include <string>
#include <string_view>

#include "common/config/model.h"
#include "worker/http1/message.h"

namespace huginn::worker::proxy {

// Every X-Forwarded-For field (in order, as one comma-separated list) is
// walked right to left: entries that are trusted proxies are skipped, the
// first one that is not is the client. Rules:
//   * peer not trusted (and `insecure` off) → the peer; the header is ignored;
//   * no X-Forwarded-For → the peer;
//   * an entry that is not an IP address stops the walk: the last trusted
//     hop (the one that forwarded the junk) is the client;
//   * every entry trusted → the leftmost one.
// `insecure = true` trusts every peer and every hop but the leftmost is
// still only reached through trusted hops (so it returns the leftmost).
// Addresses come back in canonical text form (IPv4-mapped IPv6 unwrapped).
std::string client_ip(std::string_view peer_ip, const config::TrustedProxies& trusted,
                      const http1::Headers& headers);

}  // namespace huginn::worker::proxy
