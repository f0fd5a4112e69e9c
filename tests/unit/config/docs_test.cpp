// The man page documents exactly the keys the loader accepts, its examples load,
// and etc/config.example.toml loads.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/unit/config/config_test_util.h"

namespace huginn::config::test {
namespace {

std::string read_source(const std::string& rel) {
  std::ifstream in(std::string(HUGINN_SOURCE_DIR) + "/" + rel);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ManPage {
  std::set<std::string> keys;         // "listen.proxy_protocol.mode"
  std::vector<std::string> examples;  // .Bd -literal blocks
};

// Key lists live under ".Ss" headings that name their tables ("[listen]",
// "[[domains.routes]]", several separated by commas; "Top-level keys" for the root);
// each ".It Ic key" item documents table.key for every table of the heading.
ManPage parse_man(const std::string& text) {
  ManPage m;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> tables;
  bool in_tables = false;
  std::string literal;
  bool in_literal = false;
  const std::regex table_re(R"(\[\[?([a-z_.]+)\]?\])");
  while (std::getline(in, line)) {
    if (in_literal) {
      if (line.rfind(".Ed", 0) == 0) {
        m.examples.push_back(literal);
        in_literal = false;
      } else {
        literal += line + "\n";
      }
      continue;
    }
    if (line.rfind(".Bd -literal", 0) == 0) {
      in_literal = true;
      literal.clear();
      continue;
    }
    if (line.rfind(".Sh ", 0) == 0) {
      in_tables = false;
      continue;
    }
    if (line.rfind(".Ss ", 0) == 0) {
      tables.clear();
      if (line == ".Ss Top-level keys") tables.push_back("");
      for (std::sregex_iterator it(line.begin(), line.end(), table_re), end; it != end; ++it)
        tables.push_back((*it)[1].str());
      in_tables = !tables.empty();
      continue;
    }
    if (in_tables && line.rfind(".It Ic ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string key;
      words >> key;
      for (const auto& t : tables) m.keys.insert(t.empty() ? key : t + "." + key);
    }
  }
  return m;
}

TEST(ManPage, DocumentsExactlyTheAcceptedKeys) {
  const ManPage m = parse_man(read_source("man/huginn-proxy.toml.5.in"));
  const std::set<std::string> known(known_key_paths().begin(), known_key_paths().end());
  for (const auto& k : known) EXPECT_TRUE(m.keys.count(k)) << "accepted but not documented: " << k;
  for (const auto& k : m.keys) {
    // Table-valued keys (health_check, headers, security, routes) are containers:
    // documented as items, accepted as the prefix of their keys.
    auto it = known.lower_bound(k + ".");
    const bool container = it != known.end() && it->rfind(k + ".", 0) == 0;
    EXPECT_TRUE(known.count(k) || container) << "documented but not accepted: " << k;
  }
  EXPECT_GT(m.keys.size(), 100u);
}

TEST(ManPage, ParserReadsHeadingsItemsAndExamples) {
  const ManPage m = parse_man(
      ".Sh X\n.Ss [a], [[b.c]]\\&\n.It Ic k Pq integer\n.It Ic s.t\n.Sh Y\n.It Ic ignored\n"
      ".Ss Top-level keys\n.It Ic top\n.Bd -literal\nx = 1\n.Ed\n");
  EXPECT_EQ(m.keys, (std::set<std::string>{"a.k", "a.s.t", "b.c.k", "b.c.s.t", "top"}));
  ASSERT_EQ(m.examples.size(), 1u);
  EXPECT_EQ(m.examples[0], "x = 1\n");
}

TEST(ManPage, ExamplesLoad) {
  const ManPage m = parse_man(read_source("man/huginn-proxy.toml.5.in"));
  size_t configs = 0;
  for (const auto& ex : m.examples) {
    if (ex.find("[listen]") == std::string::npos) continue;  // shell examples
    ++configs;
    ok(ex);
  }
  EXPECT_EQ(configs, 2u);
}

TEST(ExampleConfig, Loads) {
  const std::string text = read_source("etc/config.example.toml");
  auto c = ok(text);
  EXPECT_EQ(c->workers, 2u);
  EXPECT_EQ(c->backends.size(), 3u);
  EXPECT_EQ(c->domains.size(), 3u);
  EXPECT_FALSE(c->tls.has_value());
  for (const auto& b : c->backends) EXPECT_EQ(b.host, "127.0.0.1");
  // Most sections are exercised.
  for (const char* section :
       {"[listen]", "[[backends]]", "[[domains]]", "[[domains.routes]]", "[headers.request]", "[security]",
        "[security.rate_limit]", "[security.headers]", "[fingerprint]", "[fingerprint.headers]", "[ebpf]",
        "[limits]", "[timeout]", "[backend_pool]", "[telemetry]", "[logging]", "[reload]", "[dbus]",
        "# [tls]"})
    EXPECT_NE(text.find(section), std::string::npos) << section;
}

TEST(ExampleConfig, TlsPartLoadsWhenUncommented) {
  // The commented-out [tls] block is valid too once enabled.
  std::string text = read_source("etc/config.example.toml");
  const size_t start = text.find("# [tls]\n");
  ASSERT_NE(start, std::string::npos);
  const size_t end = text.find("\n\n", start);
  std::string block = text.substr(start, end - start);
  std::string enabled;
  std::istringstream in(block);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0 && (line[2] == '[' || line.find(" = ") != std::string::npos)) {
      enabled += line.substr(2) + "\n";
    }
  }
  auto c = ok(text + "\n" + enabled);
  ASSERT_TRUE(c->tls.has_value());
  EXPECT_EQ(c->tls->cert_path, "/etc/huginn-proxy/default.crt");
  EXPECT_EQ(c->tls->options.min_version, "1.2");
  EXPECT_TRUE(c->tls->session_resumption_enabled);
}

}  // namespace
}  // namespace huginn::config::test

namespace huginn::config::test {
namespace {

// The demo configuration of the README's first command must stay valid too.
TEST(DemoConfig, Loads) {
  auto c = ok(read_source("etc/demo.toml"));
  EXPECT_EQ(c->listen.addrs.size(), 1u);
  EXPECT_EQ(c->listen.cleartext_addrs.size(), 1u);
  ASSERT_TRUE(c->tls.has_value());
  EXPECT_EQ(c->tls->cert_path, "@DEMO_DIR@/localhost.crt");
}

}  // namespace
}  // namespace huginn::config::test
