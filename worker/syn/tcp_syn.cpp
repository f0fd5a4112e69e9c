#include "worker/syn/tcp_syn.h"

#include "worker/syn/saved_syn.h"

namespace huginn::worker::syn {

bool TcpSynResolver::prepare_listener(int listen_fd, std::string* error) const {
  return !uses_saved_syn() || enable_save_syn(listen_fd, error);
}

std::optional<fp::SynFields> TcpSynResolver::resolve(int conn_fd, const huginn::net::SocketAddress& peer,
                                                     uint64_t accept_ns, SynTrace* trace) const {
  SynTrace dummy;
  SynTrace& t = trace ? *trace : dummy;
  t = SynTrace{};
  if (uses_xdp()) {
    t.xdp_asked = true;
    if (auto f = xdp_.lookup(peer, accept_ns, &t.xdp, &t.ring_asked)) return f;
  }
  if (uses_saved_syn() && conn_fd != kNoSocket) {
    t.saved_syn_asked = true;
    if (auto f = read_saved_syn(conn_fd)) {
      t.saved_syn_hit = true;
      return f;
    }
  }
  return std::nullopt;
}

namespace {

// The one event that stands for the XDP source's answer.
metrics::SynLookupEvent xdp_event(SynLookup st) {
  using E = metrics::SynLookupEvent;
  switch (st) {
    case SynLookup::kRingHit:
      return E::kRingHit;
    case SynLookup::kHit:
      return E::kMapHit;
    case SynLookup::kNoMaps:
      return E::kMapNoGrant;
    case SynLookup::kMiss:
      return E::kMapNotFound;
    case SynLookup::kStale:
      return E::kMapStale;
    case SynLookup::kInvalid:
      return E::kMapInvalid;
    case SynLookup::kError:
      break;
  }
  return E::kMapError;
}

}  // namespace

size_t syn_lookup_events(const SynTrace& t, std::array<metrics::SynLookupEvent, 3>& out) {
  using E = metrics::SynLookupEvent;
  size_t n = 0;
  if (t.xdp_asked) {
    if (t.ring_asked && t.xdp != SynLookup::kRingHit) out[n++] = E::kRingMiss;  // then the map answered
    out[n++] = xdp_event(t.xdp);
  }
  if (t.saved_syn_asked) out[n++] = t.saved_syn_hit ? E::kSavedSynHit : E::kSavedSynMiss;
  return n;
}

}  // namespace huginn::worker::syn
