// Fuzz target: TLS ClientHello parser + JA4 family.
// Input: the raw bytes a client sends first on a TCP connection.
// Checks (abort on violation): the parser never reads out of bounds (ASan),
// results are consistent between the whole input and its `consumed` prefix,
// every proper prefix of a complete hello needs more data, and the JA4
// strings have their fixed shape; the memo key (ja4_input_key) is the same
// for both parses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/fingerprint/clienthello.h"
#include "common/fingerprint/ja4.h"

using huginn::fp::ClientHelloParse;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_ja4_shape(const huginn::fp::ClientHello& ch, const huginn::fp::Ja4Set& j) {
  check(j.ja4.size() == 36 && j.ja4[10] == '_' && j.ja4[23] == '_');
  check(j.ja4_o.size() == 36 && j.ja4_o.compare(0, 10, j.ja4, 0, 10) == 0);
  check(j.ja4_r.compare(0, 10, j.ja4, 0, 10) == 0 && j.ja4_r[10] == '_');
  check(j.ja4_or.compare(0, 10, j.ja4, 0, 10) == 0);
  // The wire-order raw string carries SNI and ALPN ("0000", "0010" plus a
  // comma each); otherwise it holds the same values as the sorted one.
  size_t sni_alpn = 0;
  for (const auto& e : ch.extensions) sni_alpn += (e.type == 0x0000 || e.type == 0x0010) ? 1 : 0;
  size_t delta = 5 * sni_alpn;
  if (sni_alpn > 0 && sni_alpn == ch.extensions.size() - [&] {
        size_t g = 0;
        for (const auto& e : ch.extensions) g += huginn::fp::is_grease(e.type) ? 1 : 0;
        return g;
      }()) {
    delta -= 1;  // no separating comma when SNI/ALPN are the only extensions
  }
  check(j.ja4_or.size() == j.ja4_r.size() + delta);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ClientHelloParse p = huginn::fp::parse_client_hello(data, size);
  switch (p.status) {
    case ClientHelloParse::Status::kOk: {
      check(p.consumed > 0 && p.consumed <= size && p.error.empty());
      check_ja4_shape(p.hello, huginn::fp::compute_ja4(p.hello));
      // The hello's own records parse to the same result...
      const ClientHelloParse again = huginn::fp::parse_client_hello(data, p.consumed);
      check(again.status == ClientHelloParse::Status::kOk && again.consumed == p.consumed);
      check(again.hello.extensions.size() == p.hello.extensions.size());
      // The memo key sees the same inputs (and the same JA4) both times.
      std::string k1, k2;
      huginn::fp::ja4_input_key(p.hello, 't', k1);
      huginn::fp::ja4_input_key(again.hello, 't', k2);
      check(k1 == k2 && huginn::fp::compute_ja4(again.hello).ja4_r == huginn::fp::compute_ja4(p.hello).ja4_r);
      // ...and one byte less is not enough.
      const ClientHelloParse shorter = huginn::fp::parse_client_hello(data, p.consumed - 1);
      check(shorter.status == ClientHelloParse::Status::kNeedMore);
      break;
    }
    case ClientHelloParse::Status::kNeedMore:
      check(p.error.empty() && p.consumed == 0);
      break;
    case ClientHelloParse::Status::kError:
    case ClientHelloParse::Status::kUnsupported:
      check(!p.error.empty() && p.consumed == 0);
      break;
  }
  return 0;
}
