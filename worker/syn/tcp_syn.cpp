#include "worker/syn/tcp_syn.h"

#include "worker/syn/saved_syn.h"

namespace huginn::worker::syn {

bool TcpSynResolver::prepare_listener(int listen_fd, std::string* error) const {
  return !uses_saved_syn() || enable_save_syn(listen_fd, error);
}

std::optional<fp::SynFields> TcpSynResolver::resolve(int conn_fd, const huginn::net::SocketAddress& peer,
                                                     uint64_t accept_ns, Origin* origin,
                                                     SynTrace* trace) const {
  Origin dummy;
  Origin& o = origin ? *origin : dummy;
  SynTrace dummy_trace;
  SynTrace& t = trace ? *trace : dummy_trace;
  o = Origin::kNone;
  t = SynTrace{};
  if (uses_xdp()) {
    t.xdp_asked = true;
    if (auto f = xdp_.lookup(peer, accept_ns, &t.xdp, &t.ring_asked)) {
      o = Origin::kXdp;
      return f;
    }
  }
  if (uses_saved_syn() && conn_fd != kNoSocket) {
    t.saved_syn_asked = true;
    if (auto f = read_saved_syn(conn_fd)) {
      t.saved_syn_hit = true;
      o = Origin::kSavedSyn;
      return f;
    }
  }
  return std::nullopt;
}

size_t syn_lookup_events(const SynTrace& t, std::array<metrics::SynLookupEvent, 3>& out) {
  using E = metrics::SynLookupEvent;
  size_t n = 0;
  if (t.xdp_asked) {
    if (t.xdp == SynLookup::kRingHit) {
      out[n++] = E::kRingHit;
    } else {
      if (t.ring_asked) out[n++] = E::kRingMiss;
      switch (t.xdp) {
        case SynLookup::kHit:
          out[n++] = E::kMapHit;
          break;
        case SynLookup::kNoMaps:
          out[n++] = E::kMapNoGrant;
          break;
        case SynLookup::kMiss:
          out[n++] = E::kMapNotFound;
          break;
        case SynLookup::kStale:
          out[n++] = E::kMapStale;
          break;
        case SynLookup::kInvalid:
          out[n++] = E::kMapInvalid;
          break;
        case SynLookup::kError:
        case SynLookup::kRingHit:  // handled above
          out[n++] = E::kMapError;
          break;
      }
    }
  }
  if (t.saved_syn_asked) out[n++] = t.saved_syn_hit ? E::kSavedSynHit : E::kSavedSynMiss;
  return n;
}

}  // namespace huginn::worker::syn
