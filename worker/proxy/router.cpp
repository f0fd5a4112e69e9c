#include "worker/proxy/router.h"

#include <algorithm>

namespace huginn::worker::proxy {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool is_unreserved(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
// RFC 3986 reg-name characters (unreserved, pct-encoded, sub-delims).
bool is_reg_name_char(char c) {
  if (is_unreserved(c)) return true;
  switch (c) {
    case '%':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

}  // namespace

std::optional<std::string> normalize_host(std::string_view a) {
  if (const size_t at = a.rfind('@'); at != std::string_view::npos) a.remove_prefix(at + 1);
  std::string_view host;
  std::string_view port;
  if (!a.empty() && a.front() == '[') {
    const size_t close = a.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = a.substr(1, close - 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
    if (host.empty()) return std::nullopt;
    for (char c : host)
      if (!(hex_value(c) >= 0 || c == ':' || c == '.')) return std::nullopt;
  } else {
    const size_t colon = a.find(':');
    host = a.substr(0, colon);
    if (colon != std::string_view::npos) port = a.substr(colon + 1);
    for (char c : host)
      if (!is_reg_name_char(c)) return std::nullopt;
  }
  for (char c : port)
    if (!is_digit(c)) return std::nullopt;
  std::string out;
  out.reserve(host.size());
  for (char c : host) out.push_back(lower(c));
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::string normalize_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return std::string(path);
  // 1. Decode %XX of unreserved characters; upper-case the hex of the others.
  std::string decoded;
  decoded.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%' && i + 2 < path.size() && hex_value(path[i + 1]) >= 0 && hex_value(path[i + 2]) >= 0) {
      const char v = static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
      if (is_unreserved(v)) {
        decoded.push_back(v);
      } else {
        decoded.push_back('%');
        decoded.push_back(static_cast<char>(path[i + 1] >= 'a' ? path[i + 1] - 32 : path[i + 1]));
        decoded.push_back(static_cast<char>(path[i + 2] >= 'a' ? path[i + 2] - 32 : path[i + 2]));
      }
      i += 2;
      continue;
    }
    decoded.push_back(c);
  }
  // 2. Segments: drop "" and ".", apply "..".
  std::vector<std::string_view> stack;
  std::string_view rest(decoded);
  bool trailing_slash = false;
  while (!rest.empty()) {
    rest.remove_prefix(1);  // the '/'
    const size_t next = rest.find('/');
    const std::string_view seg = rest.substr(0, next);
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
    const bool last = rest.empty();
    if (seg.empty() || seg == ".") {
      trailing_slash = last;
    } else if (seg == "..") {
      if (!stack.empty()) stack.pop_back();
      trailing_slash = last;
    } else {
      stack.push_back(seg);
      trailing_slash = false;
    }
  }
  std::string out;
  out.reserve(decoded.size());
  for (const auto& seg : stack) {
    out.push_back('/');
    out.append(seg);
  }
  if (out.empty() || trailing_slash) out.push_back('/');
  return out;
}

bool prefix_matches(std::string_view path, std::string_view prefix) {
  if (prefix.empty() || path.substr(0, prefix.size()) != prefix) return false;
  return prefix.back() == '/' || path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::string replace_prefix(std::string_view path, std::string_view prefix, std::string_view replacement) {
  std::string_view rest = path.substr(std::min(prefix.size(), path.size()));
  std::string out(replacement);
  // Join with exactly one '/': the rest keeps its leading '/', the replacement
  // loses a trailing one; a prefix ending in '/' consumed the boundary slash.
  if (!prefix.empty() && prefix.back() == '/' && !rest.empty() && rest.front() != '/') {
    while (!out.empty() && out.back() == '/') out.pop_back();
    out.push_back('/');
  } else if (!rest.empty() && rest.front() == '/') {
    while (!out.empty() && out.back() == '/') out.pop_back();
  }
  out.append(rest);
  if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  return out;
}

std::optional<TargetParts> split_target(std::string_view t) {
  TargetParts p;
  if (t == "*") {
    p.path = t;
    return p;
  }
  std::string_view pq;
  if (!t.empty() && t.front() == '/') {
    pq = t;
  } else {
    const size_t sep = t.find("://");
    if (sep == std::string_view::npos || sep == 0) return std::nullopt;
    for (size_t i = 0; i < sep; ++i)
      if (!(is_alpha(t[i]) || (i > 0 && (is_digit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.'))))
        return std::nullopt;
    std::string_view rest = t.substr(sep + 3);
    const size_t end = rest.find_first_of("/?#");
    p.authority = rest.substr(0, end);
    pq = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    p.absolute = true;
  }
  const size_t hash = pq.find('#');
  if (hash != std::string_view::npos) pq = pq.substr(0, hash);
  const size_t q = pq.find('?');
  p.path = pq.substr(0, q);
  if (q != std::string_view::npos) p.query = pq.substr(q);
  if (p.path.empty()) p.path = "/";
  return p;
}

Router::Router(const config::Config& cfg) : cfg_(cfg), health_(cfg.backends.size(), 1) {
  routes_.resize(cfg.domains.size());
  for (size_t i = 0; i < cfg.domains.size(); ++i) {
    const config::Domain& d = cfg.domains[i];
    if (!d.host) {
      if (!catch_all_) catch_all_ = i;
    } else if (d.host->size() > 2 && d.host->compare(0, 2, "*.") == 0) {
      wildcard_.emplace(d.host->substr(2), i);
    } else {
      exact_.emplace(*d.host, i);
    }
    auto& groups = routes_[i].groups;
    for (const auto& r : d.routes) {
      auto it =
          std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.prefix == r.prefix; });
      if (it == groups.end()) {
        groups.push_back(Group{r.prefix, {}, {}, 0});
        it = groups.end() - 1;
      }
      it->routes.push_back(&r);
      it->backends.push_back(cfg.find_backend(r.backend));
    }
    std::stable_sort(groups.begin(), groups.end(),
                     [](const Group& a, const Group& b) { return a.prefix.size() > b.prefix.size(); });
  }
}

const config::Domain* Router::match_domain(std::string_view host) const {
  const std::string key(host);
  if (auto it = exact_.find(key); it != exact_.end()) return &cfg_.domains[it->second];
  const size_t dot = host.find('.');
  if (dot != std::string_view::npos && dot > 0 && dot + 1 < host.size()) {
    if (auto it = wildcard_.find(std::string(host.substr(dot + 1))); it != wildcard_.end())
      return &cfg_.domains[it->second];
  }
  if (catch_all_) return &cfg_.domains[*catch_all_];
  return nullptr;
}

bool Router::set_health(std::span<const uint8_t> states) {
  if (states.size() != health_.size()) return false;
  health_.assign(states.begin(), states.end());
  return true;
}

Router::Decision Router::route(std::string_view host, std::string_view target) {
  Decision d;
  d.domain = match_domain(host);
  if (d.domain == nullptr) {
    d.outcome = Outcome::kMisdirected;
    return d;
  }
  d.outcome = Outcome::kNoRoute;
  const auto parts = split_target(target);
  if (!parts) return d;
  const std::string path = normalize_path(parts->path);
  auto& groups = routes_[static_cast<size_t>(d.domain - cfg_.domains.data())].groups;
  for (auto& g : groups) {
    if (!prefix_matches(path, g.prefix)) continue;
    // Round-robin from the group's position over the routes whose backend is
    // up; forwarded() moves the position past the one chosen.
    const size_t n = g.routes.size();
    const uint64_t start = g.next;
    size_t offset = 0;
    for (; offset < n; ++offset) {
      const config::Backend* b = g.backends[static_cast<size_t>((start + offset) % n)];
      if (b == nullptr || healthy(static_cast<size_t>(b - cfg_.backends.data()))) break;
    }
    if (offset == n) {  // every backend of the group is down
      d.route = g.routes[static_cast<size_t>(start % n)];
      d.outcome = Outcome::kUnhealthy;
      return d;
    }
    d.rr_position = &g.next;
    d.rr_next = start + offset + 1;
    const size_t pick = static_cast<size_t>((start + offset) % n);
    d.route = g.routes[pick];
    d.backend = g.backends[pick];
    if (d.backend == nullptr) {
      // A route without a backend answers 503 every time: its turn passes
      // at once, or the group would stay on it.
      g.next = d.rr_next;
      d.rr_position = nullptr;
      d.outcome = Outcome::kNoBackend;
      return d;
    }
    d.outcome = Outcome::kRouted;
    if (d.route->replace_path) {
      d.upstream_target = replace_prefix(path, g.prefix, *d.route->replace_path);
      d.upstream_target.append(parts->query);
    } else if (parts->absolute) {
      d.upstream_target.assign(parts->path);
      d.upstream_target.append(parts->query);
    } else {
      d.upstream_target.assign(target);
    }
    return d;
  }
  return d;
}

}  // namespace huginn::worker::proxy
