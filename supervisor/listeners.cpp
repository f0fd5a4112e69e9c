#include "supervisor/listeners.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace huginn::supervisor {

bool bind_listeners(const config::Config& cfg, std::vector<Listener>* out, std::string* error) {
  std::vector<Listener> result;
  uint32_t id = 0;
  for (const auto& addr : cfg.listen.addrs) {
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
    if (bind(fd.get(), addr.sa(), addr.len()) != 0) return fail("bind");
    if (listen(fd.get(), static_cast<int>(cfg.listen.tcp_backlog)) != 0) return fail("listen");
    result.push_back(Listener{id++, addr, cfg.tls.has_value(), std::move(fd)});
  }
  *out = std::move(result);
  return true;
}

}  // namespace huginn::supervisor
