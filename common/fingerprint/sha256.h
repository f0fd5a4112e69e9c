// SHA-256 helpers (OpenSSL EVP) for the hashed JA4 parts.
#pragma once

#include <string>
#include <string_view>

namespace huginn::fp {

// Lowercase hex of the whole SHA-256 digest of `data` (64 chars).
std::string sha256_hex(std::string_view data);

// First 12 lowercase hex characters of SHA-256(data); "000000000000" for
// empty input (the JA4 rule for an empty list).
std::string sha256_hex12(std::string_view data);

}  // namespace huginn::fp
