#include "common/net/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace huginn::net {

namespace {

// Parses a decimal number of at most `max_digits` digits, no sign, no spaces.
std::optional<uint32_t> parse_decimal(std::string_view s, size_t max_digits, uint32_t max_value) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > max_value) return std::nullopt;
  return v;
}

// inet_pton needs a NUL-terminated string; reject embedded NULs and overlong input first.
bool pton(int family, std::string_view text, void* out) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  if (text.find('\0') != std::string_view::npos) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return inet_pton(family, buf, out) == 1;
}

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

std::optional<SocketAddress> SocketAddress::from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return std::nullopt;
  SocketAddress out;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in));
    out.len_ = sizeof(sockaddr_in);
    return out;
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in6));
    out.len_ = sizeof(sockaddr_in6);
    return out;
  }
  return std::nullopt;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  bool v6 = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    v6 = true;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  auto port = parse_decimal(port_text, 5, 65535);
  if (!port) return std::nullopt;
  return make(v6 ? AF_INET6 : AF_INET, host, static_cast<uint16_t>(*port));
}

std::optional<SocketAddress> SocketAddress::from_ip(std::string_view ip) {
  return make(ip.find(':') != std::string_view::npos ? AF_INET6 : AF_INET, ip, 0);
}

std::optional<SocketAddress> SocketAddress::make(int family, std::string_view host, uint16_t port) {
  SocketAddress out;
  if (family == AF_INET6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    if (!pton(AF_INET6, host, &sin6.sin6_addr)) return std::nullopt;
    sin6.sin6_port = htons(port);
    std::memcpy(&out.storage_, &sin6, sizeof(sin6));
    out.len_ = sizeof(sin6);
  } else {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    if (!pton(AF_INET, host, &sin.sin_addr)) return std::nullopt;
    sin.sin_port = htons(port);
    std::memcpy(&out.storage_, &sin, sizeof(sin));
    out.len_ = sizeof(sin);
  }
  return out;
}

uint16_t SocketAddress::port() const {
  if (is_v4()) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (is_v6()) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (is_v4()) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (is_v6()) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string_view SocketAddress::addr_bytes() const {
  if (is_v4()) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
    return {reinterpret_cast<const char*>(&sin->sin_addr), 4};
  }
  if (is_v6()) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    return {reinterpret_cast<const char*>(&sin6->sin6_addr), 16};
  }
  return {};
}

SocketAddress SocketAddress::normalized() const {
  if (!is_v6()) return *this;
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
  const auto* b = reinterpret_cast<const uint8_t*>(&sin6->sin6_addr);
  if (std::memcmp(b, kV4MappedPrefix, sizeof(kV4MappedPrefix)) != 0) return *this;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = sin6->sin6_port;
  std::memcpy(&sin.sin_addr, b + 12, 4);
  SocketAddress out;
  std::memcpy(&out.storage_, &sin, sizeof(sin));
  out.len_ = sizeof(sin);
  return out;
}

std::string SocketAddress::ip_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof(buf));
  } else if (is_v6()) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

std::string SocketAddress::to_string() const {
  if (!is_v4() && !is_v6()) return {};
  std::string out;
  if (is_v6()) out += '[';
  out += ip_string();
  out += is_v6() ? "]:" : ":";
  out += std::to_string(port());
  return out;
}

bool SocketAddress::operator==(const SocketAddress& o) const {
  if (family() != o.family()) return false;
  if (family() == AF_UNSPEC) return true;
  if (port() != o.port() || addr_bytes() != o.addr_bytes()) return false;
  if (is_v6()) {
    return reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_scope_id ==
           reinterpret_cast<const sockaddr_in6*>(&o.storage_)->sin6_scope_id;
  }
  return true;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  std::string_view addr = text;
  std::optional<uint32_t> len;
  size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    len = parse_decimal(text.substr(slash + 1), 3, 128);
    if (!len) return std::nullopt;
  }
  Cidr c;
  if (addr.find(':') != std::string_view::npos) {
    if (!pton(AF_INET6, addr, c.addr.data())) return std::nullopt;
    c.family = AF_INET6;
    c.prefix_len = static_cast<uint8_t>(len.value_or(128));
    // An IPv4-mapped prefix (::ffff:a.b.c.d/96+) is stored as the IPv4 prefix it denotes,
    // because contains() compares normalized addresses.
    if (c.prefix_len >= 96 && std::memcmp(c.addr.data(), kV4MappedPrefix, 12) == 0) {
      std::array<uint8_t, 16> v4{};
      std::memcpy(v4.data(), c.addr.data() + 12, 4);
      c.addr = v4;
      c.family = AF_INET;
      c.prefix_len = static_cast<uint8_t>(c.prefix_len - 96);
    }
  } else {
    if (!pton(AF_INET, addr, c.addr.data())) return std::nullopt;
    if (len && *len > 32) return std::nullopt;
    c.family = AF_INET;
    c.prefix_len = static_cast<uint8_t>(len.value_or(32));
  }
  // Mask host bits (10.1.2.3/8 means 10.0.0.0/8).
  const size_t nbytes = c.family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < nbytes; ++i) {
    const int bits_here = static_cast<int>(c.prefix_len) - static_cast<int>(i * 8);
    if (bits_here >= 8) continue;
    if (bits_here <= 0) {
      c.addr[i] = 0;
    } else {
      c.addr[i] &= static_cast<uint8_t>(0xff << (8 - bits_here));
    }
  }
  return c;
}

bool Cidr::contains(const SocketAddress& a) const {
  const SocketAddress n = a.normalized();
  if (n.family() != family || family == AF_UNSPEC) return false;
  std::string_view b = n.addr_bytes();
  int remaining = prefix_len;
  for (size_t i = 0; i < b.size() && remaining > 0; ++i, remaining -= 8) {
    const auto byte = static_cast<uint8_t>(b[i]);
    const uint8_t mask = remaining >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - remaining));
    if ((byte & mask) != addr[i]) return false;
  }
  return true;
}

std::string Cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    inet_ntop(AF_INET, addr.data(), buf, sizeof(buf));
  } else if (family == AF_INET6) {
    inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
  } else {
    return {};
  }
  return std::string(buf) + "/" + std::to_string(prefix_len);
}

}  // namespace huginn::net
