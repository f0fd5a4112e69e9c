// TOML → Config: parse, apply defaults, validate. Pure apart from load_file().
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/config/model.h"

namespace huginn::config {

struct ConfigError {
  std::string key_path;  // "domains[0].routes[2].backend"; empty for syntax errors
  std::string message;
  std::string file;  // source name
  SourcePos pos;
  // "domains[0].routes[2].backend: no [[backends]] entry "10.0.0.9:80" (config.toml:41:11)"
  std::string to_string() const;
};

struct LoadOptions {
  // Value used when `workers` is absent; 0 = number of online CPUs.
  uint32_t default_workers = 0;
};

using LoadResult = std::variant<std::shared_ptr<const Config>, std::vector<ConfigError>>;

// Parses `text` (named `source_name` in messages). Returns the Config or every
// error found (never just the first).
LoadResult load_text(std::string_view text, std::string_view source_name, const LoadOptions& opts = {});

// Reads `path` (bounded to 4 MiB) and calls load_text().
LoadResult load_file(const std::string& path, const LoadOptions& opts = {});

// --print-effective-config: deterministic JSON with defaults applied and
// secrets redacted (header values, CSP policy, certificate/key/CA paths shown
// only as *_configured booleans).
std::string effective_config_json(const Config& cfg);

// Every key the loader accepts, as dotted paths without array indices, e.g.
// "listen.proxy_protocol.mode", "domains.routes.security.rate_limit.burst".
// Arrays of {name, value} tables (headers.request.add, security.headers.custom)
// are listed as one key. Sorted; used by the man-page test and the loader itself
// (a table key that is not a prefix of a listed path is unknown).
const std::vector<std::string>& known_key_paths();

}  // namespace huginn::config
