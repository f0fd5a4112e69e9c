#include "worker/proxy/fingerprint_memo.h"

#include <functional>
#include <string_view>

#include "common/fingerprint/ja4.h"

namespace huginn::worker::proxy {
namespace {

constexpr char kKindTcp = 'T';
constexpr char kKindJa4 = 'J';

}  // namespace

FingerprintMemo& FingerprintMemo::for_this_thread() {
  thread_local FingerprintMemo memo;
  return memo;
}

FingerprintMemo::Entry* FingerprintMemo::find(const ConnectionFingerprints& base, size_t* hash,
                                              Entry** slot) {
  // The base set's identity is part of the key: an entry holds a reference
  // to its base, so an equal identity is the same set, not a reused address.
  size_t h = std::hash<std::string_view>{}(scratch_);
  h ^= std::hash<const void*>{}(base.identity()) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  *hash = h;
  const size_t set = h % (kSlots / kWays);
  for (size_t way = 0; way < kWays; ++way) {
    Entry& e = slots_[set * kWays + way];
    if (e.hash == h && e.base.identity() == base.identity() && e.key == scratch_ && !e.key.empty()) {
      recent_[set] = static_cast<uint8_t>(way);
      return &e;
    }
  }
  *slot = &slots_[set * kWays + (recent_[set] + 1) % kWays];
  return nullptr;
}

void FingerprintMemo::store(Entry* slot, size_t hash, const ConnectionFingerprints& base,
                            const ConnectionFingerprints& result) {
  const auto i = static_cast<size_t>(slot - slots_.data());
  recent_[i / kWays] = static_cast<uint8_t>(i % kWays);
  slot->hash = hash;
  slot->key.assign(scratch_);  // reuses the slot's capacity
  slot->base = base;
  slot->result = result;
}

void FingerprintMemo::count(metrics::MemoKind kind, bool hit, metrics::Slot* metrics) {
  ++(hit ? hits_ : misses_);
  if (metrics) metrics->fingerprint_memo(kind, hit);
}

ConnectionFingerprints FingerprintMemo::with_tcp(const ConnectionFingerprints& base, const fp::SynFields& syn,
                                                 metrics::Slot* metrics) {
  scratch_.clear();
  scratch_.push_back(kKindTcp);
  fp::p0f_input_key(syn, scratch_);
  size_t hash = 0;
  Entry* slot = nullptr;
  if (const Entry* e = find(base, &hash, &slot)) {
    count(metrics::MemoKind::kTcp, true, metrics);
    return e->result;
  }
  count(metrics::MemoKind::kTcp, false, metrics);
  ConnectionFingerprints result = base;
  result.set(ConnectionFingerprints::kTcp, fp::p0f_raw_sig(syn));
  store(slot, hash, base, result);  // a SYN key is at most ~50 bytes
  return result;
}

ConnectionFingerprints FingerprintMemo::with_ja4(const ConnectionFingerprints& base,
                                                 const fp::ClientHello& hello, metrics::Slot* metrics) {
  scratch_.clear();
  scratch_.push_back(kKindJa4);
  fp::ja4_input_key(hello, 't', scratch_);
  const bool memoizable = scratch_.size() <= kMaxKey;
  size_t hash = 0;
  Entry* slot = nullptr;
  if (memoizable) {
    if (const Entry* e = find(base, &hash, &slot)) {
      count(metrics::MemoKind::kJa4, true, metrics);
      return e->result;
    }
  }
  count(metrics::MemoKind::kJa4, false, metrics);
  const fp::Ja4Set j = fp::compute_ja4(hello);
  using K = ConnectionFingerprints;
  ConnectionFingerprints result = base;
  result.set({{K::kJa4, j.ja4}, {K::kJa4R, j.ja4_r}, {K::kJa4O, j.ja4_o}, {K::kJa4Or, j.ja4_or}});
  if (memoizable) store(slot, hash, base, result);
  return result;
}

}  // namespace huginn::worker::proxy
