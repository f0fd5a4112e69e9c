// worker/tls: ContextSet (certificates, SNI, mTLS, ALPN, versions, ciphers,
// groups, tickets) and Acceptor (ClientHello capture, JA4, handshake,
// hand-over to bufferevent_openssl), against a real OpenSSL client over TCP.
#include <event2/bufferevent_ssl.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <filesystem>

#include "common/fingerprint/clienthello.h"
#include "common/fingerprint/ja4.h"
#include "tests/support/test_certs.h"
#include "tests/unit/tls/tls_test_util.h"
#include "worker/tls/held_output.h"

namespace huginn::worker::tls::test {
namespace {

using huginn::test::PemFiles;
using huginn::test::TestPki;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TestPki();
    localhost_ = pki_->server("localhost", {"localhost", "127.0.0.1"});
    exact_ = pki_->server("exact", {"a.example.com"});
    wildcard_ = pki_->server("wildcard", {"*.example.com"});
    dflt_ = pki_->server("default", {"default.test"});
    shared_ = pki_->server("shared", {"open.example.org", "secure.example.org"});
    chained_ = pki_->server("chained", {"chain.example.net"}, /*via_intermediate=*/true);
    alice_ = pki_->client("alice", "alice");
    mallory_ = pki_->client("mallory", "mallory", /*from_other_ca=*/true);
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  // [tls] default = localhost certificate.
  static std::shared_ptr<config::Config> simple_config() {
    auto cfg = tls_config();
    cfg->tls->cert_path = localhost_.cert_path;
    cfg->tls->key_path = localhost_.key_path;
    return cfg;
  }
  static std::shared_ptr<const ContextSet> build(std::shared_ptr<config::Config> cfg,
                                                 std::vector<huginn::tls::TicketKey> keys = {
                                                     random_ticket_key()}) {
    auto b = bundle_for(*cfg, std::move(keys));
    return build_or_die(cfg, b);
  }
  static ClientOptions client(const std::string& sni = "localhost") {
    ClientOptions o;
    o.sni = sni;
    o.ca_path = pki_->ca().cert_path;
    o.alpn = {"h2", "http/1.1"};
    return o;
  }

  static TestPki* pki_;
  static PemFiles localhost_, exact_, wildcard_, dflt_, shared_, chained_, alice_, mallory_;
};

TestPki* TlsTest::pki_ = nullptr;
PemFiles TlsTest::localhost_, TlsTest::exact_, TlsTest::wildcard_, TlsTest::dflt_, TlsTest::shared_,
    TlsTest::chained_, TlsTest::alice_, TlsTest::mallory_;

void expect_ja4_of(const ClientResult& r, const net::ClientInfo& info) {
  const fp::ClientHelloParse p = fp::parse_client_hello(r.first_flight.data(), r.first_flight.size());
  ASSERT_EQ(p.status, fp::ClientHelloParse::Status::kOk) << p.error;
  const fp::Ja4Set j = fp::compute_ja4(p.hello);
  using K = proxy::ConnectionFingerprints;
  ASSERT_TRUE(info.fingerprints.has(K::kJa4));
  EXPECT_EQ(info.fingerprints.get(K::kJa4), j.ja4);
  EXPECT_EQ(info.fingerprints.get(K::kJa4R), j.ja4_r);
  EXPECT_EQ(info.fingerprints.get(K::kJa4O), j.ja4_o);
  EXPECT_EQ(info.fingerprints.get(K::kJa4Or), j.ja4_or);
}

// ------------------------------------------------------------ basics

TEST_F(TlsTest, HandshakeFillsClientInfoAndJa4) {
  auto cfg = simple_config();
  TestServer srv(build(cfg));
  const ClientResult r = connect_and_run(srv, client());
  ASSERT_TRUE(r.handshake_ok) << r.error;
  EXPECT_TRUE(r.greeting_ok) << r.error;
  ServerConn* c = srv.last();
  ASSERT_TRUE(c->done) << c->reason;
  EXPECT_TRUE(c->info.tls);
  EXPECT_EQ(c->info.peer_ip, "127.0.0.1");  // passed through
  EXPECT_EQ(c->info.sni, "localhost");
  EXPECT_EQ(c->info.sni_domain, nullptr);
  EXPECT_EQ(c->info.cert_path, localhost_.cert_path);
  EXPECT_EQ(c->info.alpn, "h2");
  EXPECT_EQ(c->info.tls_version, "TLSv1.3");
  EXPECT_EQ(c->info.tls_version, r.version);
  EXPECT_EQ(c->info.cipher, r.cipher);
  EXPECT_TRUE(c->info.client_subject.empty());
  expect_ja4_of(r, c->info);
  EXPECT_EQ(c->info.fingerprints.get(proxy::ConnectionFingerprints::kJa4).value_or("").substr(0, 4), "t13d");
}

TEST_F(TlsTest, Ja4OnlyWhenAsked) {
  AcceptOptions opts;
  opts.compute_ja4 = false;
  TestServer srv(build(simple_config()), opts);
  const ClientResult r = connect_and_run(srv, client());
  ASSERT_TRUE(r.handshake_ok) << r.error;
  ASSERT_TRUE(srv.last()->done);
  EXPECT_FALSE(srv.last()->info.fingerprints.has(proxy::ConnectionFingerprints::kJa4));
  EXPECT_FALSE(srv.last()->info.fingerprints.has(proxy::ConnectionFingerprints::kJa4Or));
}

TEST_F(TlsTest, ClientHelloOneBytePerSegment) {
  TestServer srv(build(simple_config()));
  ClientOptions o = client();
  o.chunk = 1;
  const ClientResult r = connect_and_run(srv, o);
  ASSERT_TRUE(r.handshake_ok) << r.error;
  ASSERT_TRUE(srv.last()->done) << srv.last()->reason;
  expect_ja4_of(r, srv.last()->info);
}

TEST_F(TlsTest, InitialBytesFromCaller) {
  auto set = build(simple_config());
  for (size_t n : {1, 5, 40, 100000}) {  // 100000: the whole hello (and the acceptor reads nothing itself)
    SCOPED_TRACE(n);
    TestServer srv(set);
    srv.pre_read = n;
    ClientOptions o = client();
    const ClientResult r = connect_and_run(srv, o);
    ASSERT_TRUE(r.greeting_ok) << r.error;
    ASSERT_TRUE(srv.last()->done) << srv.last()->reason;
    expect_ja4_of(r, srv.last()->info);
  }
}

TEST_F(TlsTest, FullChainFromPem) {
  auto cfg = tls_config();
  add_domain(*cfg, "chain.example.net", chained_);
  TestServer srv(build(cfg));
  const ClientResult r = connect_and_run(srv, client("chain.example.net"));  // trusts the root only
  ASSERT_TRUE(r.handshake_ok) << r.error;
  EXPECT_EQ(r.peer_cn, "chain.example.net");
}

TEST_F(TlsTest, MultiKeyPemPicksMatchingKey) {
  auto cfg = tls_config();
  const std::string keys =
      pki_->write_file("multi.key", exact_.key_pem + localhost_.key_pem + wildcard_.key_pem);
  cfg->tls->cert_path = localhost_.cert_path;
  cfg->tls->key_path = keys;
  TestServer srv(build(cfg));
  const ClientResult r = connect_and_run(srv, client());
  ASSERT_TRUE(r.handshake_ok) << r.error;
  EXPECT_EQ(r.peer_cn, "localhost");
}

TEST_F(TlsTest, CombinedCertificateAndKeysInOneFile) {
  auto cfg = tls_config();
  const std::string both =
      pki_->write_file("combined.pem", localhost_.cert_pem + exact_.key_pem + localhost_.key_pem);
  cfg->tls->cert_path = both;
  cfg->tls->key_path = both;
  TestServer srv(build(cfg));
  const ClientResult r = connect_and_run(srv, client());
  ASSERT_TRUE(r.handshake_ok) << r.error;
  EXPECT_EQ(r.peer_cn, "localhost");
}

TEST_F(TlsTest, BuildErrors) {
  std::string err;
  {
    auto cfg = tls_config();
    cfg->tls->cert_path = localhost_.cert_path;
    cfg->tls->key_path = exact_.key_path;  // wrong key
    EXPECT_EQ(ContextSet::build(cfg, bundle_for(*cfg, {}), &err), nullptr);
    EXPECT_NE(err.find("no private key matching"), std::string::npos) << err;
  }
  {
    auto cfg = simple_config();
    auto b = std::make_shared<huginn::tls::Bundle>();  // files missing
    EXPECT_EQ(ContextSet::build(cfg, b, &err), nullptr);
    EXPECT_NE(err.find("not in the TLS material bundle"), std::string::npos) << err;
  }
  {
    auto cfg = simple_config();
    auto b = std::make_shared<huginn::tls::Bundle>(*bundle_for(*cfg, {}));
    b->files[0].pem = "garbage";
    EXPECT_EQ(ContextSet::build(cfg, b, &err), nullptr);
  }
  {
    auto cfg = simple_config();
    cfg->tls->options.cipher_suites = {"NOT_A_CIPHER"};
    EXPECT_EQ(ContextSet::build(cfg, bundle_for(*cfg, {}), &err), nullptr);
    EXPECT_NE(err.find("cipher_suites"), std::string::npos) << err;
  }
  {
    auto cfg = simple_config();
    cfg->tls->options.curve_preferences = {"nosuchcurve"};
    EXPECT_EQ(ContextSet::build(cfg, bundle_for(*cfg, {}), &err), nullptr);
    EXPECT_NE(err.find("curve_preferences"), std::string::npos) << err;
  }
  {
    auto cfg = simple_config();
    cfg->tls->options.min_version = "1.3";
    cfg->tls->options.max_version = "1.2";
    EXPECT_EQ(ContextSet::build(cfg, bundle_for(*cfg, {}), &err), nullptr);
  }
}

// ------------------------------------------------------------ SNI

TEST_F(TlsTest, SniSelectsExactWildcardDefault) {
  auto cfg = tls_config();
  add_domain(*cfg, "a.example.com", exact_);
  add_domain(*cfg, "*.example.com", wildcard_);
  add_domain(*cfg, std::nullopt, dflt_);  // catch-all: the default certificate
  auto set = build(cfg);
  const config::Domain* exact = &cfg->domains[0];
  const config::Domain* wild = &cfg->domains[1];
  const config::Domain* catch_all = &cfg->domains[2];
  struct Case {
    std::string sni;
    std::string cn;
    const config::Domain* domain;
  } cases[] = {
      {"a.example.com", "a.example.com", exact},
      {"A.Example.COM.", "a.example.com", exact},  // case and trailing dot
      {"b.example.com", "*.example.com", wild},
      {"x.b.example.com", "default.test", catch_all},  // one label only
      {"example.com", "default.test", catch_all},      // not the apex
      {"unknown.test", "default.test", catch_all},
      {"", "default.test", catch_all},  // no SNI
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.sni);
    TestServer srv(set);
    ClientOptions o = client(tc.sni);
    o.ca_path.clear();  // names do not all match the certificates
    const ClientResult r = connect_and_run(srv, o);
    ASSERT_TRUE(r.handshake_ok) << r.error;
    EXPECT_EQ(r.peer_cn, tc.cn);
    ASSERT_TRUE(srv.last()->done);
    EXPECT_EQ(srv.last()->info.sni_domain, tc.domain);
    EXPECT_EQ(srv.last()->info.cert_path, tc.domain->cert_path);
  }
}

TEST_F(TlsTest, NoDefaultCertificateRejectsUnknownSni) {
  auto cfg = tls_config();
  add_domain(*cfg, "a.example.com", exact_);
  auto set = build(cfg);
  for (const std::string sni : {"b.example.com", ""}) {
    SCOPED_TRACE(sni);
    TestServer srv(set);
    const ClientResult r = connect_and_run(srv, client(sni));
    EXPECT_FALSE(r.handshake_ok);
    EXPECT_EQ(r.ssl_reason, static_cast<unsigned long>(SSL_R_TLSV1_UNRECOGNIZED_NAME)) << r.error;
    ASSERT_TRUE(srv.last()->failed);
    EXPECT_NE(srv.last()->reason.find("SNI"), std::string::npos) << srv.last()->reason;
  }
}

TEST_F(TlsTest, SniStrict) {
  auto cfg = simple_config();  // has a default certificate
  add_domain(*cfg, "a.example.com", exact_);
  cfg->tls->options.sni_strict = true;
  auto set = build(cfg);
  {
    TestServer srv(set);
    const ClientResult r = connect_and_run(srv, client("a.example.com"));
    ASSERT_TRUE(r.handshake_ok) << r.error;
    EXPECT_EQ(r.peer_cn, "a.example.com");
  }
  for (const std::string sni : {"localhost", ""}) {  // the default's own name is not a domain
    SCOPED_TRACE(sni);
    TestServer srv(set);
    const ClientResult r = connect_and_run(srv, client(sni));
    EXPECT_FALSE(r.handshake_ok);
    EXPECT_EQ(r.ssl_reason, static_cast<unsigned long>(SSL_R_TLSV1_UNRECOGNIZED_NAME)) << r.error;
    EXPECT_TRUE(srv.last()->failed);
  }
}

// ------------------------------------------------------------ ALPN

TEST_F(TlsTest, AlpnServerPreference) {
  auto set = build(simple_config());  // ["h2", "http/1.1"]
  struct Case {
    std::vector<std::string> offered;
    std::string expect;
  } cases[] = {
      {{"h2", "http/1.1"}, "h2"},
      {{"http/1.1", "h2"}, "h2"},  // ours first
      {{"http/1.1"}, "http/1.1"},
      {{"spdy/3", "foo"}, ""},  // no overlap: no ALPN, not a failure
      {{}, ""},
  };
  for (const auto& tc : cases) {
    TestServer srv(set);
    ClientOptions o = client();
    o.alpn = tc.offered;
    const ClientResult r = connect_and_run(srv, o);
    ASSERT_TRUE(r.handshake_ok) << r.error;
    EXPECT_EQ(r.alpn, tc.expect);
    ASSERT_TRUE(srv.last()->done);
    EXPECT_EQ(srv.last()->info.alpn, tc.expect);
  }
  auto cfg = simple_config();
  cfg->tls->alpn = {"http/1.1"};
  TestServer srv(build(cfg));
  const ClientResult r = connect_and_run(srv, client());
  ASSERT_TRUE(r.handshake_ok) << r.error;
  EXPECT_EQ(srv.last()->info.alpn, "http/1.1");
}

// ------------------------------------------------------------ versions, ciphers, groups

TEST_F(TlsTest, Tls12Only) {
  auto cfg = simple_config();
  cfg->tls->options.versions = {"1.2"};
  auto set = build(cfg);
  {
    TestServer srv(set);
    const ClientResult r = connect_and_run(srv, client());
    ASSERT_TRUE(r.handshake_ok) << r.error;
    EXPECT_EQ(r.version, "TLSv1.2");
    EXPECT_EQ(srv.last()->info.tls_version, "TLSv1.2");
    expect_ja4_of(r, srv.last()->info);
  }
  {
    TestServer srv(set);
    ClientOptions o = client();
    o.min_version = TLS1_3_VERSION;
    const ClientResult r = connect_and_run(srv, o);
    EXPECT_FALSE(r.handshake_ok);
    EXPECT_TRUE(srv.last()->failed);
  }
}

TEST_F(TlsTest, Tls13Only) {
  auto cfg = simple_config();
  cfg->tls->options.min_version = "1.3";
  auto set = build(cfg);
  {
    TestServer srv(set);
    const ClientResult r = connect_and_run(srv, client());
    ASSERT_TRUE(r.handshake_ok) << r.error;
    EXPECT_EQ(srv.last()->info.tls_version, "TLSv1.3");
  }
  {
    TestServer srv(set);
    ClientOptions o = client();
    o.max_version = TLS1_2_VERSION;
    const ClientResult r = connect_and_run(srv, o);
    EXPECT_FALSE(r.handshake_ok);
    EXPECT_TRUE(srv.last()->failed);
  }
}

TEST_F(TlsTest, CipherSuitesAndGroups) {
  auto cfg = simple_config();
  cfg->tls->options.cipher_suites = {"TLS13_AES_256_GCM_SHA384",
                                     "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                                     "ECDHE-ECDSA-AES128-GCM-SHA256"};
  cfg->tls->options.curve_preferences = {"secp384r1"};  // the client's key share is X25519: HelloRetryRequest
  auto set = build(cfg);
  {
    TestServer srv(set);
    const ClientResult r = connect_and_run(srv, client());
    ASSERT_TRUE(r.handshake_ok) << r.error;
    EXPECT_EQ(r.cipher, "TLS_AES_256_GCM_SHA384");
    EXPECT_EQ(r.group_nid, NID_secp384r1);
    EXPECT_EQ(srv.last()->info.cipher, "TLS_AES_256_GCM_SHA384");
  }
  {
    TestServer srv(set);
    ClientOptions o = client();
    o.max_version = TLS1_2_VERSION;
    const ClientResult r = connect_and_run(srv, o);
    ASSERT_TRUE(r.handshake_ok) << r.error;
    EXPECT_EQ(r.cipher, "ECDHE-ECDSA-CHACHA20-POLY1305");  // server preference
  }
  {
    TestServer srv(set);
    ClientOptions o = client();
    o.ciphersuites = "TLS_AES_128_GCM_SHA256";  // not configured
    const ClientResult r = connect_and_run(srv, o);
    EXPECT_FALSE(r.handshake_ok);
    EXPECT_TRUE(srv.last()->failed);
  }
}

// ------------------------------------------------------------ mTLS

class MtlsTest : public TlsTest {
 protected:
  // open.example.org and secure.example.org share one certificate file;
  // secure requires a client certificate from the test root CA.
  std::shared_ptr<config::Config> cfg_ = [] {
    auto cfg = tls_config();
    add_domain(*cfg, "open.example.org", shared_);
    add_domain(*cfg, "secure.example.org", shared_, pki_->ca().cert_path);
    return cfg;
  }();
};

TEST_F(MtlsTest, GoodClientCertificate) {
  auto set = build(cfg_);
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    TestServer srv(set);
    ClientOptions o = client("secure.example.org");
    o.max_version = max;
    o.cert_path = alice_.cert_path;
    o.key_path = alice_.key_path;
    const ClientResult r = connect_and_run(srv, o);
    ASSERT_TRUE(r.handshake_ok) << r.error;
    EXPECT_TRUE(r.greeting_ok) << r.error;
    ASSERT_TRUE(srv.last()->done) << srv.last()->reason;
    EXPECT_EQ(srv.last()->info.client_subject, "CN=alice,O=huginn test");
    EXPECT_EQ(srv.last()->info.sni_domain, &cfg_->domains[1]);
    ASSERT_EQ(r.ca_names.size(), 1u);  // CA names sent
    EXPECT_NE(r.ca_names[0].find("huginn test root CA"), std::string::npos);
  }
}

TEST_F(MtlsTest, MissingOrForeignClientCertificateFails) {
  auto set = build(cfg_);
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    for (bool foreign : {false, true}) {
      SCOPED_TRACE(std::to_string(max) + (foreign ? " foreign" : " none"));
      TestServer srv(set);
      ClientOptions o = client("secure.example.org");
      o.max_version = max;
      if (foreign) {
        o.cert_path = mallory_.cert_path;
        o.key_path = mallory_.key_path;
      }
      const ClientResult r = connect_and_run(srv, o);
      EXPECT_FALSE(r.greeting_ok);
      ASSERT_TRUE(srv.last()->failed);
      EXPECT_EQ(r.ssl_reason, static_cast<unsigned long>(
                                  foreign ? SSL_R_TLSV1_ALERT_UNKNOWN_CA
                                          : (max == TLS1_3_VERSION ? SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED
                                                                   : SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE)))
          << r.error;
    }
  }
}

TEST_F(MtlsTest, CatchAllMtlsDomainAsDefaultRequiresClientCertificate) {
  auto cfg = tls_config();
  add_domain(*cfg, std::nullopt, localhost_, pki_->ca().cert_path);
  auto set = build(cfg);
  {
    TestServer srv(set);
    ClientOptions o = client("unknown.test");
    o.ca_path.clear();
    o.cert_path = alice_.cert_path;
    o.key_path = alice_.key_path;
    const ClientResult r = connect_and_run(srv, o);
    ASSERT_TRUE(r.greeting_ok) << r.error;
    EXPECT_EQ(srv.last()->info.sni_domain, &cfg->domains[0]);
    EXPECT_EQ(srv.last()->info.client_subject, "CN=alice,O=huginn test");
  }
  {
    TestServer srv(set);
    const ClientResult r = connect_and_run(srv, client(""));
    EXPECT_FALSE(r.greeting_ok);
    EXPECT_TRUE(srv.last()->failed);
  }
}

TEST_F(MtlsTest, OpenDomainOnSameCertificateNeedsNoClientCertificate) {
  TestServer srv(build(cfg_));
  const ClientResult r = connect_and_run(srv, client("open.example.org"));
  ASSERT_TRUE(r.handshake_ok) << r.error;
  EXPECT_TRUE(r.greeting_ok);
  EXPECT_TRUE(srv.last()->info.client_subject.empty());
  EXPECT_EQ(srv.last()->info.sni_domain, &cfg_->domains[0]);
}

TEST_F(MtlsTest, SessionOfOpenDomainDoesNotResumeOnMtlsDomain) {
  auto set = build(cfg_);
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SessionPtr session;
    {
      TestServer srv(set);
      ClientOptions o = client("open.example.org");
      o.max_version = max;
      const ClientResult r = connect_and_run(srv, o);
      ASSERT_TRUE(r.greeting_ok) << r.error;
      session = r.session;
    }
    TestServer srv(set);
    ClientOptions o = client("secure.example.org");
    o.max_version = max;
    o.session = session;
    const ClientResult r = connect_and_run(srv, o);
    EXPECT_FALSE(r.reused);
    EXPECT_FALSE(r.greeting_ok);  // a full handshake, which needs a client certificate
    EXPECT_TRUE(srv.last()->failed);
  }
}

TEST_F(MtlsTest, MtlsSessionResumesWithSubject) {
  auto set = build(cfg_);
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(max);
    ClientOptions o = client("secure.example.org");
    o.max_version = max;
    o.cert_path = alice_.cert_path;
    o.key_path = alice_.key_path;
    SessionPtr session;
    {
      TestServer srv(set);
      const ClientResult r = connect_and_run(srv, o);
      ASSERT_TRUE(r.greeting_ok) << r.error;
      session = r.session;
    }
    TestServer srv(set);
    o.session = session;
    const ClientResult r = connect_and_run(srv, o);
    ASSERT_TRUE(r.greeting_ok) << r.error;
    EXPECT_TRUE(r.reused);
    EXPECT_EQ(srv.last()->info.client_subject, "CN=alice,O=huginn test");
  }
}

// ------------------------------------------------------------ resumption across workers

SessionPtr first_session(std::shared_ptr<const ContextSet> set, ClientOptions o) {
  TestServer srv(std::move(set));
  const ClientResult r = connect_and_run(srv, o);
  EXPECT_TRUE(r.greeting_ok) << r.error;
  EXPECT_FALSE(r.reused);
  return r.session;
}

bool resumes(std::shared_ptr<const ContextSet> set, ClientOptions o, SessionPtr s) {
  TestServer srv(std::move(set));
  o.session = std::move(s);
  const ClientResult r = connect_and_run(srv, o);
  EXPECT_TRUE(r.greeting_ok) << r.error;
  EXPECT_TRUE(srv.last()->done);
  return r.reused;
}

TEST_F(TlsTest, TicketsResumeAcrossWorkersAndRotation) {
  auto cfg = simple_config();
  const auto k1 = random_ticket_key();
  const auto k2 = random_ticket_key();
  auto b = bundle_for(*cfg, {k1});
  auto worker_a = build_or_die(cfg, b);
  auto worker_b = build_or_die(cfg, b);  // same bundle = another worker
  auto rotated = build_or_die(cfg, bundle_for(*cfg, {k2, k1}, 2));
  auto only_new = build_or_die(cfg, bundle_for(*cfg, {k2}, 3));
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(max);
    ClientOptions o = client();
    o.max_version = max;
    // A fresh session each time: TLS 1.3 clients use a ticket once.
    SessionPtr s = first_session(worker_a, o);
    ASSERT_TRUE(s);
    EXPECT_TRUE(resumes(worker_b, o, s));
    s = first_session(worker_a, o);
    EXPECT_TRUE(resumes(rotated, o, s));  // old key still decrypts
    s = first_session(worker_a, o);
    EXPECT_FALSE(resumes(only_new, o, s));  // key gone: full handshake
  }
}

TEST_F(TlsTest, ResumptionDisabled) {
  for (bool by_config : {false, true}) {
    auto cfg = simple_config();
    std::vector<huginn::tls::TicketKey> keys;
    if (by_config) {
      cfg->tls->session_resumption_enabled = false;
      keys.push_back(random_ticket_key());
    }
    auto set = build(cfg, keys);
    for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
      SCOPED_TRACE(max);
      ClientOptions o = client();
      o.max_version = max;
      SessionPtr s = first_session(set, o);
      if (s) {
        EXPECT_FALSE(resumes(set, o, s));
      }
    }
  }
}

// ------------------------------------------------------------ deadline, pending data, garbage

TEST_F(TlsTest, SilentClientClosedAtDeadline) {
  AcceptOptions opts;
  opts.deadline_ms = 200;
  TestServer srv(build(simple_config()), opts);
  ClientOptions o;
  o.send_nothing = true;
  const ClientResult r = connect_and_run(srv, o);
  EXPECT_TRUE(r.server_closed);
  EXPECT_GE(r.closed_after_ms, 150);
  EXPECT_LT(r.closed_after_ms, 3000);
  ASSERT_TRUE(srv.last()->failed);
  EXPECT_NE(srv.last()->reason.find("deadline"), std::string::npos) << srv.last()->reason;
}

TEST_F(TlsTest, RequestInSameWriteAsFinishedIsDelivered) {
  auto set = build(simple_config());
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(max);
    TestServer srv(set);
    ClientOptions o = client();
    o.max_version = max;
    o.with_finished = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    o.read_greeting = true;
    const ClientResult r = connect_and_run(srv, o);
    ASSERT_TRUE(r.handshake_ok) << r.error;
    ASSERT_TRUE(srv.last()->done) << srv.last()->reason;
    EXPECT_EQ(srv.last()->received, o.with_finished);
  }
}

// TLS 1.3 session tickets are written after the client's Finished with
// MSG_MORE, so they travel in one segment with the server's first
// application bytes (here the greeting) instead of a segment of their own:
// the flight, then tickets and greeting. TLS 1.2 tickets belong to the
// server's last flight (a full handshake has two flights, then the greeting).
// A resumed handshake has one flight in both versions.
TEST_F(TlsTest, SessionTicketsTravelWithTheFirstApplicationBytes) {
  auto set = build(simple_config());
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(max);
    ClientOptions o = client();
    o.max_version = max;
    TestServer srv(set);
    const ClientResult full = connect_and_run(srv, o);
    ASSERT_TRUE(full.greeting_ok) << full.error;
    ASSERT_TRUE(full.session);
    EXPECT_EQ(full.data_segments_in, max == TLS1_3_VERSION ? 2u : 3u);
    o.session = full.session;
    TestServer again(set);
    const ClientResult resumed = connect_and_run(again, o);
    ASSERT_TRUE(resumed.greeting_ok) << resumed.error;
    EXPECT_TRUE(resumed.reused);
    EXPECT_EQ(resumed.data_segments_in, 2u);
  }
}

// The socket BIO of an accepted connection holds its output on request
// (held_output.h); the release reports the hold once. OpenSSL's own socket
// BIO knows no such request.
TEST_F(TlsTest, OutputHoldIsReleasedOnce) {
  TestServer srv(build(simple_config()));
  const ClientResult r = connect_and_run(srv, client());
  ASSERT_TRUE(r.greeting_ok) << r.error;
  ASSERT_TRUE(srv.last()->bev);
  SSL* ssl = bufferevent_openssl_get_ssl(srv.last()->bev.get());
  ASSERT_NE(ssl, nullptr);
  EXPECT_FALSE(release_output(ssl));
  EXPECT_TRUE(hold_output(ssl));
  EXPECT_TRUE(release_output(ssl));
  EXPECT_FALSE(release_output(ssl));

  EXPECT_FALSE(hold_output(nullptr));
  EXPECT_FALSE(release_output(nullptr));
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ASSERT_NE(ctx, nullptr);
  SSL* plain = SSL_new(ctx);
  ASSERT_NE(plain, nullptr);
  EXPECT_FALSE(hold_output(plain)) << "no BIO";
  SSL_set_fd(plain, srv.last()->bev ? bufferevent_getfd(srv.last()->bev.get()) : -1);
  EXPECT_FALSE(hold_output(plain)) << "OpenSSL's socket BIO";
  EXPECT_FALSE(release_output(plain));
  SSL_free(plain);
  SSL_CTX_free(ctx);
}

// After the handshake the socket BIO still reads ahead: one recv takes
// several small records, and libevent's SSL_read returns one of them per
// read. The rest are in the BIO, not in the socket, so no readiness reports
// them; net::read_tls_pending reads on when the input changes. Here the owner
// takes nothing until the whole message is in (no drain ever runs the check)
// and the client sends 40 records in one segment, then waits: every record
// must arrive while it waits.
TEST_F(TlsTest, RecordsReadAheadReachAnOwnerThatWaitsForMore) {
  auto set = build(simple_config());
  std::string message;
  for (int i = 0; i < 40; ++i) message += "record " + std::to_string(100 + i) + std::string(40, '.') + "\n";
  for (int max : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(max);
    TestServer srv(set);
    srv.take_at = message.size();
    ClientOptions o = client();
    o.max_version = max;
    o.after_greeting = message;
    o.record_size = message.size() / 40;
    o.hold_ms = 2500;  // longer than the wait below: its FIN would make the socket readable
    ClientResult r;
    std::thread t([&] { r = run_client(srv.port(), o); });
    const bool shook = srv.run_until([&] { return srv.last_finished(); }, 5000);
    EXPECT_TRUE(shook) << "no handshake";
    const bool all =
        shook && srv.run_until([&] { return srv.last()->received.size() >= message.size(); }, 1500);
    EXPECT_TRUE(all) << "received " << (srv.last() != nullptr ? srv.last()->received.size() : 0) << " of "
                     << message.size() << " bytes while the client waited";
    srv.run_until([&] { return srv.last() != nullptr && srv.last()->eof; }, 5000);
    t.join();
    EXPECT_TRUE(r.greeting_ok) << r.error;
    ASSERT_NE(srv.last(), nullptr);
    EXPECT_EQ(srv.last()->received, message);
  }
}

TEST_F(TlsTest, ConnectionOutlivesItsContextSet) {
  auto set = build(simple_config());
  std::weak_ptr<const ContextSet> weak = set;
  TestServer srv(set);
  set.reset();
  ClientOptions o = client();
  o.after_greeting = "after the set is gone";
  std::atomic<bool> finished{false};
  ClientResult r;
  std::thread t([&] {
    r = run_client(srv.port(), o);
    finished = true;
  });
  ASSERT_TRUE(srv.run_until([&] { return srv.last_finished(); }));
  srv.set_contexts(nullptr);  // the "reload": nothing but the connection holds the SSL_CTX now
  EXPECT_TRUE(weak.expired());
  EXPECT_TRUE(srv.run_until([&] { return finished && srv.last()->received == o.after_greeting; }));
  t.join();
  EXPECT_TRUE(r.greeting_ok) << r.error;
}

size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_F(TlsTest, NoDescriptorLeaks) {
  auto set = build(simple_config());
  const size_t before = open_fds();
  {
    TestServer srv(set);
    for (int i = 0; i < 3; ++i) {
      const ClientResult r = connect_and_run(srv, client());
      EXPECT_TRUE(r.greeting_ok) << r.error;
    }
    ClientOptions bad;
    bad.raw = "garbage\r\n";
    connect_and_run(srv, bad);
    for (auto& c : srv.conns()) c->bev.reset();  // BEV_OPT_CLOSE_ON_FREE finds the fd through our BIO
  }
  EXPECT_EQ(open_fds(), before);
}

TEST_F(TlsTest, DestroyingAnUnfinishedAcceptorClosesTheSocket) {
  TestServer srv(build(simple_config()));
  ClientOptions o;
  o.send_nothing = true;
  std::atomic<bool> finished{false};
  ClientResult r;
  std::thread t([&] {
    r = run_client(srv.port(), o);
    finished = true;
  });
  ASSERT_TRUE(srv.run_until([&] { return srv.last() != nullptr; }));
  srv.last()->acceptor.reset();  // no callback, socket closed
  EXPECT_TRUE(srv.run_until([&] { return finished.load(); }));
  t.join();
  EXPECT_TRUE(r.server_closed);
  EXPECT_LT(r.closed_after_ms, 3000);
  EXPECT_FALSE(srv.last()->done || srv.last()->failed);
}

TEST_F(TlsTest, GarbageFailsCleanly) {
  auto set = build(simple_config());
  const std::string inputs[] = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 10),    // a hello OpenSSL rejects
      std::string("\x16\x03\x01\x40\x01", 5) + std::string(64, 'A'),  // record too long, then EOF
      std::string("\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10", 11) +
          std::string(37, '\x01'),  // SSLv2 hello
  };
  AcceptOptions opts;
  opts.deadline_ms = 500;  // OpenSSL waits for the rest of the over-long record
  for (const auto& in : inputs) {
    TestServer srv(set, opts);
    ClientOptions o;
    o.raw = in;
    const ClientResult r = connect_and_run(srv, o);
    EXPECT_TRUE(r.server_closed);
    ASSERT_TRUE(srv.last()->failed);
    EXPECT_FALSE(srv.last()->reason.empty());
  }
}

}  // namespace
}  // namespace huginn::worker::tls::test
