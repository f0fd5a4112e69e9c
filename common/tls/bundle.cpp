#include "common/tls/bundle.h"

#include <set>

#include "common/ipc/wire.h"

namespace huginn::tls {
namespace {

// 'H' 'T' 'L' 'S' read as a little-endian u32.
constexpr uint32_t kMagic = 0x534C5448u;
constexpr uint32_t kFormatVersion = 1;
// Smallest encoding of one file entry (u16 path_len + u32 pem_len) and of one key.
constexpr size_t kMinFileEntry = 2 + 4;
constexpr size_t kTicketKeySize = 16 + 32 + 32;

bool fail(std::string* error, std::string why) {
  if (error) *error = "TLS material: " + std::move(why);
  return false;
}

}  // namespace

std::string check(const Bundle& b) {
  if (b.files.size() > kMaxBundleFiles) return "too many files (" + std::to_string(b.files.size()) + ")";
  if (b.ticket_keys.size() > kMaxTicketKeys)
    return "too many ticket keys (" + std::to_string(b.ticket_keys.size()) + ")";
  std::set<std::string_view> seen;
  size_t total = 4 + 4 + 8 + 4 + 2 + 2 + b.ticket_keys.size() * kTicketKeySize;
  for (const auto& f : b.files) {
    if (f.path.empty() || f.path.size() > kMaxPathLength)
      return "bad path length " + std::to_string(f.path.size());
    if (f.pem.size() > kMaxPemSize) return f.path + ": over " + std::to_string(kMaxPemSize) + " bytes";
    if (!seen.insert(f.path).second) return "duplicate file " + f.path;
    total += kMinFileEntry + f.path.size() + f.pem.size();
  }
  if (total > kMaxBundleSize) return "encoding over " + std::to_string(kMaxBundleSize) + " bytes";
  return {};
}

std::string encode(const Bundle& b) {
  ipc::wire::Writer w;
  w.u32(kMagic);
  w.u32(kFormatVersion);
  w.u64(b.serial);
  w.u32(b.ticket_lifetime_secs);
  w.u16(static_cast<uint16_t>(b.files.size()));
  for (const auto& f : b.files) {
    w.str(f.path, kMaxPathLength);
    w.u32(static_cast<uint32_t>(f.pem.size()));
    w.bytes(reinterpret_cast<const uint8_t*>(f.pem.data()), f.pem.size());
  }
  w.u16(static_cast<uint16_t>(b.ticket_keys.size()));
  for (const auto& k : b.ticket_keys) {
    w.bytes(k.name.data(), k.name.size());
    w.bytes(k.aes_key.data(), k.aes_key.size());
    w.bytes(k.hmac_key.data(), k.hmac_key.size());
  }
  const auto& buf = w.buf();
  return std::string(buf.begin(), buf.end());
}

std::optional<Bundle> decode(std::string_view bytes, std::string* error) {
  if (bytes.size() > kMaxBundleSize) {
    fail(error, "encoding over " + std::to_string(kMaxBundleSize) + " bytes");
    return std::nullopt;
  }
  ipc::wire::Reader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  uint32_t magic = 0, version = 0;
  if (!r.u32(&magic) || magic != kMagic) {
    fail(error, "bad magic");
    return std::nullopt;
  }
  if (!r.u32(&version) || version != kFormatVersion) {
    fail(error,
         r.ok() ? "format version " + std::to_string(version) + ", expected " + std::to_string(kFormatVersion)
                : std::string("truncated header"));
    return std::nullopt;
  }
  Bundle b;
  uint16_t n_files = 0;
  if (!r.u64(&b.serial) || !r.u32(&b.ticket_lifetime_secs) || !r.u16(&n_files)) {
    fail(error, "truncated header");
    return std::nullopt;
  }
  if (n_files > kMaxBundleFiles || n_files > r.remaining() / kMinFileEntry) {
    fail(error, "file count " + std::to_string(n_files) + " over limit or past the end");
    return std::nullopt;
  }
  b.files.resize(n_files);
  std::set<std::string_view> seen;
  for (auto& f : b.files) {
    uint32_t pem_len = 0;
    if (!r.str(&f.path, kMaxPathLength) || !r.u32(&pem_len)) {
      fail(error, "truncated or oversized file entry");
      return std::nullopt;
    }
    if (f.path.empty()) {
      fail(error, "empty path");
      return std::nullopt;
    }
    if (pem_len > kMaxPemSize || pem_len > r.remaining()) {
      fail(error, f.path + ": length " + std::to_string(pem_len) + " over limit or past the end");
      return std::nullopt;
    }
    f.pem.resize(pem_len);
    r.bytes(reinterpret_cast<uint8_t*>(f.pem.data()), pem_len);
    if (!seen.insert(f.path).second) {
      fail(error, "duplicate file " + f.path);
      return std::nullopt;
    }
  }
  uint16_t n_keys = 0;
  if (!r.u16(&n_keys)) {
    fail(error, "truncated ticket key count");
    return std::nullopt;
  }
  if (n_keys > kMaxTicketKeys || n_keys > r.remaining() / kTicketKeySize) {
    fail(error, "ticket key count " + std::to_string(n_keys) + " over limit or past the end");
    return std::nullopt;
  }
  b.ticket_keys.resize(n_keys);
  for (auto& k : b.ticket_keys) {
    r.bytes(k.name.data(), k.name.size());
    r.bytes(k.aes_key.data(), k.aes_key.size());
    r.bytes(k.hmac_key.data(), k.hmac_key.size());
  }
  if (!r.done()) {
    fail(error, r.ok() ? "trailing bytes" : "truncated ticket keys");
    return std::nullopt;
  }
  return b;
}

}  // namespace huginn::tls
