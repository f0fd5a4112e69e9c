#include "worker/proxy/connection_fingerprints.h"

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

namespace huginn::worker::proxy {

using Lengths = std::array<uint16_t, ConnectionFingerprints::kKinds>;

// The values back to back in kind order; offsets follow from the lengths.
struct ConnectionFingerprints::Set {
  uint32_t refs = 1;
  Lengths off{};
  Lengths len{};
  size_t hash = 0;
  std::string text;
};

namespace {

using Set = ConnectionFingerprints::Set;

struct Key {
  std::string_view text;
  const Lengths& len;
};

size_t hash_of(std::string_view text, const Lengths& len) {
  size_t h = std::hash<std::string_view>{}(text);
  for (const uint16_t l : len) h = (h ^ l) * 0x100000001b3ULL;  // the split matters too
  return h;
}

struct SetHash {
  using is_transparent = void;
  size_t operator()(const Set* s) const { return s->hash; }
  size_t operator()(const Key& k) const { return hash_of(k.text, k.len); }
};

struct SetEq {
  using is_transparent = void;
  bool operator()(const Set* a, const Set* b) const { return a == b; }
  bool operator()(const Key& k, const Set* s) const { return k.len == s->len && k.text == s->text; }
  bool operator()(const Set* s, const Key& k) const { return (*this)(k, s); }
};

// Not owning: a set is deleted by its last reference, which takes it out.
struct Table {
  std::unordered_set<Set*, SetHash, SetEq> sets;
  ~Table();
};

// Trivially destructible, so still readable while the thread's other
// thread_local objects are destroyed: a connection object that outlives the
// table (one destroyed at thread exit) then just frees its set.
thread_local bool table_gone = false;

Table& table() {
  thread_local Table t;
  return t;
}

Table::~Table() { table_gone = true; }

}  // namespace

ConnectionFingerprints& ConnectionFingerprints::operator=(const ConnectionFingerprints& o) {
  if (set_ != o.set_) {
    release();
    set_ = o.set_;
    retain();
  }
  return *this;
}

ConnectionFingerprints& ConnectionFingerprints::operator=(ConnectionFingerprints&& o) noexcept {
  if (this != &o) {
    release();
    set_ = std::exchange(o.set_, nullptr);
  }
  return *this;
}

void ConnectionFingerprints::retain() {
  if (set_ != nullptr) ++set_->refs;
}

void ConnectionFingerprints::release() {
  Set* s = std::exchange(set_, nullptr);
  if (s == nullptr || --s->refs > 0) return;
  if (!table_gone) table().sets.erase(s);
  delete s;
}

std::optional<std::string_view> ConnectionFingerprints::get(Kind k) const {
  if (set_ == nullptr || set_->len[k] == 0) return std::nullopt;
  return std::string_view(set_->text).substr(set_->off[k], set_->len[k]);
}

void ConnectionFingerprints::set(std::initializer_list<std::pair<Kind, std::string_view>> values) {
  std::array<std::string_view, kKinds> v{};
  for (uint8_t i = 0; i < kKinds; ++i) v[i] = get(static_cast<Kind>(i)).value_or(std::string_view());
  for (const auto& [k, value] : values) v[k] = value.size() > UINT16_MAX ? std::string_view() : value;
  size_t total = 0;
  for (const auto& x : v) total += x.size();
  if (total > UINT16_MAX) return;  // offsets would not fit: keep the old values
  if (total == 0) {
    release();
    return;
  }
  std::string text;
  text.reserve(total);
  Lengths off{}, len{};
  for (uint8_t i = 0; i < kKinds; ++i) {
    off[i] = static_cast<uint16_t>(text.size());
    len[i] = static_cast<uint16_t>(v[i].size());
    text.append(v[i]);
  }
  // `v` may point into the current set: everything is copied by now.
  Table& t = table();
  if (const auto it = t.sets.find(Key{text, len}); it != t.sets.end()) {
    if (*it == set_) return;
    Set* shared = *it;
    ++shared->refs;
    release();
    set_ = shared;
    return;
  }
  auto fresh = std::make_unique<Set>();
  fresh->off = off;
  fresh->len = len;
  fresh->hash = hash_of(text, len);
  fresh->text = std::move(text);
  t.sets.insert(fresh.get());
  release();
  set_ = fresh.release();
}

size_t ConnectionFingerprints::interned() { return table_gone ? 0 : table().sets.size(); }

}  // namespace huginn::worker::proxy
