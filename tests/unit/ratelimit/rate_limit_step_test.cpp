// The rate-limit step of local_answer(): scope, keys per strategy, 429.
#include <gtest/gtest.h>

#include "common/hoststate/region.h"
#include "worker/http1/writer.h"
#include "worker/proxy/admission.h"
#include "worker/proxy/rate_limit.h"

namespace huginn::worker::proxy {
namespace {

constexpr uint64_t kNow = 5000ULL * 1000000000ULL;

struct RateLimitStep : ::testing::Test {
  RateLimitStep() {
    config::Backend b;
    b.address = "b:80";
    cfg.backends.push_back(b);
    config::Domain d;
    d.host = "example.test";
    config::Route api;
    api.prefix = "/api";
    api.backend = "b:80";
    config::Route web;
    web.prefix = "/";
    web.backend = "b:80";
    d.routes = {api, web};
    cfg.domains.push_back(d);
    std::string err;
    region = hoststate::Region::create(&err);
    EXPECT_TRUE(region) << err;
  }
  Router::Decision routed(size_t route) const {
    Router::Decision d;
    d.outcome = Router::Outcome::kRouted;
    d.domain = &cfg.domains[0];
    d.route = &cfg.domains[0].routes[route];
    d.backend = &cfg.backends[0];
    return d;
  }
  std::optional<LocalAnswer> ask(const Router::Decision& d, const http1::Headers& h, const std::string& peer,
                                 uint64_t now = kNow) {
    net::ClientInfo c;
    c.peer_ip = peer;
    Policies p;
    p.host_state = region.get();
    p.headers = &h;
    p.now_ns = now;
    return local_answer(cfg, c, d, p);
  }
  int allowed(const Router::Decision& d, const http1::Headers& h, const std::string& peer, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) ok += ask(d, h, peer) ? 0 : 1;
    return ok;
  }
  config::Config cfg;
  std::unique_ptr<hoststate::Region> region;
};

config::RateLimit limit(uint32_t rps, uint32_t burst, config::RateLimit::LimitBy by,
                        std::string header = {}) {
  config::RateLimit r;
  r.enabled = true;
  r.requests_per_second = rps;
  r.burst = burst;
  r.limit_by = by;
  r.limit_by_header = std::move(header);
  return r;
}

TEST_F(RateLimitStep, DisabledByDefault) { EXPECT_EQ(allowed(routed(0), {}, "192.0.2.1", 100), 100); }

TEST_F(RateLimitStep, GlobalPerIpWith429Headers) {
  cfg.security.rate_limit = limit(1, 3, config::RateLimit::LimitBy::kIp);
  EXPECT_EQ(allowed(routed(0), {}, "192.0.2.1", 3), 3);
  auto a = ask(routed(0), {}, "192.0.2.1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 429);
  EXPECT_EQ(a->reason, http1::reason::kTooManyRequests);
  ASSERT_EQ(a->headers.size(), 4u);
  EXPECT_EQ(a->headers[0].name, "Retry-After");
  EXPECT_EQ(a->headers[0].value, "1");
  EXPECT_EQ(a->headers[1].name, "RateLimit-Limit");
  EXPECT_EQ(a->headers[1].value, "3");
  EXPECT_EQ(a->headers[2].name, "RateLimit-Remaining");
  EXPECT_EQ(a->headers[2].value, "0");
  EXPECT_EQ(a->headers[3].name, "RateLimit-Reset");
  EXPECT_EQ(a->headers[3].value, "3");
  // The global block's per-ip bucket covers every route; another client has its own.
  auto other_route = ask(routed(1), {}, "192.0.2.1");
  ASSERT_TRUE(other_route);
  EXPECT_EQ(other_route->status, 429);
  EXPECT_FALSE(ask(routed(1), {}, "192.0.2.2"));
}

TEST_F(RateLimitStep, RouteBlockOverridesAndDisables) {
  cfg.security.rate_limit = limit(1, 1, config::RateLimit::LimitBy::kIp);
  config::RateLimit off;
  off.enabled = false;
  cfg.domains[0].routes[1].security.rate_limit = off;
  cfg.domains[0].routes[0].security.rate_limit = limit(1, 2, config::RateLimit::LimitBy::kIp);
  EXPECT_EQ(allowed(routed(0), {}, "192.0.2.1", 5), 2);
  EXPECT_EQ(allowed(routed(1), {}, "192.0.2.1", 5), 5);  // enabled = false there
}

TEST_F(RateLimitStep, DomainBlockAppliesToItsRoutes) {
  cfg.domains[0].security.rate_limit = limit(1, 2, config::RateLimit::LimitBy::kIp);
  EXPECT_EQ(allowed(routed(0), {}, "192.0.2.1", 5), 2);
  EXPECT_EQ(allowed(routed(1), {}, "192.0.2.1", 5), 0);  // one domain-scope bucket per client
}

TEST_F(RateLimitStep, HeaderStrategyFallsBackToTheClientIp) {
  cfg.security.rate_limit = limit(1, 2, config::RateLimit::LimitBy::kHeader, "x-api-key");
  const http1::Headers a{{"X-Api-Key", "alpha"}}, b{{"x-api-key", "beta"}}, none{};
  EXPECT_EQ(allowed(routed(0), a, "192.0.2.1", 5), 2);
  EXPECT_EQ(allowed(routed(0), a, "192.0.2.2", 5), 0);  // same key from elsewhere: same bucket
  EXPECT_EQ(allowed(routed(0), b, "192.0.2.1", 5), 2);
  EXPECT_EQ(allowed(routed(0), none, "192.0.2.1", 5), 2);  // by address, apart from header values
  EXPECT_EQ(allowed(routed(0), none, "192.0.2.3", 5), 2);
}

TEST_F(RateLimitStep, RouteStrategySharesOneBucket) {
  cfg.security.rate_limit = limit(1, 3, config::RateLimit::LimitBy::kRoute);
  EXPECT_EQ(allowed(routed(0), {}, "192.0.2.1", 2), 2);
  EXPECT_EQ(allowed(routed(0), {}, "192.0.2.2", 5), 1);
  EXPECT_EQ(allowed(routed(1), {}, "192.0.2.2", 5), 3);  // another route, another bucket
}

TEST_F(RateLimitStep, CombinedIsIpAndHeader) {
  cfg.security.rate_limit = limit(1, 2, config::RateLimit::LimitBy::kCombined, "x-user");
  const http1::Headers u1{{"X-User", "u1"}}, u2{{"X-User", "u2"}};
  EXPECT_EQ(allowed(routed(0), u1, "192.0.2.1", 5), 2);
  EXPECT_EQ(allowed(routed(0), u2, "192.0.2.1", 5), 2);
  EXPECT_EQ(allowed(routed(0), u1, "192.0.2.2", 5), 2);
}

TEST_F(RateLimitStep, XffFromAnUntrustedPeerDoesNotBypass) {
  cfg.security.rate_limit = limit(1, 2, config::RateLimit::LimitBy::kIp);
  int ok = 0;
  for (int i = 0; i < 10; ++i) {
    const http1::Headers h{{"X-Forwarded-For", "198.51.100." + std::to_string(i)}};
    ok += ask(routed(0), h, "192.0.2.1") ? 0 : 1;
  }
  EXPECT_EQ(ok, 2);
  // Through a trusted proxy, the forwarded address is the client.
  cfg.security.trusted_proxies.cidrs.push_back(*huginn::net::Cidr::parse("10.0.0.0/8"));
  const http1::Headers c1{{"X-Forwarded-For", "198.51.100.1"}}, c2{{"X-Forwarded-For", "198.51.100.2"}};
  EXPECT_EQ(allowed(routed(0), c1, "10.0.0.1", 5), 2);
  EXPECT_EQ(allowed(routed(0), c2, "10.0.0.1", 5), 2);
}

TEST_F(RateLimitStep, NewNumbersStartFreshBuckets) {
  cfg.security.rate_limit = limit(1, 2, config::RateLimit::LimitBy::kIp);
  EXPECT_EQ(allowed(routed(0), {}, "192.0.2.1", 5), 2);
  cfg.security.rate_limit = limit(1, 3, config::RateLimit::LimitBy::kIp);  // a reload with another burst
  EXPECT_EQ(allowed(routed(0), {}, "192.0.2.1", 5), 3);
  cfg.security.rate_limit =
      limit(1, 2, config::RateLimit::LimitBy::kIp);  // back: the old bucket, still empty
  EXPECT_EQ(allowed(routed(0), {}, "192.0.2.1", 5), 0);
}

TEST_F(RateLimitStep, OrderAfterRouteBeforeBackend) {
  cfg.security.rate_limit = limit(1, 1, config::RateLimit::LimitBy::kIp);
  Router::Decision no_route;
  no_route.outcome = Router::Outcome::kNoRoute;
  no_route.domain = &cfg.domains[0];
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ask(no_route, {}, "192.0.2.1")->status, 404);
  Router::Decision no_backend = routed(0);
  no_backend.outcome = Router::Outcome::kNoBackend;
  no_backend.backend = nullptr;
  EXPECT_EQ(ask(no_backend, {}, "192.0.2.1")->status, 503);  // took the one token
  EXPECT_EQ(ask(no_backend, {}, "192.0.2.1")->status, 429);  // checked before the backend choice
}

}  // namespace
}  // namespace huginn::worker::proxy
