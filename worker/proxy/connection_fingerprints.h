// The fingerprints of one client connection (JA4 family, Akamai, TCP SYN),
// computed once per connection and repeated on each of its requests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>

namespace huginn::worker::proxy {

// Empty until the TLS (JA4 family), HTTP/2 (Akamai) and TCP SYN (p0f) sources
// fill it in; an absent value means "no header" (never an empty one: setting
// "" leaves the value absent).
//
// Held by every connection for its whole life, and most connections share
// their values with many others: clients of one TLS stack on one operating
// system send the same ClientHello shape and the same SYN. So a connection
// holds only a pointer (8 bytes) to an immutable, reference-counted set of
// values that is interned per thread: connections with equal values share one
// copy (JA4_r and JA4_or alone are a few hundred bytes). A set lives as long
// as a connection refers to it; the intern table holds no references.
//
// A value is at most 65,535 bytes and all of them together too; what does not
// fit is not stored. Single-threaded: an object belongs to the thread that
// set it (a worker has one), and copies must stay on that thread.
class ConnectionFingerprints {
 public:
  enum Kind : uint8_t { kJa4, kJa4R, kJa4O, kJa4Or, kAkamai, kTcp, kKinds };

  ConnectionFingerprints() = default;
  ~ConnectionFingerprints() { release(); }
  ConnectionFingerprints(const ConnectionFingerprints& o) : set_(o.set_) { retain(); }
  ConnectionFingerprints(ConnectionFingerprints&& o) noexcept : set_(std::exchange(o.set_, nullptr)) {}
  ConnectionFingerprints& operator=(const ConnectionFingerprints& o);
  ConnectionFingerprints& operator=(ConnectionFingerprints&& o) noexcept;

  std::optional<std::string_view> get(Kind k) const;
  bool has(Kind k) const { return get(k).has_value(); }
  // Replaces the value of `k` (the others keep theirs).
  void set(Kind k, std::string_view value) { set({{k, value}}); }
  // Replaces several values at once (one lookup in the intern table).
  void set(std::initializer_list<std::pair<Kind, std::string_view>> values);

  // The interned set this object refers to (null: no value): two objects
  // alive on one thread have equal values exactly when their identities are
  // equal. Meaningful only while an object with this identity is alive.
  const void* identity() const { return set_; }

  // Distinct value sets alive on this thread (for tests and diagnostics).
  static size_t interned();

  struct Set;  // defined in the .cpp; public so that the intern table can name it

 private:
  void retain();
  void release();

  Set* set_ = nullptr;  // null: no value at all
};

}  // namespace huginn::worker::proxy
