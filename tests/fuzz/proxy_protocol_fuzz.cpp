// Fuzzes the PROXY protocol v1/v2 parser (common/net/proxy_protocol.h). Beyond
// "no sanitizer report": a verdict depends only on the bytes it has looked at
// (one more byte never turns a decision into another, and a header parses the
// same without the bytes after it); every proper prefix of a header needs
// more; a complete header is within the caps (v1: 107 bytes ending in CRLF;
// v2: 16..552 bytes); a TCP4 line is the canonical text of what it decodes
// to; an undecided input is shorter than the largest header.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/net/proxy_protocol.h"

namespace pp = huginn::net::proxy_protocol;

namespace {

bool same(const pp::Result& a, const pp::Result& b) {
  if (a.status != b.status) return false;
  if (a.status != pp::Status::kDone) return true;
  const pp::Header& x = a.header;
  const pp::Header& y = b.header;
  return x.version == y.version && x.command == y.command && x.family == y.family && x.stream == y.stream &&
         x.length == y.length &&
         (!x.carries_client() || (x.source == y.source && x.destination == y.destination));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string buf(reinterpret_cast<const char*>(data), size);
  const pp::Result r = pp::parse(buf);
  const std::string more = buf + '\x0a';
  const pp::Result r2 = pp::parse(more);
  switch (r.status) {
    case pp::Status::kNeedMore:
      if (size >= pp::kMaxHeaderLength) __builtin_trap();
      break;
    case pp::Status::kNotProxy:
      if (size == 0 || !same(r, r2)) __builtin_trap();
      break;
    case pp::Status::kError:
      if (r.error == nullptr || r.error[0] == '\0' || !same(r, r2)) __builtin_trap();
      break;
    case pp::Status::kDone: {
      const pp::Header& h = r.header;
      if (!same(r, r2) || h.length == 0 || h.length > size) __builtin_trap();
      if (h.version == 1) {
        if (h.length > pp::kV1MaxLength || buf.compare(h.length - 2, 2, "\r\n") != 0) __builtin_trap();
        if (h.family == pp::Family::kInet) {
          const std::string text = "PROXY TCP4 " + h.source.ip_string() + " " + h.destination.ip_string() +
                                   " " + std::to_string(h.source.port()) + " " +
                                   std::to_string(h.destination.port()) + "\r\n";
          if (buf.compare(0, h.length, text) != 0) __builtin_trap();
        }
      } else if (h.version == 2) {
        if (h.length < pp::kV2FixedLength || h.length > pp::kMaxHeaderLength) __builtin_trap();
      } else {
        __builtin_trap();
      }
      if (h.carries_client()) {
        const int fam = h.family == pp::Family::kInet ? AF_INET : AF_INET6;
        if (h.source.family() != fam || h.destination.family() != fam) __builtin_trap();
      }
      const std::string_view exact = std::string_view(buf).substr(0, h.length);
      if (!same(r, pp::parse(exact))) __builtin_trap();
      if (pp::parse(exact.substr(0, h.length - 1)).status != pp::Status::kNeedMore) __builtin_trap();
      if (pp::parse(exact.substr(0, h.length / 2)).status != pp::Status::kNeedMore) __builtin_trap();
      break;
    }
  }
  return 0;
}
