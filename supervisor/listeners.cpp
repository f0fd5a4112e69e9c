#include "supervisor/listeners.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace huginn::supervisor {

bool bind_listener(const net::SocketAddress& addr, uint32_t backlog, Listener* out, std::string* error) {
  sys::UniqueFd fd(socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
  auto fail = [&](const char* what) {
    *error = addr.to_string() + ": " + what + ": " + std::strerror(errno);
    return false;
  };
  if (!fd) return fail("socket");
  int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return fail("SO_REUSEADDR");
  if (addr.is_v6() && setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    return fail("IPV6_V6ONLY");
  // Accepted sockets inherit it (Linux clones the listener's TCP state), so no
  // worker sets it per connection. Set before listen(): a connection queued
  // before the first worker starts has it too.
  if (setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) return fail("TCP_NODELAY");
  if (bind(fd.get(), addr.sa(), addr.len()) != 0) return fail("bind");
  if (listen(fd.get(), static_cast<int>(backlog)) != 0) return fail("listen");
  out->address = addr;
  out->fd = std::move(fd);
  return true;
}

}  // namespace huginn::supervisor
