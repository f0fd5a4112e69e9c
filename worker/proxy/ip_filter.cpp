#include "worker/proxy/ip_filter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace huginn::worker::proxy {
namespace {

template <typename T>
void merge_ranges(std::vector<std::pair<T, T>>* ranges) {
  auto& r = *ranges;
  std::sort(r.begin(), r.end());
  std::vector<std::pair<T, T>> out;
  for (const auto& x : r) {
    // Merge overlapping and adjacent ranges (guard the +1 against wrap-around).
    if (!out.empty() && (x.first <= out.back().second ||
                         (out.back().second != static_cast<T>(~T{0}) && x.first == out.back().second + 1))) {
      out.back().second = std::max(out.back().second, x.second);
    } else {
      out.push_back(x);
    }
  }
  r = std::move(out);
}

template <typename T>
bool in_ranges(const std::vector<std::pair<T, T>>& r, T v) {
  // First range starting after v; the one before it is the only candidate.
  auto it =
      std::upper_bound(r.begin(), r.end(), v, [](T x, const std::pair<T, T>& p) { return x < p.first; });
  if (it == r.begin()) return false;
  --it;
  return v <= it->second;
}

template <typename T>
T load_be(const uint8_t* p, size_t n) {
  T v = 0;
  for (size_t i = 0; i < n; ++i) v = static_cast<T>((v << 8) | p[i]);
  return v;
}

// The closed range of a prefix; T is exactly as wide as the address.
template <typename T>
std::pair<T, T> range_of(const uint8_t* addr, unsigned prefix_len) {
  constexpr unsigned kBits = sizeof(T) * 8;
  const T base = load_be<T>(addr, sizeof(T));
  const T host_mask = prefix_len >= kBits ? T{0}
                      : prefix_len == 0   ? static_cast<T>(~T{0})
                                          : static_cast<T>((T{1} << (kBits - prefix_len)) - 1);
  const T first = static_cast<T>(base & ~host_mask);
  return {first, static_cast<T>(first | host_mask)};
}

}  // namespace

PrefixSet::PrefixSet(const std::vector<huginn::net::Cidr>& cidrs) {
  for (const auto& c : cidrs) {
    if (c.family == AF_INET) {
      v4_.push_back(range_of<uint32_t>(c.addr.data(), c.prefix_len));
    } else if (c.family == AF_INET6) {
      v6_.push_back(range_of<U128>(c.addr.data(), c.prefix_len));
    }
  }
  merge_ranges(&v4_);
  merge_ranges(&v6_);
}

bool PrefixSet::contains(const huginn::net::SocketAddress& addr) const {
  const huginn::net::SocketAddress a = addr.normalized();
  const std::string_view b = a.addr_bytes();
  const auto* p = reinterpret_cast<const uint8_t*>(b.data());
  if (a.is_v4() && b.size() == 4) return in_ranges(v4_, load_be<uint32_t>(p, 4));
  if (a.is_v6() && b.size() == 16) return in_ranges(v6_, load_be<U128>(p, 16));
  return false;
}

IpFilterSet::IpFilterSet(const config::Config& cfg) {
  auto add = [this](const config::IpFilter& f) {
    const auto& list = f.mode == config::IpFilter::Mode::kAllowlist ? f.allowlist : f.denylist;
    compiled_.emplace(&f, PrefixSet(list));
  };
  add(cfg.security.ip_filter);
  for (const auto& d : cfg.domains) {
    if (d.security.ip_filter) add(*d.security.ip_filter);
    for (const auto& r : d.routes)
      if (r.security.ip_filter) add(*r.security.ip_filter);
  }
}

const config::IpFilter& IpFilterSet::effective(const config::Config& cfg, const config::Domain* domain,
                                               const config::Route* route) {
  if (route && route->security.ip_filter) return *route->security.ip_filter;
  if (domain && domain->security.ip_filter) return *domain->security.ip_filter;
  return cfg.security.ip_filter;
}

bool IpFilterSet::allows(const config::IpFilter& filter, const huginn::net::SocketAddress& peer) const {
  if (filter.mode == config::IpFilter::Mode::kDisabled) return true;
  const bool allowlist = filter.mode == config::IpFilter::Mode::kAllowlist;
  auto it = compiled_.find(&filter);
  // A block of another Config (not on the data path) is compiled on the spot.
  const bool listed = it != compiled_.end()
                          ? it->second.contains(peer)
                          : PrefixSet(allowlist ? filter.allowlist : filter.denylist).contains(peer);
  return allowlist ? listed : !listed;
}

}  // namespace huginn::worker::proxy
