// Listening sockets, bound by the supervisor and handed to every worker.
#pragma once

#include <string>

#include "common/net/address.h"
#include "common/sys/unique_fd.h"

namespace huginn::supervisor {

struct Listener {
  uint32_t id = 0;
  net::SocketAddress address;
  sys::UniqueFd fd;
};

// Binds one `[listen] addrs` entry: SO_REUSEADDR, IPV6_V6ONLY on IPv6,
// TCP_NODELAY (inherited by every accepted socket), listen(backlog). Returns false with `*error` naming the
// address.
bool bind_listener(const net::SocketAddress& addr, uint32_t backlog, Listener* out, std::string* error);

}  // namespace huginn::supervisor
