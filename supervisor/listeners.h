// Listening sockets, bound by the supervisor and handed to every worker.
#pragma once

#include <string>
#include <vector>

#include "common/config/model.h"
#include "common/sys/unique_fd.h"

namespace huginn::supervisor {

struct Listener {
  uint32_t id = 0;
  net::SocketAddress address;
  bool tls = false;
  sys::UniqueFd fd;
};

// Binds every `[listen] addrs` entry: SO_REUSEADDR, IPV6_V6ONLY on IPv6,
// listen(tcp_backlog). All or nothing: returns false with `*error` naming
// the address that failed.
bool bind_listeners(const config::Config& cfg, std::vector<Listener>* out, std::string* error);

}  // namespace huginn::supervisor
