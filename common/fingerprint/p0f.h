// p0f v3 raw TCP SYN signature (SPEC.md section 5): p0f 3.09b's `raw_sig`
//   ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass
// rendered from the fields of a client's SYN. The fields come from either SYN
// source (the XDP map record or the IP + TCP header bytes that TCP_SAVED_SYN
// returns); both fill SynFields. Pure functions: no I/O, no logging.
//
// One deliberate difference from p0f 3.09b: `ack+` means what p0f's
// documentation says (ACK number non-zero while the ACK flag is clear, RST
// excepted), not what 3.09b's `RD32(ack) & !(flags & RST)` bug prints.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace huginn::fp {

// Largest TCP options block (data offset 15 words minus the fixed header).
inline constexpr size_t kMaxTcpOptions = 40;

// TCP flag bits of the flags byte (byte 13 of the TCP header).
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;
inline constexpr uint8_t kTcpUrg = 0x20;
inline constexpr uint8_t kTcpEce = 0x40;
inline constexpr uint8_t kTcpCwr = 0x80;

struct SynFields {
  // --- IP ---
  uint8_t ip_version = 4;      // 4 or 6
  uint8_t ttl = 0;             // IPv4 TTL or IPv6 hop limit
  uint16_t ip_id = 0;          // IPv4 identification (host order); unused for IPv6
  bool df = false;             // IPv4 don't-fragment flag
  bool mf = false;             // IPv4 more-fragments flag (not part of the signature)
  bool reserved_bit = false;   // IPv4 reserved ("evil", must-be-zero) flag
  uint8_t tos = 0;             // IPv4 TOS byte / IPv6 traffic class (DSCP << 2 | ECN)
  uint8_t ip_options_len = 0;  // IPv4 header options bytes (0-40); 0 for IPv6
  uint32_t flow_label = 0;     // IPv6 flow label (20 bits); unused for IPv4
  // --- TCP ---
  uint16_t window = 0;          // host order
  uint32_t seq = 0;             // host order
  uint32_t ack = 0;             // host order
  uint16_t urg_ptr = 0;         // host order
  uint8_t tcp_flags = 0;        // CWR ECE URG ACK PSH RST SYN FIN
  uint8_t tcp_reserved = 0;     // low nibble of the data-offset byte; bit 0 is NS
  uint8_t tcp_options_len = 0;  // bytes used in tcp_options (0-40)
  std::array<uint8_t, kMaxTcpOptions> tcp_options{};
  uint32_t payload_len = 0;  // TCP payload bytes (from the IP length fields)
};

// Parses the IP header (IPv4 with options, or IPv6 whose next header is TCP)
// and the TCP header of one packet, as TCP_SAVED_SYN returns them (the payload
// itself need not be present: its length comes from the IP length fields).
// Never reads outside [data, data + len). On failure returns nullopt and, if
// `error` is non-null, stores the reason there.
std::optional<SynFields> syn_fields_from_packet(const uint8_t* data, size_t len, std::string* error);

// p0f 3.09b's raw_sig for these fields.
std::string p0f_raw_sig(const SynFields& syn);

// The fields with every value that p0f_raw_sig reads only through a test
// replaced by one representative (0 or 1): sequence and acknowledgement
// numbers, IP ID, urgent pointer, payload length, flow label, the timestamp
// values; the TOS and reserved bits it ignores, the MF flag, the bodies of the
// options it skips and the option bytes past the options' length are zeroed.
// p0f_raw_sig(p0f_canonical(s)) == p0f_raw_sig(s), and the SYNs of one TCP
// stack, which differ in those per-connection values, share one canonical form.
SynFields p0f_canonical(const SynFields& syn);

// Appends p0f_canonical(syn)'s fields to `out` as bytes (no padding): SYNs
// with equal keys have equal raw_sig. For memoizing p0f_raw_sig across
// connections.
void p0f_input_key(const SynFields& syn, std::string& out);

// syn_fields_from_packet + p0f_raw_sig.
std::optional<std::string> p0f_from_packet(const uint8_t* data, size_t len);

}  // namespace huginn::fp
