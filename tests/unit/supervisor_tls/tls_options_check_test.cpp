// supervisor/tls_options_check: [tls.options] names checked against OpenSSL,
// with the loader's error shape and the position of the offending entry.
#include "supervisor/tls_options_check.h"

#include <gtest/gtest.h>

#include <string>

#include "common/tls/ciphers.h"

namespace huginn::supervisor {
namespace {

std::shared_ptr<const config::Config> load(const std::string& options) {
  const std::string text =
      "[listen]\naddrs = [\"127.0.0.1:8443\"]\n[tls]\ncert_path = \"/c.pem\"\nkey_path = \"/k.pem\"\n"
      "[tls.options]\n" +
      options;
  auto r = config::load_text(text, "config.toml", config::LoadOptions{1});
  if (auto* errs = std::get_if<std::vector<config::ConfigError>>(&r)) {
    ADD_FAILURE() << errs->front().to_string();
    return nullptr;
  }
  return std::get<std::shared_ptr<const config::Config>>(r);
}

std::string all(const std::vector<config::ConfigError>& errs) {
  std::string s;
  for (const auto& e : errs) s += e.to_string() + "\n";
  return s;
}

TEST(TlsCipherMapping, OneListSplitsIntoTls13AndTls12) {
  auto s = tls::split_cipher_suites({"TLS13_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                     "TLS_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"});
  EXPECT_EQ(s.tls13, (std::vector<std::string>{"TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"}));
  EXPECT_EQ(s.tls13_index, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(s.tls12,
            (std::vector<std::string>{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"}));
  EXPECT_EQ(s.tls12_index, (std::vector<size_t>{1, 3}));
  EXPECT_EQ(tls::join_names({"X25519", "secp256r1"}), "X25519:secp256r1");
}

TEST(TlsOptionsCheck, GoodNamesPass) {
  for (const char* opts : {
           "cipher_suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n",
           "cipher_suites = [\"TLS_AES_256_GCM_SHA384\", \"ECDHE-ECDSA-CHACHA20-POLY1305\"]\n"
           "curve_preferences = [\"X25519\", \"secp256r1\", \"secp384r1\"]\n",
           "versions = [\"1.3\"]\ncipher_suites = [\"TLS_AES_128_GCM_SHA256\"]\n",
           "max_version = \"1.2\"\ncipher_suites = [\"ECDHE-RSA-AES256-GCM-SHA384\"]\n",
           "min_version = \"1.2\"\n",
       }) {
    auto cfg = load(opts);
    ASSERT_TRUE(cfg);
    auto errs = check_tls_options(*cfg);
    EXPECT_TRUE(errs.empty()) << opts << all(errs);
  }
}

TEST(TlsOptionsCheck, UnknownCipherIsReportedAtItsEntry) {
  auto cfg = load(
      "cipher_suites = [\"TLS_AES_128_GCM_SHA256\",\n  \"ECDHE-RSA-NOPE\", "
      "\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n");
  ASSERT_TRUE(cfg);
  auto errs = check_tls_options(*cfg);
  ASSERT_EQ(errs.size(), 1u) << all(errs);
  EXPECT_EQ(errs[0].key_path, "tls.options.cipher_suites[1]");
  EXPECT_EQ(errs[0].pos.line, 8u);
  EXPECT_EQ(errs[0].pos.column, 3u);
  EXPECT_NE(errs[0].message.find("unknown cipher suite \"ECDHE-RSA-NOPE\""), std::string::npos) << all(errs);
  EXPECT_EQ(errs[0].to_string().find("tls.options.cipher_suites[1]: unknown"), 0u) << errs[0].to_string();
  EXPECT_NE(errs[0].to_string().find("(config.toml:8:3)"), std::string::npos) << errs[0].to_string();
}

TEST(TlsOptionsCheck, EveryEnabledVersionNeedsASuite) {
  auto cfg = load("cipher_suites = [\"ECDHE-RSA-AES128-GCM-SHA256\"]\n");
  ASSERT_TRUE(cfg);
  auto errs = check_tls_options(*cfg);
  ASSERT_EQ(errs.size(), 1u) << all(errs);
  EXPECT_NE(errs[0].message.find("no TLS 1.3 suite"), std::string::npos) << all(errs);
  cfg = load("cipher_suites = [\"TLS_AES_128_GCM_SHA256\"]\n");
  ASSERT_TRUE(cfg);
  errs = check_tls_options(*cfg);
  ASSERT_EQ(errs.size(), 1u) << all(errs);
  EXPECT_NE(errs[0].message.find("no TLS 1.2 suite"), std::string::npos) << all(errs);
}

TEST(TlsOptionsCheck, UnknownGroupsAreRejected) {
  auto cfg = load("curve_preferences = [\"X25519\", \"secp999r1\", \"brainpool\"]\n");
  ASSERT_TRUE(cfg);
  auto errs = check_tls_options(*cfg);
  ASSERT_EQ(errs.size(), 2u) << all(errs);
  EXPECT_EQ(errs[0].key_path, "tls.options.curve_preferences[1]");
  EXPECT_EQ(errs[1].key_path, "tls.options.curve_preferences[2]");
  EXPECT_NE(errs[0].message.find("group \"secp999r1\" is not supported"), std::string::npos) << all(errs);
}

TEST(TlsOptionsCheck, NoTlsSectionMeansNothingToCheck) {
  auto r = config::load_text("[listen]\naddrs = [\"127.0.0.1:80\"]\n", "c.toml", config::LoadOptions{1});
  auto cfg = std::get<std::shared_ptr<const config::Config>>(r);
  EXPECT_TRUE(check_tls_options(*cfg).empty());
  EXPECT_TRUE(check_tls_config(*cfg).empty());
}

TEST(TlsOptionsCheck, CheckTlsConfigAlsoReadsTheMaterial) {
  auto cfg = load("min_version = \"1.2\"\n");
  ASSERT_TRUE(cfg);
  auto errs = check_tls_config(*cfg);
  ASSERT_EQ(errs.size(), 2u) << all(errs);  // /c.pem and /k.pem do not exist
  EXPECT_EQ(errs[0].key_path, "tls.cert_path");
  EXPECT_NE(errs[0].message.find("/c.pem: cannot open"), std::string::npos) << all(errs);
}

}  // namespace
}  // namespace huginn::supervisor
