#include "common/config/cpu_affinity.h"

#include <algorithm>
#include <iterator>

namespace huginn::config {

std::vector<uint32_t> worker_cpus(const CpuAffinity& a, uint32_t worker,
                                  const std::vector<uint32_t>& allowed) {
  if (allowed.empty()) return {};
  switch (a.mode) {
    case CpuAffinity::Mode::kOff:
      return {};
    case CpuAffinity::Mode::kAuto:
      return {allowed[worker % allowed.size()]};
    case CpuAffinity::Mode::kLists: {
      if (a.lists.empty()) return {};
      const auto& want = a.lists[worker % a.lists.size()];
      std::vector<uint32_t> out;
      std::set_intersection(want.begin(), want.end(), allowed.begin(), allowed.end(),
                            std::back_inserter(out));
      return out;
    }
  }
  return {};
}

std::string cpu_list_text(const std::vector<uint32_t>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace huginn::config
