// The host-wide metrics table: one shared-memory region per generation of
// workers, created by the supervisor and mapped read-write by each worker of
// that generation, which only ever increments the words of its own slot
// (relaxed atomics: no locks, no IPC per request).
//
//   [ header: magic, layout version, slot count, slot bytes, route slots ] 64 bytes
//   [ slot 0: kFixedWords u64 words, then route_slots × kRouteWords,
//     padded to a cache line                                         ]
//   [ slot 1 ] ...
//
// The supervisor reads the slots with relaxed atomic loads and sums them. A
// worker that exits has its slot folded into the supervisor's base (every
// counter added, gauges dropped) and zeroed before the slot is reused, so the
// rendered totals never go backwards.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics/layout.h"
#include "common/metrics/routes.h"
#include "common/sys/shared_memory.h"
#include "common/sys/unique_fd.h"

namespace huginn::metrics {

inline constexpr uint32_t kMagic = 0x4d474e48;  // "HNGM"
inline constexpr size_t kHeaderBytes = 64;
inline constexpr uint32_t kMaxSlots = 1024;

// A worker's view of its slot: the increment API the data path calls.
class Slot {
 public:
  Slot(uint64_t* words, uint32_t route_slots) : w_(words), route_slots_(route_slots) {}

  void add(size_t w, uint64_t n = 1) {
    std::atomic_ref<uint64_t>(w_[w]).fetch_add(n, std::memory_order_relaxed);
  }
  void set(size_t w, uint64_t v) { std::atomic_ref<uint64_t>(w_[w]).store(v, std::memory_order_relaxed); }
  uint64_t get(size_t w) const { return std::atomic_ref<uint64_t>(w_[w]).load(std::memory_order_relaxed); }

  void connection_accepted() { add(word::kConnectionsTotal); }
  void connection_rejected() { add(word::kConnectionsRejected); }
  void set_active_connections(uint64_t n) { set(word::kConnectionsActive, n); }
  // A completed handshake: OpenSSL's version and cipher names.
  void tls_handshake(std::string_view openssl_version, std::string_view openssl_cipher) {
    add(word::kTlsHandshakes + tls_version_index(openssl_version) * kCiphers + cipher_index(openssl_cipher));
  }
  void tls_handshake_failed() { add(word::kTlsHandshakeErrors); }
  void tls_fingerprint(bool ok) { add(ok ? word::kTlsFingerprints : word::kTlsFingerprintFailures); }
  void http2_fingerprint(bool ok) { add(ok ? word::kHttp2Fingerprints : word::kHttp2FingerprintFailures); }
  void syn_lookup(bool hit) { add(hit ? word::kSynHit : word::kSynMiss); }
  // One SYN source asked for a connection's SYN, and its answer.
  void syn_source(SynLookupEvent e) { add(word::kSynLookups + static_cast<size_t>(e)); }
  // One fingerprint computation of `kind` served by the memo (hit) or computed (miss).
  void fingerprint_memo(MemoKind kind, bool hit) {
    add(word::kFingerprintMemo + static_cast<size_t>(kind) * 2 + (hit ? 0 : 1));
  }
  // One response sent to a client (any origin: backend or the proxy itself).
  // `method`: method_index() of the request method. `route_slot`
  // (route_slot()): a request that matched a route also counts in that
  // route's section; kNoRouteSlot, the "no route" section or an index out of
  // range count only in the entrypoint series.
  static constexpr size_t kNoRouteSlot = static_cast<size_t>(-1);
  void request(Protocol p, size_t method, uint16_t status, uint64_t duration_us,
               size_t route_slot = kNoRouteSlot);
  // One rate-limit decision in the section of `route_slot` (any section,
  // including "no route"; out of range: not counted).
  void rate_limit(size_t route_slot, config::RateLimit::LimitBy strategy, bool allowed);
  // One IP filter decision.
  void ip_filter(bool allowed) { add(allowed ? word::kIpFilterAllowed : word::kIpFilterDenied); }
  void proxy_protocol(ProxyProtocolEvent e) { add(word::kProxyProtocol + static_cast<size_t>(e)); }
  // One response head received from the backend of the route in `route_slot`,
  // `duration_us` after the exchange started; out of range: not counted.
  void backend_response(size_t route_slot, uint16_t status, uint64_t duration_us);
  // One failed backend exchange of the route in `route_slot`.
  void backend_error(size_t route_slot, BackendError e);

  uint32_t route_slots() const { return route_slots_; }

 private:
  uint64_t* w_;
  uint32_t route_slots_;
};

// Heap-backed slot for code that runs without the shared table (tests).
class LocalSlot {
 public:
  explicit LocalSlot(uint32_t route_slots = 1) : route_slots_(route_slots), words_(slot_words(route_slots)) {}
  Slot slot() { return Slot(words_.data(), route_slots_); }
  Counters counters() const;
  RouteCounters route(uint32_t r) const;

 private:
  uint32_t route_slots_;
  std::vector<uint64_t> words_;
};

class Table {
 public:
  static size_t bytes_for(uint32_t slots, uint32_t route_slots) {
    return kHeaderBytes + size_t{slots} * slot_bytes(route_slots);
  }

  // Supervisor: a zeroed table of `slots` slots with `route_slots` per-route
  // sections each (route_slot_count() of the generation's config) in a
  // size-sealed memfd.
  static std::unique_ptr<Table> create(uint32_t slots, size_t route_slots, std::string* error);
  // Worker: maps the table received with METRICS; checks seals, exact size,
  // magic, layout version, slot count and route slots (computed from its own
  // copy of the same config) before returning it.
  static std::unique_ptr<Table> attach(int fd, uint32_t slots, size_t route_slots, std::string* error);

  int fd() const { return fd_.get(); }  // creator only (invalid after attach)
  uint32_t slots() const { return slots_; }
  uint32_t route_slots() const { return route_slots_; }
  Slot slot(uint32_t i) const { return Slot(words(i), route_slots_); }
  Counters read(uint32_t i) const;
  RouteCounters read_route(uint32_t i, uint32_t r) const;
  // Adds every slot into `totals` (gauges included: a live sum) and every
  // non-zero route section r into (*routes)[keys[r]]. `keys`: route_keys()
  // of the generation's config (size route_slots()).
  void sum_into(const std::vector<RouteKey>& keys, Counters* totals, RouteTotals* routes) const;
  // Adds slot `i` into `base` (gauges excluded) and its non-zero route
  // sections into `routes` as sum_into(), then zeroes it. Only while no
  // process writes the slot (its worker has exited, before a new one starts).
  void fold_into(uint32_t i, const std::vector<RouteKey>& keys, Counters* base, RouteTotals* routes);

 private:
  uint64_t* words(uint32_t i) const;
  sys::UniqueFd fd_;
  sys::SharedMapping map_;
  uint32_t slots_ = 0;
  uint32_t route_slots_ = 0;
};

// into[w] += from[w] for every word (gauges included: a live sum).
void accumulate(const Counters& from, Counters* into);
// (*into)[k] += every route section of `from`.
void accumulate(const RouteTotals& from, RouteTotals* into);

}  // namespace huginn::metrics
