// Pure router tests: host normalisation, domain matching, prefixes, paths.
#include "worker/proxy/router.h"

#include <gtest/gtest.h>

#include <map>

namespace huginn::worker::proxy {
namespace {

config::Route route(std::string prefix, std::string backend,
                    std::optional<std::string> replace = std::nullopt) {
  config::Route r;
  r.prefix = std::move(prefix);
  r.backend = std::move(backend);
  r.replace_path = std::move(replace);
  return r;
}

config::Domain domain(std::optional<std::string> host, std::vector<config::Route> routes) {
  config::Domain d;
  d.host = std::move(host);
  d.routes = std::move(routes);
  return d;
}

config::Config make_config(bool with_catch_all) {
  config::Config c;
  for (const char* a : {"b1:80", "b2:80", "b3:80", "wild:80", "any:80"}) {
    config::Backend b;
    b.address = a;
    c.backends.push_back(b);
  }
  c.domains.push_back(domain(
      "api.example.com",
      {route("/", "b1:80"), route("/api", "b2:80"), route("/api/v2", "b3:80"), route("/strip", "b1:80", ""),
       route("/old", "b1:80", "/new"), route("/rr", "b1:80"), route("/rr", "b2:80"), route("/rr", "b3:80")}));
  c.domains.push_back(domain("*.example.com", {route("/", "wild:80")}));
  c.domains.push_back(domain("noroot.example.org", {route("/only", "b1:80")}));
  if (with_catch_all) c.domains.push_back(domain(std::nullopt, {route("/", "any:80")}));
  return c;
}

TEST(NormalizeHost, Table) {
  const std::vector<std::pair<std::string, std::optional<std::string>>> cases = {
      {"Example.COM", "example.com"},
      {"example.com:8080", "example.com"},
      {"example.com.", "example.com"},
      {"example.com.:80", "example.com"},
      {"[::1]:8080", "::1"},
      {"[2001:DB8::1]", "2001:db8::1"},
      {"user@host.example", "host.example"},
      {"", ""},
      {"bad host", std::nullopt},
      {"a/b", std::nullopt},
      {"[::1", std::nullopt},
      {"[::1]x", std::nullopt},
      {"host:80a", std::nullopt},
      {"[zz::1]", std::nullopt},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(normalize_host(in), want) << in;
}

TEST(NormalizePath, Table) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/", "/"},
      {"/a/b", "/a/b"},
      {"//a//b", "/a/b"},
      {"/a/./b", "/a/b"},
      {"/a/../b", "/b"},
      {"/../../a", "/a"},
      {"/a/b/..", "/a/"},
      {"/a/b/.", "/a/b/"},
      {"/a/", "/a/"},
      {"/%61pi", "/api"},
      {"/%2e%2e/admin", "/admin"},
      {"/a/%2E%2E/b", "/b"},
      {"/a%2fb", "/a%2Fb"},
      {"/%7e", "/~"},
      {"/%zz", "/%zz"},
      {"/%4", "/%4"},
      {"*", "*"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(normalize_path(in), want) << in;
}

TEST(PrefixMatches, Boundaries) {
  EXPECT_TRUE(prefix_matches("/api", "/api"));
  EXPECT_TRUE(prefix_matches("/api/x", "/api"));
  EXPECT_FALSE(prefix_matches("/api2", "/api"));
  EXPECT_FALSE(prefix_matches("/ap", "/api"));
  EXPECT_TRUE(prefix_matches("/anything", "/"));
  EXPECT_TRUE(prefix_matches("/api/x", "/api/"));
  EXPECT_TRUE(prefix_matches("/api/", "/api/"));
  EXPECT_FALSE(prefix_matches("/api", "/api/"));
}

TEST(ReplacePrefix, Table) {
  struct Case {
    const char* path;
    const char* prefix;
    const char* replacement;
    const char* want;
  };
  const Case cases[] = {
      {"/strip/users/123", "/strip", "", "/users/123"},
      {"/strip", "/strip", "", "/"},
      {"/old/data/file.txt", "/old", "/new", "/new/data/file.txt"},
      {"/v1/users", "/v1", "/api/v1", "/api/v1/users"},
      {"/foo", "/", "/api", "/api/foo"},
      {"/v1/users", "/v1", "/v2/", "/v2/users"},
      {"/api/x", "/api/", "/v2", "/v2/x"},
      {"/api", "/api", "/v2", "/v2"},
      {"/a", "/a", "rel", "/rel"},
  };
  for (const auto& c : cases) EXPECT_EQ(replace_prefix(c.path, c.prefix, c.replacement), c.want) << c.path;
}

TEST(SplitTarget, Forms) {
  auto o = split_target("/p/q?x=1");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->path, "/p/q");
  EXPECT_EQ(o->query, "?x=1");
  EXPECT_FALSE(o->absolute);
  auto a = split_target("http://Host.Example:81/p?q");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->absolute);
  EXPECT_EQ(a->authority, "Host.Example:81");
  EXPECT_EQ(a->path, "/p");
  EXPECT_EQ(a->query, "?q");
  auto e = split_target("http://h");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->path, "/");
  EXPECT_TRUE(split_target("*"));
  EXPECT_FALSE(split_target("p"));
  EXPECT_FALSE(split_target("://x/"));
  EXPECT_FALSE(split_target("1http://x/"));
}

struct RouteCase {
  std::string host;
  std::string target;
  Router::Outcome outcome;
  std::string backend;          // when routed
  std::string upstream_target;  // when routed
};

TEST(Router, TableWithCatchAll) {
  const config::Config cfg = make_config(true);
  Router r(cfg);
  using O = Router::Outcome;
  const std::vector<RouteCase> cases = {
      {"api.example.com", "/", O::kRouted, "b1:80", "/"},
      {"api.example.com", "/api", O::kRouted, "b2:80", "/api"},
      {"api.example.com", "/api/users?x=1", O::kRouted, "b2:80", "/api/users?x=1"},
      {"api.example.com", "/api2", O::kRouted, "b1:80", "/api2"},
      {"api.example.com", "/api/v2/x", O::kRouted, "b3:80", "/api/v2/x"},
      {"api.example.com", "/api/v20", O::kRouted, "b2:80", "/api/v20"},
      // normalisation picks the route; the client's bytes are forwarded
      {"api.example.com", "//api//v2/./x", O::kRouted, "b3:80", "//api//v2/./x"},
      {"api.example.com", "/x/../api/v2", O::kRouted, "b3:80", "/x/../api/v2"},
      {"api.example.com", "/%61pi/v2", O::kRouted, "b3:80", "/%61pi/v2"},
      {"api.example.com", "/strip/users/1?q", O::kRouted, "b1:80", "/users/1?q"},
      {"api.example.com", "/strip", O::kRouted, "b1:80", "/"},
      {"api.example.com", "//strip//a", O::kRouted, "b1:80", "/a"},
      {"api.example.com", "/old/data/file.txt", O::kRouted, "b1:80", "/new/data/file.txt"},
      {"api.example.com", "http://api.example.com/api/z?k", O::kRouted, "b2:80", "/api/z?k"},
      {"a.example.com", "/x", O::kRouted, "wild:80", "/x"},
      {"a.b.example.com", "/x", O::kRouted, "any:80", "/x"},
      {"example.com", "/x", O::kRouted, "any:80", "/x"},
      {"other.test", "/x", O::kRouted, "any:80", "/x"},
      {"", "/x", O::kRouted, "any:80", "/x"},
      {"noroot.example.org", "/only/a", O::kRouted, "b1:80", "/only/a"},
      {"noroot.example.org", "/other", O::kNoRoute, "", ""},
      {"noroot.example.org", "*", O::kNoRoute, "", ""},
  };
  for (const auto& c : cases) {
    auto d = r.route(c.host, c.target);
    EXPECT_EQ(d.outcome, c.outcome) << c.host << " " << c.target;
    if (c.outcome != O::kRouted || d.outcome != O::kRouted) continue;
    EXPECT_EQ(d.backend->address, c.backend) << c.host << " " << c.target;
    EXPECT_EQ(d.upstream_target, c.upstream_target) << c.host << " " << c.target;
  }
}

TEST(Router, NoCatchAllIsMisdirected) {
  const config::Config cfg = make_config(false);
  Router r(cfg);
  EXPECT_EQ(r.route("other.test", "/").outcome, Router::Outcome::kMisdirected);
  EXPECT_EQ(r.route("a.b.example.com", "/").outcome, Router::Outcome::kMisdirected);
  EXPECT_EQ(r.route("example.com", "/").outcome, Router::Outcome::kMisdirected);
  EXPECT_EQ(r.route("", "/").outcome, Router::Outcome::kMisdirected);
  EXPECT_EQ(r.route("x.example.com", "/").outcome, Router::Outcome::kRouted);
}

TEST(Router, NoDomainsAtAll) {
  config::Config cfg;
  Router r(cfg);
  EXPECT_EQ(r.route("a", "/").outcome, Router::Outcome::kMisdirected);
}

TEST(Router, RoundRobinWithinGroup) {
  const config::Config cfg = make_config(true);
  Router r(cfg);
  std::vector<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    auto d = r.route("api.example.com", "/rr/x");
    Router::forwarded(d);
    seen.push_back(d.backend->address);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"b1:80", "b2:80", "b3:80", "b1:80", "b2:80", "b3:80"}));
  // Other groups do not advance it.
  Router::forwarded(r.route("api.example.com", "/api"));
  EXPECT_EQ(r.route("api.example.com", "/rr").backend->address, "b1:80");
}

TEST(Router, RequestsAnsweredLocallyDoNotTakeATurn) {
  // A rate limit that rejects every other request: the forwarded ones still
  // alternate between the backends instead of all going to the same one.
  const config::Config cfg = make_config(true);
  Router r(cfg);
  std::vector<std::string> sent;
  for (int i = 0; i < 6; ++i) {
    auto d = r.route("api.example.com", "/rr/x");
    ASSERT_EQ(d.outcome, Router::Outcome::kRouted);
    if (i % 2 == 1) continue;  // answered by the proxy (429): not forwarded
    Router::forwarded(d);
    sent.push_back(d.backend->address);
  }
  EXPECT_EQ(sent, (std::vector<std::string>{"b1:80", "b2:80", "b3:80"}));
}

TEST(Router, RouteWithoutBackendPassesItsTurnAtOnce) {
  config::Config cfg;
  config::Backend b;
  b.address = "b1:80";
  cfg.backends.push_back(b);
  cfg.domains.push_back(domain(std::nullopt, {route("/", "missing:80"), route("/", "b1:80")}));
  Router r(cfg);
  EXPECT_EQ(r.route("x", "/").outcome, Router::Outcome::kNoBackend);
  auto d = r.route("x", "/");
  ASSERT_EQ(d.outcome, Router::Outcome::kRouted);
  EXPECT_EQ(d.backend->address, "b1:80");
}

TEST(Router, UnknownBackendIsNoBackend) {
  config::Config cfg;
  cfg.domains.push_back(domain(std::nullopt, {route("/", "missing:80")}));
  Router r(cfg);
  EXPECT_EQ(r.route("x", "/").outcome, Router::Outcome::kNoBackend);
}

}  // namespace
}  // namespace huginn::worker::proxy
