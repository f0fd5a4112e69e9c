#include "common/fingerprint/sha256.h"

#include <openssl/evp.h>

#include "common/sys/c_handle.h"

namespace huginn::fp {
namespace {

using MdCtx = sys::CHandle<EVP_MD_CTX, EVP_MD_CTX_free>;
using Md = sys::CHandle<EVP_MD, EVP_MD_free>;

// Fetched once: avoids OpenSSL 3's implicit fetch on every digest.
const EVP_MD* sha256_md() {
  static const Md md(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  return md ? md.get() : EVP_sha256();
}

// Returns false when OpenSSL fails (out of memory); `out` is then unset.
bool digest(std::string_view data, unsigned char (&out)[EVP_MAX_MD_SIZE], unsigned int& out_len) {
  thread_local MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  return EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx.get(), data.data(), data.size()) == 1 &&
         EVP_DigestFinal_ex(ctx.get(), out, &out_len) == 1;
}

std::string to_hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 0x0f];
  }
  return s;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!digest(data, md, md_len)) return {};
  return to_hex(md, md_len);
}

std::string sha256_hex12(std::string_view data) {
  if (data.empty()) return std::string(12, '0');
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!digest(data, md, md_len) || md_len < 6) return {};
  return to_hex(md, 6);
}

}  // namespace huginn::fp
