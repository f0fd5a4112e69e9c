// Request routing (SPEC.md §4): host → domain, path → route group → route.
//
// Pure: no I/O, no clocks. The only state is the round-robin position of each
// route group, which forwarded() moves. A Router refers to the Config it was
// built from; keep the Config alive as long as the Router.
//
//  * Host: the absolute-form authority if the request-target has one, else the
//    Host field; userinfo, port and IPv6 brackets removed, ASCII-lowercased,
//    one trailing dot removed.
//  * Domain: exact host, then one-label wildcard ("*.example.com" matches
//    "a.example.com", not "a.b.example.com" nor "example.com"), then the
//    catch-all domain; none → 421.
//  * Route: longest prefix matching on a path boundary, tested against the
//    normalised path; none → 404. A prefix ending in '/' matches everything
//    below it. Routes of one domain with the same prefix form a round-robin
//    group (declaration order). The group's position moves only when the
//    caller forwards the request (forwarded()): a request the proxy answers
//    itself (403, 429, ...) does not take a backend's turn. Otherwise a rate
//    limit that rejects every other request would send every forwarded one
//    to the same backend of two.
//  * Forwarded path: the client's bytes, unless the route has replace_path,
//    which replaces the matched prefix of the normalised path (query kept).
//  * Health (set_health, from the supervisor's HEALTH message): round-robin
//    skips routes whose backend is down; when every backend of the group is
//    down the outcome is kUnhealthy (→ 502). Every backend starts healthy.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config/model.h"

namespace huginn::worker::proxy {

// Routing host from an authority or Host value; nullopt if it contains bytes
// no host can contain (→ 400).
std::optional<std::string> normalize_host(std::string_view authority);

// Path normalisation for matching: percent-encoded unreserved characters
// decoded (other escapes kept, hex upper-cased), empty and "." segments
// dropped, ".." segments applied (never above the root). A path that does not
// start with '/' is returned unchanged.
std::string normalize_path(std::string_view path);

// `path` lies under `prefix` on a path boundary.
bool prefix_matches(std::string_view path, std::string_view prefix);

// replace_path: `replacement` takes the place of `prefix` at the start of
// `path` (which prefix_matches), joined with exactly one '/'.
std::string replace_prefix(std::string_view path, std::string_view prefix, std::string_view replacement);

struct TargetParts {
  std::string_view authority;  // absolute-form only
  std::string_view path;       // "/" for an absolute-form target without a path
  std::string_view query;      // from '?' (included) to the end; may be empty
  bool absolute = false;
};
// Splits an origin-form ("/p?q"), absolute-form ("http://h/p?q") or
// asterisk-form ("*") request-target; nullopt for anything else.
std::optional<TargetParts> split_target(std::string_view target);

class Router {
 public:
  explicit Router(const config::Config& cfg);

  // kNoBackend: the chosen route names a backend missing from the config;
  // kUnhealthy: every backend of the route group is down (`route` is set).
  enum class Outcome : uint8_t { kRouted, kMisdirected, kNoRoute, kNoBackend, kUnhealthy };
  struct Decision {
    Outcome outcome = Outcome::kMisdirected;
    const config::Domain* domain = nullptr;
    const config::Route* route = nullptr;
    const config::Backend* backend = nullptr;
    std::string upstream_target;  // what goes on the request line to the backend
    // Where forwarded() moves the group's round-robin position (null when
    // no route group was chosen). Valid while the Router lives.
    uint64_t* rr_position = nullptr;
    uint64_t rr_next = 0;
  };

  // `host` is already normalised (normalize_host); `target` is the raw
  // request-target.
  // Does not move the round-robin position: see forwarded().
  Decision route(std::string_view host, std::string_view target);
  // The request routed by `d` goes to its backend: the group's round-robin
  // position moves past the route chosen. Call it at most once per decision,
  // before the next route().
  static void forwarded(const Decision& d) {
    if (d.rr_position != nullptr) *d.rr_position = d.rr_next;
  }
  const config::Domain* match_domain(std::string_view host) const;

  // Backend states, one per Config::backends entry (1 healthy, 0 down); false
  // (nothing changes) when the count does not match the config.
  bool set_health(std::span<const uint8_t> states);
  bool healthy(size_t backend_index) const {
    return backend_index >= health_.size() || health_[backend_index] != 0;
  }

 private:
  struct Group {
    std::string prefix;
    std::vector<const config::Route*> routes;      // declaration order
    std::vector<const config::Backend*> backends;  // parallel to routes; null = not in the config
    uint64_t next = 0;                             // round-robin position
  };
  struct DomainRoutes {
    std::vector<Group> groups;  // longest prefix first
  };

  const config::Config& cfg_;
  std::unordered_map<std::string, size_t> exact_;     // host → domain index
  std::unordered_map<std::string, size_t> wildcard_;  // "example.com" (from "*.example.com") → index
  std::optional<size_t> catch_all_;
  std::vector<DomainRoutes> routes_;  // parallel to cfg_.domains
  std::vector<uint8_t> health_;       // parallel to cfg_.backends
};

}  // namespace huginn::worker::proxy
