// Sealed memfds: how the supervisor hands immutable bytes (the configuration
// text, the TLS material) to workers. The creator writes the bytes and seals
// the memfd against writes, growth and shrinking (and further sealing); the
// receiver checks those seals with F_GET_SEALS and the size against its cap
// before it allocates or reads anything.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/sys/unique_fd.h"

namespace huginn::sys {

// memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING) + write `bytes` + seal.
// Invalid UniqueFd with `*error` set on failure.
UniqueFd make_sealed_memfd(const char* name, std::string_view bytes, std::string* error);

// Reads the whole content of `fd` after checking that it is a memfd sealed
// with F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK and at most `max_bytes` long.
// Uses fcntl(F_GET_SEALS), fstat and pread only (allowed by the worker's
// seccomp policy), so it works inside the sandbox.
bool read_sealed_memfd(int fd, size_t max_bytes, std::string* out, std::string* error);

}  // namespace huginn::sys
