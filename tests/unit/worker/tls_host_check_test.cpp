// The 421 rules that tie a request's host to its TLS handshake (upstream §1.5).
#include "worker/proxy/tls_host_check.h"

#include <gtest/gtest.h>

namespace huginn::worker::proxy {
namespace {

config::Domain domain(std::optional<std::string> host, std::string cert, std::string ca = {}) {
  config::Domain d;
  d.host = std::move(host);
  d.cert_path = std::move(cert);
  d.key_path = d.cert_path.empty() ? "" : d.cert_path + ".key";
  d.client_ca_path = std::move(ca);
  return d;
}

struct TlsHostTest : ::testing::Test {
  TlsHostTest() {
    cfg.tls.emplace();
    cfg.tls->cert_path = "/default.pem";
    cfg.domains.push_back(domain("a.example.com", "/a.pem"));
    cfg.domains.push_back(domain("b.example.com", "/b.pem"));
    cfg.domains.push_back(domain("c.example.com", "/a.pem"));  // shares a's certificate file
    cfg.domains.push_back(domain("mtls.example.com", "/m.pem", "/ca.pem"));
    cfg.domains.push_back(domain("nocert.example.com", ""));  // served with the default certificate
  }
  const config::Domain* d(size_t i) const { return &cfg.domains[i]; }
  net::ClientInfo tls_client(std::string sni, const config::Domain* sni_domain) const {
    net::ClientInfo c;
    c.tls = true;
    c.sni = std::move(sni);
    c.sni_domain = sni_domain;
    c.cert_path = effective_cert_path(cfg, sni_domain);
    return c;
  }
  config::Config cfg;
};

TEST_F(TlsHostTest, EffectiveCertPath) {
  EXPECT_EQ(effective_cert_path(cfg, d(0)), "/a.pem");
  EXPECT_EQ(effective_cert_path(cfg, d(4)), "/default.pem");
  EXPECT_EQ(effective_cert_path(cfg, nullptr), "/default.pem");
  cfg.tls->cert_path.clear();
  cfg.domains.push_back(domain(std::nullopt, "/catchall.pem"));
  EXPECT_EQ(effective_cert_path(cfg, d(4)), "/catchall.pem");
}

TEST_F(TlsHostTest, SameDomainAndSameCertificateFileAreAllowed) {
  EXPECT_EQ(check_tls_host(cfg, tls_client("a.example.com", d(0)), d(0)), TlsHostVerdict::kAllowed);
  EXPECT_EQ(check_tls_host(cfg, tls_client("a.example.com", d(0)), d(2)), TlsHostVerdict::kAllowed);
}

TEST_F(TlsHostTest, OtherCertificateIsMisdirected) {
  EXPECT_EQ(check_tls_host(cfg, tls_client("a.example.com", d(0)), d(1)), TlsHostVerdict::kMisdirected);
  // Unknown SNI got the default certificate: a domain with its own cert is misdirected,
  // one that uses the default certificate is not.
  EXPECT_EQ(check_tls_host(cfg, tls_client("x.test", nullptr), d(1)), TlsHostVerdict::kMisdirected);
  EXPECT_EQ(check_tls_host(cfg, tls_client("x.test", nullptr), d(4)), TlsHostVerdict::kAllowed);
}

TEST_F(TlsHostTest, NoSniOrPlaintextOrUnknownHostIsAllowed) {
  EXPECT_EQ(check_tls_host(cfg, tls_client("", nullptr), d(1)), TlsHostVerdict::kAllowed);
  EXPECT_EQ(check_tls_host(cfg, net::ClientInfo{}, d(1)), TlsHostVerdict::kAllowed);
  EXPECT_EQ(check_tls_host(cfg, tls_client("a.example.com", d(0)), nullptr), TlsHostVerdict::kAllowed);
}

TEST_F(TlsHostTest, MutualTlsDomainNeedsItsOwnHandshake) {
  EXPECT_EQ(check_tls_host(cfg, tls_client("mtls.example.com", d(3)), d(3)), TlsHostVerdict::kAllowed);
  EXPECT_EQ(check_tls_host(cfg, net::ClientInfo{}, d(3)), TlsHostVerdict::kMtlsInconsistent);
  EXPECT_EQ(check_tls_host(cfg, tls_client("", nullptr), d(3)), TlsHostVerdict::kMtlsInconsistent);
  EXPECT_EQ(check_tls_host(cfg, tls_client("a.example.com", d(0)), d(3)), TlsHostVerdict::kMtlsInconsistent);
}

}  // namespace
}  // namespace huginn::worker::proxy
