// Fuzzes the p0f SYN renderer: input bytes as the IP + TCP headers of a SYN
// (the TCP_SAVED_SYN source), or, when the first byte has its top bit set, the
// rest as raw SynFields values (the XDP record source, whose fields need not be
// self-consistent). Both ways, the memo key's canonical form must render the
// same signature and be its own canonical form.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/fingerprint/p0f.h"

namespace {

// ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass: eight fields, seven colons.
void check_sig(const std::string& sig) {
  size_t colons = 0;
  for (char c : sig) colons += c == ':';
  if (colons != 7 || sig.size() < 2 || (sig[0] != '4' && sig[0] != '6') || sig[1] != ':') __builtin_trap();
  const char last = sig.back();
  if (last != '0' && last != '+') __builtin_trap();
}

huginn::fp::SynFields fields_from_bytes(const uint8_t* d, size_t n) {
  uint8_t b[64] = {};
  std::memcpy(b, d, n < sizeof(b) ? n : sizeof(b));
  huginn::fp::SynFields f;
  f.ip_version = (b[0] & 1) ? 6 : 4;
  f.ttl = b[1];
  f.ip_id = static_cast<uint16_t>(b[2] << 8 | b[3]);
  f.df = b[4] & 1;
  f.mf = b[4] & 2;
  f.reserved_bit = b[4] & 4;
  f.tos = b[5];
  f.ip_options_len = b[6] % 41;
  f.flow_label = (static_cast<uint32_t>(b[7]) << 16 | b[8] << 8 | b[9]) & 0xFFFFF;
  f.window = static_cast<uint16_t>(b[10] << 8 | b[11]);
  std::memcpy(&f.seq, b + 12, 4);
  std::memcpy(&f.ack, b + 16, 4);
  f.urg_ptr = static_cast<uint16_t>(b[20] << 8 | b[21]);
  f.tcp_flags = b[22];
  f.tcp_reserved = b[23] & 0x0F;
  std::memcpy(&f.payload_len, b + 24, 4);
  // Any option length, not only multiples of four; even past the array (clamped).
  f.tcp_options_len = n > 28 ? static_cast<uint8_t>(n - 28) : 0;
  std::memcpy(f.tcp_options.data(), d + (n > 28 ? 28 : n), n > 28 ? (n - 28 < 40 ? n - 28 : 40) : 0);
  return f;
}

// p0f_canonical keeps the signature and is idempotent (the memo's soundness).
void check_canonical(const huginn::fp::SynFields& f, const std::string& sig) {
  const huginn::fp::SynFields c = huginn::fp::p0f_canonical(f);
  if (huginn::fp::p0f_raw_sig(c) != sig) __builtin_trap();
  std::string k1, k2;
  huginn::fp::p0f_input_key(f, k1);
  huginn::fp::p0f_input_key(c, k2);
  if (k1 != k2) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 0x80 && size > 1) {
    const huginn::fp::SynFields f = fields_from_bytes(data + 1, size - 1);
    const std::string sig = huginn::fp::p0f_raw_sig(f);
    check_sig(sig);
    check_canonical(f, sig);
    return 0;
  }
  std::string error;
  const auto fields = huginn::fp::syn_fields_from_packet(data, size, &error);
  if (!fields) {
    if (error.empty()) __builtin_trap();
    return 0;
  }
  const std::string sig = huginn::fp::p0f_raw_sig(*fields);
  check_sig(sig);
  check_canonical(*fields, sig);
  const auto again = huginn::fp::p0f_from_packet(data, size);
  if (!again || *again != sig) __builtin_trap();
  return 0;
}
