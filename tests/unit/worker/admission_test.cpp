// The proxy's own answers to routed requests, in SPEC.md §4 order.
#include "worker/proxy/admission.h"

#include <gtest/gtest.h>

#include "worker/http1/writer.h"

namespace huginn::worker::proxy {
namespace {

struct AdmissionTest : ::testing::Test {
  AdmissionTest() {
    config::Backend b;
    b.address = "b:80";
    cfg.backends.push_back(b);
    config::Domain m;
    m.host = "mtls.test";
    m.cert_path = "/m.pem";
    m.client_ca_path = "/ca.pem";
    cfg.domains.push_back(m);
  }
  Router::Decision decision(Router::Outcome o, bool mtls_domain) const {
    Router::Decision d;
    d.outcome = o;
    if (o != Router::Outcome::kMisdirected) d.domain = mtls_domain ? &cfg.domains[0] : nullptr;
    if (o == Router::Outcome::kRouted) d.backend = &cfg.backends[0];
    return d;
  }
  config::Config cfg;
  net::ClientInfo plain;
};

TEST_F(AdmissionTest, EachOutcomeHasItsAnswer) {
  auto a = local_answer(cfg, plain, decision(Router::Outcome::kMisdirected, false));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 421);
  EXPECT_EQ(a->reason, http1::reason::kMisdirected);
  a = local_answer(cfg, plain, decision(Router::Outcome::kNoRoute, false));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 404);
  a = local_answer(cfg, plain, decision(Router::Outcome::kNoBackend, false));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 503);
  EXPECT_FALSE(local_answer(cfg, plain, decision(Router::Outcome::kRouted, false)));
}

TEST_F(AdmissionTest, MutualTlsRuleComesBeforeTheRouteLookup) {
  // A plaintext request for an mTLS domain is 421, even where no route matches.
  for (auto o : {Router::Outcome::kRouted, Router::Outcome::kNoRoute}) {
    auto a = local_answer(cfg, plain, decision(o, true));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 421);
    EXPECT_EQ(a->reason, http1::reason::kMtlsInconsistent);
  }
}

TEST_F(AdmissionTest, IpFilterAnswers403BeforeTheRouteLookup) {
  cfg.security.ip_filter.mode = config::IpFilter::Mode::kDenylist;
  cfg.security.ip_filter.denylist = {*huginn::net::Cidr::parse("192.0.2.0/24"),
                                     *huginn::net::Cidr::parse("2001:db8::/32")};
  const IpFilterSet filters(cfg);
  const Policies policies{&filters, nullptr};
  net::ClientInfo bad;
  bad.peer_ip = "192.0.2.9";
  net::ClientInfo bad6;
  bad6.peer_ip = "2001:db8::5";
  net::ClientInfo good;
  good.peer_ip = "198.51.100.1";
  for (auto o : {Router::Outcome::kRouted, Router::Outcome::kNoRoute, Router::Outcome::kNoBackend}) {
    for (const auto* c : {&bad, &bad6}) {
      auto a = local_answer(cfg, *c, decision(o, false), policies);
      ASSERT_TRUE(a);
      EXPECT_EQ(a->status, 403);
      EXPECT_EQ(a->reason, http1::reason::kIpBlocked);
    }
  }
  EXPECT_FALSE(local_answer(cfg, good, decision(Router::Outcome::kRouted, false), policies));
  // Without compiled filters (unit callers) nothing is checked.
  EXPECT_FALSE(local_answer(cfg, bad, decision(Router::Outcome::kRouted, false)));
  // 421 (no domain) still comes first.
  auto a = local_answer(cfg, bad, decision(Router::Outcome::kMisdirected, false), policies);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 421);
}

TEST_F(AdmissionTest, RequestContextCarriesTheClientFacts) {
  net::ClientInfo c;
  c.peer_ip = "192.0.2.7";
  c.local_port = 443;
  c.tls = true;
  c.fingerprints.set(ConnectionFingerprints::kJa4, "t13d");
  const auto d = decision(Router::Outcome::kRouted, false);
  const RequestContext rc = request_context(cfg, d, c, "h.test");
  EXPECT_EQ(rc.cfg, &cfg);
  EXPECT_EQ(rc.backend, d.backend);
  EXPECT_EQ(rc.fingerprints, &c.fingerprints);
  EXPECT_EQ(rc.peer_ip, "192.0.2.7");
  EXPECT_EQ(rc.local_port, 443);
  EXPECT_TRUE(rc.tls);
  EXPECT_EQ(rc.host, "h.test");
}

}  // namespace
}  // namespace huginn::worker::proxy
