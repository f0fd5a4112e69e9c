// How `[tls.options] cipher_suites` maps onto OpenSSL, in one place for the
// supervisor (which validates the names, supervisor/tls_options_check.h) and
// the worker (which applies them). Pure: no OpenSSL here.
//
// One list, two OpenSSL settings. Each configured name, in order:
//   * a TLS 1.3 suite goes to SSL_CTX_set_ciphersuites(): OpenSSL's names
//     (TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
//     TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_CCM_SHA256,
//     TLS_AES_128_CCM_8_SHA256) or the upstream spelling TLS13_<same suffix>;
//   * anything else is a TLS 1.2 suite for SSL_CTX_set_cipher_list(): an
//     IANA name of one of the ECDHE AEAD suites upstream accepts
//     (TLS_ECDHE_{ECDSA,RSA}_WITH_{AES_128_GCM_SHA256,AES_256_GCM_SHA384,
//     CHACHA20_POLY1305_SHA256}) is translated to OpenSSL's name
//     (ECDHE-RSA-AES128-GCM-SHA256, ...); other names are taken as OpenSSL
//     cipher names unchanged (e.g. ECDHE-ECDSA-AES256-GCM-SHA384).
// Order within each group is the preference order. An empty configured list
// leaves both OpenSSL defaults in place. A non-empty list must name at least
// one suite for every enabled protocol version (checked by the supervisor),
// as upstream.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace huginn::tls {

struct CipherSplit {
  std::vector<std::string> tls13;  // OpenSSL names, configured order
  std::vector<std::string> tls12;  // OpenSSL names, configured order
  // Index in the configured list of every name above (for error positions).
  std::vector<size_t> tls13_index;
  std::vector<size_t> tls12_index;
};

// Classifies and translates the configured names (see the header comment).
CipherSplit split_cipher_suites(const std::vector<std::string>& names);

// The OpenSSL name for one configured TLS 1.3 name, or "" when it is not one.
std::string tls13_suite_name(std::string_view configured);

// Joins names with ':' (OpenSSL list syntax), e.g. for SSL_CTX_set1_groups_list.
std::string join_names(const std::vector<std::string>& names);

}  // namespace huginn::tls
