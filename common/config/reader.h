// Private to common/config: a schema-checked view of one TOML table that reports
// unknown keys, type errors and range errors with key path and line:column.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/loader.h"

namespace huginn::config::detail {

struct Ctx {
  std::string file;
  std::vector<ConfigError> errors;
  void error(std::string path, std::string message, SourcePos pos);
};

SourcePos pos_of(const toml::source_region& r);
const char* type_name(toml::node_type t);

// One element of an array of strings, with its own path ("listen.addrs[1]") and position.
struct StringItem {
  std::string value;
  std::string path;
  SourcePos pos;
};

class Table {
 public:
  // Allowed keys come from known_key_paths() for the table's path pattern.
  Table(Ctx& ctx, const toml::table& t, std::string path);
  // Allowed keys given explicitly (e.g. {name, value} entries).
  Table(Ctx& ctx, const toml::table& t, std::string path, std::set<std::string> allowed);

  const std::string& path() const { return path_; }
  SourcePos pos() const;
  std::string key_path(std::string_view key) const;
  // The value node of `key`, or nullptr when absent.
  const toml::node* node(std::string_view key) const;
  SourcePos pos(std::string_view key) const;
  bool has(std::string_view key) const { return node(key) != nullptr; }

  // Each getter returns nullopt when the key is absent or invalid (the error is recorded).
  std::optional<bool> boolean(std::string_view key);
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max);
  std::optional<std::string> string(std::string_view key);
  std::optional<std::vector<StringItem>> string_array(std::string_view key);
  std::optional<std::vector<std::pair<int64_t, SourcePos>>> integer_array(std::string_view key, int64_t min,
                                                                          int64_t max);
  std::optional<Table> table(std::string_view key);
  // Array of tables; absent → empty.
  std::vector<Table> tables(std::string_view key);
  // Arrays of tables with a fixed set of keys (e.g. {name, value}).
  std::optional<std::vector<Table>> tables_with(std::string_view key, const std::set<std::string>& allowed);

  // Assigns when present and valid.
  void set(std::string_view key, bool& out);
  template <class T>
  void set(std::string_view key, T& out, int64_t min, int64_t max) {
    if (auto v = integer(key, min, max)) out = static_cast<T>(*v);
  }
  void set(std::string_view key, std::string& out);

  void error(std::string_view key, std::string message);
  // An error at an explicit path and position (e.g. one element of an array).
  void error_at(const StringItem& item, std::string message);
  void missing(std::string_view key);

 private:
  void check_keys();
  void type_error(std::string_view key, const toml::node& n, const char* expected);

  Ctx* ctx_;
  const toml::table* t_;
  std::string path_;
  std::set<std::string> allowed_;
};

}  // namespace huginn::config::detail
