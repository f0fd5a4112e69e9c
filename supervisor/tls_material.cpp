#include "supervisor/tls_material.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"

namespace huginn::supervisor {
namespace {

using Bio = sys::CHandle<BIO, BIO_free>;
using X509Ptr = sys::CHandle<X509, X509_free>;
using PKey = sys::CHandle<EVP_PKEY, EVP_PKEY_free>;
void openssl_free(void* p) { OPENSSL_free(p); }
using OsslMem = sys::CHandle<void, openssl_free>;

// Where a file is named: config key path and the position of its table.
struct Use {
  std::string key_path;
  config::SourcePos pos;
};

struct Pair {
  std::string cert, key;
  Use cert_use, key_use;
};

std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  std::string s = "malformed PEM";
  if (e != 0) {
    if (const char* r = ERR_reason_error_string(e)) s = r;
  }
  ERR_clear_error();
  return s;
}

int no_password(char*, int, int, void*) { return -1; }

bool read_file(const std::string& path, std::string* out, std::string* error) {
  sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    *error = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    *error = std::string("cannot stat: ") + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "not a regular file";
    return false;
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > tls::kMaxPemSize) {
    *error = "larger than " + std::to_string(tls::kMaxPemSize) + " bytes";
    return false;
  }
  // One spare byte: a file that grew since fstat shows up as too large.
  std::string buf(static_cast<size_t>(st.st_size) + 1, '\0');
  size_t off = 0;
  for (;;) {
    const ssize_t n = read(fd.get(), buf.data() + off, buf.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::string("read failed: ") + std::strerror(errno);
      return false;
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
    if (off == buf.size()) {
      *error = "changed while being read (or larger than " + std::to_string(tls::kMaxPemSize) + " bytes)";
      return false;
    }
  }
  buf.resize(off);
  *out = std::move(buf);
  return true;
}

Bio mem_bio(const std::string& pem) { return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// One PEM block re-encoded on its own (so that a parse error is about this
// block, not the end of the file).
struct PemBlock {
  std::string name;
  std::string text;
};

std::string pem_blocks(const std::string& pem, std::vector<PemBlock>* out) {
  ERR_clear_error();
  Bio bio = mem_bio(pem);
  if (!bio) return "out of memory";
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    const int ok = PEM_read_bio(bio.get(), &name, &header, &data, &len);
    OsslMem own_name(name), own_header(header), own_data(data);
    if (!ok) break;
    PemBlock b;
    b.name = name;
    Bio one(BIO_new(BIO_s_mem()));
    if (one && PEM_write_bio(one.get(), name, header, data, len) > 0) {
      char* p = nullptr;
      const long plen = BIO_get_mem_data(one.get(), &p);
      b.text.assign(p, static_cast<size_t>(plen));
    }
    out->push_back(std::move(b));
  }
  const unsigned long e = ERR_peek_last_error();
  const bool end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
  if (!end) return "PEM block " + std::to_string(out->size() + 1) + " is malformed: " + openssl_reason();
  ERR_clear_error();
  return {};
}

bool is_cert_block(const std::string& name) {
  return name == "CERTIFICATE" || name == "TRUSTED CERTIFICATE" || name == "X509 CERTIFICATE";
}

bool is_key_block(const std::string& name) {
  constexpr std::string_view kSuffix = "PRIVATE KEY";
  return name.size() >= kSuffix.size() &&
         name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

// Every certificate of a PEM file; "" or the reason it is unusable.
std::string parse_certs(const std::string& pem, std::vector<X509Ptr>* out) {
  std::vector<PemBlock> blocks;
  if (std::string why = pem_blocks(pem, &blocks); !why.empty()) return why;
  for (const auto& b : blocks) {
    if (!is_cert_block(b.name)) continue;
    Bio bio = mem_bio(b.text);
    X509Ptr x(bio ? PEM_read_bio_X509_AUX(bio.get(), nullptr, no_password, nullptr) : nullptr);
    if (!x) return "certificate " + std::to_string(out->size() + 1) + " does not parse: " + openssl_reason();
    out->push_back(std::move(x));
  }
  if (out->empty()) return "no PEM certificate in it";
  return {};
}

// Every private key of a PEM file (encrypted keys are not supported).
std::string parse_keys(const std::string& pem, std::vector<PKey>* out) {
  std::vector<PemBlock> blocks;
  if (std::string why = pem_blocks(pem, &blocks); !why.empty()) return why;
  for (const auto& b : blocks) {
    if (!is_key_block(b.name)) continue;
    if (b.name.find("ENCRYPTED") != std::string::npos)
      return "private key " + std::to_string(out->size() + 1) +
             " is encrypted (encrypted keys are not supported)";
    Bio bio = mem_bio(b.text);
    PKey k(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr);
    if (!k)
      return "private key " + std::to_string(out->size() + 1) +
             " does not parse (encrypted keys are not supported): " + openssl_reason();
    out->push_back(std::move(k));
  }
  if (out->empty()) return "no PEM private key in it";
  return {};
}

}  // namespace

std::vector<std::string> tls_material_paths(const config::Config& cfg) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& p) {
    if (!p.empty() && seen.insert(p).second) out.push_back(p);
  };
  if (cfg.tls) {
    add(cfg.tls->cert_path);
    add(cfg.tls->key_path);
  }
  for (const auto& d : cfg.domains) {
    add(d.cert_path);
    add(d.key_path);
    add(d.client_ca_path);
  }
  return out;
}

std::vector<config::ConfigError> read_tls_files(const config::Config& cfg, std::vector<tls::PemFile>* files) {
  std::vector<config::ConfigError> errors;
  auto fail = [&](const Use& u, const std::string& path, const std::string& why) {
    errors.push_back({u.key_path, path + ": " + why, cfg.source_name, u.pos});
  };
  std::vector<Pair> pairs;
  std::vector<std::pair<std::string, Use>> cas;
  std::map<std::string, Use> first_use;  // path → where it is first named
  auto note = [&](const std::string& path, Use u) {
    if (!path.empty()) first_use.emplace(path, std::move(u));
  };
  if (cfg.tls && !cfg.tls->cert_path.empty()) {
    Pair p{cfg.tls->cert_path,
           cfg.tls->key_path,
           {"tls.cert_path", cfg.tls->pos},
           {"tls.key_path", cfg.tls->pos}};
    note(p.cert, p.cert_use);
    note(p.key, p.key_use);
    pairs.push_back(std::move(p));
  }
  for (size_t i = 0; i < cfg.domains.size(); ++i) {
    const auto& d = cfg.domains[i];
    const std::string base = "domains[" + std::to_string(i) + "].";
    if (!d.cert_path.empty()) {
      Pair p{d.cert_path, d.key_path, {base + "cert_path", d.pos}, {base + "key_path", d.pos}};
      note(p.cert, p.cert_use);
      note(p.key, p.key_use);
      pairs.push_back(std::move(p));
    }
    if (!d.client_ca_path.empty()) {
      Use u{base + "client_ca_path", d.pos};
      note(d.client_ca_path, u);
      cas.emplace_back(d.client_ca_path, std::move(u));
    }
  }

  // Read each file once.
  std::map<std::string, const std::string*> content;
  std::set<std::string> unreadable;
  files->clear();
  files->reserve(first_use.size());
  for (const auto& path : tls_material_paths(cfg)) {
    std::string pem, why;
    if (!read_file(path, &pem, &why)) {
      auto it = first_use.find(path);
      fail(it != first_use.end() ? it->second : Use{"tls", cfg.tls ? cfg.tls->pos : config::SourcePos{}},
           path, why);
      unreadable.insert(path);
      continue;
    }
    files->push_back({path, std::move(pem)});
  }
  for (const auto& f : *files) content[f.path] = &f.pem;

  // Certificates and keys, each distinct pair once.
  std::map<std::string, std::vector<X509Ptr>> certs;
  std::set<std::string> bad_cert;
  std::set<std::pair<std::string, std::string>> pairs_done;
  for (const auto& p : pairs) {
    if (!pairs_done.insert({p.cert, p.key}).second) continue;
    if (!content.count(p.cert) || bad_cert.count(p.cert)) continue;
    auto cit = certs.find(p.cert);
    if (cit == certs.end()) {
      std::vector<X509Ptr> chain;
      if (std::string why = parse_certs(*content[p.cert], &chain); !why.empty()) {
        fail(p.cert_use, p.cert, why);
        bad_cert.insert(p.cert);
        continue;
      }
      cit = certs.emplace(p.cert, std::move(chain)).first;
    }
    if (!content.count(p.key)) continue;
    std::vector<PKey> keys;
    if (std::string why = parse_keys(*content[p.key], &keys); !why.empty()) {
      fail(p.key_use, p.key, why);
      continue;
    }
    bool match = false;
    for (const auto& k : keys) {
      if (X509_check_private_key(cit->second.front().get(), k.get()) == 1) {
        match = true;
        break;
      }
    }
    ERR_clear_error();
    if (!match)
      fail(p.key_use, p.key,
           std::string(keys.size() == 1 ? "the private key does not" : "none of its private keys does") +
               " match the certificate in " + p.cert);
  }
  std::set<std::string> cas_done;
  for (const auto& [path, use] : cas) {
    if (!cas_done.insert(path).second || !content.count(path)) continue;
    std::vector<X509Ptr> list;
    if (std::string why = parse_certs(*content[path], &list); !why.empty()) fail(use, path, why);
  }
  return errors;
}

bool generate_ticket_key(tls::TicketKey* out, std::string* error) {
  if (RAND_bytes(out->name.data(), static_cast<int>(out->name.size())) != 1 ||
      RAND_bytes(out->aes_key.data(), static_cast<int>(out->aes_key.size())) != 1 ||
      RAND_bytes(out->hmac_key.data(), static_cast<int>(out->hmac_key.size())) != 1) {
    *error = "RAND_bytes failed: " + openssl_reason();
    return false;
  }
  return true;
}

bool TicketKeyRing::rotate(std::string* error) {
  tls::TicketKey k;
  if (!generate_ticket_key(&k, error)) return false;
  keys_.insert(keys_.begin(), k);
  if (keys_.size() > kTicketKeysKept) keys_.resize(kTicketKeysKept);
  return true;
}

std::vector<config::ConfigError> build_tls_bundle(const config::Config& cfg,
                                                  const std::vector<tls::TicketKey>& ticket_keys,
                                                  uint64_t serial, tls::Bundle* out) {
  tls::Bundle b;
  b.serial = serial;
  auto errors = read_tls_files(cfg, &b.files);
  if (!errors.empty()) return errors;
  if (cfg.tls && cfg.tls->session_resumption_enabled) {
    b.ticket_keys = ticket_keys;
    b.ticket_lifetime_secs = kTicketLifetimeSecs;
  }
  if (std::string why = tls::check(b); !why.empty()) {
    errors.push_back(
        {"tls", "TLS material: " + why, cfg.source_name, cfg.tls ? cfg.tls->pos : config::SourcePos{}});
    return errors;
  }
  *out = std::move(b);
  return errors;
}

}  // namespace huginn::supervisor
