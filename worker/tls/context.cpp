#include "worker/tls/context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/net/http_token.h"
#include "common/sys/log.h"

namespace huginn::worker::tls {

namespace {

using BioPtr = sys::CHandle<BIO, BIO_free>;
using X509Ptr = sys::CHandle<X509, X509_free>;
using PkeyPtr = sys::CHandle<EVP_PKEY, EVP_PKEY_free>;
void free_name_stack(STACK_OF(X509_NAME) * sk) { sk_X509_NAME_pop_free(sk, X509_NAME_free); }
using NameStackPtr = sys::CHandle<STACK_OF(X509_NAME), free_name_stack>;

// Every context gets the same session-id context; the ClientHello callback
// replaces it per selection (see context.h). Must be identical in all workers.
constexpr unsigned char kBaseSidCtx[] = "huginn-proxy";

// State shared by all SSL_CTXs of one set: owned by each SSL_CTX through its
// ex_data (freed with the SSL_CTX), so callbacks stay valid for as long as any
// connection still uses one of the contexts.
struct Shared {
  std::vector<huginn::tls::TicketKey> ticket_keys;
  // AES-256-CBC fetched once: EVP_aes_256_cbc() makes every Init fetch it
  // from the provider again (a name lookup, ~0.4 µs per ticket sealed or
  // opened, two per resumed TLS 1.3 connection).
  sys::CHandle<EVP_CIPHER, EVP_CIPHER_free> ticket_cipher;
  std::vector<std::string> alpn;  // server preference order
};

void free_shared(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::shared_ptr<const Shared>*>(ptr);
}

int ctx_shared_index() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_shared);
  return idx;
}
int ssl_set_index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
int ssl_selection_index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

const Shared* shared_of(const SSL_CTX* ctx) {
  const auto* p =
      static_cast<const std::shared_ptr<const Shared>*>(SSL_CTX_get_ex_data(ctx, ctx_shared_index()));
  return p != nullptr ? p->get() : nullptr;
}

// The OpenSSL error queue as one line; clears it.
std::string ossl_errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string("unknown OpenSSL error") : out;
}

// Never prompt for a pass phrase (encrypted keys are not supported).
int no_password(char*, int, int, void*) { return -1; }

BioPtr mem_bio(const std::string& pem) {
  if (pem.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// True when the last PEM read failed only because no further PEM block exists.
bool pem_eof() {
  const unsigned long e = ERR_peek_last_error();
  const bool eof = e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
  if (eof) ERR_clear_error();
  return eof;
}

// ------------------------------------------------------------ callbacks

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto* sh = static_cast<const Shared*>(arg);
  // Server preference: the first of OUR protocols the client offers.
  for (const auto& mine : sh->alpn) {
    unsigned int off = 0;
    while (off < inlen) {
      const unsigned int len = in[off];
      if (len == 0 || off + 1 + len > inlen) break;  // malformed: OpenSSL already checked
      if (len == mine.size() && std::memcmp(in + off + 1, mine.data(), len) == 0) {
        *out = in + off + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      off += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;  // no overlap: no ALPN (HTTP/1.1), not a failure
}

int ticket_key_cb(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cctx,
                  EVP_MAC_CTX* hctx, int enc) {
  const Shared* sh = shared_of(SSL_get_SSL_CTX(ssl));
  if (sh == nullptr || sh->ticket_keys.empty() || !sh->ticket_cipher) return enc ? -1 : 0;
  const EVP_CIPHER* cipher = sh->ticket_cipher.get();
  auto set_keys = [&](const huginn::tls::TicketKey& k, bool encrypt) -> bool {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<uint8_t*>(k.hmac_key.data()),
                                                  k.hmac_key.size());
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1) return false;
    return encrypt ? EVP_EncryptInit_ex(cctx, cipher, nullptr, k.aes_key.data(), iv) == 1
                   : EVP_DecryptInit_ex(cctx, cipher, nullptr, k.aes_key.data(), iv) == 1;
  };
  if (enc) {
    const auto& k = sh->ticket_keys.front();
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1) return -1;
    std::memcpy(key_name, k.name.data(), k.name.size());
    return set_keys(k, true) ? 1 : -1;
  }
  for (size_t i = 0; i < sh->ticket_keys.size(); ++i) {
    const auto& k = sh->ticket_keys[i];
    if (std::memcmp(key_name, k.name.data(), k.name.size()) != 0) continue;
    if (!set_keys(k, false)) return -1;
    // 2 = valid, and issue a new ticket. TLS 1.3 clients use a ticket once
    // (RFC 8446 C.4: OpenSSL's client, browsers), so a resumed TLS 1.3
    // connection always gets a fresh one, or the client's next connection is
    // a full handshake. TLS 1.2 clients reuse theirs: renew only when it was
    // sealed under an older key.
    return i == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
  }
  return 0;  // unknown key: full handshake
}

int servername_ok(SSL*, int*, void*) { return SSL_TLSEXT_ERR_OK; }

// First host_name of the server_name extension, lowercased, one trailing dot
// removed. Empty when absent or malformed (OpenSSL rejects malformed ones).
std::string client_sni(SSL* ssl) {
  const unsigned char* p = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 2) return {};
  const size_t list = (static_cast<size_t>(p[0]) << 8) | p[1];
  if (list + 2 != len) return {};
  size_t off = 2;
  while (off + 3 <= len) {
    const unsigned type = p[off];
    const size_t n = (static_cast<size_t>(p[off + 1]) << 8) | p[off + 2];
    off += 3;
    if (off + n > len) return {};
    if (type == TLSEXT_NAMETYPE_host_name) {
      std::string name(reinterpret_cast<const char*>(p + off), n);
      huginn::net::ascii_lower_in_place(name);
      if (!name.empty() && name.back() == '.') name.pop_back();
      return name;
    }
    off += n;
  }
  return {};
}

std::array<unsigned char, 32> sha256(const std::string& s) {
  std::array<unsigned char, 32> out{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

// ------------------------------------------------------------ options

bool is_tls13_suite(std::string_view name) {
  static constexpr std::string_view kSuites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                                 "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
                                                 "TLS_AES_128_CCM_8_SHA256"};
  return std::find(std::begin(kSuites), std::end(kSuites), name) != std::end(kSuites);
}

// Splits configured cipher names into TLS 1.3 suites and TLS 1.2 ciphers in
// OpenSSL spelling. Accepted spellings: OpenSSL names ("ECDHE-RSA-AES128-GCM-SHA256",
// "TLS_AES_128_GCM_SHA256"), IANA names ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
// and upstream's rustls names ("TLS13_AES_128_GCM_SHA256").
bool split_ciphers(const std::vector<std::string>& names, std::vector<std::string>* tls13,
                   std::vector<std::string>* tls12, std::string* error) {
  SslCtxPtr all(SSL_CTX_new(TLS_server_method()));
  if (!all || SSL_CTX_set_cipher_list(all.get(), "ALL:COMPLEMENTOFALL") != 1) {
    *error = "cipher table: " + ossl_errors();
    return false;
  }
  STACK_OF(SSL_CIPHER)* table = SSL_CTX_get_ciphers(all.get());
  for (std::string n : names) {
    if (n.rfind("TLS13_", 0) == 0) n = "TLS_" + n.substr(6);
    if (is_tls13_suite(n)) {
      tls13->push_back(n);
      continue;
    }
    std::string openssl_name = n;
    for (int i = 0; i < sk_SSL_CIPHER_num(table); ++i) {
      const SSL_CIPHER* c = sk_SSL_CIPHER_value(table, i);
      const char* std_name = SSL_CIPHER_standard_name(c);
      if (std_name != nullptr && n == std_name) {
        openssl_name = SSL_CIPHER_get_name(c);
        break;
      }
    }
    tls12->push_back(openssl_name);
  }
  return true;
}

std::string join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

bool contains_cipher(SSL_CTX* ctx, const std::string& name) {
  STACK_OF(SSL_CIPHER)* sk = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(sk); ++i)
    if (name == SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i))) return true;
  return false;
}

struct CommonOptions {
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::vector<std::string> tls13;
  std::vector<std::string> tls12;
  std::string groups;
  bool tickets = false;
  uint32_t ticket_lifetime = 0;
};

bool apply_common(SSL_CTX* ctx, const CommonOptions& o, const std::shared_ptr<const Shared>& sh,
                  std::string* error) {
  if (SSL_CTX_set_min_proto_version(ctx, o.min_version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, o.max_version) != 1) {
    *error = "protocol versions: " + ossl_errors();
    return false;
  }
  uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                  SSL_OP_PRIORITIZE_CHACHA;
  if (!o.tickets) opts |= SSL_OP_NO_TICKET;
  SSL_CTX_set_options(ctx, opts);
  SSL_CTX_set_mode(
      ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // No session-ID cache: a per-worker cache cannot work across workers;
  // resumption is offered through tickets only (keys shared by all workers).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_session_id_context(ctx, kBaseSidCtx, sizeof(kBaseSidCtx) - 1);
  if (o.tickets) {
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    if (o.ticket_lifetime > 0) SSL_CTX_set_timeout(ctx, o.ticket_lifetime);
  } else {
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  // ECDH with automatic curve selection is always on in OpenSSL 3.
  if (!o.tls13.empty() && SSL_CTX_set_ciphersuites(ctx, join(o.tls13, ':').c_str()) != 1) {
    *error = "cipher_suites (TLS 1.3) " + join(o.tls13, ':') + ": " + ossl_errors();
    return false;
  }
  if (!o.tls12.empty() && SSL_CTX_set_cipher_list(ctx, join(o.tls12, ':').c_str()) != 1) {
    *error = "cipher_suites (TLS 1.2) " + join(o.tls12, ':') + ": " + ossl_errors();
    return false;
  }
  for (const auto* list : {&o.tls13, &o.tls12})
    for (const auto& name : *list)
      if (!contains_cipher(ctx, name)) {
        *error = "cipher_suites: OpenSSL does not support \"" + name + "\"";
        return false;
      }
  if (!o.groups.empty() && SSL_CTX_set1_groups_list(ctx, o.groups.c_str()) != 1) {
    *error = "curve_preferences " + o.groups + ": " + ossl_errors();
    return false;
  }
  if (!sh->alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx, alpn_select, const_cast<Shared*>(sh.get()));
  SSL_CTX_set_tlsext_servername_callback(ctx, servername_ok);
  auto* holder = new std::shared_ptr<const Shared>(sh);
  if (SSL_CTX_set_ex_data(ctx, ctx_shared_index(), holder) != 1) {
    delete holder;
    *error = "SSL_CTX_set_ex_data: " + ossl_errors();
    return false;
  }
  return true;
}

bool load_certificate(SSL_CTX* ctx, const huginn::tls::Bundle& b, const std::string& cert_path,
                      const std::string& key_path, std::string* error) {
  const auto* cert_file = b.find(cert_path);
  const auto* key_file = b.find(key_path);
  if (cert_file == nullptr || key_file == nullptr) {
    *error = "\"" + (cert_file == nullptr ? cert_path : key_path) + "\" is not in the TLS material bundle";
    return false;
  }
  BioPtr cb = mem_bio(cert_file->pem);
  if (!cb) {
    *error = cert_path + ": " + ossl_errors();
    return false;
  }
  X509Ptr leaf(PEM_read_bio_X509(cb.get(), nullptr, no_password, nullptr));
  if (!leaf) {
    *error = cert_path + ": no certificate: " + ossl_errors();
    return false;
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    *error = cert_path + ": " + ossl_errors();
    return false;
  }
  // The rest of the file is the chain, in file order.
  for (size_t i = 0; i < 64; ++i) {
    X509Ptr x(PEM_read_bio_X509(cb.get(), nullptr, no_password, nullptr));
    if (!x) {
      if (!pem_eof()) {
        *error = cert_path + ": bad chain certificate: " + ossl_errors();
        return false;
      }
      break;
    }
    if (SSL_CTX_add1_chain_cert(ctx, x.get()) != 1) {
      *error = cert_path + ": " + ossl_errors();
      return false;
    }
  }
  // Multi-key PEM: the key that matches the certificate.
  BioPtr kb = mem_bio(key_file->pem);
  if (!kb) {
    *error = key_path + ": " + ossl_errors();
    return false;
  }
  PkeyPtr key;
  for (size_t i = 0; i < 64 && !key; ++i) {
    PkeyPtr k(PEM_read_bio_PrivateKey(kb.get(), nullptr, no_password, nullptr));
    if (!k) {
      if (pem_eof() || BIO_eof(kb.get())) break;
      ERR_clear_error();  // an undecodable or encrypted key: try the next one
      continue;
    }
    if (X509_check_private_key(leaf.get(), k.get()) == 1) key = std::move(k);
    ERR_clear_error();
  }
  ERR_clear_error();
  if (!key) {
    *error = key_path + ": no private key matching the certificate " + cert_path;
    return false;
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    *error = key_path + ": " + ossl_errors();
    return false;
  }
  return true;
}

bool load_client_ca(SSL_CTX* ctx, const huginn::tls::Bundle& b, const std::string& ca_path,
                    std::string* error) {
  const auto* f = b.find(ca_path);
  if (f == nullptr) {
    *error = "\"" + ca_path + "\" is not in the TLS material bundle";
    return false;
  }
  BioPtr bio = mem_bio(f->pem);
  NameStackPtr names(sk_X509_NAME_new_null());
  if (!bio || !names) {
    *error = ca_path + ": " + ossl_errors();
    return false;
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  size_t count = 0;
  for (size_t i = 0; i < 4096; ++i) {
    X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr));
    if (!x) {
      if (!pem_eof()) {
        *error = ca_path + ": bad CA certificate: " + ossl_errors();
        return false;
      }
      break;
    }
    if (X509_STORE_add_cert(store, x.get()) != 1) {
      *error = ca_path + ": " + ossl_errors();
      return false;
    }
    ++count;
    const X509_NAME* subject = X509_get_subject_name(x.get());
    bool dup = false;
    for (int j = 0; j < sk_X509_NAME_num(names.get()); ++j)
      if (X509_NAME_cmp(sk_X509_NAME_value(names.get(), j), subject) == 0) dup = true;
    if (!dup) {
      X509_NAME* copy = X509_NAME_dup(subject);
      if (copy == nullptr || sk_X509_NAME_push(names.get(), copy) == 0) {
        X509_NAME_free(copy);
        *error = ca_path + ": " + ossl_errors();
        return false;
      }
    }
  }
  if (count == 0) {
    *error = ca_path + ": no CA certificate";
    return false;
  }
  SSL_CTX_set_client_CA_list(ctx, names.release());  // CA names sent in CertificateRequest
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_verify_depth(ctx, 10);
  return true;
}

}  // namespace

// ------------------------------------------------------------ ContextSet

struct ContextSet::Impl {
  static int client_hello(SSL* ssl, int* alert, void*) {
    const auto* set = static_cast<const ContextSet*>(SSL_get_ex_data(ssl, ssl_set_index()));
    auto* sel = static_cast<Selection*>(SSL_get_ex_data(ssl, ssl_selection_index()));
    if (set == nullptr || sel == nullptr) {
      *alert = SSL_AD_INTERNAL_ERROR;
      return SSL_CLIENT_HELLO_ERROR;
    }
    return set->on_client_hello(ssl, sel, alert);
  }
};

int parse_tls_version(std::string_view name) {
  if (name == "1.2" || name == "TLSv1.2") return TLS1_2_VERSION;
  if (name == "1.3" || name == "TLSv1.3") return TLS1_3_VERSION;
  return 0;
}

ContextSet::~ContextSet() = default;

std::shared_ptr<const ContextSet> ContextSet::build(std::shared_ptr<const config::Config> cfg,
                                                    std::shared_ptr<const huginn::tls::Bundle> bundle,
                                                    std::string* error) {
  if (!cfg || !cfg->tls || !bundle) {
    *error = "no [tls] section or no TLS material";
    return nullptr;
  }
  ERR_clear_error();
  const config::Tls& t = *cfg->tls;
  std::shared_ptr<ContextSet> set(new ContextSet());
  set->cfg_ = cfg;
  set->bundle_ = bundle;
  set->sni_strict_ = t.options.sni_strict;

  CommonOptions o;
  if (!t.options.versions.empty()) {
    o.min_version = INT_MAX;
    o.max_version = 0;
    for (const auto& v : t.options.versions) {
      const int p = parse_tls_version(v);
      if (p == 0) {
        *error = "tls.options.versions: unsupported version \"" + v + "\"";
        return nullptr;
      }
      o.min_version = std::min(o.min_version, p);
      o.max_version = std::max(o.max_version, p);
    }
  }
  if (t.options.min_version) {
    o.min_version = parse_tls_version(*t.options.min_version);
    if (o.min_version == 0) {
      *error = "tls.options.min_version: unsupported version \"" + *t.options.min_version + "\"";
      return nullptr;
    }
  }
  if (t.options.max_version) {
    o.max_version = parse_tls_version(*t.options.max_version);
    if (o.max_version == 0) {
      *error = "tls.options.max_version: unsupported version \"" + *t.options.max_version + "\"";
      return nullptr;
    }
  }
  if (o.min_version > o.max_version) {
    *error = "tls.options: minimum version above maximum version";
    return nullptr;
  }
  if (!split_ciphers(t.options.cipher_suites, &o.tls13, &o.tls12, error)) return nullptr;
  o.groups = join(t.options.curve_preferences, ':');
  o.tickets = t.session_resumption_enabled && !bundle->ticket_keys.empty();
  o.ticket_lifetime = bundle->ticket_lifetime_secs;

  auto sh = std::make_shared<Shared>();
  if (o.tickets) {
    sh->ticket_keys = bundle->ticket_keys;
    sh->ticket_cipher.reset(EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr));
    if (!sh->ticket_cipher) {
      *error = "session tickets: AES-256-CBC: " + ossl_errors();
      return nullptr;
    }
  }
  for (const auto& p : t.alpn)
    if (!p.empty() && p.size() <= 255) sh->alpn.push_back(p);
  std::shared_ptr<const Shared> shc = sh;

  auto new_ctx = [&](std::string* err) -> SslCtxPtr {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
      *err = "SSL_CTX_new: " + ossl_errors();
      return nullptr;
    }
    if (!apply_common(ctx.get(), o, shc, err)) return nullptr;
    SSL_CTX_set_client_hello_cb(ctx.get(), Impl::client_hello, nullptr);
    return ctx;
  };

  auto cert_for = [&](const std::string& cert, const std::string& key, const std::string& ca) -> const Cert* {
    for (const auto& c : set->certs_)
      if (c->cert_path == cert && c->key_path == key && c->client_ca_path == ca) return c.get();
    auto c = std::make_unique<Cert>();
    c->cert_path = cert;
    c->key_path = key;
    c->client_ca_path = ca;
    c->ctx = new_ctx(error);
    if (!c->ctx) return nullptr;
    if (!load_certificate(c->ctx.get(), *bundle, cert, key, error)) return nullptr;
    if (!ca.empty() && !load_client_ca(c->ctx.get(), *bundle, ca, error)) return nullptr;
    set->certs_.push_back(std::move(c));
    return set->certs_.back().get();
  };
  auto make_entry = [&](const config::Domain* d, const std::string& cert, const std::string& key,
                        const std::string& ca) -> std::optional<Entry> {
    Entry e;
    e.domain = d;
    e.cert = cert_for(cert, key, ca);
    if (e.cert == nullptr) return std::nullopt;
    e.mtls = !ca.empty();
    // Session-id context: a session resumes only under the same certificate
    // and, for mTLS, the same domain and CA (deterministic across workers).
    std::string id = "huginn-session";
    for (const std::string* s : {&cert, &key}) id.append(1, '\0').append(*s);
    if (e.mtls) {
      id.append(1, '\0').append("mtls").append(1, '\0').append(d != nullptr && d->host ? *d->host : "*");
      id.append(1, '\0').append(ca);
    }
    e.sid_ctx = sha256(id);
    return e;
  };

  for (const auto& d : cfg->domains) {
    if (d.cert_path.empty()) continue;  // no certificate: takes no part in the selection
    auto e = make_entry(&d, d.cert_path, d.key_path, d.client_ca_path);
    if (!e) return nullptr;
    if (!d.host) continue;  // catch-all: only a default candidate (below)
    const std::string& h = *d.host;
    if (h.rfind("*.", 0) == 0)
      set->wildcard_.emplace(h.substr(2), *e);
    else
      set->exact_.emplace(h, *e);
  }
  if (!t.cert_path.empty()) {
    auto e = make_entry(nullptr, t.cert_path, t.key_path, "");
    if (!e) return nullptr;
    set->default_ = *e;
  } else {
    for (const auto& d : cfg->domains)
      if (!d.host && !d.cert_path.empty()) {
        auto e = make_entry(&d, d.cert_path, d.key_path, d.client_ca_path);
        if (!e) return nullptr;
        set->default_ = *e;
        break;
      }
  }
  ERR_clear_error();
  if (set->certs_.empty()) {
    *error = "no certificate configured";
    return nullptr;
  }
  // Every context carries the same options and ClientHello callback, so an
  // SSL can start on any of them. Start it where most handshakes end: then
  // SSL_set_SSL_CTX in the callback returns at once instead of copying the
  // certificate set (a copy and a free per connection).
  set->start_ = set->default_ ? set->default_->cert->ctx.get() : set->certs_.front()->ctx.get();
  HLOG_DEBUG("tls: %zu certificate context(s), %zu exact + %zu wildcard names, default %s, bundle %llu",
             set->certs_.size(), set->exact_.size(), set->wildcard_.size(),
             set->default_ ? set->default_->cert->cert_path.c_str() : "(none)",
             static_cast<unsigned long long>(bundle->serial));
  return set;
}

const ContextSet::Entry* ContextSet::select(std::string_view sni) const {
  if (sni.empty()) return nullptr;
  const std::string key(sni);
  if (auto it = exact_.find(key); it != exact_.end()) return &it->second;
  const size_t dot = key.find('.');
  if (dot != std::string::npos && dot > 0 && dot + 1 < key.size()) {
    if (auto it = wildcard_.find(key.substr(dot + 1)); it != wildcard_.end()) return &it->second;
  }
  return nullptr;
}

int ContextSet::on_client_hello(SSL* ssl, Selection* sel, int* alert) const {
  std::string sni = client_sni(ssl);
  const Entry* e = select(sni);
  if (e == nullptr) {
    if (sni_strict_ || !default_) {
      sel->reject_reason =
          sni.empty() ? (sni_strict_ ? "no SNI (sni_strict)" : "no SNI and no default certificate")
                      : (sni_strict_ ? "unknown SNI (sni_strict)" : "unknown SNI and no default certificate");
      sel->sni = std::move(sni);
      *alert = SSL_AD_UNRECOGNIZED_NAME;
      return SSL_CLIENT_HELLO_ERROR;
    }
    e = &*default_;
  }
  SSL_CTX* target = e->cert->ctx.get();
  if (SSL_get_SSL_CTX(ssl) != target && SSL_set_SSL_CTX(ssl, target) != target) {
    sel->reject_reason = "SSL_set_SSL_CTX failed";
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  // SSL_set_SSL_CTX takes certificate, chain and verify store from the new
  // context, but not the verify mode: set it on the SSL.
  SSL_set_verify(ssl, SSL_CTX_get_verify_mode(target), nullptr);
  SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(target));
  if (SSL_set_session_id_context(ssl, e->sid_ctx.data(), static_cast<unsigned int>(e->sid_ctx.size())) != 1) {
    sel->reject_reason = "SSL_set_session_id_context failed";
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  sel->done = true;
  sel->sni = std::move(sni);
  sel->domain = e->domain;
  sel->cert_path = &e->cert->cert_path;
  sel->mtls = e->mtls;
  return SSL_CLIENT_HELLO_SUCCESS;
}

SslPtr ContextSet::new_ssl(Selection* sel) const {
  SslPtr ssl(SSL_new(start_));
  if (!ssl) return nullptr;
  if (SSL_set_ex_data(ssl.get(), ssl_set_index(), const_cast<ContextSet*>(this)) != 1 ||
      SSL_set_ex_data(ssl.get(), ssl_selection_index(), sel) != 1)
    return nullptr;
  return ssl;
}

void ContextSet::release_ssl(SSL* ssl) {
  SSL_set_ex_data(ssl, ssl_set_index(), nullptr);
  SSL_set_ex_data(ssl, ssl_selection_index(), nullptr);
}

}  // namespace huginn::worker::tls
