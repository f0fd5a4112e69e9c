#include "common/pcap/flows.h"

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <array>
#include <compare>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>

#include "common/sys/c_handle.h"

namespace huginn::capture {
namespace {

using PcapHandle = sys::CHandle<pcap_t, pcap_close>;

// Link types not always named by <pcap/dlt.h>.
constexpr int kLinktypeIpv4 = 228;
constexpr int kLinktypeIpv6 = 229;
constexpr int kDltLinuxSll2 = 276;

constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpAck = 0x10;

constexpr int kMaxVlanTags = 4;
// Bookkeeping charged per stored stream piece against the global byte budget.
constexpr uint64_t kPieceOverhead = 64;
constexpr int kMaxIpv6ExtHeaders = 8;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

struct Endpoint {
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
  auto operator<=>(const Endpoint&) const = default;
};

struct FlowKey {
  int ip_version = 4;
  Endpoint lo, hi;  // lo <= hi: the key is the same in both directions
  auto operator<=>(const FlowKey&) const = default;
};

// One decoded TCP segment. Pointers refer into the packet buffer.
struct Segment {
  int ip_version = 4;
  Endpoint src, dst;
  const uint8_t* ip = nullptr;  // start of the IP header
  size_t headers_len = 0;       // IP header (+ extension headers) + TCP header
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  const uint8_t* payload = nullptr;
  size_t payload_len = 0;  // captured payload bytes
};

enum class Decode { kTcp, kSkip };

// IP packet at `p` with `n` captured bytes -> TCP segment, or kSkip for
// anything that is not a complete-enough, unfragmented TCP segment.
Decode decode_ip(const uint8_t* p, size_t n, Segment* s) {
  if (n < 1) return Decode::kSkip;
  const unsigned version = p[0] >> 4;
  size_t l4 = 0;      // offset of the TCP header
  size_t ip_end = n;  // end of the IP packet within the captured bytes
  if (version == 4) {
    if (n < 20) return Decode::kSkip;
    const size_t ihl = static_cast<size_t>(p[0] & 0x0F) * 4;
    if (ihl < 20 || ihl > n) return Decode::kSkip;
    if (p[9] != 6) return Decode::kSkip;
    if (be16(p + 6) & 0x3FFF) return Decode::kSkip;  // MF or fragment offset: fragments are skipped
    const size_t tot = be16(p + 2);
    if (tot != 0) {  // 0: length left to the link layer (segmentation offload)
      if (tot < ihl) return Decode::kSkip;
      if (tot < ip_end) ip_end = tot;  // link-layer padding
    }
    s->ip_version = 4;
    std::memcpy(s->src.addr.data(), p + 12, 4);
    std::memcpy(s->dst.addr.data(), p + 16, 4);
    l4 = ihl;
  } else if (version == 6) {
    if (n < 40) return Decode::kSkip;
    const size_t plen = be16(p + 4);
    if (plen != 0 && 40 + plen < ip_end) ip_end = 40 + plen;
    uint8_t next = p[6];
    size_t off = 40;
    int hops = 0;
    while (next != 6) {
      if (++hops > kMaxIpv6ExtHeaders || off + 8 > ip_end) return Decode::kSkip;
      size_t hlen = 0;
      switch (next) {
        case 0:   // hop-by-hop options
        case 43:  // routing
        case 60:  // destination options
          hlen = (static_cast<size_t>(p[off + 1]) + 1) * 8;
          break;
        case 51:  // authentication header
          hlen = (static_cast<size_t>(p[off + 1]) + 2) * 4;
          break;
        default:  // fragment (44), ESP, no next header, other protocols
          return Decode::kSkip;
      }
      next = p[off];
      off += hlen;
    }
    if (off > ip_end) return Decode::kSkip;
    s->ip_version = 6;
    std::memcpy(s->src.addr.data(), p + 8, 16);
    std::memcpy(s->dst.addr.data(), p + 24, 16);
    l4 = off;
  } else {
    return Decode::kSkip;
  }

  if (ip_end < l4 + 20) return Decode::kSkip;
  const uint8_t* tcp = p + l4;
  const size_t doff = static_cast<size_t>(tcp[12] >> 4) * 4;
  if (doff < 20 || l4 + doff > ip_end) return Decode::kSkip;
  s->ip = p;
  s->headers_len = l4 + doff;
  s->src.port = be16(tcp);
  s->dst.port = be16(tcp + 2);
  s->seq = be32(tcp + 4);
  s->ack = be32(tcp + 8);
  s->flags = tcp[13];
  s->payload = tcp + doff;
  s->payload_len = ip_end - l4 - doff;
  return Decode::kTcp;
}

bool is_vlan(uint16_t ethertype) { return ethertype == 0x8100 || ethertype == 0x88A8 || ethertype == 0x9100; }

// Link-layer frame -> TCP segment.
Decode decode_frame(int dlt, const uint8_t* p, size_t n, Segment* s) {
  size_t off = 0;
  uint16_t ethertype = 0;
  switch (dlt) {
    case DLT_EN10MB:
      if (n < 14) return Decode::kSkip;
      ethertype = be16(p + 12);
      off = 14;
      break;
    case DLT_LINUX_SLL:
      if (n < 16) return Decode::kSkip;
      ethertype = be16(p + 14);
      off = 16;
      break;
    case kDltLinuxSll2:
      if (n < 20) return Decode::kSkip;
      ethertype = be16(p);
      off = 20;
      break;
    case DLT_NULL:
    case DLT_LOOP: {
      if (n < 4) return Decode::kSkip;
      uint32_t family;
      if (dlt == DLT_LOOP) {
        family = be32(p);
      } else {
        std::memcpy(&family, p, 4);  // host byte order of the capturing machine
        if (family > 0xFFFF) family = __builtin_bswap32(family);
      }
      off = 4;
      // AF_INET, and AF_INET6 as Linux, the BSDs and macOS number it.
      if (family == 2 || family == 10 || family == 24 || family == 28 || family == 30)
        return decode_ip(p + off, n - off, s);
      return Decode::kSkip;
    }
    case DLT_RAW:
    case kLinktypeIpv4:
    case kLinktypeIpv6:
      return decode_ip(p, n, s);
    default:
      return Decode::kSkip;
  }
  for (int tags = 0; is_vlan(ethertype); ++tags) {
    if (tags >= kMaxVlanTags || off + 4 > n) return Decode::kSkip;
    ethertype = be16(p + off + 2);
    off += 4;
  }
  if (ethertype != 0x0800 && ethertype != 0x86DD) return Decode::kSkip;
  return decode_ip(p + off, n - off, s);
}

bool supported_dlt(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case kDltLinuxSll2:
    case DLT_NULL:
    case DLT_LOOP:
    case DLT_RAW:
    case kLinktypeIpv4:
    case kLinktypeIpv6:
      return true;
    default:
      return false;
  }
}

std::string addr_string(int ip_version, const Endpoint& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip_version == 6 ? AF_INET6 : AF_INET, e.addr.data(), buf, sizeof(buf));
  return buf;
}

struct FlowState {
  Flow flow;
  Endpoint client;
  std::optional<uint32_t> syn_seq;  // ISN of the client's SYN
  bool base_set = false;
  uint32_t base = 0;  // sequence number of stream offset 0
  bool client_data_seen = false;
  // Non-overlapping pieces of the client stream: offset -> bytes.
  std::map<uint64_t, std::vector<uint8_t>> pieces;
};

class Assembler {
 public:
  explicit Assembler(const ReadOptions& opts) : opts_(opts), budget_(opts.max_total_stream_bytes) {}

  // Returns false (with `error_` set) when the capture exceeds the flow limit.
  bool add(const Segment& s) {
    const bool syn = s.flags & kTcpSyn;
    const bool ack = s.flags & kTcpAck;
    FlowKey key;
    key.ip_version = s.ip_version;
    key.lo = std::min(s.src, s.dst);
    key.hi = std::max(s.src, s.dst);
    auto it = index_.find(key);
    FlowState* st = it == index_.end() ? nullptr : &states_[it->second];

    if (syn && !ack) {
      if (st && st->client == s.src) {
        if (st->syn_seq && *st->syn_seq == s.seq) return true;  // retransmitted SYN
        // A SYN for a connection seen so far only from its SYN+ACK (capture order).
        if (!st->syn_seq && !st->client_data_seen && (!st->base_set || st->base == s.seq + 1)) {
          attach_syn(*st, s);
          return true;
        }
      }
      // New connection (possibly reusing the addresses and ports of an earlier one).
      st = create(key, s.src, s.dst);
      if (!st) return false;
      attach_syn(*st, s);
      return true;
    }
    if (syn && ack) {
      if (!st) {
        st = create(key, s.dst, s.src);
        if (!st) return false;
      }
      if (st->client == s.dst && !st->base_set) {
        st->base_set = true;
        st->base = s.ack;  // client ISN + 1
      }
      return true;
    }
    if (!st) {
      st = create(key, s.src, s.dst);
      if (!st) return false;
    }
    if (!(st->client == s.src)) return true;
    if (!st->base_set) {
      st->base_set = true;
      st->base = s.seq;
    }
    if (s.payload_len > 0 && !(s.flags & kTcpRst)) {
      st->client_data_seen = true;
      add_data(*st, s.seq, s.payload, s.payload_len);
    }
    return true;
  }

  std::vector<Flow> finish() {
    std::vector<Flow> out;
    out.reserve(states_.size());
    for (auto& st : states_) {
      uint64_t pos = 0;
      for (auto& [off, bytes] : st.pieces) {
        if (off != pos) {
          st.flow.stream_has_gap = true;
          break;
        }
        st.flow.client_stream.insert(st.flow.client_stream.end(), bytes.begin(), bytes.end());
        pos += bytes.size();
      }
      st.pieces.clear();
      out.push_back(std::move(st.flow));
    }
    states_.clear();
    index_.clear();
    return out;
  }

  const std::string& error() const { return error_; }

 private:
  FlowState* create(const FlowKey& key, const Endpoint& client, const Endpoint& server) {
    if (states_.size() >= opts_.max_flows) {
      error_ = "more than " + std::to_string(opts_.max_flows) + " TCP connections in the capture";
      return nullptr;
    }
    FlowState st;
    st.client = client;
    st.flow.ip_version = key.ip_version;
    st.flow.src = addr_string(key.ip_version, client);
    st.flow.src_port = client.port;
    st.flow.dst = addr_string(key.ip_version, server);
    st.flow.dst_port = server.port;
    states_.push_back(std::move(st));
    index_[key] = states_.size() - 1;
    return &states_.back();
  }

  void attach_syn(FlowState& st, const Segment& s) {
    st.syn_seq = s.seq;
    st.base_set = true;
    st.base = s.seq + 1;
    st.flow.saw_syn = true;
    st.flow.syn_packet.emplace(s.ip, s.ip + s.headers_len);
    if (s.payload_len > 0) {
      st.client_data_seen = true;
      add_data(st, s.seq + 1, s.payload, s.payload_len);
    }
  }

  // Stores the part of [seq, seq + n) that lies inside the kept window and is
  // not already stored (the first copy of a byte wins).
  void add_data(FlowState& st, uint32_t seq, const uint8_t* p, size_t n) {
    const int64_t rel = static_cast<int32_t>(seq - st.base);
    uint64_t start;
    if (rel < 0) {
      const uint64_t skip = static_cast<uint64_t>(-rel);
      if (skip >= n) return;  // entirely before the stream start
      p += skip;
      n -= skip;
      start = 0;
    } else {
      start = static_cast<uint64_t>(rel);
    }
    const uint64_t cap = opts_.max_stream_bytes;
    if (start >= cap) {
      st.flow.stream_truncated = true;
      return;
    }
    uint64_t end = start + n;
    if (end > cap) {
      end = cap;
      st.flow.stream_truncated = true;
    }
    uint64_t pos = start;
    auto it = st.pieces.upper_bound(pos);
    if (it != st.pieces.begin()) {
      const auto prev = std::prev(it);
      pos = std::max(pos, prev->first + prev->second.size());
    }
    while (pos < end) {
      if (it != st.pieces.end() && it->first <= pos) {
        pos = std::max(pos, it->first + it->second.size());
        ++it;
        continue;
      }
      const uint64_t gap_end = it == st.pieces.end() ? end : std::min(end, it->first);
      const uint8_t* from = p + (pos - start);
      // Bytes that continue the previous piece extend it (in-order streams stay one
      // piece); a new piece is charged kPieceOverhead against the budget.
      auto prev = it == st.pieces.begin() ? st.pieces.end() : std::prev(it);
      const bool extend = prev != st.pieces.end() && prev->first + prev->second.size() == pos;
      const uint64_t overhead = extend ? 0 : kPieceOverhead;
      uint64_t take = gap_end - pos;
      if (take + overhead > budget_) {
        take = budget_ > overhead ? budget_ - overhead : 0;
        st.flow.stream_truncated = true;
      }
      if (take == 0) return;
      if (extend) {
        prev->second.insert(prev->second.end(), from, from + take);
      } else {
        st.pieces.emplace_hint(it, pos, std::vector<uint8_t>(from, from + take));
      }
      budget_ -= take + overhead;
      pos += take;
      if (pos < gap_end) return;  // budget exhausted
    }
  }

  const ReadOptions& opts_;
  uint64_t budget_;
  std::vector<FlowState> states_;
  std::map<FlowKey, size_t> index_;
  std::string error_;
};

ReadResult read_all(pcap_t* p, const ReadOptions& opts) {
  const int dlt = pcap_datalink(p);
  if (!supported_dlt(dlt)) {
    const char* name = pcap_datalink_val_to_name(dlt);
    return "unsupported link type " + std::to_string(dlt) + (name ? std::string(" (") + name + ")" : "");
  }
  Assembler asm_(opts);
  uint64_t packet_no = 0;
  for (;;) {
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_next_ex(p, &hdr, &data);
    if (rc == PCAP_ERROR_BREAK || rc == 0) break;  // end of file (0 only happens on live captures)
    if (rc != 1) return "packet " + std::to_string(packet_no + 1) + ": " + pcap_geterr(p);
    ++packet_no;
    const size_t n = hdr->len != 0 && hdr->len < hdr->caplen ? hdr->len : hdr->caplen;
    Segment s;
    if (decode_frame(dlt, data, n, &s) != Decode::kTcp) continue;
    if (!asm_.add(s)) return asm_.error();
  }
  return asm_.finish();
}

}  // namespace

ReadResult read_flows(const std::string& path, const ReadOptions& opts) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  PcapHandle p(pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO, errbuf));
  if (!p) return std::string("cannot read capture ") + path + ": " + errbuf;
  auto r = read_all(p.get(), opts);
  if (auto* err = std::get_if<std::string>(&r)) *err = path + ": " + *err;
  return r;
}

ReadResult read_flows_from_memory(const uint8_t* data, size_t len, const ReadOptions& opts) {
  if (data == nullptr || len == 0) return std::string("empty capture");
  // fmemopen only reads through the buffer ("rb"); the cast is for its signature.
  FILE* f = fmemopen(const_cast<uint8_t*>(data), len, "rb");
  if (!f) return std::string("cannot open the capture buffer");
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  PcapHandle p(pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO, errbuf));
  if (!p) {
    std::fclose(f);
    return std::string("cannot read capture: ") + errbuf;
  }
  return read_all(p.get(), opts);  // pcap_close() closes `f`
}

}  // namespace huginn::capture
