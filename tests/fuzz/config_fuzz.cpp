// Fuzz target: arbitrary bytes → config::load_text(). Must never crash, and the
// result must keep the loader's promises: every error carries a position, and an
// accepted Config satisfies the invariants documented in common/config/model.h.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "common/config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huginn::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  LoadOptions opts;
  opts.default_workers = 2;
  LoadResult r = load_text(text, "fuzz.toml", opts);
  if (const auto* errs = std::get_if<std::vector<ConfigError>>(&r)) {
    if (errs->empty()) std::abort();
    for (const auto& e : *errs) {
      if (e.pos.line == 0 || e.pos.column == 0 || e.file != "fuzz.toml" || e.message.empty()) std::abort();
      (void)e.to_string();
    }
    return 0;
  }
  const Config& cfg = *std::get<std::shared_ptr<const Config>>(r);
  if (cfg.workers < 1 || cfg.listen.addrs.empty() || cfg.source_text != text) std::abort();
  std::set<std::string> hosts;
  int catch_all = 0;
  for (const auto& d : cfg.domains) {
    if (!d.host) {
      ++catch_all;
    } else if (!hosts.insert(*d.host).second || d.host->empty() || d.host->back() == '.') {
      std::abort();
    }
    for (const auto& rt : d.routes)
      if (cfg.find_backend(rt.backend) == nullptr || rt.prefix.empty() || rt.prefix[0] != '/') std::abort();
  }
  if (catch_all > 1) std::abort();
  const std::string json = effective_config_json(cfg);
  if (json.empty()) std::abort();
  return 0;
}
