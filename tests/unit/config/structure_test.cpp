// Unknown keys at every level (generated from known_key_paths()), several errors at
// once, syntax errors, upstream example configs, load_file().
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

#include "tests/unit/config/config_test_util.h"

namespace huginn::config::test {
namespace {

// Every table that can hold keys, as a dotted pattern ("" = root, "domains.routes.security").
std::set<std::string> table_patterns() {
  std::set<std::string> out = {""};
  for (const auto& k : known_key_paths()) {
    for (size_t dot = k.find('.'); dot != std::string::npos; dot = k.find('.', dot + 1))
      out.insert(k.substr(0, dot));
  }
  return out;
}

// TOML that opens the table `pattern` (creating the array-of-tables parents it needs)
// with an unknown key in it, and the indexed key path the error must name.
std::pair<std::string, std::string> unknown_key_doc(const std::string& pattern) {
  if (pattern.empty()) return {std::string("zz_unknown = 1\n") + kListen, "zz_unknown"};
  std::string doc = "[[backends]]\naddress = \"a:1\"\n";
  std::string path;
  std::string rest;
  if (pattern.rfind("backends", 0) == 0) {
    path = "backends[0]";
    rest = pattern.substr(8);
  } else if (pattern.rfind("domains.routes", 0) == 0) {
    doc += "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"a:1\"\n";
    path = "domains[0].routes[0]";
    rest = pattern.substr(14);
  } else if (pattern.rfind("domains", 0) == 0) {
    doc += "[[domains]]\n";
    path = "domains[0]";
    rest = pattern.substr(7);
  } else {
    path = pattern;
  }
  if (path == pattern || !rest.empty()) doc += "[" + pattern + "]\n";
  path += rest;
  doc += "zz_unknown = 1\n";
  if (pattern == "listen") {
    doc += "addrs = [\"127.0.0.1:1\"]\n";
  } else {
    doc += kListen;
  }
  // [tls] and its subtables need a certificate somewhere: give one to a catch-all domain.
  if (pattern.rfind("tls", 0) == 0) doc += "[[domains]]\ncert_path = \"/c\"\nkey_path = \"/k\"\n";
  return {doc, path + ".zz_unknown"};
}

TEST(ConfigUnknownKeys, RejectedInEveryTable) {
  size_t tested = 0;
  for (const auto& pattern : table_patterns()) {
    auto [doc, expected_path] = unknown_key_doc(pattern);
    auto r = load(doc);
    auto* errs = std::get_if<std::vector<ConfigError>>(&r);
    ASSERT_NE(errs, nullptr) << "accepted:\n" << doc;
    ASSERT_EQ(errs->size(), 1u) << join_errors(*errs) << doc;
    const ConfigError& e = (*errs)[0];
    EXPECT_EQ(e.key_path, expected_path) << e.to_string() << "\nfor:\n" << doc;
    EXPECT_EQ(e.message, "unknown key \"zz_unknown\"") << e.to_string();
    EXPECT_EQ(e.pos.column, 1u) << e.to_string();
    ++tested;
  }
  EXPECT_GE(tested, 35u);
}

TEST(ConfigUnknownKeys, InsideNameValueEntries) {
  for (const char* table : {"headers.request", "headers.response"}) {
    auto e =
        errors(std::string("[") + table + "]\nadd = [{ name = \"a\", value = \"b\", x = 1 }]\n" + kListen);
    ASSERT_EQ(e.size(), 1u) << join_errors(e);
    EXPECT_EQ(e[0].key_path, std::string(table) + ".add[0].x");
  }
  auto e = errors(std::string("[security.headers]\ncustom = [{ name = \"a\", value = \"b\", x = 1 }]\n") +
                  kListen);
  ASSERT_EQ(e.size(), 1u) << join_errors(e);
  EXPECT_EQ(e[0].key_path, "security.headers.custom[0].x");
}

TEST(ConfigKnownKeys, ListIsSortedUniqueAndComplete) {
  const auto& keys = known_key_paths();
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size());
  for (const char* k : {"preserve_host", "listen.addrs", "domains.routes.security.rate_limit.burst",
                        "headers.request.add", "security.headers.custom", "tls.session_resumption.enabled",
                        "ebpf.syn_map_max_entries", "dbus.bus", "timeout.keep_alive.upstream_idle_timeout"})
    EXPECT_TRUE(std::binary_search(keys.begin(), keys.end(), k)) << k;
}

TEST(ConfigErrors, AllReportedTogetherInFileOrder) {
  const char* text = R"(workers = 0
user = ""
[listen]
addrs = ["nonsense", "127.0.0.1:80"]
tcp_backlog = "big"
[[backends]]
address = "a:1"
[[domains]]
host = "."
[[domains.routes]]
prefix = "x"
backend = "10.0.0.9:80"
[[domains]]
[[domains]]
[tls.options]
versions = ["1.0"]
[tls.session_resumption]
max_sessions = 10
[logging]
level = "loud"
bogus = true
)";
  auto e = errors(text);
  std::vector<std::pair<std::string, uint32_t>> got;
  for (const auto& x : e) got.emplace_back(x.key_path, x.pos.line);
  const std::vector<std::pair<std::string, uint32_t>> want = {{"workers", 1},
                                                              {"user", 2},
                                                              {"listen.addrs[0]", 4},
                                                              {"listen.tcp_backlog", 5},
                                                              {"domains[0].host", 9},
                                                              {"domains[0].routes[0].prefix", 11},
                                                              {"domains[0].routes[0].backend", 12},
                                                              {"domains[2]", 14},
                                                              {"tls", 15},
                                                              {"tls.options.versions[0]", 16},
                                                              {"tls.session_resumption.max_sessions", 18},
                                                              {"logging.level", 20},
                                                              {"logging.bogus", 21}};
  EXPECT_EQ(got, want) << join_errors(e);
}

TEST(ConfigErrors, SyntaxErrorIsTheOnlyError) {
  auto e = errors("workers = 0\n[listen\naddrs = []\n");
  ASSERT_EQ(e.size(), 1u) << join_errors(e);
  EXPECT_EQ(e[0].key_path, "");
  EXPECT_EQ(e[0].pos.line, 2u);
  EXPECT_GT(e[0].pos.column, 0u);
  EXPECT_EQ(e[0].to_string().rfind("syntax error: ", 0), 0u) << e[0].to_string();
  EXPECT_NE(e[0].to_string().find("(config.toml:2:"), std::string::npos) << e[0].to_string();
}

TEST(ConfigErrors, InvalidUtf8IsASyntaxError) {
  auto e = errors(std::string(kListen) + "user = \"\xff\xfe\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].pos.line, 3u);
}

TEST(ConfigErrors, ToStringFormats) {
  ConfigError a{
      "domains[0].routes[2].backend", "no [[backends]] entry \"10.0.0.9:80\"", "config.toml", {41, 11}};
  EXPECT_EQ(a.to_string(),
            "domains[0].routes[2].backend: no [[backends]] entry \"10.0.0.9:80\" (config.toml:41:11)");
  ConfigError b{"", "syntax error: x", "f.toml", {2, 3}};
  EXPECT_EQ(b.to_string(), "syntax error: x (f.toml:2:3)");
  ConfigError c{"", "cannot open configuration file: No such file or directory", "/nope.toml", {}};
  EXPECT_EQ(c.to_string(), "cannot open configuration file: No such file or directory (/nope.toml)");
}

TEST(ConfigErrors, EmptyDocumentNeedsListen) {
  auto e = errors("");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].to_string(), "listen: the [listen] table is required (config.toml:1:1)");
}

// upstream examples/config/local.toml, verbatim (huginn-proxy-upstream.md §1.16).
constexpr const char* kUpstreamLocal =
    R"(# Local dev config for: cargo run --bin huginn-proxy -- examples/config/local.toml
# Generate certs first (see examples/README.md § "Generate TLS Certificates").

[listen]
addrs = ["127.0.0.1:7000"]

[[domains]]
host = "localhost"
cert_path = "examples/certs/server.crt"
key_path = "examples/certs/server.key"

[tls]
alpn = ["h2", "http/1.1"]

[logging]
level = "info"
show_target = true

[telemetry]
metrics_port = 9090
)";

// upstream SETTINGS.md minimal plain-HTTP example, verbatim.
constexpr const char* kUpstreamPlain = R"(preserve_host = false

[listen]
addrs = ["0.0.0.0:8080"]

[[backends]]
address = "localhost:3000"

# A host-less domain is the catch-all: it matches any host (plain HTTP here).
# Routes live under the domain, never at the top level.
[[domains]]

[[domains.routes]]
prefix = "/"
backend = "localhost:3000"
)";

TEST(ConfigUpstream, LocalExampleLoadsUnchanged) {
  auto c = ok(kUpstreamLocal);
  ASSERT_TRUE(c->tls);
  EXPECT_EQ(c->domains[0].host, "localhost");
  EXPECT_EQ(c->domains[0].cert_path, "examples/certs/server.crt");
  EXPECT_TRUE(c->logging.show_target);
  EXPECT_EQ(c->telemetry.metrics_port, 9090);
}

TEST(ConfigUpstream, PlainExampleLoadsUnchanged) {
  auto c = ok(kUpstreamPlain);
  EXPECT_FALSE(c->tls);
  ASSERT_EQ(c->backends.size(), 1u);
  EXPECT_EQ(c->backends[0].host, "localhost");
  EXPECT_EQ(c->backends[0].port, 3000);
  ASSERT_EQ(c->domains.size(), 1u);
  EXPECT_FALSE(c->domains[0].host);
  EXPECT_EQ(c->domains[0].routes[0].backend, "localhost:3000");
}

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/huginn-config-test-XXXXXX";
    int fd = mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    path_ = tmpl;
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigFile, LoadsAndRecordsSource) {
  TempFile f(kListen);
  auto r = load_file(f.path(), LoadOptions{2});
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const Config>>(r));
  const auto& c = std::get<std::shared_ptr<const Config>>(r);
  EXPECT_EQ(c->source_name, f.path());
  EXPECT_EQ(c->source_text, kListen);
  EXPECT_EQ(c->workers, 2u);
}

TEST(ConfigFile, ErrorsNameTheFile) {
  TempFile f("workers = 0\n[listen]\naddrs = [\"127.0.0.1:1\"]\n");
  auto r = load_file(f.path());
  auto* e = std::get_if<std::vector<ConfigError>>(&r);
  ASSERT_NE(e, nullptr);
  ASSERT_EQ(e->size(), 1u);
  EXPECT_EQ((*e)[0].to_string(), "workers: must be between 1 and 256, got 0 (" + f.path() + ":1:11)");
}

TEST(ConfigFile, MissingFile) {
  auto r = load_file("/nonexistent/huginn.toml");
  auto* e = std::get_if<std::vector<ConfigError>>(&r);
  ASSERT_NE(e, nullptr);
  ASSERT_EQ(e->size(), 1u);
  EXPECT_EQ((*e)[0].file, "/nonexistent/huginn.toml");
  EXPECT_NE((*e)[0].message.find("No such file or directory"), std::string::npos) << (*e)[0].message;
}

TEST(ConfigFile, DirectoryIsRejected) {
  auto r = load_file("/tmp");
  auto* e = std::get_if<std::vector<ConfigError>>(&r);
  ASSERT_NE(e, nullptr);
  EXPECT_NE((*e)[0].message.find("not a regular file"), std::string::npos);
}

TEST(ConfigFile, SizeLimitIs4MiB) {
  // Exactly 4 MiB (a valid config padded with a comment) loads; one byte more does not.
  std::string text = std::string(kListen) + "#";
  text.append((4u << 20) - text.size() - 1, 'x');
  text += "\n";
  ASSERT_EQ(text.size(), 4u << 20);
  {
    TempFile f(text);
    auto r = load_file(f.path());
    EXPECT_TRUE(std::holds_alternative<std::shared_ptr<const Config>>(r))
        << join_errors(std::get<std::vector<ConfigError>>(r));
  }
  text.insert(text.size() - 1, "x");
  TempFile f(text);
  auto r = load_file(f.path());
  auto* e = std::get_if<std::vector<ConfigError>>(&r);
  ASSERT_NE(e, nullptr);
  EXPECT_NE((*e)[0].message.find("larger than 4 MiB"), std::string::npos);
}

}  // namespace
}  // namespace huginn::config::test

namespace huginn::config::test {
namespace {

TEST(ConfigErrors, ValuesInMessagesAreEscaped) {
  auto e = errors(std::string(kListen) + "[logging]\nlevel = \"a\\\"b\\\\c\\nd\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].message.find(R"(got "a\"b\\c\x0ad")"), std::string::npos) << e[0].message;
}

}  // namespace
}  // namespace huginn::config::test

namespace huginn::config::test {
namespace {

TEST(ConfigErrors, UnknownKeyNamesAreEscaped) {
  auto e = errors(std::string(kListen) + "\"a\\nb\" = 1\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].to_string(), R"(listen.a\x0ab: unknown key "a\x0ab" (config.toml:3:1))");
}

}  // namespace
}  // namespace huginn::config::test
