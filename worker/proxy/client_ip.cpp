#include "worker/proxy/client_ip.h"

#include <optional>
#include <vector>

#include "common/net/address.h"

namespace huginn::worker::proxy {

namespace {

// X-Forwarded-For entries considered at most (right to left); a longer chain
// is cut there (its leftmost part cannot be verified anyway).
constexpr size_t kMaxHops = 64;

std::optional<net::SocketAddress> parse_ip(std::string_view ip) {
  ip = http1::trim_ows(ip);
  if (ip.empty() || ip.size() > 64) return std::nullopt;
  if (ip.front() == '[') {  // "[v6]" or "[v6]:port"
    const size_t close = ip.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    ip = ip.substr(1, close - 1);
    if (ip.find(':') == std::string_view::npos) return std::nullopt;  // "[1.2.3.4]"
  } else if (const size_t colon = ip.find(':'); colon != std::string_view::npos) {
    // Bare IPv6, or "v4:port".
    if (ip.find(':', colon + 1) == std::string_view::npos && ip.find('.') != std::string_view::npos)
      ip = ip.substr(0, colon);
  }
  auto a = net::SocketAddress::from_ip(ip);
  if (!a) return std::nullopt;
  return a->normalized();
}

bool is_trusted(const net::SocketAddress& a, const config::TrustedProxies& trusted) {
  if (trusted.insecure) return true;
  for (const auto& c : trusted.cidrs)
    if (c.contains(a)) return true;
  return false;
}

}  // namespace

std::string client_ip(std::string_view peer_ip, const config::TrustedProxies& trusted,
                      const http1::Headers& headers) {
  auto peer = parse_ip(peer_ip);
  if (!peer) return std::string(peer_ip);
  if (!is_trusted(*peer, trusted)) return peer->ip_string();

  // Entries of every X-Forwarded-For field, right to left.
  std::vector<std::string_view> hops;
  for (auto h = headers.rbegin(); h != headers.rend() && hops.size() < kMaxHops; ++h) {
    if (!http1::iequals(h->name, "x-forwarded-for")) continue;
    std::string_view v = h->value;
    while (hops.size() < kMaxHops) {
      const size_t comma = v.rfind(',');
      const std::string_view item = comma == std::string_view::npos ? v : v.substr(comma + 1);
      if (!http1::trim_ows(item).empty()) hops.push_back(item);
      if (comma == std::string_view::npos) break;
      v = v.substr(0, comma);
    }
  }
  net::SocketAddress last_trusted = *peer;
  for (std::string_view hop : hops) {
    auto a = parse_ip(hop);
    if (!a) return last_trusted.ip_string();
    if (!is_trusted(*a, trusted)) return a->ip_string();
    last_trusted = *a;
  }
  return last_trusted.ip_string();
}

}  // namespace huginn::worker::proxy
