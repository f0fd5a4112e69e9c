// Router and backend health (HEALTH from the supervisor's prober):
// round-robin skips down backends, all down is kUnhealthy, and the local
// answer for it is 502 upstream_unhealthy.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "worker/http1/writer.h"
#include "worker/proxy/admission.h"
#include "worker/proxy/router.h"

namespace huginn::worker::proxy {
namespace {

// Backends a, b, c (indexes 0, 1, 2) and "solo"; "/rr" is a group over a, b, c;
// "/solo" has one route; "/ghost" names a backend missing from the config.
config::Config make_config() {
  config::Config c;
  for (const char* a : {"a:80", "b:80", "c:80", "solo:80"}) {
    config::Backend b;
    b.address = a;
    c.backends.push_back(b);
  }
  config::Domain d;
  for (const auto& [prefix, backend] : std::vector<std::pair<std::string, std::string>>{
           {"/rr", "a:80"}, {"/rr", "b:80"}, {"/rr", "c:80"}, {"/solo", "solo:80"}, {"/ghost", "gone:80"}}) {
    config::Route r;
    r.prefix = prefix;
    r.backend = backend;
    d.routes.push_back(r);
  }
  c.domains.push_back(d);
  return c;
}

std::vector<std::string> picks(Router& r, const std::string& path, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    auto d = r.route("h", path);
    Router::forwarded(d);
    out.push_back(d.outcome == Router::Outcome::kRouted ? d.backend->address : "-");
  }
  return out;
}

TEST(RouterHealth, EveryBackendStartsHealthy) {
  const config::Config cfg = make_config();
  Router r(cfg);
  for (size_t i = 0; i < cfg.backends.size(); ++i) EXPECT_TRUE(r.healthy(i)) << i;
  EXPECT_EQ(picks(r, "/rr", 4), (std::vector<std::string>{"a:80", "b:80", "c:80", "a:80"}));
}

TEST(RouterHealth, RoundRobinSkipsDownBackends) {
  const config::Config cfg = make_config();
  Router r(cfg);
  ASSERT_TRUE(r.set_health(std::vector<uint8_t>{1, 0, 1, 1}));
  EXPECT_FALSE(r.healthy(1));
  EXPECT_EQ(picks(r, "/rr", 6), (std::vector<std::string>{"a:80", "c:80", "a:80", "c:80", "a:80", "c:80"}));
  // Only c up: every request goes to c.
  ASSERT_TRUE(r.set_health(std::vector<uint8_t>{0, 0, 1, 1}));
  EXPECT_EQ(picks(r, "/rr", 3), (std::vector<std::string>{"c:80", "c:80", "c:80"}));
  // Back up: all three are in rotation again.
  ASSERT_TRUE(r.set_health(std::vector<uint8_t>{1, 1, 1, 1}));
  auto all = picks(r, "/rr", 3);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<std::string>{"a:80", "b:80", "c:80"}));
}

TEST(RouterHealth, AllDownIsUnhealthyWithTheRouteSet) {
  const config::Config cfg = make_config();
  Router r(cfg);
  ASSERT_TRUE(r.set_health(std::vector<uint8_t>{0, 0, 0, 1}));
  auto d = r.route("h", "/rr/x");
  EXPECT_EQ(d.outcome, Router::Outcome::kUnhealthy);
  ASSERT_NE(d.route, nullptr);
  EXPECT_EQ(d.route->prefix, "/rr");
  EXPECT_EQ(d.backend, nullptr);
  // Other groups are not affected.
  EXPECT_EQ(r.route("h", "/solo").outcome, Router::Outcome::kRouted);
  ASSERT_TRUE(r.set_health(std::vector<uint8_t>{1, 1, 1, 0}));
  EXPECT_EQ(r.route("h", "/solo").outcome, Router::Outcome::kUnhealthy);
  EXPECT_EQ(r.route("h", "/rr").outcome, Router::Outcome::kRouted);
}

TEST(RouterHealth, MissingBackendStaysNoBackend) {
  const config::Config cfg = make_config();
  Router r(cfg);
  ASSERT_TRUE(r.set_health(std::vector<uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(r.route("h", "/ghost").outcome, Router::Outcome::kNoBackend);
}

TEST(RouterHealth, WrongCountIsRefusedAndChangesNothing) {
  const config::Config cfg = make_config();
  Router r(cfg);
  EXPECT_FALSE(r.set_health(std::vector<uint8_t>{0, 0, 0}));
  EXPECT_FALSE(r.set_health(std::vector<uint8_t>{0, 0, 0, 0, 0}));
  EXPECT_FALSE(r.set_health(std::vector<uint8_t>{}));
  for (size_t i = 0; i < cfg.backends.size(); ++i) EXPECT_TRUE(r.healthy(i)) << i;
}

TEST(RouterHealth, AllDownAnswers502UpstreamUnhealthy) {
  const config::Config cfg = make_config();
  Router r(cfg);
  ASSERT_TRUE(r.set_health(std::vector<uint8_t>{0, 0, 0, 0}));
  const net::ClientInfo client;
  auto answer = local_answer(cfg, client, r.route("h", "/rr"));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 502);
  EXPECT_EQ(answer->reason, "upstream_unhealthy");
  EXPECT_EQ(http1::error_parts(answer->reason, {}).body, R"({"error":"upstream_unhealthy"})");
}

}  // namespace
}  // namespace huginn::worker::proxy
