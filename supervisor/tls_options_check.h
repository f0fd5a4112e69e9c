// Validation of `[tls.options]` against the OpenSSL the proxy runs with: the
// loader (common/config) checks the syntax of the names; this checks that
// OpenSSL knows them. Errors have the loader's shape (config::ConfigError:
// key path, message, file and line:column of the offending entry, or of
// [tls] when the entry's position is unknown).
//
// Rules (the mapping itself is common/tls/ciphers.h):
//   * cipher_suites: TLS 1.3 names must be suites OpenSSL implements (checked
//     with SSL_CTX_set_ciphersuites); every other name must select a TLS 1.2
//     cipher with SSL_CTX_set_cipher_list. A non-empty list must name at
//     least one suite for each enabled protocol version.
//   * curve_preferences: each name must be accepted by SSL_CTX_set1_groups_list.
//   * versions / min_version / max_version: the resulting range must be one
//     OpenSSL can set (SSL_CTX_set_min/max_proto_version).
#pragma once

#include <string>
#include <vector>

#include "common/config/loader.h"
#include "common/config/model.h"

namespace huginn::supervisor {

// Empty when `cfg` has no [tls] or every option is usable.
std::vector<config::ConfigError> check_tls_options(const config::Config& cfg);

// Everything the supervisor checks beyond the loader before it uses a
// configuration (--check-config, reload, D-Bus CheckConfig): the options
// above and the TLS material (supervisor/tls_material.h: every certificate,
// key and CA file readable, parsed, keys matching their certificates).
std::vector<config::ConfigError> check_tls_config(const config::Config& cfg);

}  // namespace huginn::supervisor
