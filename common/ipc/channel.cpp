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
  if (fds.size() > kMaxFds) {
    *error = "too many descriptors";
    return false;
  }
  const std::vector<uint8_t> bytes = encode(m);
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxFds)];
  if (!fds.empty()) {
    std::memset(cbuf, 0, sizeof cbuf);
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes.size())) return true;
    if (n < 0 && errno == EINTR) continue;
    *error = n < 0 ? std::string("sendmsg: ") + std::strerror(errno) : "short sendmsg";
    return false;
  }
}

Received receive_message(int fd) {
  Received r;
  std::vector<uint8_t> buf(kMaxDatagram + 1);
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxFds)];
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      r.status = RecvStatus::kAgain;
      return r;
    }
    r.error = std::string("recvmsg: ") + std::strerror(errno);
    return r;
  }
  // Take ownership of every descriptor first, so that any rejection closes them.
  bool bad_cmsg = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int rfd;
        std::memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        r.fds.emplace_back(rfd);
      }
    } else {
      bad_cmsg = true;
    }
  }
  if (n == 0 && r.fds.empty()) {
    r.status = RecvStatus::kClosed;
    return r;
  }
  if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    r.error = "truncated datagram or control data";
    r.fds.clear();
    return r;
  }
  if (bad_cmsg) {
    r.error = "unexpected control message";
    r.fds.clear();
    return r;
  }
  DecodeResult d = decode(buf.data(), static_cast<size_t>(n), r.fds.size());
  if (!d.ok) {
    r.error = d.error;
    r.fds.clear();
    return r;
  }
  r.message = std::move(d.message);
  r.status = RecvStatus::kMessage;
  return r;
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
