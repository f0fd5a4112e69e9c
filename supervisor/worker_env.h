// What the supervisor adds to the environment of the workers it starts.
//
// glibc's per-thread cache keeps at most 7 freed chunks of each small size
// (up to 1032 bytes) by default. A worker serving multiplexed HTTP/2 frees
// and allocates its ~25 small objects per request in waves of dozens of
// concurrent streams, so most of them overflowed that cache into the arena's
// bins: malloc and free took 4.6-5.5 % of the worker's samples in the HTTP/2
// benchmark, 2.6 % with room for 128 chunks, and requests/s rose by ~3 %.
// The count is a glibc tunable that can only be set from the environment
// before the process starts, hence here, at exec. It bounds what the cache
// can hold to a few MiB per worker (128 chunks of each of 64 sizes, at most).
#pragma once

#include <string>
#include <vector>

namespace huginn::supervisor {

inline constexpr unsigned kWorkerTcacheCount = 128;

// GLIBC_TUNABLES for a worker, given the supervisor's own value (null when
// unset): that value with glibc.malloc.tcache_count appended, or unchanged
// when it already sets glibc.malloc.tcache_count (the operator's choice wins).
std::string worker_glibc_tunables(const char* inherited);

// The "NAME=value" entries for SpawnRequest::env of a worker.
std::vector<std::string> worker_env(const char* inherited_tunables);

}  // namespace huginn::supervisor
