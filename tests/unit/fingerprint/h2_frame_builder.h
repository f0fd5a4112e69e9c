// Test-only helper: serialises HTTP/2 frames (RFC 9113) and HPACK header
// blocks (nghttp2's deflater) for the Akamai front-end tests.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/sys/c_handle.h"
#include "tests/support/raw_h2.h"

namespace huginn::fp::testing {

using H2Bytes = std::vector<uint8_t>;

inline const std::string& kH2Preface = huginn::testing::raw_h2::kPreface;

inline H2Bytes preface() { return H2Bytes(kH2Preface.begin(), kH2Preface.end()); }

inline H2Bytes frame(uint8_t type, uint8_t flags, uint32_t stream, const H2Bytes& payload) {
  const std::string f = huginn::testing::raw_h2::frame(
      type, flags, stream, std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
  return H2Bytes(f.begin(), f.end());
}

inline void put32(H2Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

inline H2Bytes settings_frame(const std::vector<std::pair<uint16_t, uint32_t>>& s, bool ack = false) {
  H2Bytes p;
  for (const auto& [id, v] : s) {
    p.push_back(static_cast<uint8_t>(id >> 8));
    p.push_back(static_cast<uint8_t>(id));
    put32(p, v);
  }
  return frame(0x4, ack ? 0x1 : 0x0, 0, p);
}

inline H2Bytes window_update_frame(uint32_t stream, uint32_t inc) {
  H2Bytes p;
  put32(p, inc);
  return frame(0x8, 0, stream, p);
}

inline H2Bytes priority_payload(bool exclusive, uint32_t dep, uint8_t weight) {
  H2Bytes p;
  put32(p, (exclusive ? 0x80000000u : 0u) | dep);
  p.push_back(weight);
  return p;
}

inline H2Bytes priority_frame(uint32_t stream, bool exclusive, uint32_t dep, uint8_t weight) {
  return frame(0x2, 0, stream, priority_payload(exclusive, dep, weight));
}

// HPACK-encodes `headers` with a fresh deflater.
inline H2Bytes hpack(const std::vector<std::pair<std::string, std::string>>& headers) {
  nghttp2_hd_deflater* raw = nullptr;
  if (nghttp2_hd_deflate_new(&raw, 4096) != 0) return {};
  sys::CHandle<nghttp2_hd_deflater, nghttp2_hd_deflate_del> d(raw);
  std::vector<nghttp2_nv> nva;
  for (const auto& [n, v] : headers) {
    nva.push_back(nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                             const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(),
                             v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  H2Bytes out(nghttp2_hd_deflate_bound(d.get(), nva.data(), nva.size()));
  const ssize_t n = nghttp2_hd_deflate_hd(d.get(), out.data(), out.size(), nva.data(), nva.size());
  if (n < 0) return {};
  out.resize(static_cast<size_t>(n));
  return out;
}

inline std::vector<std::pair<std::string, std::string>> chrome_request() {
  return {{":method", "GET"}, {":authority", "example.com"}, {":scheme", "https"},
          {":path", "/"},     {"user-agent", "test"},        {"accept", "*/*"}};
}

inline void append(H2Bytes& a, const H2Bytes& b) { a.insert(a.end(), b.begin(), b.end()); }

}  // namespace huginn::fp::testing
