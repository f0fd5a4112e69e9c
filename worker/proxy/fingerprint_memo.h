// A memo of the fingerprint computations of recent connections, per worker
// thread. The clients of one TLS stack on one operating system send the same
// cipher, extension and signature-algorithm lists and the same SYN shape, so
// most connections repeat a computation another one made moments before:
// the p0f signature of the SYN, the JA4 family of the ClientHello, and the
// interning of the resulting value set (ConnectionFingerprints). The memo
// maps what each computation reads (fp::p0f_input_key, fp::ja4_input_key)
// and the value set it starts from to the value set it ends with; a hit
// costs building and comparing that key (~100 bytes) instead of parsing,
// sorting, hashing and formatting.
//
// Two-way set-associative: a key hashes to a set of two slots, and a new
// entry replaces the one of the two used less recently. (Direct-mapped, the
// two entries of one client, its SYN's and its ClientHello's, fell into one
// slot for 1 client in 64, and then evicted each other on every connection.)
// An entry holds references to two value sets (ConnectionFingerprints), so
// at most 2 × kSlots sets stay alive because of the memo. Keys longer than
// kMaxKey bytes (pathological hellos) are computed every time. Not
// thread-safe: one memo per thread (for_this_thread()).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/fingerprint/clienthello.h"
#include "common/fingerprint/p0f.h"
#include "common/metrics/table.h"
#include "worker/proxy/connection_fingerprints.h"

namespace huginn::worker::proxy {

class FingerprintMemo {
 public:
  static constexpr size_t kSlots = 64;
  static constexpr size_t kWays = 2;
  static constexpr size_t kMaxKey = 1024;

  // `base` with kTcp set to fp::p0f_raw_sig(syn). A hit or miss counts in
  // `metrics` when given.
  ConnectionFingerprints with_tcp(const ConnectionFingerprints& base, const fp::SynFields& syn,
                                  metrics::Slot* metrics = nullptr);
  // `base` with the JA4 family of `hello` (TLS over TCP); counted as above.
  ConnectionFingerprints with_ja4(const ConnectionFingerprints& base, const fp::ClientHello& hello,
                                  metrics::Slot* metrics = nullptr);

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

  static FingerprintMemo& for_this_thread();

 private:
  struct Entry {
    size_t hash = 0;
    std::string key;  // empty: unused
    ConnectionFingerprints base;
    ConnectionFingerprints result;
  };

  // The entry for scratch_ (kind byte first) over `base`, or null on a miss;
  // on a miss `*slot` is where the new entry goes (the set's less recently
  // used slot).
  Entry* find(const ConnectionFingerprints& base, size_t* hash, Entry** slot);
  void count(metrics::MemoKind kind, bool hit, metrics::Slot* metrics);
  void store(Entry* slot, size_t hash, const ConnectionFingerprints& base,
             const ConnectionFingerprints& result);

  std::array<Entry, kSlots> slots_;               // set s: slots_[s * kWays + way]
  std::array<uint8_t, kSlots / kWays> recent_{};  // per set: the way used last
  std::string scratch_;                           // the key being looked up (keeps its capacity)
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace huginn::worker::proxy
