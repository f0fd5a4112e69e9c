// Fuzz target: HTTP/2 client-stream front end (frames + HPACK) and the Akamai
// builder. Input: a client->server h2c byte stream; when it does not start
// with the connection preface, the preface is fed first so that the fuzzer
// spends its time on frames. Checks: the result does not depend on how the
// stream is segmented.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/fingerprint/h2frames.h"

using huginn::fp::H2PrefaceScanner;

namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool has_preface = size >= 4 && std::memcmp(data, "PRI ", 4) == 0;

  H2PrefaceScanner whole;
  if (!has_preface) whole.feed(reinterpret_cast<const uint8_t*>(kPreface), 24);
  const H2PrefaceScanner::Status st = whole.feed(data, size);

  // Same stream in irregular pieces (sizes derived from the data itself).
  H2PrefaceScanner pieces;
  if (!has_preface) pieces.feed(reinterpret_cast<const uint8_t*>(kPreface), 24);
  size_t off = 0;
  while (off < size && pieces.status() == H2PrefaceScanner::Status::kNeedMore) {
    const size_t n = std::min<size_t>(size - off, 1 + data[off] % 37);
    pieces.feed(data + off, n);
    off += n;
  }
  check(pieces.status() == st);
  check(pieces.error() == whole.error());
  check(pieces.akamai() == whole.akamai());
  check((st == H2PrefaceScanner::Status::kError) == !whole.error().empty());
  check(whole.akamai().size() < 8192);
  return 0;
}
