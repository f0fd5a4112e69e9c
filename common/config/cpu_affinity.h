// worker_cpu_affinity resolved for one worker: pure functions, no syscalls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config/model.h"

namespace huginn::config {

// The CPUs worker `worker` is pinned to: with kAuto, the (worker mod n)-th of
// the n CPUs in `allowed` (the supervisor's own affinity); with kLists, its
// list cut down to `allowed`. Empty: leave the worker unpinned (kOff, nothing
// allowed, or a list naming no allowed CPU). `allowed` must be sorted.
std::vector<uint32_t> worker_cpus(const CpuAffinity& a, uint32_t worker,
                                  const std::vector<uint32_t>& allowed);

// Sorted CPU numbers as a Linux CPU list: {0,1,2,5} -> "0-2,5"; {} -> "".
std::string cpu_list_text(const std::vector<uint32_t>& cpus);

}  // namespace huginn::config
