// Fuzzes the TLS material decoder (common/tls/bundle.h): any input either
// fails with a reason or decodes into a bundle that passes check() and
// re-encodes to exactly the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/tls/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huginn::tls;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string err;
  auto b = decode(in, &err);
  if (!b) {
    if (err.empty()) __builtin_trap();
    return 0;
  }
  if (!check(*b).empty()) __builtin_trap();
  if (encode(*b) != in) __builtin_trap();
  return 0;
}
