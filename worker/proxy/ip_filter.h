// The IP filter (SPEC.md §8, `[security.ip_filter]` at global, domain and
// route scope): allowlist or denylist of IPv4/IPv6 CIDRs, 403 when a request
// is refused.
//
// Each list is compiled once per configuration into sorted, merged address
// ranges per family, so a check is a binary search (O(log n)) over integers,
// never a scan of strings. Pure: no I/O.
//
// Semantics (as upstream): `disabled` → every client passes; `allowlist` → a
// client passes iff its address is in some CIDR (an empty list refuses
// everyone); `denylist` → refused iff in some CIDR (empty: everyone passes).
// IPv4-mapped IPv6 peers are checked as IPv4. The address checked is the
// effective peer: the socket peer, or the PROXY-protocol source when that is
// on — never X-Forwarded-For.
//
// Scope: the route's block if the route has one, else the domain's, else the
// global one (each block replaces its parent as a whole). A request that
// matches no route is checked against the domain's (else global) block, so a
// refused client gets 403 rather than learning which paths exist (404).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/config/model.h"
#include "common/net/address.h"

namespace huginn::worker::proxy {

// A set of CIDRs as sorted, disjoint, non-adjacent closed ranges per family.
class PrefixSet {
 public:
  PrefixSet() = default;
  explicit PrefixSet(const std::vector<huginn::net::Cidr>& cidrs);
  bool contains(const huginn::net::SocketAddress& addr) const;  // addr normalised by the caller or not
  size_t ranges() const { return v4_.size() + v6_.size(); }

 private:
  using U128 = unsigned __int128;
  std::vector<std::pair<uint32_t, uint32_t>> v4_;
  std::vector<std::pair<U128, U128>> v6_;
};

class IpFilterSet {
 public:
  // Compiles every ip_filter block of `cfg`; `cfg` must outlive the set.
  explicit IpFilterSet(const config::Config& cfg);

  // The block that applies to a request of `domain` / `route` (either may be null).
  static const config::IpFilter& effective(const config::Config& cfg, const config::Domain* domain,
                                           const config::Route* route);

  // Whether `peer` passes `filter` (a block of the config this set was built from).
  bool allows(const config::IpFilter& filter, const huginn::net::SocketAddress& peer) const;

 private:
  std::unordered_map<const config::IpFilter*, PrefixSet> compiled_;
};

}  // namespace huginn::worker::proxy
