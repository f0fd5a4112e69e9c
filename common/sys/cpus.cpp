#include "common/sys/cpus.h"

#include <sched.h>

namespace huginn::sys {

std::vector<uint32_t> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<uint32_t> out;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (uint32_t c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

}  // namespace huginn::sys
