// Fuzz target: the TLS acceptor (worker/tls/acceptor.h) fed with arbitrary
// client bytes. The input is written to one end of a socketpair followed by
// EOF (its first size % 7 bytes are passed as initial_bytes instead, as after
// a PROXY header); the acceptor runs on the other end in an event loop until
// it reports success or failure. Checks (abort on violation): it always
// finishes, exactly one callback fires, and a reported JA4 has its shape.
// Seeds: real ClientHellos (tests/fuzz/corpus/tls_accept/).
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"
#include "worker/tls/acceptor.h"
#include "worker/tls/context.h"

namespace {

using huginn::sys::CHandle;
namespace wtls = huginn::worker::tls;

void check(bool ok) {
  if (!ok) std::abort();
}

std::string to_pem(int (*write)(BIO*, void*), void* obj) {
  CHandle<BIO, BIO_free> b(BIO_new(BIO_s_mem()));
  check(b && write(b.get(), obj) == 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// A self-signed P-256 certificate for "localhost" and "*.example.com".
void make_cert(std::string* cert_pem, std::string* key_pem) {
  CHandle<EVP_PKEY, EVP_PKEY_free> key(EVP_EC_gen("P-256"));
  CHandle<X509, X509_free> x(X509_new());
  check(key && x);
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600L * 24 * 365);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"),
                             -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  check(X509_sign(x.get(), key.get(), EVP_sha256()) != 0);
  *cert_pem = to_pem([](BIO* b, void* o) { return PEM_write_bio_X509(b, static_cast<X509*>(o)); }, x.get());
  *key_pem = to_pem(
      [](BIO* b, void* o) {
        return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(o), nullptr, nullptr, 0, nullptr, nullptr);
      },
      key.get());
}

struct Fixture {
  event_base* base = nullptr;
  std::shared_ptr<const wtls::ContextSet> set;

  Fixture() {
    base = event_base_new();
    auto cfg = std::make_shared<huginn::config::Config>();
    cfg->tls.emplace();
    cfg->tls->cert_path = "/default.crt";
    cfg->tls->key_path = "/default.key";
    huginn::config::Domain d;
    d.host = "*.example.com";
    d.cert_path = "/default.crt";
    d.key_path = "/default.key";
    d.client_ca_path = "/default.crt";  // mTLS on the wildcard domain
    cfg->domains.push_back(d);
    auto bundle = std::make_shared<huginn::tls::Bundle>();
    std::string cert, key;
    make_cert(&cert, &key);
    bundle->files = {{"/default.crt", cert}, {"/default.key", key}};
    huginn::tls::TicketKey k;
    RAND_bytes(k.name.data(), 16);
    RAND_bytes(k.aes_key.data(), 32);
    RAND_bytes(k.hmac_key.data(), 32);
    bundle->ticket_keys = {k};
    std::string err;
    set = wtls::ContextSet::build(cfg, bundle, &err);
    check(set != nullptr);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fx = new Fixture();  // built once, never destroyed (libFuzzer style)
  size = std::min<size_t>(size, 128 * 1024);

  int sv[2];
  check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  huginn::sys::UniqueFd client(sv[1]);
  // The first (size % 7) bytes reach the acceptor as initial_bytes (as after
  // a PROXY header), the rest through the socket.
  const size_t initial = size % 7;
  for (size_t off = initial; off < size;) {
    const ssize_t w = ::send(client.get(), data + off, size - off, MSG_NOSIGNAL);
    if (w <= 0) break;  // buffer full: the rest is simply not sent
    off += static_cast<size_t>(w);
  }
  ::shutdown(client.get(), SHUT_WR);

  int callbacks = 0;
  wtls::AcceptOptions opts;
  opts.deadline_ms = 2000;
  opts.initial_bytes.assign(data, data + initial);
  huginn::worker::net::ClientInfo info;
  auto acc = wtls::Acceptor::start(
      fx->base, huginn::sys::UniqueFd(sv[0]), fx->set, opts, info,
      [&](huginn::worker::net::BufferEventPtr bev, huginn::worker::net::ClientInfo got) {
        ++callbacks;
        check(bev != nullptr && got.tls);
        if (const auto ja4 = got.fingerprints.get(huginn::worker::proxy::ConnectionFingerprints::kJa4))
          check(ja4->size() == 36);
      },
      [&](const std::string& reason) {
        ++callbacks;
        check(!reason.empty());
      });
  check(acc != nullptr);
  char sink[4096];
  while (callbacks == 0) {
    event_base_loop(fx->base, EVLOOP_ONCE);
    while (::recv(client.get(), sink, sizeof(sink), 0) > 0) {
    }
  }
  check(callbacks == 1 && acc->finished());
  return 0;
}
