// p0f 3.09b raw_sig rendering. The rules (option walk, quirk conditions, TTL
// distance, window classes) follow p0f 3.09b's process.c parse_packet() and
// fp_tcp.c dump_sig()/detect_win_multi(), as described in
// reference/fingerprint-rules.md section 4; see p0f.h for the one intended
// difference (ack+).
#include "common/fingerprint/p0f.h"

#include <cstring>

namespace huginn::fp {
namespace {

// p0f config.h / tcp.h constants.
constexpr unsigned kMaxDist = 35;       // MAX_DIST: larger guessed distances print "+?"
constexpr size_t kMaxTcpOpt = 24;       // MAX_TCP_OPT: option kinds walked at most
constexpr uint16_t kSpecialMss = 1331;  // p0f-sendsyn probe MSS (SYN+ACK only)
constexpr int kMinTcp4 = 40;            // IPv4 + TCP fixed headers
constexpr int kMinTcp6 = 60;            // IPv6 + TCP fixed headers

enum Opt : uint8_t {
  kOptEol = 0,
  kOptNop = 1,
  kOptMss = 2,
  kOptWs = 3,
  kOptSok = 4,
  kOptSack = 5,
  kOptTs = 8,
};

// Quirk bits, in the order dump_sig() prints them.
enum Quirk : uint32_t {
  kQDf = 1u << 0,
  kQIdPlus = 1u << 1,
  kQIdMinus = 1u << 2,
  kQEcn = 1u << 3,
  kQZeroPlus = 1u << 4,
  kQFlow = 1u << 5,
  kQSeqMinus = 1u << 6,
  kQAckPlus = 1u << 7,
  kQAckMinus = 1u << 8,
  kQUptrPlus = 1u << 9,
  kQUrgfPlus = 1u << 10,
  kQPushfPlus = 1u << 11,
  kQTs1Minus = 1u << 12,
  kQTs2Plus = 1u << 13,
  kQOptPlus = 1u << 14,
  kQExws = 1u << 15,
  kQBad = 1u << 16,
};

constexpr const char* kQuirkNames[] = {"df",   "id+",  "id-",  "ecn",   "0+",    "flow",
                                       "seq-", "ack+", "ack-", "uptr+", "urgf+", "pushf+",
                                       "ts1-", "ts2+", "opt+", "exws",  "bad"};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

// Result of p0f's option walk.
struct OptionWalk {
  uint8_t layout[kMaxTcpOpt];
  size_t count = 0;
  size_t eol_pad = 0;
  uint16_t mss = 0;
  uint8_t wscale = 0;
  uint32_t ts1 = 0;
  uint32_t quirks = 0;
};

// Walks the options the way parse_packet() does: fixed-size options advance by
// their nominal size whatever their length byte says (a wrong length byte only
// adds `bad`), variable-size ones by their length byte; an option running past
// the end, or a walk that does not end exactly at the end of the options,
// aborts with `bad`.
//
// With `canon` (a copy of the options), also writes there what p0f_canonical
// keeps of them: each timestamp value replaced by 0 or 1 (whether it is
// non-zero, all the walk asks of it), the bodies of skipped options zeroed.
OptionWalk walk_options(const uint8_t* opts, size_t end, uint8_t tcp_type, uint8_t* canon = nullptr) {
  OptionWalk w;
  size_t i = 0;
  bool abort = false;
  while (i < end && w.count < kMaxTcpOpt && !abort) {
    const uint8_t kind = opts[i++];
    w.layout[w.count++] = kind;
    switch (kind) {
      case kOptEol: {
        // Everything after EOL is padding; a non-zero byte in it is `opt+`
        // (p0f's scan stops one byte past the first non-zero byte, so a
        // non-zero final byte alone goes unnoticed).
        w.eol_pad = end - i;
        while (i < end) {
          if (opts[i++] != 0) break;
        }
        if (i != end) {
          w.quirks |= kQOptPlus;
          i = end;
        }
        break;
      }
      case kOptNop:
        break;
      case kOptMss:
        if (i >= end || opts[i] != 4) w.quirks |= kQBad;
        if (i + 3 > end) {
          abort = true;
          break;
        }
        w.mss = be16(opts + i + 1);
        i += 3;
        break;
      case kOptWs:
        if (i >= end || opts[i] != 3) w.quirks |= kQBad;
        if (i + 2 > end) {
          abort = true;
          break;
        }
        w.wscale = opts[i + 1];
        if (w.wscale > 14) w.quirks |= kQExws;
        i += 2;
        break;
      case kOptSok:
        if (i >= end || opts[i] != 2) w.quirks |= kQBad;
        if (i + 1 > end) {
          abort = true;
          break;
        }
        i += 1;
        break;
      case kOptSack: {
        if (i >= end) {
          abort = true;
          break;
        }
        const size_t olen = opts[i];
        if (olen < 10 || olen > 34 || i - 1 + olen > end) {
          abort = true;
          break;
        }
        if (canon) std::memset(canon + i + 1, 0, olen - 2);
        i += olen - 1;
        break;
      }
      case kOptTs:
        if (i >= end || opts[i] != 10) w.quirks |= kQBad;
        if (i + 9 > end) {
          abort = true;
          break;
        }
        w.ts1 = be32(opts + i + 1);
        if (w.ts1 == 0) w.quirks |= kQTs1Minus;
        if (tcp_type == kTcpSyn && be32(opts + i + 5) != 0) w.quirks |= kQTs2Plus;
        if (canon) {
          const bool ts2 = be32(opts + i + 5) != 0;
          std::memset(canon + i + 1, 0, 8);
          canon[i + 4] = w.ts1 != 0 ? 1 : 0;
          canon[i + 8] = ts2 ? 1 : 0;
        }
        i += 9;
        break;
      default: {
        if (i >= end) {
          abort = true;
          break;
        }
        const size_t olen = opts[i];
        if (olen < 2 || olen > 40 || i - 1 + olen > end) {
          abort = true;
          break;
        }
        if (canon) std::memset(canon + i + 1, 0, olen - 2);
        i += olen - 1;
        break;
      }
    }
  }
  if (abort || i != end) w.quirks |= kQBad;
  return w;
}

uint8_t guess_dist(uint8_t ttl) {
  if (ttl <= 32) return static_cast<uint8_t>(32 - ttl);
  if (ttl <= 64) return static_cast<uint8_t>(64 - ttl);
  if (ttl <= 128) return static_cast<uint8_t>(128 - ttl);
  return static_cast<uint8_t>(255 - ttl);
}

// detect_win_multi() for a SYN (no peer MSS): the multiplier, or -1 for a raw window.
int window_multiplier(uint16_t win, uint16_t mss_u, uint32_t ts1, bool v6, int tot_hdr, bool* use_mtu) {
  const int32_t mss = mss_u;
  if (win == 0 || mss < 100) return -1;
  const auto divides = [win](int32_t div) { return div > 0 && win % div == 0; };
  *use_mtu = false;
  if (divides(mss)) return win / mss;
  if (ts1 != 0 && divides(mss - 12)) return win / (mss - 12);
  if (divides(1500 - kMinTcp4)) return win / (1500 - kMinTcp4);
  if (divides(1500 - kMinTcp4 - 12)) return win / (1500 - kMinTcp4 - 12);
  if (v6) {
    if (divides(1500 - kMinTcp6)) return win / (1500 - kMinTcp6);
    if (divides(1500 - kMinTcp6 - 12)) return win / (1500 - kMinTcp6 - 12);
  }
  *use_mtu = true;
  if (divides(mss + kMinTcp4)) return win / (mss + kMinTcp4);
  if (divides(mss + tot_hdr)) return win / (mss + tot_hdr);
  if (v6 && divides(mss + kMinTcp6)) return win / (mss + kMinTcp6);
  if (divides(1500)) return win / 1500;
  *use_mtu = false;
  return -1;
}

// Small append-only text buffer; the longest signature is well under its size.
class Out {
 public:
  void ch(char c) {
    if (n_ < sizeof(buf_)) buf_[n_++] = c;
  }
  void str(const char* s) {
    while (*s) ch(*s++);
  }
  void num(uint32_t v) {
    char tmp[10];
    size_t k = 0;
    do {
      tmp[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (k > 0) ch(tmp[--k]);
  }
  std::string take() const { return std::string(buf_, n_); }

 private:
  char buf_[512];
  size_t n_ = 0;
};

}  // namespace

std::string p0f_raw_sig(const SynFields& syn) {
  const bool v6 = syn.ip_version == 6;
  const uint8_t tcp_type = syn.tcp_flags & (kTcpSyn | kTcpAck | kTcpFin | kTcpRst);
  const size_t opt_len = syn.tcp_options_len < kMaxTcpOptions ? syn.tcp_options_len : kMaxTcpOptions;
  const size_t ip_opt_len = v6 ? 0 : syn.ip_options_len;

  uint32_t quirks = 0;
  // IP-level quirks.
  if (syn.tos & 0x03) quirks |= kQEcn;
  if (v6) {
    if (syn.flow_label & 0xFFFFF) quirks |= kQFlow;
  } else {
    if (syn.reserved_bit) quirks |= kQZeroPlus;
    if (syn.df) {
      quirks |= kQDf;
      if (syn.ip_id != 0) quirks |= kQIdPlus;
    } else if (syn.ip_id == 0) {
      quirks |= kQIdMinus;
    }
  }
  // TCP-level quirks.
  if ((syn.tcp_flags & (kTcpEce | kTcpCwr)) || (syn.tcp_reserved & 0x01)) quirks |= kQEcn;
  if (syn.seq == 0) quirks |= kQSeqMinus;
  if (syn.tcp_flags & kTcpAck) {
    if (syn.ack == 0) quirks |= kQAckMinus;
  } else if (syn.ack != 0 && !(syn.tcp_flags & kTcpRst)) {
    quirks |= kQAckPlus;
  }
  if (syn.tcp_flags & kTcpUrg) {
    quirks |= kQUrgfPlus;
  } else if (syn.urg_ptr != 0) {
    quirks |= kQUptrPlus;
  }
  if (syn.tcp_flags & kTcpPsh) quirks |= kQPushfPlus;

  const OptionWalk w = walk_options(syn.tcp_options.data(), opt_len, tcp_type);
  quirks |= w.quirks;

  Out out;
  out.num(v6 ? 6 : 4);
  out.ch(':');
  out.num(syn.ttl);
  out.ch('+');
  const uint8_t dist = guess_dist(syn.ttl);
  if (dist > kMaxDist) {
    out.ch('?');
  } else {
    out.num(dist);
  }
  out.ch(':');
  out.num(static_cast<uint32_t>(ip_opt_len));
  out.ch(':');
  if (w.mss == kSpecialMss && tcp_type == (kTcpSyn | kTcpAck)) {
    out.ch('*');
  } else {
    out.num(w.mss);
  }
  out.ch(':');

  const int tot_hdr = static_cast<int>((v6 ? 40 : 20 + ip_opt_len) + 20 + opt_len);
  bool use_mtu = false;
  const int multi = window_multiplier(syn.window, w.mss, w.ts1, v6, tot_hdr, &use_mtu);
  if (multi > 0) {
    out.str(use_mtu ? "mtu*" : "mss*");
    out.num(static_cast<uint32_t>(multi));
  } else {
    out.num(syn.window);
  }
  out.ch(',');
  out.num(w.wscale);
  out.ch(':');

  for (size_t i = 0; i < w.count; ++i) {
    if (i) out.ch(',');
    switch (w.layout[i]) {
      case kOptEol:
        out.str("eol+");
        out.num(static_cast<uint32_t>(w.eol_pad));
        break;
      case kOptNop:
        out.str("nop");
        break;
      case kOptMss:
        out.str("mss");
        break;
      case kOptWs:
        out.str("ws");
        break;
      case kOptSok:
        out.str("sok");
        break;
      case kOptSack:
        out.str("sack");
        break;
      case kOptTs:
        out.str("ts");
        break;
      default:
        out.ch('?');
        out.num(w.layout[i]);
        break;
    }
  }
  out.ch(':');

  bool first = true;
  for (size_t q = 0; q < sizeof(kQuirkNames) / sizeof(kQuirkNames[0]); ++q) {
    if (quirks & (1u << q)) {
      if (!first) out.ch(',');
      out.str(kQuirkNames[q]);
      first = false;
    }
  }
  out.ch(':');
  out.ch(syn.payload_len ? '+' : '0');
  return out.take();
}

SynFields p0f_canonical(const SynFields& syn) {
  const bool v6 = syn.ip_version == 6;
  const uint8_t tcp_type = syn.tcp_flags & (kTcpSyn | kTcpAck | kTcpFin | kTcpRst);
  const size_t opt_len = syn.tcp_options_len < kMaxTcpOptions ? syn.tcp_options_len : kMaxTcpOptions;
  SynFields c;
  c.ip_version = v6 ? 6 : 4;
  c.ttl = syn.ttl;
  c.ip_id = !v6 && syn.ip_id != 0 ? 1 : 0;
  c.df = !v6 && syn.df;
  c.mf = false;
  c.reserved_bit = !v6 && syn.reserved_bit;
  c.tos = syn.tos & 0x03;
  c.ip_options_len = v6 ? 0 : syn.ip_options_len;
  c.flow_label = v6 && (syn.flow_label & 0xFFFFF) != 0 ? 1 : 0;
  c.window = syn.window;
  c.seq = syn.seq != 0 ? 1 : 0;
  c.ack = syn.ack != 0 ? 1 : 0;
  c.urg_ptr = syn.urg_ptr != 0 ? 1 : 0;
  c.tcp_flags = syn.tcp_flags;
  c.tcp_reserved = syn.tcp_reserved & 0x01;
  c.tcp_options_len = static_cast<uint8_t>(opt_len);
  std::memcpy(c.tcp_options.data(), syn.tcp_options.data(), opt_len);  // the rest stays zero
  walk_options(syn.tcp_options.data(), opt_len, tcp_type, c.tcp_options.data());
  c.payload_len = syn.payload_len != 0 ? 1 : 0;
  return c;
}

void p0f_input_key(const SynFields& syn, std::string& out) {
  const SynFields c = p0f_canonical(syn);
  // Only the fields that can differ after canonicalization, each in full.
  const uint8_t bytes[] = {
      c.ip_version,
      c.ttl,
      static_cast<uint8_t>((c.ip_id ? 1 : 0) | (c.df ? 2 : 0) | (c.reserved_bit ? 4 : 0) |
                           (c.flow_label ? 8 : 0) | (c.seq ? 16 : 0) | (c.ack ? 32 : 0) |
                           (c.urg_ptr ? 64 : 0) | (c.payload_len ? 128 : 0)),
      c.tos,
      c.ip_options_len,
      static_cast<uint8_t>(c.window >> 8),
      static_cast<uint8_t>(c.window & 0xff),
      c.tcp_flags,
      c.tcp_reserved,
      c.tcp_options_len};
  out.append(reinterpret_cast<const char*>(bytes), sizeof bytes);
  out.append(reinterpret_cast<const char*>(c.tcp_options.data()), c.tcp_options_len);
}

std::optional<SynFields> syn_fields_from_packet(const uint8_t* data, size_t len, std::string* error) {
  const auto fail = [error](const char* msg) -> std::optional<SynFields> {
    if (error) *error = msg;
    return std::nullopt;
  };
  if (data == nullptr || len < 1) return fail("empty packet");
  SynFields f;
  size_t ip_hdr = 0;
  size_t declared_total = 0;  // IP-declared packet length; 0 = unknown
  const unsigned version = data[0] >> 4;
  if (version == 4) {
    if (len < 20) return fail("truncated IPv4 header");
    ip_hdr = static_cast<size_t>(data[0] & 0x0F) * 4;
    if (ip_hdr < 20) return fail("IPv4 header length below 20 bytes");
    if (ip_hdr > len) return fail("truncated IPv4 options");
    if (data[9] != 6) return fail("IPv4 payload is not TCP");
    const uint16_t flags_off = be16(data + 6);
    if (flags_off & 0x1FFF) return fail("non-first IPv4 fragment");
    f.ip_version = 4;
    f.tos = data[1];
    declared_total = be16(data + 2);
    f.ip_id = be16(data + 4);
    f.reserved_bit = flags_off & 0x8000;
    f.df = flags_off & 0x4000;
    f.mf = flags_off & 0x2000;
    f.ttl = data[8];
    f.ip_options_len = static_cast<uint8_t>(ip_hdr - 20);
  } else if (version == 6) {
    if (len < 40) return fail("truncated IPv6 header");
    if (data[6] != 6) return fail("IPv6 next header is not TCP (extension headers are not walked)");
    const uint32_t ver_tc_flow = be32(data);
    ip_hdr = 40;
    f.ip_version = 6;
    f.tos = static_cast<uint8_t>((ver_tc_flow >> 20) & 0xFF);
    f.flow_label = ver_tc_flow & 0xFFFFF;
    const uint16_t plen = be16(data + 4);
    declared_total = plen == 0 ? 0 : 40 + static_cast<size_t>(plen);
    f.ttl = data[7];
  } else {
    return fail("not an IPv4 or IPv6 packet");
  }

  if (len < ip_hdr + 20) return fail("truncated TCP header");
  const uint8_t* tcp = data + ip_hdr;
  const size_t doff = static_cast<size_t>(tcp[12] >> 4) * 4;
  if (doff < 20) return fail("TCP data offset below 20 bytes");
  if (len < ip_hdr + doff) return fail("truncated TCP options");
  if (declared_total != 0 && declared_total < ip_hdr + doff)
    return fail("IP length shorter than the IP and TCP headers");

  f.seq = be32(tcp + 4);
  f.ack = be32(tcp + 8);
  f.tcp_reserved = tcp[12] & 0x0F;
  f.tcp_flags = tcp[13];
  f.window = be16(tcp + 14);
  f.urg_ptr = be16(tcp + 18);
  f.tcp_options_len = static_cast<uint8_t>(doff - 20);
  std::memcpy(f.tcp_options.data(), tcp + 20, doff - 20);
  // The payload length comes from the IP header (TCP_SAVED_SYN carries no payload);
  // without a usable length field (0, e.g. segmentation offload) the bytes present count.
  const size_t total = declared_total != 0 ? declared_total : len;
  f.payload_len = static_cast<uint32_t>(total - ip_hdr - doff);
  return f;
}

std::optional<std::string> p0f_from_packet(const uint8_t* data, size_t len) {
  auto f = syn_fields_from_packet(data, len, nullptr);
  if (!f) return std::nullopt;
  return p0f_raw_sig(*f);
}

}  // namespace huginn::fp
