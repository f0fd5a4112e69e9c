#include "supervisor/tls_options_check.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <toml++/toml.h>

#include <optional>

#include "common/sys/c_handle.h"
#include "common/tls/ciphers.h"
#include "supervisor/tls_material.h"

namespace huginn::supervisor {
namespace {

using SslCtx = sys::CHandle<SSL_CTX, SSL_CTX_free>;

// Positions of option entries: the model keeps only [tls]'s, so the source
// text is parsed again (it parsed once already, so this cannot fail in
// practice); any miss falls back to the [tls] position.
class Positions {
 public:
  explicit Positions(const config::Config& cfg) : fallback_(cfg.tls->pos) {
    try {
      doc_ = toml::parse(cfg.source_text, cfg.source_name);
    } catch (const toml::parse_error&) {
      doc_.reset();
    }
  }
  config::SourcePos at(const std::string& path) const {
    if (!doc_) return fallback_;
    auto v = doc_->at_path(path);
    if (!v.node()) return fallback_;
    const auto& b = v.node()->source().begin;
    if (b.line == 0) return fallback_;
    return config::SourcePos{b.line, b.column};
  }

 private:
  config::SourcePos fallback_;
  std::optional<toml::table> doc_;
};

std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  std::string s;
  if (e != 0) {
    const char* r = ERR_reason_error_string(e);
    if (r) s = r;
  }
  ERR_clear_error();
  return s;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

bool has_cipher(SSL_CTX* ctx, const std::string& name) {
  STACK_OF(SSL_CIPHER)* sk = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(sk); ++i)
    if (name == SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i))) return true;
  return false;
}

}  // namespace

std::vector<config::ConfigError> check_tls_options(const config::Config& cfg) {
  std::vector<config::ConfigError> errors;
  if (!cfg.tls) return errors;
  const auto& opt = cfg.tls->options;
  Positions pos(cfg);
  auto error = [&](const std::string& key_path, std::string message) {
    errors.push_back({key_path, std::move(message), cfg.source_name, pos.at(key_path)});
  };
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    error("tls", "OpenSSL cannot create a TLS context: " + openssl_reason());
    return errors;
  }

  // Enabled versions.
  bool v12 = true, v13 = true;
  if (!opt.versions.empty()) {
    v12 = v13 = false;
    for (const auto& v : opt.versions) (v == "1.2" ? v12 : v13) = true;
  }
  if (opt.min_version && *opt.min_version == "1.3") v12 = false;
  if (opt.max_version && *opt.max_version == "1.2") v13 = false;
  const int min = v12 ? TLS1_2_VERSION : TLS1_3_VERSION;
  const int max = v13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (!v12 && !v13) {
    error("tls.options.versions", "no TLS version left enabled");
  } else if (SSL_CTX_set_min_proto_version(ctx.get(), min) != 1 ||
             SSL_CTX_set_max_proto_version(ctx.get(), max) != 1) {
    error(opt.versions.empty() ? "tls.options.min_version" : "tls.options.versions",
          "this OpenSSL cannot enable the configured TLS versions: " + openssl_reason());
  }

  // Cipher suites, one by one so that the error names the entry.
  if (!opt.cipher_suites.empty()) {
    const tls::CipherSplit split = tls::split_cipher_suites(opt.cipher_suites);
    auto item = [](size_t i) { return "tls.options.cipher_suites[" + std::to_string(i) + "]"; };
    for (size_t k = 0; k < split.tls13.size(); ++k) {
      if (SSL_CTX_set_ciphersuites(ctx.get(), split.tls13[k].c_str()) != 1 ||
          !has_cipher(ctx.get(), split.tls13[k])) {
        error(item(split.tls13_index[k]), "TLS 1.3 suite " + quoted(opt.cipher_suites[split.tls13_index[k]]) +
                                              " is not supported by " + OpenSSL_version(OPENSSL_VERSION));
      }
      ERR_clear_error();
    }
    for (size_t k = 0; k < split.tls12.size(); ++k) {
      const std::string& configured = opt.cipher_suites[split.tls12_index[k]];
      if (SSL_CTX_set_cipher_list(ctx.get(), split.tls12[k].c_str()) != 1) {
        std::string msg = "unknown cipher suite " + quoted(configured);
        if (split.tls12[k] != configured) msg += " (OpenSSL name " + quoted(split.tls12[k]) + ")";
        msg += ": not a TLS 1.3 suite and OpenSSL selects no TLS 1.2 cipher for it";
        error(item(split.tls12_index[k]), msg);
      }
      ERR_clear_error();
    }
    if (v13 && split.tls13.empty())
      error("tls.options.cipher_suites",
            "TLS 1.3 is enabled but no TLS 1.3 suite is listed (e.g. TLS_AES_128_GCM_SHA256)");
    if (v12 && split.tls12.empty())
      error("tls.options.cipher_suites",
            "TLS 1.2 is enabled but no TLS 1.2 suite is listed (e.g. ECDHE-RSA-AES128-GCM-SHA256)");
  }

  // Groups.
  for (size_t i = 0; i < opt.curve_preferences.size(); ++i) {
    const std::string& g = opt.curve_preferences[i];
    if (SSL_CTX_set1_groups_list(ctx.get(), g.c_str()) != 1)
      error("tls.options.curve_preferences[" + std::to_string(i) + "]",
            "group " + quoted(g) + " is not supported by " + OpenSSL_version(OPENSSL_VERSION));
    ERR_clear_error();
  }
  return errors;
}

std::vector<config::ConfigError> check_tls_config(const config::Config& cfg) {
  std::vector<config::ConfigError> errors = check_tls_options(cfg);
  if (cfg.tls) {
    std::vector<tls::PemFile> files;
    auto more = read_tls_files(cfg, &files);
    errors.insert(errors.end(), more.begin(), more.end());
  }
  return errors;
}

}  // namespace huginn::supervisor
