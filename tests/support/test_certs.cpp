#include "tests/support/test_certs.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "common/sys/c_handle.h"

namespace huginn::test {

namespace {

using X509Ptr = sys::CHandle<X509, X509_free>;
using PkeyPtr = sys::CHandle<EVP_PKEY, EVP_PKEY_free>;
using BioPtr = sys::CHandle<BIO, BIO_free>;

[[noreturn]] void die(const std::string& what) { throw std::runtime_error("TestPki: " + what); }

PkeyPtr make_key(KeyType t) {
  PkeyPtr k(t == KeyType::kRsa2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
  if (!k) die("key generation failed");
  return k;
}

std::string bio_string(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string cert_pem(X509* x) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), x) != 1) die("PEM_write_bio_X509");
  return bio_string(b.get());
}

std::string key_pem(EVP_PKEY* k) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    die("PEM_write_bio_PrivateKey");
  return bio_string(b.get());
}

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

struct Issued {
  X509Ptr cert;
  PkeyPtr key;
};

// issuer == nullptr: self-signed.
Issued issue(const std::string& cn, const Issued* issuer, bool ca, const std::string& eku,
             const std::vector<std::string>& names, KeyType key_type) {
  static long serial = 1;
  Issued out;
  out.key = make_key(key_type);
  out.cert.reset(X509_new());
  X509* x = out.cert.get();
  if (x == nullptr) die("X509_new");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600);
  X509_set_pubkey(x, out.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("huginn test"),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer->cert.get()) : name);

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer->cert.get() : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) die("extension " + value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  add(NID_subject_key_identifier, "hash");
  if (issuer != nullptr) add(NID_authority_key_identifier, "keyid:always");
  if (!eku.empty()) add(NID_ext_key_usage, eku);
  if (!names.empty()) {
    std::string san;
    for (const auto& n : names) {
      if (!san.empty()) san += ",";
      san += (is_ip(n) ? "IP:" : "DNS:") + n;
    }
    add(NID_subject_alt_name, san);
  }
  if (X509_sign(x, issuer != nullptr ? issuer->key.get() : out.key.get(), EVP_sha256()) == 0)
    die("X509_sign");
  return out;
}

}  // namespace

struct TestPki::Impl {
  Issued root;
  Issued intermediate;
  Issued other;
  KeyType key_type = KeyType::kEcP256;
};

TestPki::TestPki(std::string dir, KeyType key_type) : impl_(new Impl) {
  impl_->key_type = key_type;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/huginn-pki-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) die("mkdtemp");
    dir_ = templ;
    owns_dir_ = true;
  } else {
    dir_ = std::move(dir);
  }
  impl_->root = issue("huginn test root CA", nullptr, true, "", {}, key_type);
  impl_->intermediate = issue("huginn test intermediate CA", &impl_->root, true, "", {}, key_type);
  impl_->other = issue("unrelated test CA", nullptr, true, "", {}, key_type);
  auto save = [&](const std::string& stem, const Issued& i) {
    PemFiles f;
    f.cert_pem = cert_pem(i.cert.get());
    f.key_pem = key_pem(i.key.get());
    f.cert_path = write_file(stem + ".crt", f.cert_pem);
    f.key_path = write_file(stem + ".key", f.key_pem);
    return f;
  };
  ca_ = save("ca", impl_->root);
  other_ca_ = save("other-ca", impl_->other);
}

TestPki::~TestPki() {
  delete impl_;
  if (owns_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string TestPki::write_file(const std::string& name, const std::string& contents) const {
  const std::string path = dir_ + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  if (!out) die("cannot write " + path);
  return path;
}

PemFiles TestPki::server(const std::string& stem, const std::vector<std::string>& names,
                         bool via_intermediate, KeyType key_type) {
  const Issued& issuer = via_intermediate ? impl_->intermediate : impl_->root;
  Issued leaf = issue(names.empty() ? stem : names.front(), &issuer, false, "serverAuth", names, key_type);
  PemFiles f;
  f.cert_pem = cert_pem(leaf.cert.get());
  if (via_intermediate) f.cert_pem += cert_pem(impl_->intermediate.cert.get());
  f.key_pem = key_pem(leaf.key.get());
  f.cert_path = write_file(stem + ".crt", f.cert_pem);
  f.key_path = write_file(stem + ".key", f.key_pem);
  return f;
}

PemFiles TestPki::client(const std::string& stem, const std::string& common_name, bool from_other_ca) {
  Issued leaf = issue(common_name, from_other_ca ? &impl_->other : &impl_->root, false, "clientAuth", {},
                      impl_->key_type);
  PemFiles f;
  f.cert_pem = cert_pem(leaf.cert.get());
  f.key_pem = key_pem(leaf.key.get());
  f.cert_path = write_file(stem + ".crt", f.cert_pem);
  f.key_path = write_file(stem + ".key", f.key_pem);
  return f;
}

}  // namespace huginn::test
