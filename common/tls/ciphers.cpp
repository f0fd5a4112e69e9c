#include "common/tls/ciphers.h"

#include <array>
#include <utility>

namespace huginn::tls {
namespace {

constexpr std::array<std::string_view, 5> kTls13Suites = {
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"};

constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kIanaTls12 = {{
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
}};

}  // namespace

std::string tls13_suite_name(std::string_view configured) {
  std::string name(configured);
  if (configured.substr(0, 6) == "TLS13_") name = "TLS_" + std::string(configured.substr(6));
  for (auto s : kTls13Suites)
    if (s == name) return name;
  return {};
}

CipherSplit split_cipher_suites(const std::vector<std::string>& names) {
  CipherSplit out;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    if (std::string t13 = tls13_suite_name(n); !t13.empty()) {
      out.tls13.push_back(std::move(t13));
      out.tls13_index.push_back(i);
      continue;
    }
    std::string t12 = n;
    for (const auto& [iana, ossl] : kIanaTls12)
      if (iana == n) t12 = std::string(ossl);
    out.tls12.push_back(std::move(t12));
    out.tls12_index.push_back(i);
  }
  return out;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += ':';
    s += n;
  }
  return s;
}

}  // namespace huginn::tls
