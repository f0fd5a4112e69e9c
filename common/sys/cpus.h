// The CPUs this process may run on.
#pragma once

#include <cstdint>
#include <vector>

namespace huginn::sys {

// sched_getaffinity(0), sorted; empty when the call fails.
std::vector<uint32_t> allowed_cpus();

}  // namespace huginn::sys
