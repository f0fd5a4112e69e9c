// Builds Ethernet frames carrying TCP segments for the XDP program tests
// (Katran's PacketBuilder idea, as a plain description struct): VLAN tags,
// IPv4 with options / fragments / odd header lengths, IPv6 with extension
// headers, TCP with options and payload, and truncation at any byte.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace huginn::testing {

struct PacketSpec {
  int family = 4;
  std::vector<uint16_t> vlan_tpids;  // outermost first: 0x88A8, 0x8100, ...
  uint16_t ethertype_override = 0;   // 0 = from family
  // IPv4
  std::string src4 = "192.0.2.10";
  std::string dst4 = "198.51.100.20";
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t ip_id = 0x1234;
  bool df = true;
  bool mf = false;
  bool reserved_bit = false;
  uint16_t frag_offset = 0;  // 8-byte units
  std::vector<uint8_t> ip_options;
  int ihl_override = -1;      // written into the header instead of the real length
  int tot_len_override = -1;  // likewise for the total length
  uint8_t protocol = 6;
  // IPv6
  std::string src6 = "2001:db8::10";
  std::string dst6 = "2001:db8::20";
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;
  // Extension headers before TCP: {type, total length in bytes (multiple of 8)}.
  std::vector<std::pair<uint8_t, size_t>> ext_headers;
  // TCP
  uint16_t sport = 40000;
  uint16_t dport = 80;
  uint32_t seq = 0x11223344;
  uint32_t ack = 0;
  uint8_t flags = 0x02;  // SYN
  uint8_t reserved = 0;  // low nibble of the data-offset byte
  uint16_t window = 64240;
  uint16_t urg_ptr = 0;
  std::vector<uint8_t> tcp_options;
  int doff_override = -1;
  size_t payload_len = 0;
  size_t truncate_to = 0;  // 0 = keep the whole frame
};

// Linux 6.x SYN options: mss 1460, sackOK, TS, nop, wscale 7.
inline std::vector<uint8_t> linux_syn_options(uint16_t mss = 1460) {
  return {2,
          4,
          static_cast<uint8_t>(mss >> 8),
          static_cast<uint8_t>(mss),
          4,
          2,
          8,
          10,
          0xc2,
          0x5a,
          0xd1,
          0x74,
          0,
          0,
          0,
          0,
          1,
          3,
          3,
          7};
}

class FrameBuilder {
 public:
  // Offset of the IP header in the last built frame.
  static size_t l3_offset(const PacketSpec& s) { return 14 + 4 * s.vlan_tpids.size(); }

  static std::vector<uint8_t> build(const PacketSpec& s) {
    std::vector<uint8_t> f;
    const uint8_t dmac[6] = {0x02, 0, 0, 0, 0, 2}, smac[6] = {0x02, 0, 0, 0, 0, 1};
    f.insert(f.end(), dmac, dmac + 6);
    f.insert(f.end(), smac, smac + 6);
    const uint16_t l3_type = s.ethertype_override ? s.ethertype_override : (s.family == 4 ? 0x0800 : 0x86DD);
    if (s.vlan_tpids.empty()) {
      put16(f, l3_type);
    } else {
      for (size_t i = 0; i < s.vlan_tpids.size(); ++i) {
        put16(f, s.vlan_tpids[i]);
        put16(f, static_cast<uint16_t>(100 + i));  // TCI
      }
      put16(f, l3_type);
    }
    const std::vector<uint8_t> tcp = tcp_segment(s);
    if (s.family == 4) {
      const size_t ihl = 20 + s.ip_options.size();
      const size_t tot = ihl + tcp.size();
      f.push_back(static_cast<uint8_t>(0x40 | ((s.ihl_override >= 0 ? s.ihl_override : ihl / 4) & 0x0F)));
      f.push_back(s.tos);
      put16(f, static_cast<uint16_t>(s.tot_len_override >= 0 ? s.tot_len_override : tot));
      put16(f, s.ip_id);
      put16(f, static_cast<uint16_t>((s.reserved_bit ? 0x8000 : 0) | (s.df ? 0x4000 : 0) |
                                     (s.mf ? 0x2000 : 0) | (s.frag_offset & 0x1FFF)));
      f.push_back(s.ttl);
      f.push_back(s.protocol);
      put16(f, 0);  // checksum: the program does not check it
      put_addr(f, AF_INET, s.src4);
      put_addr(f, AF_INET, s.dst4);
      f.insert(f.end(), s.ip_options.begin(), s.ip_options.end());
    } else {
      size_t ext_total = 0;
      for (const auto& e : s.ext_headers) ext_total += e.second;
      const uint32_t vtf =
          (6u << 28) | (static_cast<uint32_t>(s.traffic_class) << 20) | (s.flow_label & 0xFFFFF);
      put32(f, vtf);
      put16(f, static_cast<uint16_t>(s.tot_len_override >= 0 ? s.tot_len_override : ext_total + tcp.size()));
      f.push_back(s.ext_headers.empty() ? s.protocol : s.ext_headers[0].first);
      f.push_back(s.ttl);
      put_addr(f, AF_INET6, s.src6);
      put_addr(f, AF_INET6, s.dst6);
      for (size_t i = 0; i < s.ext_headers.size(); ++i) {
        const uint8_t next = i + 1 < s.ext_headers.size() ? s.ext_headers[i + 1].first : s.protocol;
        const size_t len = s.ext_headers[i].second;
        std::vector<uint8_t> h(len, 0);
        h[0] = next;
        h[1] = static_cast<uint8_t>(len / 8 - 1);
        if (s.ext_headers[i].first != 44 && len >= 8) {
          h[2] = 1;  // PadN option covering the rest
          h[3] = static_cast<uint8_t>(len - 4);
        }
        f.insert(f.end(), h.begin(), h.end());
      }
    }
    f.insert(f.end(), tcp.begin(), tcp.end());
    if (s.truncate_to && s.truncate_to < f.size()) f.resize(s.truncate_to);
    return f;
  }

  // The IP + TCP header bytes without payload and without the IPv6 extension
  // headers (as TCP_SAVED_SYN returns a SYN without them).
  static std::vector<uint8_t> saved_syn_bytes(PacketSpec s) {
    s.vlan_tpids.clear();
    s.ext_headers.clear();
    s.truncate_to = 0;
    const size_t payload = s.payload_len;
    std::vector<uint8_t> f = build(s);
    f.erase(f.begin(), f.begin() + 14);
    f.resize(f.size() - payload);
    return f;
  }

 private:
  static std::vector<uint8_t> tcp_segment(const PacketSpec& s) {
    std::vector<uint8_t> t;
    put16(t, s.sport);
    put16(t, s.dport);
    put32(t, s.seq);
    put32(t, s.ack);
    const size_t doff = 20 + s.tcp_options.size();
    t.push_back(static_cast<uint8_t>(((s.doff_override >= 0 ? s.doff_override : doff / 4) << 4) |
                                     (s.reserved & 0x0F)));
    t.push_back(s.flags);
    put16(t, s.window);
    put16(t, 0);  // checksum
    put16(t, s.urg_ptr);
    t.insert(t.end(), s.tcp_options.begin(), s.tcp_options.end());
    for (size_t i = 0; i < s.payload_len; ++i) t.push_back(static_cast<uint8_t>('a' + i % 26));
    return t;
  }
  static void put16(std::vector<uint8_t>& v, uint16_t x) {
    v.push_back(static_cast<uint8_t>(x >> 8));
    v.push_back(static_cast<uint8_t>(x));
  }
  static void put32(std::vector<uint8_t>& v, uint32_t x) {
    put16(v, static_cast<uint16_t>(x >> 16));
    put16(v, static_cast<uint16_t>(x));
  }
  static void put_addr(std::vector<uint8_t>& v, int af, const std::string& text) {
    uint8_t b[16] = {};
    inet_pton(af, text.c_str(), b);
    v.insert(v.end(), b, b + (af == AF_INET ? 4 : 16));
  }
};

}  // namespace huginn::testing
