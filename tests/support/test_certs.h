// A throw-away PKI for tests, generated with OpenSSL at run time: a root CA,
// an intermediate CA, an unrelated second CA, server certificates for given
// DNS names / IP addresses (wildcards allowed) and client certificates.
// Every certificate and key is written as PEM into one directory and also
// returned as bytes.
//
//   huginn::test::TestPki pki;                    // mkdtemp under $TMPDIR or /tmp, removed at destruction
//   auto srv = pki.server("localhost", {"localhost", "127.0.0.1"});
//   // srv.cert_path / srv.key_path for the config, pki.ca().cert_path for curl --cacert
//   auto cli = pki.client("alice", "alice");      // signed by pki.ca()
//   auto bad = pki.client("mallory", "mallory", /*from_other_ca=*/true);
#pragma once

#include <string>
#include <vector>

namespace huginn::test {

struct PemFiles {
  std::string cert_path;
  std::string key_path;
  std::string cert_pem;  // leaf first, then the chain (intermediate) when there is one
  std::string key_pem;
};

enum class KeyType { kEcP256, kRsa2048 };

class TestPki {
 public:
  // `dir` empty: a new directory from mkdtemp, removed by the destructor;
  // otherwise `dir` must exist and is left in place.
  explicit TestPki(std::string dir = {}, KeyType key_type = KeyType::kEcP256);
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& dir() const { return dir_; }
  const PemFiles& ca() const { return ca_; }              // root CA ("huginn test root CA")
  const PemFiles& other_ca() const { return other_ca_; }  // unrelated root CA

  // A server certificate (serverAuth) signed by the root CA, or by an
  // intermediate CA that the certificate file then carries after the leaf.
  // `names`: SAN entries; IP literals become IP SANs, anything else DNS
  // (e.g. "*.example.com"). Files: <stem>.crt, <stem>.key.
  PemFiles server(const std::string& stem, const std::vector<std::string>& names,
                  bool via_intermediate = false, KeyType key_type = KeyType::kEcP256);
  // A client certificate (clientAuth) with subject CN=<common_name>,O=huginn test.
  PemFiles client(const std::string& stem, const std::string& common_name, bool from_other_ca = false);

  // Writes `contents` to <dir>/<name> and returns the path.
  std::string write_file(const std::string& name, const std::string& contents) const;

 private:
  struct Impl;
  Impl* impl_;
  std::string dir_;
  bool owns_dir_ = false;
  PemFiles ca_;
  PemFiles other_ca_;
};

}  // namespace huginn::test
