// Socket addresses and CIDR prefixes: parsing and formatting, no I/O.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace huginn::net {

// An IPv4 or IPv6 address with a port. IPv4-mapped IPv6 addresses are kept as
// given; use normalized() to turn ::ffff:a.b.c.d into a plain IPv4 address.
class SocketAddress {
 public:
  SocketAddress() = default;
  static std::optional<SocketAddress> from_sockaddr(const sockaddr* sa, socklen_t len);
  // "1.2.3.4:80", "[::1]:8080". Host names are not accepted (no DNS here).
  static std::optional<SocketAddress> parse(std::string_view text);
  // A bare IPv4 or IPv6 literal ("192.0.2.1", "2001:db8::1"), with port 0.
  static std::optional<SocketAddress> from_ip(std::string_view ip);

  int family() const { return storage_.ss_family; }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t len() const { return len_; }
  uint16_t port() const;
  void set_port(uint16_t port);
  bool is_v4() const { return family() == AF_INET; }
  bool is_v6() const { return family() == AF_INET6; }
  // 4 or 16 bytes of address in network order.
  std::string_view addr_bytes() const;
  SocketAddress normalized() const;
  std::string ip_string() const;  // "1.2.3.4" or "::1" (no brackets)
  std::string to_string() const;  // "1.2.3.4:80" or "[::1]:80"
  bool operator==(const SocketAddress& o) const;

 private:
  static std::optional<SocketAddress> make(int family, std::string_view host, uint16_t port);
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

// An IPv4 or IPv6 prefix, e.g. 10.0.0.0/8 or 2001:db8::/32.
struct Cidr {
  int family = AF_UNSPEC;
  std::array<uint8_t, 16> addr{};  // 4 or 16 significant bytes, host bits zero
  uint8_t prefix_len = 0;
  // "10.0.0.0/8", "::1/128", or a bare address (full-length prefix).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const SocketAddress& a) const;
  std::string to_string() const;
  bool operator==(const Cidr&) const = default;
};

}  // namespace huginn::net
