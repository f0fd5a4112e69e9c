#include "supervisor/worker_env.h"

#include <string_view>

namespace huginn::supervisor {

std::string worker_glibc_tunables(const char* inherited) {
  constexpr std::string_view kName = "glibc.malloc.tcache_count";
  const std::string_view have = inherited != nullptr ? std::string_view(inherited) : std::string_view();
  // Colon-separated name=value entries.
  for (size_t b = 0; b <= have.size();) {
    size_t e = have.find(':', b);
    if (e == std::string_view::npos) e = have.size();
    const std::string_view entry = have.substr(b, e - b);
    if (entry.substr(0, entry.find('=')) == kName) return std::string(have);
    b = e + 1;
  }
  std::string out(have);
  if (!out.empty()) out.push_back(':');
  out.append(kName).append("=").append(std::to_string(kWorkerTcacheCount));
  return out;
}

std::vector<std::string> worker_env(const char* inherited_tunables) {
  return {"GLIBC_TUNABLES=" + worker_glibc_tunables(inherited_tunables)};
}

}  // namespace huginn::supervisor
