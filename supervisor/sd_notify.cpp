#include "supervisor/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "common/sys/unique_fd.h"

namespace huginn::supervisor {

bool sd_notify(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return false;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  const size_t n = std::strlen(path);
  if (n >= sizeof sun.sun_path) return false;
  std::memcpy(sun.sun_path, path, n);
  if (sun.sun_path[0] == '@') sun.sun_path[0] = '\0';  // abstract namespace
  sys::UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  return sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sun), len) ==
         static_cast<ssize_t>(state.size());
}

}  // namespace huginn::supervisor
