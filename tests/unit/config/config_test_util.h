// Helpers shared by the config unit tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/loader.h"

namespace huginn::config::test {

inline constexpr uint32_t kTestWorkers = 3;

inline LoadResult load(std::string_view text) {
  LoadOptions o;
  o.default_workers = kTestWorkers;
  return load_text(text, "config.toml", o);
}

inline std::string join_errors(const std::vector<ConfigError>& errs) {
  std::string s;
  for (const auto& e : errs) s += e.to_string() + "\n";
  return s;
}

// Loads text that must be valid.
inline std::shared_ptr<const Config> ok(std::string_view text) {
  auto r = load(text);
  if (auto* errs = std::get_if<std::vector<ConfigError>>(&r)) {
    ADD_FAILURE() << "unexpected errors:\n" << join_errors(*errs) << "for:\n" << text;
    return std::make_shared<Config>();
  }
  return std::get<std::shared_ptr<const Config>>(r);
}

// Loads text that must be rejected.
inline std::vector<ConfigError> errors(std::string_view text) {
  auto r = load(text);
  if (auto* errs = std::get_if<std::vector<ConfigError>>(&r)) return *errs;
  ADD_FAILURE() << "expected errors, config was accepted:\n" << text;
  return {};
}

inline constexpr const char* kListen = "[listen]\naddrs = [\"127.0.0.1:8080\"]\n";

}  // namespace huginn::config::test
