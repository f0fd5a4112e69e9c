#include "common/config/reader.h"

#include <map>
#include <stdexcept>

#include "common/config/validate.h"

namespace huginn::config::detail {

namespace {

// "domains[0].routes[12].backend" → "domains.routes.backend".
std::string pattern_of(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  bool in_index = false;
  for (char c : path) {
    if (c == '[') {
      in_index = true;
    } else if (c == ']') {
      in_index = false;
    } else if (!in_index) {
      out.push_back(c);
    }
  }
  return out;
}

const std::map<std::string, std::set<std::string>>& children_by_pattern() {
  static const std::map<std::string, std::set<std::string>> m = [] {
    std::map<std::string, std::set<std::string>> out;
    for (const auto& key : known_key_paths()) {
      size_t start = 0;
      while (true) {
        size_t dot = key.find('.', start);
        std::string parent = start == 0 ? std::string() : key.substr(0, start - 1);
        out[parent].insert(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
    }
    return out;
  }();
  return m;
}

// A hint for keys that are known somewhere else or that upstream removed.
std::string unknown_key_message(const std::string& pattern, const std::string& key) {
  std::string msg = "unknown key " + valid::quoted(key);
  if (pattern == "tls.session_resumption" && key == "max_sessions")
    return msg + " (max_sessions was removed in upstream 0.0.4; the session cache is not configurable)";
  if (pattern == "tls" && key == "client_auth")
    return msg + " ([tls.client_auth] was replaced by the per-domain key domains.client_ca_path)";
  if (pattern.empty() && key == "routes")
    return msg + " (top-level [[routes]] is the legacy schema; routes belong to [[domains.routes]])";
  const auto& top = children_by_pattern().at("");
  if (!pattern.empty() && top.count(key) != 0)
    return msg + " (\"" + key + "\" is a top-level key: write it before the first [table])";
  return msg;
}

}  // namespace

void Ctx::error(std::string path, std::string message, SourcePos pos) {
  errors.push_back(ConfigError{std::move(path), std::move(message), file, pos});
}

SourcePos pos_of(const toml::source_region& r) { return SourcePos{r.begin.line, r.begin.column}; }

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

Table::Table(Ctx& ctx, const toml::table& t, std::string path) : ctx_(&ctx), t_(&t), path_(std::move(path)) {
  const auto& m = children_by_pattern();
  auto it = m.find(pattern_of(path_));
  if (it != m.end()) allowed_ = it->second;
  check_keys();
}

Table::Table(Ctx& ctx, const toml::table& t, std::string path, std::set<std::string> allowed)
    : ctx_(&ctx), t_(&t), path_(std::move(path)), allowed_(std::move(allowed)) {
  check_keys();
}

void Table::check_keys() {
  const std::string pattern = pattern_of(path_);
  for (auto&& [k, v] : *t_) {
    const std::string key(k.str());
    if (allowed_.count(key) != 0) continue;
    SourcePos p = pos_of(k.source());
    if (p.line == 0) p = pos_of(v.source());
    ctx_->error(key_path(valid::escaped(key)), unknown_key_message(pattern, key), p);
  }
}

SourcePos Table::pos() const {
  SourcePos p = pos_of(t_->source());
  if (p.line == 0) p = SourcePos{1, 1};
  return p;
}

std::string Table::key_path(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return path_ + "." + std::string(key);
}

const toml::node* Table::node(std::string_view key) const {
  if (allowed_.count(std::string(key)) == 0)
    throw std::logic_error("config reader: key \"" + key_path(key) + "\" missing from known_key_paths()");
  return t_->get(key);
}

SourcePos Table::pos(std::string_view key) const {
  const toml::node* n = node(key);
  if (n == nullptr) return pos();
  SourcePos p = pos_of(n->source());
  return p.line == 0 ? pos() : p;
}

void Table::error(std::string_view key, std::string message) {
  ctx_->error(key_path(key), std::move(message), pos(key));
}

void Table::error_at(const StringItem& item, std::string message) {
  ctx_->error(item.path, std::move(message), item.pos);
}

void Table::missing(std::string_view key) { ctx_->error(key_path(key), "required key is missing", pos()); }

void Table::type_error(std::string_view key, const toml::node& n, const char* expected) {
  error(key, std::string("expected ") + expected + ", got " + type_name(n.type()));
}

std::optional<bool> Table::boolean(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  if (const auto* b = n->as_boolean()) return b->get();
  type_error(key, *n, "boolean");
  return std::nullopt;
}

std::optional<int64_t> Table::integer(std::string_view key, int64_t min, int64_t max) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  const auto* i = n->as_integer();
  if (i == nullptr) {
    type_error(key, *n, "integer");
    return std::nullopt;
  }
  const int64_t v = i->get();
  if (v < min || v > max) {
    error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                   std::to_string(v));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> Table::string(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  const auto* s = n->as_string();
  if (s == nullptr) {
    type_error(key, *n, "string");
    return std::nullopt;
  }
  if (s->get().find('\0') != std::string::npos) {
    error(key, "must not contain a NUL character");
    return std::nullopt;
  }
  return s->get();
}

std::optional<std::vector<StringItem>> Table::string_array(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  const auto* a = n->as_array();
  if (a == nullptr) {
    type_error(key, *n, "array of strings");
    return std::nullopt;
  }
  std::vector<StringItem> out;
  bool ok = true;
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    std::string p = key_path(key) + "[" + std::to_string(i) + "]";
    SourcePos ep = pos_of(e.source());
    if (ep.line == 0) ep = pos(key);
    const auto* s = e.as_string();
    if (s == nullptr) {
      ctx_->error(p, std::string("expected string, got ") + type_name(e.type()), ep);
      ok = false;
    } else if (s->get().find('\0') != std::string::npos) {
      ctx_->error(p, "must not contain a NUL character", ep);
      ok = false;
    } else {
      out.push_back(StringItem{s->get(), std::move(p), ep});
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::pair<int64_t, SourcePos>>> Table::integer_array(std::string_view key,
                                                                               int64_t min, int64_t max) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  const auto* a = n->as_array();
  if (a == nullptr) {
    type_error(key, *n, "array of integers");
    return std::nullopt;
  }
  std::vector<std::pair<int64_t, SourcePos>> out;
  bool ok = true;
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    std::string p = key_path(key) + "[" + std::to_string(i) + "]";
    SourcePos ep = pos_of(e.source());
    if (ep.line == 0) ep = pos(key);
    const auto* v = e.as_integer();
    if (v == nullptr) {
      ctx_->error(p, std::string("expected integer, got ") + type_name(e.type()), ep);
      ok = false;
    } else if (v->get() < min || v->get() > max) {
      ctx_->error(p,
                  "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                      std::to_string(v->get()),
                  ep);
      ok = false;
    } else {
      out.emplace_back(v->get(), ep);
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<Table> Table::table(std::string_view key) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  const auto* t = n->as_table();
  if (t == nullptr) {
    type_error(key, *n, "table");
    return std::nullopt;
  }
  return Table(*ctx_, *t, key_path(key));
}

std::vector<Table> Table::tables(std::string_view key) {
  std::vector<Table> out;
  const toml::node* n = node(key);
  if (n == nullptr) return out;
  const auto* a = n->as_array();
  if (a == nullptr) {
    type_error(key, *n, "array of tables");
    return out;
  }
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    std::string p = key_path(key) + "[" + std::to_string(i) + "]";
    if (const auto* t = e.as_table()) {
      out.emplace_back(*ctx_, *t, std::move(p));
    } else {
      SourcePos ep = pos_of(e.source());
      ctx_->error(p, std::string("expected table, got ") + type_name(e.type()), ep.line ? ep : pos(key));
    }
  }
  return out;
}

std::optional<std::vector<Table>> Table::tables_with(std::string_view key,
                                                     const std::set<std::string>& allowed) {
  const toml::node* n = node(key);
  if (n == nullptr) return std::nullopt;
  const auto* a = n->as_array();
  if (a == nullptr) {
    type_error(key, *n, "array of tables");
    return std::nullopt;
  }
  std::vector<Table> out;
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    std::string p = key_path(key) + "[" + std::to_string(i) + "]";
    if (const auto* t = e.as_table()) {
      out.emplace_back(*ctx_, *t, std::move(p), allowed);
    } else {
      SourcePos ep = pos_of(e.source());
      ctx_->error(p, std::string("expected table, got ") + type_name(e.type()), ep.line ? ep : pos(key));
    }
  }
  return out;
}

void Table::set(std::string_view key, bool& out) {
  if (auto v = boolean(key)) out = *v;
}

void Table::set(std::string_view key, std::string& out) {
  if (auto v = string(key)) out = std::move(*v);
}

}  // namespace huginn::config::detail
