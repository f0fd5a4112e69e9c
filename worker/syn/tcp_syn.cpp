#include "worker/syn/tcp_syn.h"

#include "worker/syn/saved_syn.h"

namespace huginn::worker::syn {

bool TcpSynResolver::prepare_listener(int listen_fd, std::string* error) const {
  return !uses_saved_syn() || enable_save_syn(listen_fd, error);
}

std::optional<fp::SynFields> TcpSynResolver::resolve(int conn_fd, const huginn::net::SocketAddress& peer,
                                                     uint64_t accept_ns, Origin* origin) const {
  Origin dummy;
  Origin& o = origin ? *origin : dummy;
  o = Origin::kNone;
  if (uses_xdp()) {
    if (auto f = xdp_.lookup(peer, accept_ns)) {
      o = Origin::kXdp;
      return f;
    }
  }
  if (uses_saved_syn() && conn_fd != kNoSocket) {
    if (auto f = read_saved_syn(conn_fd)) {
      o = Origin::kSavedSyn;
      return f;
    }
  }
  return std::nullopt;
}

}  // namespace huginn::worker::syn
