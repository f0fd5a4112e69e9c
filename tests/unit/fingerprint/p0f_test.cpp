// Table-driven tests of the p0f v3 raw_sig renderer, one rule at a time:
// TTL brackets, window classes in p0f's order, options layout, every quirk,
// malformed options, payload class, IPv6, and the packet parser's errors.
#include "common/fingerprint/p0f.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace huginn::fp {
namespace {

// Linux-like SYN options: mss 1460, sok, ts (val 0x01020304, ecr 0), nop, ws 7.
const std::vector<uint8_t> kLinuxOpts = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x01, 0x02,
                                         0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07};

std::vector<uint8_t> mss_ws(uint16_t mss, uint8_t ws) {
  return {0x02, 0x04, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss & 0xff), 0x01, 0x03, 0x03, ws};
}

struct Spec {
  int ver = 4;
  uint8_t ttl = 64;
  uint16_t ip_id = 0x1234;
  bool df = true;
  bool mf = false;
  bool rsv = false;
  uint8_t tos = 0;
  std::vector<uint8_t> ip_opts;
  uint32_t flow = 0;
  uint16_t win = 64240;
  uint32_t seq = 0x11223344;
  uint32_t ack = 0;
  uint16_t urg = 0;
  uint8_t flags = kTcpSyn;
  uint8_t tcp_rsvd = 0;
  std::vector<uint8_t> opts = kLinuxOpts;
  uint16_t payload = 0;
  bool include_payload = false;  // append the payload bytes (else headers only, as TCP_SAVED_SYN)
};

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  put16(b, at, static_cast<uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<uint16_t>(v));
}

// IP + TCP header bytes of a packet built from `s`.
std::vector<uint8_t> build(const Spec& s) {
  EXPECT_EQ(s.opts.size() % 4, 0u) << "TCP options must fill whole words";
  EXPECT_EQ(s.ip_opts.size() % 4, 0u);
  std::vector<uint8_t> b;
  size_t tcp_at;
  const size_t tcp_len = 20 + s.opts.size();
  if (s.ver == 4) {
    const size_t ihl = 20 + s.ip_opts.size();
    b.assign(ihl + tcp_len, 0);
    b[0] = static_cast<uint8_t>(0x40 | (ihl / 4));
    b[1] = s.tos;
    put16(b, 2, static_cast<uint16_t>(ihl + tcp_len + s.payload));
    put16(b, 4, s.ip_id);
    put16(b, 6, static_cast<uint16_t>((s.rsv ? 0x8000 : 0) | (s.df ? 0x4000 : 0) | (s.mf ? 0x2000 : 0)));
    b[8] = s.ttl;
    b[9] = 6;
    for (size_t i = 0; i < s.ip_opts.size(); ++i) b[20 + i] = s.ip_opts[i];
    tcp_at = ihl;
  } else {
    b.assign(40 + tcp_len, 0);
    put32(b, 0, (6u << 28) | (static_cast<uint32_t>(s.tos) << 20) | (s.flow & 0xFFFFF));
    put16(b, 4, static_cast<uint16_t>(tcp_len + s.payload));
    b[6] = 6;
    b[7] = s.ttl;
    tcp_at = 40;
  }
  put16(b, tcp_at, 40000);
  put16(b, tcp_at + 2, 443);
  put32(b, tcp_at + 4, s.seq);
  put32(b, tcp_at + 8, s.ack);
  b[tcp_at + 12] = static_cast<uint8_t>(((tcp_len / 4) << 4) | (s.tcp_rsvd & 0x0F));
  b[tcp_at + 13] = s.flags;
  put16(b, tcp_at + 14, s.win);
  put16(b, tcp_at + 18, s.urg);
  for (size_t i = 0; i < s.opts.size(); ++i) b[tcp_at + 20 + i] = s.opts[i];
  if (s.include_payload) b.resize(b.size() + s.payload, 'x');
  return b;
}

std::string sig_of(const Spec& s) {
  const auto bytes = build(s);
  std::string error;
  auto f = syn_fields_from_packet(bytes.data(), bytes.size(), &error);
  EXPECT_TRUE(f.has_value()) << error;
  if (!f) return "<parse error: " + error + ">";
  const auto direct = p0f_from_packet(bytes.data(), bytes.size());
  EXPECT_TRUE(direct.has_value());
  const std::string sig = p0f_raw_sig(*f);
  if (direct) {
    EXPECT_EQ(*direct, sig);
  }
  return sig;
}

struct Case {
  const char* name;
  Spec spec;
  const char* sig;
};

void run_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(sig_of(c.spec), c.sig);
  }
}

Spec with_ttl(uint8_t ttl) {
  Spec s;
  s.ttl = ttl;
  return s;
}

TEST(P0fTest, TtlDistanceBrackets) {
  // First bracket the TTL fits: <=32, <=64, <=128, else 255; "+?" beyond 35 hops.
  const char* tail = ":0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0";
  const std::vector<std::pair<int, std::string>> table = {
      {0, "0+32"},    {1, "1+31"},     {32, "32+0"},   {33, "33+31"},   {64, "64+0"},   {29, "29+3"},
      {65, "65+?"},   {92, "92+?"},    {93, "93+35"},  {100, "100+28"}, {128, "128+0"}, {129, "129+?"},
      {219, "219+?"}, {220, "220+35"}, {254, "254+1"}, {255, "255+0"},
  };
  for (const auto& [ttl, part] : table) {
    SCOPED_TRACE(ttl);
    EXPECT_EQ(sig_of(with_ttl(static_cast<uint8_t>(ttl))), "4:" + part + tail);
  }
}

TEST(P0fTest, WindowClassesInP0fOrder) {
  auto v4 = [](uint16_t win, std::vector<uint8_t> opts) {
    Spec s;
    s.win = win;
    s.opts = std::move(opts);
    return s;
  };
  auto v6 = [&](uint16_t win, std::vector<uint8_t> opts) {
    Spec s = v4(win, std::move(opts));
    s.ver = 6;
    return s;
  };
  std::vector<uint8_t> linux1400 = kLinuxOpts;  // mss 1400 with a non-zero own timestamp
  linux1400[2] = 0x05;
  linux1400[3] = 0x78;
  std::vector<uint8_t> linux1400_ts0 = linux1400;  // own timestamp zero
  linux1400_ts0[8] = linux1400_ts0[9] = linux1400_ts0[10] = linux1400_ts0[11] = 0;
  run_cases({
      {"mss multiple", v4(64240, mss_ws(1460, 8)), "4:64+0:0:1460:mss*44,8:mss,nop,ws:df,id+:0"},
      {"mss-12 with timestamp", v4(6940, linux1400), "4:64+0:0:1400:mss*5,7:mss,sok,ts,nop,ws:df,id+:0"},
      {"mss-12 needs own timestamp", v4(6940, linux1400_ts0),
       "4:64+0:0:1400:6940,7:mss,sok,ts,nop,ws:df,id+,ts1-:0"},
      {"1460 (MTU 1500 IPv4)", v4(5840, mss_ws(1400, 7)), "4:64+0:0:1400:mss*4,7:mss,nop,ws:df,id+:0"},
      {"1448 (MTU 1500 IPv4 - 12)", v4(4344, mss_ws(1400, 7)), "4:64+0:0:1400:mss*3,7:mss,nop,ws:df,id+:0"},
      {"1440 only for IPv6", v6(2880, mss_ws(1400, 7)), "6:64+0:0:1400:mss*2,7:mss,nop,ws::0"},
      {"1440 on IPv4 is mtu mss+40", v4(2880, mss_ws(1400, 7)), "4:64+0:0:1400:mtu*2,7:mss,nop,ws:df,id+:0"},
      {"1428 only for IPv6", v6(4284, mss_ws(1400, 7)), "6:64+0:0:1400:mss*3,7:mss,nop,ws::0"},
      {"1428 on IPv4 is raw", v4(4284, mss_ws(1400, 7)), "4:64+0:0:1400:4284,7:mss,nop,ws:df,id+:0"},
      {"mtu = mss + total header", v4(3144, mss_ws(1000, 7)), "4:64+0:0:1000:mtu*3,7:mss,nop,ws:df,id+:0"},
      {"mtu = mss + 60 on IPv6", v6(2120, mss_ws(1000, 7)), "6:64+0:0:1000:mtu*2,7:mss,nop,ws::0"},
      {"mtu 1500", v4(4500, mss_ws(1000, 7)), "4:64+0:0:1000:mtu*3,7:mss,nop,ws:df,id+:0"},
      {"raw window", v4(65535, mss_ws(1460, 7)), "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:0"},
      {"zero window is raw", v4(0, mss_ws(1460, 7)), "4:64+0:0:1460:0,7:mss,nop,ws:df,id+:0"},
      {"mss below 100 is raw", v4(180, mss_ws(90, 7)), "4:64+0:0:90:180,7:mss,nop,ws:df,id+:0"},
      {"no mss option is raw", v4(2920, {0x01, 0x03, 0x03, 0x07}), "4:64+0:0:0:2920,7:nop,ws:df,id+:0"},
      {"mss checked before 1460", v4(2920, mss_ws(730, 7)), "4:64+0:0:730:mss*4,7:mss,nop,ws:df,id+:0"},
  });
  // Window scale absent prints 0.
  Spec s;
  s.opts = {0x02, 0x04, 0x05, 0xb4};
  EXPECT_EQ(sig_of(s), "4:64+0:0:1460:mss*44,0:mss:df,id+:0");
}

TEST(P0fTest, OptionsLayout) {
  auto with_opts = [](std::vector<uint8_t> opts) {
    Spec s;
    s.win = 65535;
    s.opts = std::move(opts);
    return s;
  };
  run_cases({
      {"no options", with_opts({}), "4:64+0:0:0:65535,0::df,id+:0"},
      {"eol with zero padding", with_opts({0x02, 0x04, 0x05, 0xb4, 0x00, 0x00, 0x00, 0x00}),
       "4:64+0:0:1460:65535,0:mss,eol+3:df,id+:0"},
      {"eol as the last byte", with_opts({0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x01, 0x00}),
       "4:64+0:0:1460:65535,0:mss,nop,nop,nop,eol+0:df,id+:0"},
      {"sack option", with_opts({0x02, 0x04, 0x05, 0xb4, 0x05, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2, 0x01, 0x01}),
       "4:64+0:0:1460:65535,0:mss,sack,nop,nop:df,id+:0"},
      {"unknown option", with_opts({0x02, 0x04, 0x05, 0xb4, 0x1e, 0x04, 0xaa, 0xbb}),
       "4:64+0:0:1460:65535,0:mss,?30:df,id+:0"},
      {"unknown option kind 254", with_opts({0xfe, 0x04, 0xf9, 0x89}), "4:64+0:0:0:65535,0:?254:df,id+:0"},
  });
}

TEST(P0fTest, EachQuirk) {
  Spec base;
  base.opts = mss_ws(1460, 7);
  base.win = 65535;
  const std::string head = "4:64+0:0:1460:65535,7:mss,nop,ws:";
  auto q = [&](auto mutate) {
    Spec s = base;
    mutate(s);
    return s;
  };
  run_cases({
      {"df and id+", base, "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:0"},
      {"df with zero id", q([](Spec& s) { s.ip_id = 0; }), "4:64+0:0:1460:65535,7:mss,nop,ws:df:0"},
      {"id- without df", q([](Spec& s) { s.df = false, s.ip_id = 0; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:id-:0"},
      {"no df, non-zero id", q([](Spec& s) { s.df = false; }), "4:64+0:0:1460:65535,7:mss,nop,ws::0"},
      {"ecn from IP ECT(0)", q([](Spec& s) { s.tos = 0x02; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,ecn:0"},
      {"ecn from IP CE", q([](Spec& s) { s.tos = 0x01; }), "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,ecn:0"},
      {"dscp alone is not ecn", q([](Spec& s) { s.tos = 0xb8; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:0"},
      {"ecn from ECE", q([](Spec& s) { s.flags |= kTcpEce; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,ecn:0"},
      {"ecn from CWR", q([](Spec& s) { s.flags |= kTcpCwr; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,ecn:0"},
      {"ecn from NS bit", q([](Spec& s) { s.tcp_rsvd = 1; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,ecn:0"},
      {"other reserved bits are not ecn", q([](Spec& s) { s.tcp_rsvd = 0x0e; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:0"},
      {"0+ reserved IP flag", q([](Spec& s) { s.rsv = true; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,0+:0"},
      {"mf is not a quirk", q([](Spec& s) { s.mf = true; }), "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:0"},
      {"seq-", q([](Spec& s) { s.seq = 0; }), "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,seq-:0"},
      {"ack+ (low byte)", q([](Spec& s) { s.ack = 2; }), "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,ack+:0"},
      {"ack+ (high byte)", q([](Spec& s) { s.ack = 0x01000000; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,ack+:0"},
      {"no ack+ on RST", q([](Spec& s) { s.ack = 7, s.flags = kTcpRst; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:0"},
      {"ack- with ACK flag", q([](Spec& s) { s.flags = kTcpSyn | kTcpAck; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,ack-:0"},
      {"no ack- when ack set", q([](Spec& s) { s.flags = kTcpSyn | kTcpAck, s.ack = 9; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:0"},
      {"uptr+", q([](Spec& s) { s.urg = 5; }), "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,uptr+:0"},
      {"urgf+", q([](Spec& s) { s.flags |= kTcpUrg, s.urg = 5; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,urgf+:0"},
      {"pushf+", q([](Spec& s) { s.flags |= kTcpPsh; }), "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+,pushf+:0"},
      {"exws", q([](Spec& s) { s.opts = mss_ws(1460, 15); }),
       "4:64+0:0:1460:65535,15:mss,nop,ws:df,id+,exws:0"},
      {"ws 14 is fine", q([](Spec& s) { s.opts = mss_ws(1460, 14); }),
       "4:64+0:0:1460:65535,14:mss,nop,ws:df,id+:0"},
      {"payload class +", q([](Spec& s) { s.payload = 10; }), "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:+"},
      {"payload bytes present", q([](Spec& s) { s.payload = 3, s.include_payload = true; }),
       "4:64+0:0:1460:65535,7:mss,nop,ws:df,id+:+"},
      {"ip options length", q([](Spec& s) {
         s.ip_opts = {0x01, 0x01, 0x01, 0x00};
       }),
       "4:64+0:4:1460:65535,7:mss,nop,ws:df,id+:0"},
  });
}

TEST(P0fTest, TimestampQuirks) {
  std::vector<uint8_t> ts_opts = kLinuxOpts;  // ts val at [8..11], ecr at [12..15]
  Spec s;
  s.win = 65535;
  s.opts = ts_opts;
  s.opts[8] = s.opts[9] = s.opts[10] = s.opts[11] = 0;
  EXPECT_EQ(sig_of(s), "4:64+0:0:1460:65535,7:mss,sok,ts,nop,ws:df,id+,ts1-:0");
  s.opts = ts_opts;
  s.opts[15] = 1;
  EXPECT_EQ(sig_of(s), "4:64+0:0:1460:65535,7:mss,sok,ts,nop,ws:df,id+,ts2+:0");
  // ts2+ only on a pure SYN.
  s.flags = kTcpSyn | kTcpAck;
  s.ack = 1;
  EXPECT_EQ(sig_of(s), "4:64+0:0:1460:65535,7:mss,sok,ts,nop,ws:df,id+:0");
}

TEST(P0fTest, OptPlusAfterEol) {
  Spec s;
  s.win = 65535;
  s.opts = {0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x06, 0x00, 0x07, 0x00, 0x00};
  EXPECT_EQ(sig_of(s), "4:64+0:0:1460:65535,6:mss,nop,ws,eol+3:df,id+,opt+:0");
  // p0f 3.09b's padding scan stops one byte past the first non-zero byte, so a
  // non-zero byte that is the very last one goes unnoticed.
  s.opts = {0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x06, 0x00, 0x00, 0x00, 0x07};
  EXPECT_EQ(sig_of(s), "4:64+0:0:1460:65535,6:mss,nop,ws,eol+3:df,id+:0");
}

TEST(P0fTest, MalformedOptionsAreBad) {
  auto with_opts = [](std::vector<uint8_t> opts) {
    Spec s;
    s.win = 65535;
    s.opts = std::move(opts);
    return s;
  };
  run_cases({
      // Fixed-size options with a wrong length byte: bad, but walked with their nominal size.
      {"mss length 5", with_opts({0x02, 0x05, 0x05, 0xb4}), "4:64+0:0:1460:65535,0:mss:df,id+,bad:0"},
      {"ws length 4", with_opts({0x03, 0x04, 0x08, 0x01}), "4:64+0:0:0:65535,8:ws,nop:df,id+,bad:0"},
      {"sok length 3", with_opts({0x04, 0x03, 0x01, 0x01}), "4:64+0:0:0:65535,0:sok,nop,nop:df,id+,bad:0"},
      {"ts length 8", with_opts({0x08, 0x08, 0, 0, 0, 1, 0, 0, 0, 0, 0x01, 0x01}),
       "4:64+0:0:0:65535,0:ts,nop,nop:df,id+,bad:0"},
      // Options running past the end abort the walk.
      {"mss truncated", with_opts({0x01, 0x01, 0x01, 0x02}),
       "4:64+0:0:0:65535,0:nop,nop,nop,mss:df,id+,bad:0"},
      {"ws truncated", with_opts({0x01, 0x01, 0x03, 0x03}), "4:64+0:0:0:65535,0:nop,nop,ws:df,id+,bad:0"},
      {"ts truncated", with_opts({0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1}),
       "4:64+0:0:0:65535,0:nop,nop,ts:df,id+,bad:0"},
      {"sack too short", with_opts({0x05, 0x08, 0, 0, 0, 0, 0, 0}), "4:64+0:0:0:65535,0:sack:df,id+,bad:0"},
      {"sack past the end", with_opts({0x01, 0x01, 0x05, 0x0a, 0, 0, 0, 0}),
       "4:64+0:0:0:65535,0:nop,nop,sack:df,id+,bad:0"},
      {"unknown option length 1", with_opts({0x1e, 0x01, 0x00, 0x00}), "4:64+0:0:0:65535,0:?30:df,id+,bad:0"},
      {"unknown option length 41", with_opts({0x1e, 0x29, 0x00, 0x00}),
       "4:64+0:0:0:65535,0:?30:df,id+,bad:0"},
      {"unknown option past the end", with_opts({0x1e, 0x06, 0x00, 0x00}),
       "4:64+0:0:0:65535,0:?30:df,id+,bad:0"},
      // More than 24 options: the walk stops with bytes left.
      {"28 nops", with_opts(std::vector<uint8_t>(28, 0x01)),
       "4:64+0:0:0:65535,0:nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,"
       "nop,nop,"
       "nop,nop:df,id+,bad:0"},
      {"24 nops exactly", with_opts(std::vector<uint8_t>(24, 0x01)),
       "4:64+0:0:0:65535,0:nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,nop,"
       "nop,nop,"
       "nop,nop:df,id+:0"},
  });
}

TEST(P0fTest, AllQuirksInP0fOrder) {
  Spec s;
  s.win = 65535;
  s.tos = 0x03;
  s.rsv = true;
  s.seq = 0;
  s.ack = 1;
  s.urg = 1;
  s.flags = kTcpSyn | kTcpPsh;
  s.payload = 1;
  // mss with length 5 (bad), ts val 0 ecr 5 (ts1-, ts2+), ws 15 (exws), eol + non-zero padding (opt+).
  s.opts = {0x02, 0x05, 0x05, 0xb4, 0x08, 0x0a, 0, 0, 0, 0, 0, 0, 0, 5, 0x03, 0x03, 0x0f, 0x00, 0x01, 0x00};
  EXPECT_EQ(sig_of(s),
            "4:64+0:0:1460:65535,15:mss,ts,ws,eol+2:df,id+,ecn,0+,seq-,ack+,uptr+,pushf+,ts1-,ts2+,opt+,exws,"
            "bad:+");
  Spec t;
  t.win = 65535;
  t.df = false;
  t.ip_id = 0;
  t.flags = kTcpSyn | kTcpAck | kTcpUrg;
  t.opts = mss_ws(1460, 7);
  EXPECT_EQ(sig_of(t), "4:64+0:0:1460:65535,7:mss,nop,ws:id-,ack-,urgf+:0");
}

TEST(P0fTest, Ipv6FlowAndTrafficClass) {
  Spec s;
  s.ver = 6;
  s.win = 64800;
  s.opts = kLinuxOpts;
  s.opts[2] = 0x05;
  s.opts[3] = 0xa0;  // mss 1440
  EXPECT_EQ(sig_of(s), "6:64+0:0:1440:mss*45,7:mss,sok,ts,nop,ws::0");
  s.flow = 0x9c2b1;
  EXPECT_EQ(sig_of(s), "6:64+0:0:1440:mss*45,7:mss,sok,ts,nop,ws:flow:0");
  s.tos = 0x01;  // ECN bits of the traffic class
  EXPECT_EQ(sig_of(s), "6:64+0:0:1440:mss*45,7:mss,sok,ts,nop,ws:ecn,flow:0");
  s.tos = 0xb8;  // DSCP only
  s.flow = 0;
  EXPECT_EQ(sig_of(s), "6:64+0:0:1440:mss*45,7:mss,sok,ts,nop,ws::0");
}

TEST(P0fTest, SpecialMssOnSynAckIsWildcard) {
  Spec s;
  s.flags = kTcpSyn | kTcpAck;
  s.ack = 1;
  s.win = 1337;
  s.opts = mss_ws(1331, 0);
  EXPECT_EQ(sig_of(s), "4:64+0:0:*:1337,0:mss,nop,ws:df,id+:0");
  s.flags = kTcpSyn;
  s.ack = 0;
  EXPECT_EQ(sig_of(s), "4:64+0:0:1331:1337,0:mss,nop,ws:df,id+:0");
}

TEST(P0fTest, ParsesSavedSynFields) {
  // A TCP_SAVED_SYN as in reference/platform-facts.md section 2/4 (DF, id 54746,
  // win 64240, mss,sok,ts,nop,ws 10).
  Spec s;
  s.ip_id = 54746;
  s.win = 64240;
  s.opts = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xc2, 0x5a,
            0xd1, 0x74, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a};
  s.seq = 0xdeadbeef;
  s.tos = 0x02;
  const auto bytes = build(s);
  ASSERT_EQ(bytes.size(), 60u);
  std::string error;
  const auto f = syn_fields_from_packet(bytes.data(), bytes.size(), &error);
  ASSERT_TRUE(f) << error;
  EXPECT_EQ(f->ip_version, 4);
  EXPECT_EQ(f->ttl, 64);
  EXPECT_EQ(f->ip_id, 54746);
  EXPECT_TRUE(f->df);
  EXPECT_FALSE(f->mf);
  EXPECT_FALSE(f->reserved_bit);
  EXPECT_EQ(f->tos, 0x02);
  EXPECT_EQ(f->ip_options_len, 0);
  EXPECT_EQ(f->window, 64240);
  EXPECT_EQ(f->seq, 0xdeadbeefu);
  EXPECT_EQ(f->ack, 0u);
  EXPECT_EQ(f->tcp_flags, kTcpSyn);
  EXPECT_EQ(f->tcp_options_len, 20);
  EXPECT_EQ(f->tcp_options[19], 0x0a);
  EXPECT_EQ(f->payload_len, 0u);
  EXPECT_EQ(p0f_raw_sig(*f), "4:64+0:0:1460:mss*44,10:mss,sok,ts,nop,ws:df,id+,ecn:0");

  Spec v6;
  v6.ver = 6;
  v6.flow = 0x9c2b1;
  v6.tos = 0xa5;
  v6.ttl = 57;
  v6.payload = 4;
  const auto b6 = build(v6);
  const auto f6 = syn_fields_from_packet(b6.data(), b6.size(), &error);
  ASSERT_TRUE(f6) << error;
  EXPECT_EQ(f6->ip_version, 6);
  EXPECT_EQ(f6->flow_label, 0x9c2b1u);
  EXPECT_EQ(f6->tos, 0xa5);
  EXPECT_EQ(f6->ttl, 57);
  EXPECT_EQ(f6->payload_len, 4u);
}

TEST(P0fTest, RendersXdpStyleFieldsWithoutPacket) {
  // The XDP record fills the struct directly; the options need not be whole words.
  SynFields f;
  f.ip_version = 4;
  f.ttl = 64;
  f.df = true;
  f.ip_id = 1;
  f.window = 65535;
  f.seq = 1;
  f.tcp_flags = kTcpSyn;
  const uint8_t opts[] = {0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x06, 0x04, 0x02, 0x00};
  std::copy(std::begin(opts), std::end(opts), f.tcp_options.begin());
  f.tcp_options_len = sizeof(opts);
  EXPECT_EQ(p0f_raw_sig(f), "4:64+0:0:1460:65535,6:mss,nop,ws,sok,eol+0:df,id+:0");
  f.tcp_options_len = 200;  // out of range: clamped to the 40-byte array
  EXPECT_EQ(p0f_raw_sig(f), "4:64+0:0:1460:65535,6:mss,nop,ws,sok,eol+29:df,id+:0");
}

TEST(P0fTest, PacketParserErrors) {
  Spec ok;
  const auto good = build(ok);
  std::string error;
  auto fails = [&](std::vector<uint8_t> bytes, const std::string& what) {
    error.clear();
    EXPECT_FALSE(syn_fields_from_packet(bytes.data(), bytes.size(), &error)) << what;
    EXPECT_NE(error.find(what), std::string::npos) << error;
    EXPECT_FALSE(p0f_from_packet(bytes.data(), bytes.size()));
  };
  fails({}, "empty");
  fails(std::vector<uint8_t>(good.begin(), good.begin() + 19), "truncated IPv4 header");
  auto b = good;
  b[0] = 0x44;
  fails(b, "below 20");
  b = good;
  b[0] = 0x4f;
  fails(std::vector<uint8_t>(b.begin(), b.begin() + 40), "truncated IPv4 options");
  b = good;
  b[9] = 17;
  fails(b, "not TCP");
  b = good;
  b[7] = 0x10;
  fails(b, "fragment");
  fails(std::vector<uint8_t>(good.begin(), good.begin() + 30), "truncated TCP header");
  b = good;
  b[32] = 0x40;
  fails(b, "data offset below 20");
  fails(std::vector<uint8_t>(good.begin(), good.end() - 4), "truncated TCP options");
  b = good;
  b[2] = 0;
  b[3] = 50;
  fails(b, "IP length shorter");
  b = good;
  b[0] = 0x55;
  fails(b, "not an IPv4 or IPv6");
  Spec v6;
  v6.ver = 6;
  b = build(v6);
  b[6] = 0;  // hop-by-hop options header
  fails(b, "IPv6 next header");
  fails(std::vector<uint8_t>(b.begin(), b.begin() + 39), "truncated IPv6 header");
  EXPECT_FALSE(syn_fields_from_packet(nullptr, 0, nullptr));
}

TEST(P0fTest, ZeroLengthFieldsFallBackToBytesPresent) {
  // IPv4 total length 0 (segmentation offload) and IPv6 payload length 0: the payload is what is present.
  Spec s;
  s.payload = 5;
  s.include_payload = true;
  auto b = build(s);
  b[2] = b[3] = 0;
  auto f = syn_fields_from_packet(b.data(), b.size(), nullptr);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload_len, 5u);
  b.resize(b.size() - 5);
  f = syn_fields_from_packet(b.data(), b.size(), nullptr);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload_len, 0u);
}

}  // namespace
}  // namespace huginn::fp
