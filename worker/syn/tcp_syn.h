// The connection's SYN per `[fingerprint] tcp_source`:
//   xdp        the helper's maps only (a miss without a grant);
//   saved_syn  TCP_SAVED_SYN only;
//   auto       the maps when granted and holding a fresh record, else
//              TCP_SAVED_SYN (so losing the helper or the grant degrades to
//              the saved SYN, never to a failed request).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/config/model.h"
#include "common/fingerprint/p0f.h"
#include "common/metrics/layout.h"
#include "common/net/address.h"
#include "worker/syn/syn_source.h"

namespace huginn::worker::syn {

// What one resolve() asked, and each source's answer.
struct SynTrace {
  enum class Origin { kNone, kXdp, kSavedSyn };

  bool xdp_asked = false;
  bool ring_asked = false;             // the XDP source consulted its ring
  SynLookup xdp = SynLookup::kNoMaps;  // the XDP source's answer (if asked)
  bool saved_syn_asked = false;
  bool saved_syn_hit = false;

  // The source whose SYN resolve() returned.
  Origin origin() const {
    if (xdp_asked && (xdp == SynLookup::kRingHit || xdp == SynLookup::kHit)) return Origin::kXdp;
    return saved_syn_hit ? Origin::kSavedSyn : Origin::kNone;
  }
};

// The huginn_tcp_syn_lookups_total events of `t`, in the order the sources
// were asked (at most three: ring, map, saved SYN); returns how many.
size_t syn_lookup_events(const SynTrace& t, std::array<metrics::SynLookupEvent, 3>& out);

class TcpSynResolver {
 public:
  using Source = config::Fingerprint::TcpSource;

  static constexpr int kNoSocket = -1;

  explicit TcpSynResolver(Source source, uint64_t max_age_ns = kDefaultMaxSynAgeNs)
      : source_(source), xdp_(max_age_ns) {}

  Source source() const { return source_; }
  bool uses_saved_syn() const { return source_ != Source::kXdp; }
  bool uses_xdp() const { return source_ != Source::kSavedSyn; }

  // Call on every inherited listener: sets TCP_SAVE_SYN when the source may
  // read it (saved_syn, auto). A no-op returning true for xdp.
  bool prepare_listener(int listen_fd, std::string* error) const;

  void set_grant(GrantedMaps maps) { xdp_.set_maps(std::move(maps)); }
  void drop_grant() { xdp_.clear(); }
  bool has_grant() const { return xdp_.has_maps(); }

  // Once per accepted connection: `peer` is getpeername() of `conn_fd`,
  // `accept_ns` monotonic_ns() taken right after accept(). `conn_fd` = kNoSocket
  // when `peer` is not the socket's peer (a PROXY-protocol source): only the
  // XDP map can hold that client's SYN; the socket's saved SYN is the proxy's.
  // `trace` (optional) is overwritten with what was asked and answered.
  std::optional<fp::SynFields> resolve(int conn_fd, const huginn::net::SocketAddress& peer,
                                       uint64_t accept_ns, SynTrace* trace = nullptr) const;

 private:
  Source source_;
  XdpSynSource xdp_;
};

}  // namespace huginn::worker::syn
