#include "worker/syn/syn_source.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "bpf/syn_abi_check.h"
#include "worker/syn/bpf_syscall.h"

namespace huginn::worker::syn {
namespace {

void fill_tcp(const huginn_syn_tcp& t, fp::SynFields* f) {
  f->window = t.window;
  f->seq = t.seq;
  f->ack = t.ack;
  f->urg_ptr = t.urg_ptr;
  f->tcp_flags = t.flags;
  f->tcp_reserved = t.reserved;
  f->tcp_options_len = t.options_len <= fp::kMaxTcpOptions ? t.options_len : fp::kMaxTcpOptions;
  std::memcpy(f->tcp_options.data(), t.options, f->tcp_options_len);
  f->payload_len = t.payload_len;
}

// A record the program would never write: not a pure SYN or bad lengths.
bool plausible(const huginn_syn_tcp& t) {
  return (t.flags & fp::kTcpSyn) && !(t.flags & fp::kTcpAck) && t.options_len <= HUGINN_SYN_MAX_OPTIONS;
}

}  // namespace

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

fp::SynFields syn_fields_from_record(const huginn_syn_value_v4& v) {
  fp::SynFields f;
  f.ip_version = 4;
  f.ttl = v.ttl;
  f.ip_id = v.ip_id;
  f.df = v.ip_flags & HUGINN_IP_DF;
  f.mf = v.ip_flags & HUGINN_IP_MF;
  f.reserved_bit = v.ip_flags & HUGINN_IP_RESERVED;
  f.tos = v.tos;
  f.ip_options_len = v.ip_options_len;
  fill_tcp(v.tcp, &f);
  return f;
}

fp::SynFields syn_fields_from_record(const huginn_syn_value_v6& v) {
  fp::SynFields f;
  f.ip_version = 6;
  f.ttl = v.hop_limit;
  f.tos = v.traffic_class;
  f.flow_label = v.flow_label & 0xFFFFF;
  fill_tcp(v.tcp, &f);
  return f;
}

bool capture_fresh(uint64_t captured_ns, uint64_t accept_ns, uint64_t max_age_ns) {
  return captured_ns <= accept_ns && accept_ns - captured_ns <= max_age_ns;
}

const char* syn_lookup_name(SynLookup s) {
  switch (s) {
    case SynLookup::kHit:
      return "hit";
    case SynLookup::kRingHit:
      return "ring hit";
    case SynLookup::kNoMaps:
      return "no maps";
    case SynLookup::kMiss:
      return "miss";
    case SynLookup::kStale:
      return "stale";
    case SynLookup::kInvalid:
      return "invalid";
    case SynLookup::kError:
      return "error";
  }
  return "?";
}

namespace {

// The ring first (no system call), then the LRU map. A ring record is used
// only if it passes the checks a map record would; anything else (not in the
// ring, being written, implausible, not fresh) goes to the map, so the ring
// can only save the system call, never change the answer the map gives for
// the same record.
template <typename Value, typename Key>
std::optional<fp::SynFields> lookup_in(const SynRing& ring, int map_fd, const Key& key, uint64_t accept_ns,
                                       uint64_t max_age_ns, SynLookup& st, bool& ring_asked) {
  Value v{};
  ring_asked = ring.valid();
  if (ring.find(key, &v) && plausible(v.tcp) && capture_fresh(v.captured_ns, accept_ns, max_age_ns)) {
    st = SynLookup::kRingHit;
    return syn_fields_from_record(v);
  }
  const int rc = bpf_map_lookup(map_fd, &key, &v);
  if (rc == -ENOENT) return st = SynLookup::kMiss, std::nullopt;
  if (rc != 0) return st = SynLookup::kError, std::nullopt;
  if (!plausible(v.tcp)) return st = SynLookup::kInvalid, std::nullopt;
  if (!capture_fresh(v.captured_ns, accept_ns, max_age_ns)) return st = SynLookup::kStale, std::nullopt;
  st = SynLookup::kHit;
  return syn_fields_from_record(v);
}

}  // namespace

std::optional<fp::SynFields> XdpSynSource::lookup(const huginn::net::SocketAddress& peer_in,
                                                  uint64_t accept_ns, SynLookup* status,
                                                  bool* ring_asked) const {
  SynLookup dummy;
  SynLookup& st = status ? *status : dummy;
  bool dummy_asked;
  bool& asked = ring_asked ? *ring_asked : dummy_asked;
  asked = false;
  const huginn::net::SocketAddress peer = peer_in.normalized();
  const std::string_view addr = peer.addr_bytes();
  const uint16_t port_be = htons(peer.port());
  if (peer.is_v4()) {
    if (!maps_.v4) return st = SynLookup::kNoMaps, std::nullopt;
    huginn_syn_key_v4 key{};
    key.family = HUGINN_FAMILY_V4;
    key.sport = port_be;
    std::memcpy(&key.saddr, addr.data(), 4);
    return lookup_in<huginn_syn_value_v4>(maps_.ring, maps_.v4.get(), key, accept_ns, max_age_ns_, st, asked);
  }
  if (peer.is_v6()) {
    if (!maps_.v6) return st = SynLookup::kNoMaps, std::nullopt;
    huginn_syn_key_v6 key{};
    key.family = HUGINN_FAMILY_V6;
    key.sport = port_be;
    std::memcpy(key.saddr, addr.data(), 16);
    return lookup_in<huginn_syn_value_v6>(maps_.ring, maps_.v6.get(), key, accept_ns, max_age_ns_, st, asked);
  }
  return st = SynLookup::kInvalid, std::nullopt;
}

}  // namespace huginn::worker::syn
