#include "common/ipc/channel.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace huginn::ipc {

bool make_channel(sys::UniqueFd* a, sys::UniqueFd* b) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return false;
  a->reset(sv[0]);
  b->reset(sv[1]);
  return true;
}

bool send_message(int fd, const Message& m, const std::vector<int>& fds, std::string* error) {
  return wire::send_datagram(fd, encode(m), fds, kMaxFds, error);
}

Received receive_message(int fd) {
  return wire::receive_decoded<Received>(fd, kMaxDatagram, kMaxFds, decode);
}

bool is_listening_tcp_socket(int fd, int family, std::string* error) {
  int v = 0;
  socklen_t l = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) != 0 || v != SOCK_STREAM) {
    *error = "descriptor is not a stream socket";
    return false;
  }
  l = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) != 0 || v != 1) {
    *error = "socket is not listening";
    return false;
  }
  l = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) != 0 || v != family) {
    *error = "socket family does not match the manifest";
    return false;
  }
  l = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &l) != 0 || v != IPPROTO_TCP) {
    *error = "socket is not TCP";
    return false;
  }
  return true;
}

}  // namespace huginn::ipc
