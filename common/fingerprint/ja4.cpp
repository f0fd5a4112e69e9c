#include "common/fingerprint/ja4.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "common/fingerprint/sha256.h"

namespace huginn::fp {
namespace {

constexpr uint16_t kExtServerName = 0x0000;
constexpr uint16_t kExtAlpn = 0x0010;
constexpr char kHex[] = "0123456789abcdef";
constexpr size_t kHashLen = 12;
constexpr size_t kALen = 10;

const char* version_code(uint16_t v) {
  switch (v) {
    case 0x0304:
      return "13";
    case 0x0303:
      return "12";
    case 0x0302:
      return "11";
    case 0x0301:
      return "10";
    case 0x0300:
      return "s3";
    case 0x0002:
      return "s2";
    case 0xfeff:
      return "d1";
    case 0xfefd:
      return "d2";
    case 0xfefc:
      return "d3";
    default:
      return "00";
  }
}

bool is_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

uint16_t ja4_version(const ClientHello& ch) {
  if (ch.has_supported_versions_ext) {
    bool found = false;
    uint16_t best = 0;
    for (uint16_t v : ch.supported_versions) {
      if (is_grease(v)) continue;
      if (!found || v > best) best = v;
      found = true;
    }
    if (found) return best;
  }
  return ch.legacy_version;
}

// Non-GREASE counts of the hello's lists.
struct Counts {
  size_t ciphers = 0;
  size_t exts = 0;         // all extensions (JA4_a, JA4_o)
  size_t exts_sorted = 0;  // without SNI and ALPN (JA4, JA4_r)
  size_t sigs = 0;
};

Counts count(const ClientHello& ch) {
  Counts c;
  for (uint16_t v : ch.cipher_suites) c.ciphers += is_grease(v) ? 0 : 1;
  for (const auto& e : ch.extensions) {
    if (is_grease(e.type)) continue;
    ++c.exts;
    if (e.type != kExtServerName && e.type != kExtAlpn) ++c.exts_sorted;
  }
  for (uint16_t v : ch.signature_algorithms) c.sigs += is_grease(v) ? 0 : 1;
  return c;
}

void put_count(char* p, size_t n) {
  if (n > 99) n = 99;
  p[0] = static_cast<char>('0' + n / 10);
  p[1] = static_cast<char>('0' + n % 10);
}

void build_a(const ClientHello& ch, char transport, const Counts& c, char* a) {
  a[0] = transport;
  std::memcpy(a + 1, version_code(ja4_version(ch)), 2);
  a[3] = ch.has_sni_ext ? 'd' : 'i';
  put_count(a + 4, c.ciphers);
  put_count(a + 6, c.exts);
  if (ch.alpn.empty()) {
    a[8] = a[9] = '0';
  } else {
    const std::string alpn = ja4_alpn_chars(ch.alpn.front());
    a[8] = alpn[0];
    a[9] = alpn[1];
  }
}

// Length of "xxxx,yyyy,..." for n values.
size_t list_len(size_t n) { return n == 0 ? 0 : n * 5 - 1; }

char* put_hex4(char* p, uint16_t v) {
  p[0] = kHex[(v >> 12) & 0xf];
  p[1] = kHex[(v >> 8) & 0xf];
  p[2] = kHex[(v >> 4) & 0xf];
  p[3] = kHex[v & 0xf];
  return p + 4;
}

// Writes the values (the caller has removed GREASE) comma-separated.
char* put_list(char* p, const uint16_t* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (i) *p++ = ',';
    p = put_hex4(p, v[i]);
  }
  return p;
}

// Values of `in` without GREASE (and without SNI/ALPN when `drop_sni_alpn`),
// written to `out` (sized by the caller from Counts).
size_t collect(const std::vector<uint16_t>& in, uint16_t* out) {
  size_t n = 0;
  for (uint16_t v : in)
    if (!is_grease(v)) out[n++] = v;
  return n;
}
size_t collect_exts(const ClientHello& ch, bool drop_sni_alpn, uint16_t* out) {
  size_t n = 0;
  for (const auto& e : ch.extensions) {
    if (is_grease(e.type)) continue;
    if (drop_sni_alpn && (e.type == kExtServerName || e.type == kExtAlpn)) continue;
    out[n++] = e.type;
  }
  return n;
}

// Scratch space for the value lists: on the stack for every real hello, on
// the heap only for pathological ones (the parser bounds a hello to 16 KiB,
// i.e. at most ~8k values).
class Scratch {
 public:
  explicit Scratch(size_t n) {
    if (n > stack_.size()) heap_.resize(n);
  }
  uint16_t* data() { return heap_.empty() ? stack_.data() : heap_.data(); }

 private:
  std::array<uint16_t, 512> stack_;
  std::vector<uint16_t> heap_;
};

// "a_ciphers_exts[_sigs]" in one allocation. Reports where the cipher list
// and the extension part (extensions plus "_sigs") start and end, so that the
// hashed variant can digest slices of this string.
struct RawLayout {
  size_t ciphers_begin, ciphers_len, exts_begin, exts_len, tail_len;
};

std::string build_raw(const char* a, const uint16_t* ciphers, size_t nc, const uint16_t* exts, size_t ne,
                      const uint16_t* sigs, size_t ns, RawLayout& lay) {
  const size_t len = kALen + 1 + list_len(nc) + 1 + list_len(ne) + (ns > 0 ? 1 + list_len(ns) : 0);
  std::string s(len, '_');
  char* p = s.data();
  std::memcpy(p, a, kALen);
  p += kALen + 1;
  lay.ciphers_begin = static_cast<size_t>(p - s.data());
  lay.ciphers_len = list_len(nc);
  p = put_list(p, ciphers, nc) + 1;
  lay.exts_begin = static_cast<size_t>(p - s.data());
  lay.exts_len = list_len(ne);
  p = put_list(p, exts, ne);
  if (ns > 0) p = put_list(p + 1, sigs, ns);
  lay.tail_len = static_cast<size_t>(p - s.data()) - lay.exts_begin;
  return s;
}

// "a_<hash of ciphers>_<hash of exts[_sigs]>"; an empty list hashes to zeros
// (for the extension part this depends on the extension list alone).
std::string build_hashed(const char* a, const std::string& raw, const RawLayout& lay) {
  std::string s(kALen + 2 + 2 * kHashLen, '_');
  std::memcpy(s.data(), a, kALen);
  const std::string_view view(raw);
  const std::string b = sha256_hex12(view.substr(lay.ciphers_begin, lay.ciphers_len));
  const std::string c = lay.exts_len == 0 ? std::string(kHashLen, '0')
                                          : sha256_hex12(view.substr(lay.exts_begin, lay.tail_len));
  if (b.size() == kHashLen) std::memcpy(s.data() + kALen + 1, b.data(), kHashLen);
  if (c.size() == kHashLen) std::memcpy(s.data() + kALen + 2 + kHashLen, c.data(), kHashLen);
  return s;
}

}  // namespace

std::string ja4_alpn_chars(std::string_view v) {
  if (v.empty()) return "00";
  const auto first = static_cast<unsigned char>(v.front());
  const auto last = static_cast<unsigned char>(v.back());
  if (is_alnum(first) && is_alnum(last)) return {static_cast<char>(first), static_cast<char>(last)};
  // Hex fallback: first and last hex digit of the whole value's hex string.
  return {kHex[first >> 4], kHex[last & 0x0f]};
}

std::string ja4_a(const ClientHello& ch, char transport) {
  char a[kALen];
  build_a(ch, transport, count(ch), a);
  return std::string(a, kALen);
}

namespace {

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put_size(std::string& out, size_t n) {
  const auto v = static_cast<uint32_t>(n);  // a hello is at most 16 KiB
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_values(std::string& out, const std::vector<uint16_t>& v) {
  put_size(out, v.size());
  for (const uint16_t x : v) put16(out, x);
}

}  // namespace

void ja4_input_key(const ClientHello& ch, char transport, std::string& out) {
  out.push_back(transport);
  out.push_back(static_cast<char>((ch.has_supported_versions_ext ? 1 : 0) | (ch.has_sni_ext ? 2 : 0) |
                                  (ch.alpn.empty() ? 0 : 4)));
  put16(out, ch.legacy_version);
  put_values(out, ch.supported_versions);
  if (!ch.alpn.empty()) {
    put_size(out, ch.alpn.front().size());
    out.append(ch.alpn.front());
  }
  put_values(out, ch.cipher_suites);
  put_size(out, ch.extensions.size());
  for (const auto& e : ch.extensions) put16(out, e.type);
  put_values(out, ch.signature_algorithms);
}

Ja4Set compute_ja4(const ClientHello& ch, char transport) {
  const Counts c = count(ch);
  char a[kALen];
  build_a(ch, transport, c, a);

  Scratch ciphers(c.ciphers), exts(c.exts), sigs(c.sigs);
  collect(ch.cipher_suites, ciphers.data());
  collect(ch.signature_algorithms, sigs.data());

  Ja4Set out;
  RawLayout lay{};
  // Wire order, SNI and ALPN kept.
  collect_exts(ch, false, exts.data());
  out.ja4_or = build_raw(a, ciphers.data(), c.ciphers, exts.data(), c.exts, sigs.data(), c.sigs, lay);
  out.ja4_o = build_hashed(a, out.ja4_or, lay);
  // Sorted, SNI and ALPN removed.
  std::sort(ciphers.data(), ciphers.data() + c.ciphers);
  collect_exts(ch, true, exts.data());
  std::sort(exts.data(), exts.data() + c.exts_sorted);
  out.ja4_r = build_raw(a, ciphers.data(), c.ciphers, exts.data(), c.exts_sorted, sigs.data(), c.sigs, lay);
  out.ja4 = build_hashed(a, out.ja4_r, lay);
  return out;
}

}  // namespace huginn::fp
