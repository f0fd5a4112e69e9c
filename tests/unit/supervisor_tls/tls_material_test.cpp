// supervisor/tls_material: reading and checking the certificate, key and CA
// files a configuration names, and the ticket keys. Certificates are made with
// the openssl CLI in a temporary directory.
#include "supervisor/tls_material.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "common/config/loader.h"
#include "tests/support/harness.h"

namespace huginn::supervisor {
namespace {

using testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A self-signed EC certificate and its key: <dir>/<name>.crt, <name>.key.
void make_cert(const TempDir& dir, const std::string& name) {
  std::string out;
  const int rc =
      testing::run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir.path() + "/" + name + ".key",
                            "-out", dir.path() + "/" + name + ".crt", "-subj", "/CN=" + name, "-days", "2"},
                           &out);
  ASSERT_EQ(rc, 0) << out;
}

std::string errors_text(const std::vector<config::ConfigError>& errs) {
  std::string s;
  for (const auto& e : errs) s += e.to_string() + "\n";
  return s;
}

std::shared_ptr<const config::Config> load(const std::string& text) {
  auto r = config::load_text(text, "config.toml", config::LoadOptions{1});
  if (auto* errs = std::get_if<std::vector<config::ConfigError>>(&r)) {
    ADD_FAILURE() << errors_text(*errs) << text;
    return nullptr;
  }
  return std::get<std::shared_ptr<const config::Config>>(r);
}

std::string q(const std::string& s) { return "\"" + s + "\""; }

class TlsMaterialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_cert(dir_, "a");
    make_cert(dir_, "b");
  }
  std::string p(const std::string& name) const { return dir_.path() + "/" + name; }
  // [tls] default pair plus one mTLS domain.
  std::string config(const std::string& cert, const std::string& key, const std::string& ca,
                     const std::string& extra = "") const {
    return "[listen]\naddrs = [\"127.0.0.1:8443\"]\n[tls]\ncert_path = " + q(cert) +
           "\nkey_path = " + q(key) + "\n" + extra +
           "\n[[domains]]\nhost = \"b.example\"\ncert_path = " + q(p("b.crt")) +
           "\nkey_path = " + q(p("b.key")) + "\nclient_ca_path = " + q(ca) + "\n";
  }
  TempDir dir_;
};

TEST_F(TlsMaterialTest, GoodFilesGiveTheirExactBytesOnce) {
  auto cfg = load(config(p("a.crt"), p("a.key"), p("a.crt")));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(tls_material_paths(*cfg),
            (std::vector<std::string>{p("a.crt"), p("a.key"), p("b.crt"), p("b.key")}));
  TicketKeyRing ring;
  std::string err;
  ASSERT_TRUE(ring.rotate(&err)) << err;
  tls::Bundle b;
  auto errs = build_tls_bundle(*cfg, ring.keys(), 7, &b);
  ASSERT_TRUE(errs.empty()) << errors_text(errs);
  EXPECT_EQ(b.serial, 7u);
  ASSERT_EQ(b.files.size(), 4u);
  EXPECT_EQ(b.find(p("a.key"))->pem, slurp(p("a.key")));
  EXPECT_EQ(b.find(p("b.crt"))->pem, slurp(p("b.crt")));
  EXPECT_EQ(b.ticket_keys, ring.keys());
  EXPECT_EQ(b.ticket_lifetime_secs, kTicketLifetimeSecs);
  std::string derr;
  auto back = tls::decode(tls::encode(b), &derr);
  ASSERT_TRUE(back) << derr;
  EXPECT_EQ(*back, b);
}

TEST_F(TlsMaterialTest, ResumptionDisabledMeansNoTicketKeys) {
  auto cfg = load(config(p("a.crt"), p("a.key"), p("a.crt"), "[tls.session_resumption]\nenabled = false\n"));
  ASSERT_TRUE(cfg);
  TicketKeyRing ring;
  std::string err;
  ASSERT_TRUE(ring.rotate(&err));
  tls::Bundle b;
  auto errs = build_tls_bundle(*cfg, ring.keys(), 1, &b);
  ASSERT_TRUE(errs.empty()) << errors_text(errs);
  EXPECT_TRUE(b.ticket_keys.empty());
  EXPECT_EQ(b.ticket_lifetime_secs, 0u);
}

TEST_F(TlsMaterialTest, MissingFileIsNamedWithItsConfigKey) {
  auto cfg = load(config(p("nope.crt"), p("a.key"), p("a.crt")));
  ASSERT_TRUE(cfg);
  tls::Bundle b;
  auto errs = build_tls_bundle(*cfg, {}, 1, &b);
  ASSERT_EQ(errs.size(), 1u) << errors_text(errs);
  EXPECT_EQ(errs[0].key_path, "tls.cert_path");
  EXPECT_NE(errs[0].message.find(p("nope.crt") + ": cannot open"), std::string::npos) << errs[0].message;
  EXPECT_EQ(errs[0].file, "config.toml");
  EXPECT_GT(errs[0].pos.line, 0u);
}

TEST_F(TlsMaterialTest, KeyThatDoesNotMatchItsCertificateIsRejected) {
  auto cfg = load(config(p("a.crt"), p("b.key"), p("a.crt")));
  ASSERT_TRUE(cfg);
  tls::Bundle b;
  auto errs = build_tls_bundle(*cfg, {}, 1, &b);
  ASSERT_EQ(errs.size(), 1u) << errors_text(errs);
  EXPECT_EQ(errs[0].key_path, "tls.key_path");
  EXPECT_NE(errs[0].message.find("does not match the certificate in " + p("a.crt")), std::string::npos)
      << errs[0].message;
}

TEST_F(TlsMaterialTest, MultiKeyPemIsAcceptedWhenOneKeyMatches) {
  const std::string both = dir_.write("both.key", slurp(p("b.key")) + slurp(p("a.key")));
  auto cfg = load(config(p("a.crt"), both, p("a.crt")));
  ASSERT_TRUE(cfg);
  tls::Bundle b;
  auto errs = build_tls_bundle(*cfg, {}, 1, &b);
  EXPECT_TRUE(errs.empty()) << errors_text(errs);
  EXPECT_EQ(b.find(both)->pem, slurp(both));  // the bytes travel as they are

  make_cert(dir_, "c");
  const std::string wrong = dir_.write("wrong.key", slurp(p("b.key")) + slurp(p("c.key")));
  cfg = load(config(p("a.crt"), wrong, p("a.crt")));
  ASSERT_TRUE(cfg);
  errs = build_tls_bundle(*cfg, {}, 1, &b);
  ASSERT_EQ(errs.size(), 1u) << errors_text(errs);
  EXPECT_NE(errs[0].message.find("none of its private keys"), std::string::npos) << errs[0].message;
}

TEST_F(TlsMaterialTest, MalformedFilesAreReportedEachWithItsName) {
  const std::string junk = dir_.write("junk.pem", "not a pem\n");
  std::string broken_cert = slurp(p("a.crt"));
  broken_cert[broken_cert.size() / 2] = '!';
  const std::string broken = dir_.write("broken.crt", broken_cert);
  auto cfg = load(config(broken, junk, junk));
  ASSERT_TRUE(cfg);
  tls::Bundle b;
  auto errs = build_tls_bundle(*cfg, {}, 1, &b);
  std::string all = errors_text(errs);
  EXPECT_EQ(errs.size(), 2u) << all;
  EXPECT_NE(all.find("tls.cert_path: " + broken + ": PEM block 1 is malformed"), std::string::npos) << all;
  EXPECT_NE(all.find("domains[0].client_ca_path: " + junk + ": no PEM certificate"), std::string::npos)
      << all;

  // Valid PEM armour around bytes that are no certificate; a CA file whose
  // second certificate is bad.
  const std::string not_der =
      dir_.write("notder.crt", "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n");
  const std::string ca2 = dir_.write("ca2.pem", slurp(p("a.crt")) + slurp(not_der));
  cfg = load(config(not_der, p("a.key"), ca2));
  ASSERT_TRUE(cfg);
  errs = build_tls_bundle(*cfg, {}, 1, &b);
  all = errors_text(errs);
  EXPECT_EQ(errs.size(), 2u) << all;
  EXPECT_NE(all.find("tls.cert_path: " + not_der + ": certificate 1 does not parse"), std::string::npos)
      << all;
  EXPECT_NE(all.find("domains[0].client_ca_path: " + ca2 + ": certificate 2 does not parse"),
            std::string::npos)
      << all;
}

TEST_F(TlsMaterialTest, EncryptedKeyAndOversizedFileAreRejected) {
  std::string out;
  ASSERT_EQ(testing::run_command({"/usr/bin/openssl", "pkey", "-in", p("a.key"), "-aes256", "-passout",
                                  "pass:x", "-out", p("enc.key")},
                                 &out),
            0)
      << out;
  auto cfg = load(config(p("a.crt"), p("enc.key"), p("a.crt")));
  ASSERT_TRUE(cfg);
  tls::Bundle b;
  auto errs = build_tls_bundle(*cfg, {}, 1, &b);
  ASSERT_EQ(errs.size(), 1u) << errors_text(errs);
  EXPECT_NE(errs[0].message.find("encrypted keys are not supported"), std::string::npos) << errs[0].message;

  const std::string big = dir_.write("big.crt", std::string(tls::kMaxPemSize + 1, 'x'));
  cfg = load(config(big, p("a.key"), p("a.crt")));
  ASSERT_TRUE(cfg);
  errs = build_tls_bundle(*cfg, {}, 1, &b);
  ASSERT_EQ(errs.size(), 1u) << errors_text(errs);
  EXPECT_NE(errs[0].message.find("larger than"), std::string::npos) << errs[0].message;
}

TEST(TicketKeyRingTest, RotationKeepsTheNewestKeysNewestFirst) {
  TicketKeyRing ring;
  std::string err;
  std::vector<tls::TicketKey> made;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ring.rotate(&err)) << err;
    made.insert(made.begin(), ring.keys().front());
  }
  ASSERT_EQ(ring.keys().size(), kTicketKeysKept);
  for (size_t i = 0; i < kTicketKeysKept; ++i) EXPECT_EQ(ring.keys()[i], made[i]);
  EXPECT_NE(ring.keys()[0].name, ring.keys()[1].name);
  EXPECT_NE(ring.keys()[0].aes_key, ring.keys()[0].hmac_key);
}

}  // namespace
}  // namespace huginn::supervisor
