// Whether this build runs under AddressSanitizer (HUGINN_SANITIZE=address,...;
// see docs/ROBUSTNESS.md): GCC defines __SANITIZE_ADDRESS__, clang answers
// __has_feature(address_sanitizer).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define HUGINN_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HUGINN_ADDRESS_SANITIZER 1
#endif
#endif
#ifndef HUGINN_ADDRESS_SANITIZER
#define HUGINN_ADDRESS_SANITIZER 0
#endif

namespace huginn::sys {
inline constexpr bool kAddressSanitizer = HUGINN_ADDRESS_SANITIZER == 1;
}  // namespace huginn::sys
