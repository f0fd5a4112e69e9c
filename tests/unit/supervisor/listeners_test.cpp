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

// Accepts one connection on a fresh listener for `addr` ("host:0") and
// returns the accepted socket's TCP_NODELAY; -2 when the address family is
// not available here.
int accepted_nodelay(const char* addr) {
  const auto a = net::SocketAddress::parse(addr);
  if (!a) return -3;
  Listener l;
  std::string error;
  if (!bind_listener(*a, 16, &l, &error)) {
    if (error.find("Cannot assign requested address") != std::string::npos) return -2;
    ADD_FAILURE() << error;
    return -3;
  }
  EXPECT_EQ(tcp_nodelay(l.fd.get()), 1) << addr << ": the listener itself";
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -3;
  sys::UniqueFd client(socket(a->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client || connect(client.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ADD_FAILURE() << addr << ": connect: " << std::strerror(errno);
    return -3;
  }
  sys::UniqueFd accepted(accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!accepted) return -3;
  return tcp_nodelay(accepted.get());
}

// Workers do not set TCP_NODELAY per connection: every accepted socket must
// get it from the listener.
TEST(ListenersTest, AcceptedSocketsInheritTcpNodelay) {
  EXPECT_EQ(accepted_nodelay("127.0.0.1:0"), 1);
  const int v6 = accepted_nodelay("[::1]:0");
  if (v6 == -2) GTEST_SKIP() << "no IPv6 loopback here; IPv4 checked";
  EXPECT_EQ(v6, 1);
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
