// The host-wide metrics table: one shared-memory region per generation of
// workers, created by the supervisor and mapped read-write by each worker of
// that generation, which only ever increments the words of its own slot
// (relaxed atomics: no locks, no IPC per request).
//
//   [ header: magic, layout version, slot count, slot bytes ] 64 bytes
//   [ slot 0: kSlotWords u64 words, padded to a cache line  ]
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

#include "common/metrics/layout.h"
#include "common/sys/shared_memory.h"
#include "common/sys/unique_fd.h"

namespace huginn::metrics {

inline constexpr uint32_t kMagic = 0x4d474e48;  // "HNGM"
inline constexpr size_t kHeaderBytes = 64;
inline constexpr uint32_t kMaxSlots = 1024;

// A worker's view of its slot: the increment API the data path calls.
class Slot {
 public:
  explicit Slot(uint64_t* words) : w_(words) {}

  void add(size_t w, uint64_t n = 1) {
    std::atomic_ref<uint64_t>(w_[w]).fetch_add(n, std::memory_order_relaxed);
  }
  void set(size_t w, uint64_t v) { std::atomic_ref<uint64_t>(w_[w]).store(v, std::memory_order_relaxed); }
  uint64_t get(size_t w) const { return std::atomic_ref<uint64_t>(w_[w]).load(std::memory_order_relaxed); }

  void connection_accepted() { add(word::kConnectionsTotal); }
  void connection_rejected() { add(word::kConnectionsRejected); }
  void set_active_connections(uint64_t n) { set(word::kConnectionsActive, n); }
  void tls_handshake(std::string_view openssl_version) {
    add(word::kTlsHandshakes + tls_version_index(openssl_version));
  }
  void tls_handshake_failed() { add(word::kTlsHandshakeErrors); }
  void tls_fingerprint(bool ok) { add(ok ? word::kTlsFingerprints : word::kTlsFingerprintFailures); }
  void http2_fingerprint(bool ok) { add(ok ? word::kHttp2Fingerprints : word::kHttp2FingerprintFailures); }
  void syn_lookup(bool hit) { add(hit ? word::kSynHit : word::kSynMiss); }
  // One response sent to a client (any origin: backend or the proxy itself).
  // `method`: method_index() of the request method.
  void request(Protocol p, size_t method, uint16_t status, uint64_t duration_us);
  // One response head received from a backend.
  void backend_response(uint16_t status) { add(word::kBackendResponses + status_index(status)); }
  void backend_error(BackendError e) { add(word::kBackendErrors + static_cast<size_t>(e)); }

 private:
  uint64_t* w_;
};

// Heap-backed slot for code that runs without the shared table (tests).
class LocalSlot {
 public:
  LocalSlot() : words_(std::make_unique<Counters>()) { words_->fill(0); }
  Slot slot() { return Slot(words_->data()); }
  const Counters& counters() const { return *words_; }

 private:
  std::unique_ptr<Counters> words_;
};

class Table {
 public:
  static size_t bytes_for(uint32_t slots) { return kHeaderBytes + size_t{slots} * kSlotBytes; }

  // Supervisor: a zeroed table of `slots` slots in a size-sealed memfd.
  static std::unique_ptr<Table> create(uint32_t slots, std::string* error);
  // Worker: maps the table received with METRICS; checks seals, exact size,
  // magic, layout version and slot count before returning it.
  static std::unique_ptr<Table> attach(int fd, uint32_t slots, std::string* error);

  int fd() const { return fd_.get(); }  // creator only (invalid after attach)
  uint32_t slots() const { return slots_; }
  Slot slot(uint32_t i) const { return Slot(words(i)); }
  Counters read(uint32_t i) const;
  // Adds slot `i` into `base` (gauges excluded) and zeroes it. Only while no
  // process writes the slot (its worker has exited, before a new one starts).
  void fold_into(uint32_t i, Counters* base);

 private:
  uint64_t* words(uint32_t i) const;
  sys::UniqueFd fd_;
  sys::SharedMapping map_;
  uint32_t slots_ = 0;
};

// into[w] += from[w] for every word (gauges included: a live sum).
void accumulate(const Counters& from, Counters* into);

}  // namespace huginn::metrics
