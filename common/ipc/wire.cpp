#include "common/ipc/wire.h"

#include <sys/socket.h>

#include <cerrno>

namespace huginn::ipc::wire {

std::string parse_frame(const uint8_t* data, size_t len, uint16_t version, const char* protocol,
                        size_t max_payload, Frame* out) {
  if (len < kFrameHeaderSize) return "short datagram (" + std::to_string(len) + " bytes)";
  if (len > kFrameHeaderSize + max_payload) return "datagram too large";
  Reader h(data, kFrameHeaderSize);
  uint16_t got_version = 0;
  uint32_t plen = 0;
  h.u16(&got_version);
  h.u16(&out->type);
  h.u32(&plen);
  if (got_version != version)
    return std::string(protocol) + "protocol version " + std::to_string(got_version) + ", expected " +
           std::to_string(version);
  if (plen > max_payload) return "payload length " + std::to_string(plen) + " over limit";
  if (plen != len - kFrameHeaderSize) return "payload length mismatch";
  out->payload = data + kFrameHeaderSize;
  out->payload_len = plen;
  return {};
}

bool send_datagram(int fd, const std::vector<uint8_t>& bytes, const std::vector<int>& fds, size_t max_fds,
                   std::string* error) {
  if (fds.size() > max_fds) {
    *error = "too many descriptors";
    return false;
  }
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> cbuf;
  if (!fds.empty()) {
    cbuf.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    mh.msg_control = cbuf.data();
    mh.msg_controllen = cbuf.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    const ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes.size())) return true;
    if (n < 0 && errno == EINTR) continue;
    *error = n < 0 ? std::string("sendmsg: ") + std::strerror(errno) : "short sendmsg";
    return false;
  }
}

Datagram receive_datagram(int fd, size_t max_bytes, size_t max_fds) {
  Datagram d;
  d.bytes.resize(max_bytes + 1);  // one spare byte: a longer datagram shows as MSG_TRUNC
  iovec iov{d.bytes.data(), d.bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> cbuf(CMSG_SPACE(sizeof(int) * max_fds));
  mh.msg_control = cbuf.data();
  mh.msg_controllen = cbuf.size();
  ssize_t n;
  do {
    n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      d.status = RecvStatus::kAgain;
      return d;
    }
    d.error = std::string("recvmsg: ") + std::strerror(errno);
    return d;
  }
  // Take ownership of every descriptor first, so that any rejection closes them.
  bool bad_cmsg = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int rfd;
        std::memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        d.fds.emplace_back(rfd);
      }
    } else {
      bad_cmsg = true;
    }
  }
  if (n == 0 && d.fds.empty()) {
    d.status = RecvStatus::kClosed;
    return d;
  }
  if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    d.error = "truncated datagram or control data";
    d.fds.clear();
    return d;
  }
  if (bad_cmsg) {
    d.error = "unexpected control message";
    d.fds.clear();
    return d;
  }
  d.bytes.resize(static_cast<size_t>(n));
  d.status = RecvStatus::kMessage;
  return d;
}

}  // namespace huginn::ipc::wire
