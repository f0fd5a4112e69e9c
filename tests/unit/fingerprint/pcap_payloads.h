// Test-only helper: reads a classic pcap file and returns, per TCP flow
// direction, the TCP payload bytes in sequence order (retransmissions and
// overlaps removed). Link types: Ethernet (with 802.1Q tags), raw IP, Linux
// cooked (SLL). IPv4 and IPv6 (hop-by-hop/routing/destination option headers
// skipped). Deliberately small; the production reader lives in common/pcap.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace huginn::fp::testing {

struct FlowKey {
  std::string src;
  uint16_t src_port = 0;
  std::string dst;
  uint16_t dst_port = 0;
  bool operator<(const FlowKey& o) const {
    return std::tie(src, src_port, dst, dst_port) < std::tie(o.src, o.src_port, o.dst, o.dst_port);
  }
};

struct DirectionalStream {
  bool saw_syn = false;
  uint32_t isn = 0;
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> segments;  // (seq, payload), capture order
  std::vector<uint8_t> data;                                        // reassembled payload
};

namespace detail {

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

inline std::string ip_string(int af, const uint8_t* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(af, addr, buf, sizeof buf);
  return buf;
}

// Wraparound-aware "a comes before b".
inline bool seq_lt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

inline void handle_tcp(const uint8_t* p, size_t n, std::string src, std::string dst,
                       std::map<FlowKey, DirectionalStream>& flows) {
  if (n < 20) return;
  const size_t doff = static_cast<size_t>(p[12] >> 4) * 4;
  if (doff < 20 || doff > n) return;
  FlowKey key{std::move(src), rd16(p), std::move(dst), rd16(p + 2)};
  DirectionalStream& s = flows[key];
  const uint32_t seq = rd32(p + 4);
  const uint8_t flags = p[13];
  if (flags & 0x02) {  // SYN
    s.saw_syn = true;
    s.isn = seq + 1;
  }
  if (n > doff) s.segments.emplace_back(seq, std::vector<uint8_t>(p + doff, p + n));
}

inline void handle_ip(const uint8_t* p, size_t n, std::map<FlowKey, DirectionalStream>& flows) {
  if (n < 1) return;
  const int ver = p[0] >> 4;
  if (ver == 4) {
    if (n < 20) return;
    const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    const size_t total = std::min<size_t>(rd16(p + 2), n);
    if (ihl < 20 || ihl > total || p[9] != 6) return;
    handle_tcp(p + ihl, total - ihl, ip_string(AF_INET, p + 12), ip_string(AF_INET, p + 16), flows);
  } else if (ver == 6) {
    if (n < 40) return;
    const size_t total = std::min<size_t>(40 + rd16(p + 4), n);
    uint8_t next = p[6];
    size_t off = 40;
    while (next == 0 || next == 43 || next == 60) {  // hop-by-hop, routing, destination options
      if (off + 8 > total) return;
      const uint8_t nh = p[off];
      off += (static_cast<size_t>(p[off + 1]) + 1) * 8;
      next = nh;
    }
    if (next != 6 || off > total) return;
    handle_tcp(p + off, total - off, ip_string(AF_INET6, p + 8), ip_string(AF_INET6, p + 24), flows);
  }
}

inline void reassemble(DirectionalStream& s) {
  if (s.segments.empty()) return;
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> segs = s.segments;
  uint32_t base = s.saw_syn ? s.isn : segs.front().first;
  if (!s.saw_syn) {
    for (const auto& seg : segs)
      if (seq_lt(seg.first, base)) base = seg.first;
  }
  std::stable_sort(segs.begin(), segs.end(),
                   [base](const auto& a, const auto& b) { return (a.first - base) < (b.first - base); });
  uint32_t next = base;
  for (const auto& [seq, payload] : segs) {
    const uint32_t end = seq + static_cast<uint32_t>(payload.size());
    if (!seq_lt(next, end)) continue;  // fully retransmitted
    if (seq_lt(next, seq)) break;      // gap: stop at the first missing byte
    const size_t skip = next - seq;
    s.data.insert(s.data.end(), payload.begin() + static_cast<std::ptrdiff_t>(skip), payload.end());
    next = end;
  }
}

}  // namespace detail

// Returns false (and sets *error) when the file is not a readable classic pcap.
inline bool read_tcp_streams(const std::string& path, std::map<FlowKey, DirectionalStream>& flows,
                             std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error) *error = "cannot open " + path;
    return false;
  }
  std::vector<uint8_t> f((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (f.size() < 24) {
    if (error) *error = "short pcap header";
    return false;
  }
  uint32_t magic;
  std::memcpy(&magic, f.data(), 4);
  bool swap;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    swap = false;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    swap = true;
  } else {
    if (error) *error = "not a classic pcap file";
    return false;
  }
  auto u32 = [&](size_t off) {
    uint32_t v;
    std::memcpy(&v, f.data() + off, 4);
    return swap ? __builtin_bswap32(v) : v;
  };
  const uint32_t linktype = u32(20);
  size_t off = 24;
  while (off + 16 <= f.size()) {
    const size_t caplen = u32(off + 8);
    off += 16;
    if (caplen > f.size() - off) {
      if (error) *error = "truncated packet record";
      return false;
    }
    const uint8_t* p = f.data() + off;
    size_t n = caplen;
    off += caplen;
    if (linktype == 1) {  // Ethernet
      if (n < 14) continue;
      uint16_t et = detail::rd16(p + 12);
      size_t l2 = 14;
      while ((et == 0x8100 || et == 0x88a8) && n >= l2 + 4) {
        et = detail::rd16(p + l2 + 2);
        l2 += 4;
      }
      if (et != 0x0800 && et != 0x86dd) continue;
      detail::handle_ip(p + l2, n - l2, flows);
    } else if (linktype == 101 || linktype == 12 || linktype == 14) {  // raw IP
      detail::handle_ip(p, n, flows);
    } else if (linktype == 113) {  // Linux cooked v1
      if (n < 16) continue;
      detail::handle_ip(p + 16, n - 16, flows);
    } else {
      if (error) *error = "unsupported link type " + std::to_string(linktype);
      return false;
    }
  }
  for (auto& [key, s] : flows) detail::reassemble(s);
  return true;
}

}  // namespace huginn::fp::testing
