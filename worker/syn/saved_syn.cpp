#include "worker/syn/saved_syn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace huginn::worker::syn {
namespace {

// IPv6 (40) or IPv4 with options (60) + TCP with options (60), with room for
// IPv6 extension headers; the kernel refuses (EINVAL) a buffer that is too small.
constexpr size_t kSavedSynMax = 512;

}  // namespace

bool enable_save_syn(int listen_fd, std::string* error) {
  const int one = 1;
  if (setsockopt(listen_fd, IPPROTO_TCP, TCP_SAVE_SYN, &one, sizeof one) != 0) {
    if (error) *error = std::string("TCP_SAVE_SYN: ") + std::strerror(errno);
    return false;
  }
  return true;
}

std::optional<fp::SynFields> read_saved_syn(int conn_fd, std::string* error) {
  uint8_t buf[kSavedSynMax];
  socklen_t len = sizeof buf;
  if (getsockopt(conn_fd, IPPROTO_TCP, TCP_SAVED_SYN, buf, &len) != 0) {
    if (error) *error = std::string("TCP_SAVED_SYN: ") + std::strerror(errno);
    return std::nullopt;
  }
  if (len == 0) {
    if (error) *error = "no saved SYN (SYN cookie, already read, or TCP_SAVE_SYN not set)";
    return std::nullopt;
  }
  return fp::syn_fields_from_packet(buf, len, error);
}

}  // namespace huginn::worker::syn
