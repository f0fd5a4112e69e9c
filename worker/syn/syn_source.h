// XDP SYN source: looks a connection's SYN up in the maps granted by the
// helper (map_grant.h) — the ring's read-only mapping first, then the LRU map
// through its read-only fd — and turns the record into fp::SynFields.
#pragma once

#include <cstdint>
#include <optional>

#include "common/fingerprint/p0f.h"
#include "common/net/address.h"
#include "worker/syn/map_grant.h"

struct huginn_syn_value_v4;
struct huginn_syn_value_v6;

namespace huginn::worker::syn {

// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(). Take it right after
// accept() returns.
uint64_t monotonic_ns();

// Pure conversions of a map record (bpf/syn_abi.h) into the renderer's input.
fp::SynFields syn_fields_from_record(const huginn_syn_value_v4& v);
fp::SynFields syn_fields_from_record(const huginn_syn_value_v6& v);

// Freshness rule for a record captured at `captured_ns` for a connection
// accepted at `accept_ns` (both CLOCK_MONOTONIC):
//   * captured_ns <= accept_ns: this connection's SYN necessarily arrived
//     before accept() returned; a record written later belongs to a newer
//     connection attempt from the same address and port.
//   * accept_ns - captured_ns <= max_age_ns: every SYN of this connection
//     (retransmissions overwrite the record) arrived at most one handshake
//     plus the wait in the listen backlog before the accept. An older record
//     can only be the SYN of an *earlier* connection from the same
//     address:port whose successor's SYN was not recorded (program detached,
//     insert failure, interface not watched): that earlier connection had to
//     complete its handshake, live and end, and the client had to reuse the
//     port (Linux clients hold it in TIME_WAIT for 60 s; tcp_tw_reuse needs
//     >= 1 s) before the new SYN. max_age_ns (default 10 s) is far above a
//     handshake plus a loaded backlog and below TIME_WAIT, so such a record
//     is a miss, never a wrong fingerprint.
bool capture_fresh(uint64_t captured_ns, uint64_t accept_ns, uint64_t max_age_ns);

inline constexpr uint64_t kDefaultMaxSynAgeNs = 10'000'000'000ull;

// kRingHit: served by the ring (no system call); kHit: by the LRU map.
enum class SynLookup { kHit, kRingHit, kNoMaps, kMiss, kStale, kInvalid, kError };
const char* syn_lookup_name(SynLookup s);

class XdpSynSource {
 public:
  explicit XdpSynSource(uint64_t max_age_ns = kDefaultMaxSynAgeNs) : max_age_ns_(max_age_ns) {}

  void set_maps(GrantedMaps maps) { maps_ = std::move(maps); }
  void clear() { maps_ = GrantedMaps{}; }
  bool has_maps() const { return maps_.v4.valid() || maps_.v6.valid(); }
  uint32_t generation() const { return maps_.generation; }

  // The SYN of the TCP peer `peer` (getpeername of the accepted socket, not a
  // PROXY-protocol address). IPv4-mapped IPv6 peers use the IPv4 map.
  // `*ring_asked`: whether the ring was consulted (a granted ring and a peer
  // of a family with a granted map); a kRingHit implies it.
  std::optional<fp::SynFields> lookup(const huginn::net::SocketAddress& peer, uint64_t accept_ns,
                                      SynLookup* status = nullptr, bool* ring_asked = nullptr) const;

 private:
  GrantedMaps maps_;
  uint64_t max_age_ns_;
};

}  // namespace huginn::worker::syn
