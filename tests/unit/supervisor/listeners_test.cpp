// supervisor/listeners: the sockets the workers accept on.
#include "supervisor/listeners.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace huginn::supervisor {
namespace {

int tcp_nodelay(int fd) {
  int v = -1;
  socklen_t len = sizeof v;
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) != 0) return -1;
  return v;
}

// Binds a listener on `addr` ("host:0"), accepts one loopback connection and
// returns the accepted socket's TCP_NODELAY (-1 on any failure, reported).
int accepted_nodelay(const net::SocketAddress& addr) {
  Listener l;
  std::string error;
  if (!bind_listener(addr, 16, &l, &error)) {
    ADD_FAILURE() << error;
    return -1;
  }
  EXPECT_EQ(tcp_nodelay(l.fd.get()), 1) << addr.to_string() << ": the listener itself";
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  sys::UniqueFd client(socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client || connect(client.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ADD_FAILURE() << addr.to_string() << ": connect: " << std::strerror(errno);
    return -1;
  }
  sys::UniqueFd accepted(accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return accepted ? tcp_nodelay(accepted.get()) : -1;
}

// Whether this machine has an IPv6 loopback to bind (containers may not).
bool ipv6_loopback_available() {
  sys::UniqueFd fd(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  return fd && bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

// Workers do not set TCP_NODELAY per connection: every accepted socket must
// get it from the listener.
TEST(ListenersTest, AcceptedIpv4SocketsInheritTcpNodelay) {
  const auto a = net::SocketAddress::parse("127.0.0.1:0");
  ASSERT_TRUE(a);
  EXPECT_EQ(accepted_nodelay(*a), 1);
}

TEST(ListenersTest, AcceptedIpv6SocketsInheritTcpNodelay) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "this machine has no IPv6 loopback (::1) to bind";
  const auto a = net::SocketAddress::parse("[::1]:0");
  ASSERT_TRUE(a);
  EXPECT_EQ(accepted_nodelay(*a), 1);
}

TEST(ListenersTest, AnAddressInUseIsNamedInTheError) {
  const auto any = net::SocketAddress::parse("127.0.0.1:0");
  ASSERT_TRUE(any);
  Listener first;
  std::string error;
  ASSERT_TRUE(bind_listener(*any, 16, &first, &error)) << error;
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  ASSERT_EQ(getsockname(first.fd.get(), reinterpret_cast<sockaddr*>(&sin), &len), 0);
  const auto taken = net::SocketAddress::parse("127.0.0.1:" + std::to_string(ntohs(sin.sin_port)));
  ASSERT_TRUE(taken);
  Listener second;
  EXPECT_FALSE(bind_listener(*taken, 16, &second, &error));
  EXPECT_NE(error.find(taken->to_string() + ": bind: "), std::string::npos) << error;
  EXPECT_FALSE(second.fd);
}

}  // namespace
}  // namespace huginn::supervisor
