// TOML → Config (SPEC.md §3): parse, apply defaults, validate, collect every error.
#include "common/config/loader.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <set>
#include <utility>

#include "common/config/reader.h"
#include "common/config/validate.h"
#include "common/ipc/helper_protocol.h"
#include "common/ipc/protocol.h"
#include "common/metrics/layout.h"

namespace huginn::config {

using detail::Ctx;
using detail::StringItem;
using detail::Table;

namespace {

constexpr size_t kMaxFileBytes = 4u << 20;
constexpr uint32_t kMaxWorkers = 256;

std::string quote(std::string_view s) { return valid::quoted(s); }

template <class E>
std::optional<E> enum_value(Table& t, std::string_view key,
                            std::initializer_list<std::pair<const char*, E>> values) {
  auto s = t.string(key);
  if (!s) return std::nullopt;
  for (const auto& [name, v] : values)
    if (*s == name) return v;
  std::string msg = "must be one of";
  bool first = true;
  for (const auto& [name, v] : values) {
    msg += first ? " " : ", ";
    msg += quote(name);
    first = false;
  }
  t.error(key, msg + "; got " + quote(*s));
  return std::nullopt;
}

// One `name`/`value` entry: name is an HTTP token (lowercased), value a valid field value.
std::optional<HeaderPair> header_pair(Table& e) {
  auto name = e.string("name");
  auto value = e.string("value");
  bool ok = true;
  if (!e.has("name")) {
    e.missing("name");
    ok = false;
  } else if (name && !valid::header_name(*name)) {
    e.error("name", "not a valid HTTP header name: " + quote(*name));
    ok = false;
  }
  if (!e.has("value")) {
    e.missing("value");
    ok = false;
  } else if (value && !valid::header_value(*value)) {
    e.error("value", "header value must not contain CR, LF, NUL or other control characters");
    ok = false;
  }
  if (!ok || !name || !value) return std::nullopt;
  return HeaderPair{valid::lower(*name), *value};
}

std::vector<HeaderPair> header_pairs(Table& t, std::string_view key) {
  std::vector<HeaderPair> out;
  auto entries = t.tables_with(key, {"name", "value"});
  if (!entries) return out;
  for (auto& e : *entries)
    if (auto p = header_pair(e)) out.push_back(std::move(*p));
  return out;
}

HeaderOps header_ops(Table& t) {
  HeaderOps ops;
  if (auto names = t.string_array("remove")) {
    for (const auto& n : *names) {
      if (!valid::header_name(n.value)) {
        t.error_at(n, "not a valid HTTP header name: " + quote(n.value));
        continue;
      }
      ops.remove.push_back(valid::lower(n.value));
    }
  }
  ops.add = header_pairs(t, "add");
  return ops;
}

HeaderRules header_rules(Table& parent) {
  HeaderRules rules;
  auto t = parent.table("headers");
  if (!t) return rules;
  if (auto r = t->table("request")) rules.request = header_ops(*r);
  if (auto r = t->table("response")) rules.response = header_ops(*r);
  return rules;
}

std::vector<net::Cidr> cidr_list(Ctx& ctx, Table& t, std::string_view key) {
  std::vector<net::Cidr> out;
  auto items = t.string_array(key);
  if (!items) return out;
  for (const auto& it : *items) {
    if (auto c = net::Cidr::parse(it.value)) {
      out.push_back(*c);
    } else {
      ctx.error(it.path, "not a valid IPv4/IPv6 address or CIDR prefix: " + quote(it.value), it.pos);
    }
  }
  return out;
}

IpFilter ip_filter(Ctx& ctx, Table& t) {
  IpFilter f;
  if (auto m = enum_value<IpFilter::Mode>(t, "mode",
                                          {{"disabled", IpFilter::Mode::kDisabled},
                                           {"allowlist", IpFilter::Mode::kAllowlist},
                                           {"denylist", IpFilter::Mode::kDenylist}}))
    f.mode = *m;
  f.allowlist = cidr_list(ctx, t, "allowlist");
  f.denylist = cidr_list(ctx, t, "denylist");
  return f;
}

RateLimit rate_limit(Table& t) {
  RateLimit r;
  t.set("enabled", r.enabled);
  t.set("requests_per_second", r.requests_per_second, 1, 100000000);
  t.set("burst", r.burst, 1, 100000000);
  t.set("window_seconds", r.window_seconds, 1, 86400);
  if (auto m = enum_value<RateLimit::LimitBy>(t, "limit_by",
                                              {{"ip", RateLimit::LimitBy::kIp},
                                               {"header", RateLimit::LimitBy::kHeader},
                                               {"route", RateLimit::LimitBy::kRoute},
                                               {"combined", RateLimit::LimitBy::kCombined}}))
    r.limit_by = *m;
  if (auto h = t.string("limit_by_header")) {
    if (!valid::header_name(*h)) {
      t.error("limit_by_header", "not a valid HTTP header name: " + quote(*h));
    } else {
      r.limit_by_header = valid::lower(*h);
    }
  }
  if (r.limit_by == RateLimit::LimitBy::kHeader && r.limit_by_header.empty() && !t.has("limit_by_header"))
    t.error("limit_by", "limit_by = \"header\" needs limit_by_header");
  return r;
}

SecurityHeaders security_headers(Table& t) {
  SecurityHeaders h;
  h.custom = header_pairs(t, "custom");
  if (auto hsts = t.table("hsts")) {
    hsts->set("enabled", h.hsts.enabled);
    hsts->set("max_age", h.hsts.max_age, 0, INT64_MAX);
    hsts->set("include_subdomains", h.hsts.include_subdomains);
    hsts->set("preload", h.hsts.preload);
  }
  if (auto csp = t.table("csp")) {
    csp->set("enabled", h.csp.enabled);
    if (auto p = csp->string("policy")) {
      if (p->empty()) {
        csp->error("policy", "must not be empty");
      } else if (!valid::header_value(*p)) {
        csp->error("policy", "must not contain CR, LF, NUL or other control characters");
      } else {
        h.csp.policy = *p;
      }
    }
  }
  return h;
}

ScopedSecurity scoped_security(Ctx& ctx, Table& parent) {
  ScopedSecurity s;
  auto t = parent.table("security");
  if (!t) return s;
  if (auto f = t->table("ip_filter")) s.ip_filter = ip_filter(ctx, *f);
  if (auto r = t->table("rate_limit")) s.rate_limit = rate_limit(*r);
  if (auto h = t->table("headers")) s.headers = security_headers(*h);
  return s;
}

void parse_listen(Ctx& ctx, Table& root, Config& cfg) {
  auto t = root.table("listen");
  if (!t) {
    if (!root.has("listen")) ctx.error("listen", "the [listen] table is required", SourcePos{1, 1});
    return;
  }
  auto add_addrs = [&](const char* key, std::vector<net::SocketAddress>& out) {
    auto addrs = t->string_array(key);
    if (!addrs) return -1;
    for (const auto& a : *addrs) {
      auto sa = net::SocketAddress::parse(a.value);
      if (!sa) {
        ctx.error(a.path, "not a numeric socket address (\"1.2.3.4:80\" or \"[::1]:80\"): " + quote(a.value),
                  a.pos);
        continue;
      }
      auto seen = [&](const std::vector<net::SocketAddress>& v) {
        return std::find(v.begin(), v.end(), *sa) != v.end();
      };
      if (sa->port() != 0 && (seen(cfg.listen.addrs) || seen(cfg.listen.cleartext_addrs))) {
        ctx.error(a.path, "duplicate listen address " + quote(a.value), a.pos);
        continue;
      }
      out.push_back(*sa);
    }
    return static_cast<int>(addrs->size());
  };
  const int n_addrs = add_addrs("addrs", cfg.listen.addrs);
  const int n_clear = add_addrs("cleartext_addrs", cfg.listen.cleartext_addrs);
  if (!t->has("addrs") && !t->has("cleartext_addrs")) {
    t->missing("addrs");
  } else if (n_addrs == 0 && n_clear <= 0) {
    t->error("addrs", "must list at least one address");
  }
  t->set("tcp_backlog", cfg.listen.tcp_backlog, 1, 65535);
  if (auto pp = t->table("proxy_protocol")) {
    if (auto m = enum_value<ProxyProtocol::Mode>(*pp, "mode",
                                                 {{"off", ProxyProtocol::Mode::kOff},
                                                  {"optional", ProxyProtocol::Mode::kOptional},
                                                  {"require", ProxyProtocol::Mode::kRequire}}))
      cfg.listen.proxy_protocol.mode = *m;
    pp->set("header_timeout_ms", cfg.listen.proxy_protocol.header_timeout_ms, 1, 60000);
  }
}

void parse_backends(Table& root, Config& cfg) {
  std::set<std::string> seen;
  for (auto& b : root.tables("backends")) {
    Backend be;
    be.pos = b.pos();
    if (auto a = b.string("address")) {
      be.pos = b.pos("address");
      std::string err;
      if (!valid::split_host_port(*a, be.host, be.port, err)) {
        b.error("address", err + ": " + quote(*a));
      } else if (!seen.insert(*a).second) {
        b.error("address", "duplicate backend " + quote(*a));
      } else {
        be.address = *a;
      }
    } else if (!b.has("address")) {
      b.missing("address");
    }
    if (auto v = enum_value<HttpVersion>(b, "http_version",
                                         {{"http11", HttpVersion::kHttp11},
                                          {"http2", HttpVersion::kHttp2},
                                          {"preserve", HttpVersion::kPreserve}}))
      be.http_version = *v;
    if (auto hc = b.table("health_check")) {
      HealthCheck h;
      if (auto ty = enum_value<HealthCheck::Type>(
              *hc, "type", {{"tcp", HealthCheck::Type::kTcp}, {"http", HealthCheck::Type::kHttp}}))
        h.type = *ty;
      const bool http = h.type == HealthCheck::Type::kHttp;
      if (auto p = hc->string("path")) {
        if (!http) {
          hc->error("path", "only valid with type = \"http\"");
        } else if (!valid::request_target(*p)) {
          hc->error("path",
                    "must start with '/' and contain no spaces, '#' or control characters: " + quote(*p));
        } else {
          h.path = *p;
        }
      } else if (http && !hc->has("path")) {
        hc->missing("path");
      }
      if (hc->has("expected_status") && !http) {
        hc->error("expected_status", "only valid with type = \"http\"");
      } else {
        hc->set("expected_status", h.expected_status, 100, 599);
      }
      hc->set("interval_secs", h.interval_secs, 1, 86400);
      hc->set("timeout_secs", h.timeout_secs, 1, 86400);
      hc->set("unhealthy_threshold", h.unhealthy_threshold, 1, 1000);
      hc->set("healthy_threshold", h.healthy_threshold, 1, 1000);
      if (h.timeout_secs > h.interval_secs)
        hc->error(hc->has("timeout_secs") ? "timeout_secs" : "interval_secs",
                  "timeout_secs (" + std::to_string(h.timeout_secs) + ") must not exceed interval_secs (" +
                      std::to_string(h.interval_secs) + ")");
      be.health_check = h;
    }
    cfg.backends.push_back(std::move(be));
  }
  static_assert(kMaxBackends <= ipc::kMaxHealthEntries);
  if (cfg.backends.size() > kMaxBackends)
    root.error("backends", "at most " + std::to_string(kMaxBackends) + " [[backends]] entries, found " +
                               std::to_string(cfg.backends.size()));
}

void parse_domains(Ctx& ctx, Table& root, Config& cfg, bool have_tls) {
  std::set<std::string> hosts;
  bool have_catch_all = false;
  for (auto& d : root.tables("domains")) {
    Domain dom;
    dom.pos = d.pos();
    if (auto h = d.string("host")) {
      dom.pos = d.pos("host");
      std::string norm, err;
      if (!valid::domain_host(*h, norm, err)) {
        d.error("host", err + ": " + quote(*h));
      } else if (!hosts.insert(norm).second) {
        d.error("host", "duplicate domain " + quote(norm));
      } else {
        dom.host = norm;
      }
    } else if (!d.has("host")) {
      if (have_catch_all) {
        ctx.error(d.path(), "more than one catch-all domain (a [[domains]] entry without host)", d.pos());
      }
      have_catch_all = true;
    }
    auto path_key = [&](const char* key, std::string& out) {
      if (auto p = d.string(key)) {
        if (p->empty()) {
          d.error(key, "must not be empty");
        } else {
          out = *p;
        }
      }
    };
    path_key("cert_path", dom.cert_path);
    path_key("key_path", dom.key_path);
    path_key("client_ca_path", dom.client_ca_path);
    if (!dom.cert_path.empty() && dom.key_path.empty() && !d.has("key_path"))
      d.error("cert_path", "cert_path needs key_path");
    if (!dom.key_path.empty() && dom.cert_path.empty() && !d.has("cert_path"))
      d.error("key_path", "key_path needs cert_path");
    if (!dom.client_ca_path.empty() && (!d.has("cert_path") || !d.has("key_path")))
      d.error("client_ca_path",
              "client_ca_path (mutual TLS) needs cert_path and key_path on the same domain");
    if (!have_tls && (d.has("cert_path") || d.has("key_path")))
      d.error(d.has("cert_path") ? "cert_path" : "key_path", "a certificate needs a [tls] section");
    if (auto f = d.boolean("fingerprinting")) dom.fingerprinting = *f;
    dom.headers = header_rules(d);
    dom.security = scoped_security(ctx, d);
    for (auto& r : d.tables("routes")) {
      Route route;
      route.pos = r.pos();
      if (auto p = r.string("prefix")) {
        route.pos = r.pos("prefix");
        if (!valid::path_prefix(*p)) {
          r.error("prefix",
                  "must start with '/' and contain no spaces, '?', '#' or control characters: " + quote(*p));
        } else {
          route.prefix = *p;
        }
      } else if (!r.has("prefix")) {
        r.missing("prefix");
      }
      if (auto b = r.string("backend")) {
        if (cfg.find_backend(*b) == nullptr) {
          r.error("backend", "no [[backends]] entry " + quote(*b));
        } else {
          route.backend = *b;
        }
      } else if (!r.has("backend")) {
        r.missing("backend");
      }
      if (auto f = r.boolean("fingerprinting")) route.fingerprinting = *f;
      r.set("force_new_connection", route.force_new_connection);
      if (auto rp = r.string("replace_path")) {
        if (!rp->empty() && !valid::path_prefix(*rp)) {
          r.error("replace_path",
                  "must be empty or start with '/' and contain no spaces, '?', '#' or control "
                  "characters: " +
                      quote(*rp));
        } else {
          route.replace_path = *rp;
        }
      }
      route.security = scoped_security(ctx, r);
      route.headers = header_rules(r);
      dom.routes.push_back(std::move(route));
    }
    cfg.domains.push_back(std::move(dom));
  }
  static_assert(kMaxRoutes < metrics::kMaxRouteSlots);  // plus the "no route" section
  size_t routes = 0;
  for (const auto& d : cfg.domains) routes += d.routes.size();
  if (routes > kMaxRoutes)
    root.error("domains", "at most " + std::to_string(kMaxRoutes) + " routes over all domains, found " +
                              std::to_string(routes));
}

void parse_security(Ctx& ctx, Table& root, Config& cfg) {
  auto t = root.table("security");
  if (!t) return;
  auto& s = cfg.security;
  t->set("max_connections", s.max_connections, 1, 10000000);
  if (auto tp = t->table("trusted_proxies")) {
    s.trusted_proxies.cidrs = cidr_list(ctx, *tp, "cidrs");
    tp->set("insecure", s.trusted_proxies.insecure);
  }
  if (auto f = t->table("ip_filter")) s.ip_filter = ip_filter(ctx, *f);
  if (auto r = t->table("rate_limit")) s.rate_limit = rate_limit(*r);
  if (auto h = t->table("headers")) s.headers = security_headers(*h);
}

// OpenSSL separates list entries with ':'; a name must be a single plain token.
void tls_name_list(Ctx& ctx, Table& t, std::string_view key, std::vector<std::string>& out) {
  auto items = t.string_array(key);
  if (!items) return;
  std::set<std::string> seen;
  for (const auto& it : *items) {
    if (!valid::tls_name(it.value)) {
      ctx.error(it.path, "not a valid name: " + quote(it.value), it.pos);
    } else if (!seen.insert(it.value).second) {
      ctx.error(it.path, "duplicate entry " + quote(it.value), it.pos);
    } else {
      out.push_back(it.value);
    }
  }
}

int version_rank(const std::string& v) { return v == "1.2" ? 2 : 3; }

void parse_tls(Ctx& ctx, Table& root, Config& cfg, bool any_domain_cert) {
  auto t = root.table("tls");
  if (!t) return;
  Tls tls;
  tls.pos = t->pos();
  if (auto alpn = t->string_array("alpn")) {
    tls.alpn.clear();
    for (const auto& a : *alpn) {
      if (a.value != "h2" && a.value != "http/1.1") {
        ctx.error(a.path, "must be \"h2\" or \"http/1.1\"; got " + quote(a.value), a.pos);
      } else if (std::find(tls.alpn.begin(), tls.alpn.end(), a.value) != tls.alpn.end()) {
        ctx.error(a.path, "duplicate entry " + quote(a.value), a.pos);
      } else {
        tls.alpn.push_back(a.value);
      }
    }
  }
  t->set("cert_path", tls.cert_path);
  t->set("key_path", tls.key_path);
  if (t->has("cert_path") && tls.cert_path.empty()) t->error("cert_path", "must not be empty");
  if (t->has("key_path") && tls.key_path.empty()) t->error("key_path", "must not be empty");
  if (t->has("cert_path") && !t->has("key_path")) t->error("cert_path", "cert_path needs key_path");
  if (t->has("key_path") && !t->has("cert_path")) t->error("key_path", "key_path needs cert_path");
  if (!t->has("cert_path") && !t->has("key_path") && !any_domain_cert)
    ctx.error("tls",
              "[tls] needs a certificate: set [tls] cert_path/key_path or a domain's cert_path/key_path",
              t->pos());
  if (auto o = t->table("options")) {
    auto& opt = tls.options;
    auto version = [&](std::string_view key) -> std::optional<std::string> {
      auto v = o->string(key);
      if (!v) return std::nullopt;
      if (*v != "1.2" && *v != "1.3") {
        o->error(key, "must be \"1.2\" or \"1.3\"; got " + quote(*v));
        return std::nullopt;
      }
      return v;
    };
    if (auto vs = o->string_array("versions")) {
      for (const auto& v : *vs) {
        if (v.value != "1.2" && v.value != "1.3") {
          ctx.error(v.path, "must be \"1.2\" or \"1.3\"; got " + quote(v.value), v.pos);
        } else if (std::find(opt.versions.begin(), opt.versions.end(), v.value) != opt.versions.end()) {
          ctx.error(v.path, "duplicate entry " + quote(v.value), v.pos);
        } else {
          opt.versions.push_back(v.value);
        }
      }
      std::sort(opt.versions.begin(), opt.versions.end());
    }
    opt.min_version = version("min_version");
    opt.max_version = version("max_version");
    if (o->has("versions") && (o->has("min_version") || o->has("max_version")))
      o->error(o->has("min_version") ? "min_version" : "max_version",
               "versions and min_version/max_version are mutually exclusive");
    if (opt.min_version && opt.max_version && version_rank(*opt.min_version) > version_rank(*opt.max_version))
      o->error("min_version",
               "min_version " + *opt.min_version + " is above max_version " + *opt.max_version);
    tls_name_list(ctx, *o, "cipher_suites", opt.cipher_suites);
    tls_name_list(ctx, *o, "curve_preferences", opt.curve_preferences);
    o->set("sni_strict", opt.sni_strict);
  }
  if (auto sr = t->table("session_resumption")) sr->set("enabled", tls.session_resumption_enabled);
  cfg.tls = std::move(tls);
}

void parse_fingerprint(Table& root, Config& cfg) {
  auto t = root.table("fingerprint");
  if (!t) return;
  auto& f = cfg.fingerprint;
  t->set("tls_enabled", f.tls_enabled);
  t->set("http_enabled", f.http_enabled);
  t->set("tcp_enabled", f.tcp_enabled);
  if (auto s = enum_value<Fingerprint::TcpSource>(*t, "tcp_source",
                                                  {{"xdp", Fingerprint::TcpSource::kXdp},
                                                   {"saved_syn", Fingerprint::TcpSource::kSavedSyn},
                                                   {"auto", Fingerprint::TcpSource::kAuto}}))
    f.tcp_source = *s;
  t->set("max_capture", f.max_capture, 1024, 16 << 20);
  auto h = t->table("headers");
  if (!h) return;
  std::pair<const char*, std::string*> names[] = {
      {"ja4", &f.headers.ja4},       {"ja4_r", &f.headers.ja4_r},   {"ja4_o", &f.headers.ja4_o},
      {"ja4_or", &f.headers.ja4_or}, {"akamai", &f.headers.akamai}, {"tcp", &f.headers.tcp},
  };
  for (auto& [key, out] : names) {
    auto v = h->string(key);
    if (!v) continue;
    if (!valid::header_name(*v)) {
      h->error(key, "not a valid HTTP header name: " + quote(*v));
    } else if (valid::reserved_header(valid::lower(*v))) {
      h->error(key, quote(*v) + " is a header the proxy manages itself");
    } else {
      *out = valid::lower(*v);
    }
  }
  // Unique across the six, reported on the later key.
  for (size_t i = 0; i < std::size(names); ++i)
    for (size_t j = 0; j < i; ++j)
      if (*names[i].second == *names[j].second)
        h->error(names[i].first, "header name " + quote(*names[i].second) + " is already used by " +
                                     std::string(names[j].first));
}

void parse_timeout(Table& root, Config& cfg) {
  auto t = root.table("timeout");
  if (!t) return;
  auto& to = cfg.timeout;
  t->set("upstream_connect_ms", to.upstream_connect_ms, 1, 600000);
  t->set("upstream_response_secs", to.upstream_response_secs, 1, 86400);
  t->set("proxy_idle_ms", to.proxy_idle_ms, 1, 86400000);
  t->set("request_header_ms", to.request_header_ms, 1, 3600000);
  t->set("tls_handshake_secs", to.tls_handshake_secs, 1, 3600);
  if (auto v = t->integer("connection_handling_secs", 0, UINT32_MAX))
    to.connection_handling_secs = static_cast<uint32_t>(*v);
  t->set("shutdown_secs", to.shutdown_secs, 0, 86400);
  if (auto ka = t->table("keep_alive")) {
    ka->set("enabled", to.keep_alive.enabled);
    ka->set("upstream_idle_timeout", to.keep_alive.upstream_idle_timeout, 1, 86400);
  }
}

void parse_misc(Ctx& ctx, Table& root, Config& cfg) {
  if (auto t = root.table("backend_pool")) {
    t->set("enabled", cfg.backend_pool.enabled);
    t->set("idle_timeout", cfg.backend_pool.idle_timeout, 1, 86400);
    t->set("pool_max_idle_per_host", cfg.backend_pool.pool_max_idle_per_host, 0, 65535);
  }
  if (auto t = root.table("limits")) {
    t->set("max_header_bytes", cfg.limits.max_header_bytes, 1024, 1 << 20);
    t->set("max_headers", cfg.limits.max_headers, 1, 1000);
    t->set("h2_max_concurrent_streams", cfg.limits.h2_max_concurrent_streams, 1, 10000);
  }
  if (auto t = root.table("telemetry")) {
    if (auto p = t->integer("metrics_port", 1, 65535)) cfg.telemetry.metrics_port = static_cast<uint16_t>(*p);
    if (auto a = t->string("metrics_address")) {
      if (!valid::ip_literal(*a, AF_UNSPEC)) {
        t->error("metrics_address", "not an IPv4 or IPv6 address: " + quote(*a));
      } else {
        cfg.telemetry.metrics_address = *a;
      }
    }
    if (auto l = enum_value<std::string>(*t, "otel_log_level",
                                         {{"off", "off"},
                                          {"error", "error"},
                                          {"warn", "warn"},
                                          {"info", "info"},
                                          {"debug", "debug"},
                                          {"trace", "trace"}}))
      cfg.telemetry.otel_log_level = *l;
  }
  if (auto t = root.table("logging")) {
    if (auto l = enum_value<std::string>(
            *t, "level",
            {{"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}}))
      cfg.logging.level = *l;
    t->set("show_target", cfg.logging.show_target);
    if (auto f = enum_value<std::string>(*t, "format", {{"text", "text"}, {"json", "json"}}))
      cfg.logging.format = *f;
    t->set("access_log", cfg.logging.access_log);
  }
  if (auto t = root.table("reload")) {
    t->set("watch", cfg.reload.watch);
    t->set("debounce_secs", cfg.reload.debounce_secs, 0, 86400);
  }
  if (auto t = root.table("ebpf")) {
    auto& e = cfg.ebpf;
    // The helper's own limits (common/ipc/helper_protocol.h) are checked here so that a
    // config the helper would refuse is refused at load time, with a position.
    if (auto ifs = t->string_array("interfaces")) {
      if (ifs->size() > ipc::helper::kMaxIfaces)
        t->error("interfaces", "at most " + std::to_string(ipc::helper::kMaxIfaces) + " interfaces");
      for (const auto& i : *ifs) {
        if (!ipc::helper::valid_interface_name(i.value)) {
          ctx.error(i.path, "not a valid interface name: " + quote(i.value), i.pos);
        } else if (std::find(e.interfaces.begin(), e.interfaces.end(), i.value) != e.interfaces.end()) {
          ctx.error(i.path, "duplicate interface " + quote(i.value), i.pos);
        } else {
          e.interfaces.push_back(i.value);
        }
      }
    }
    if (auto m = enum_value<std::string>(*t, "xdp_mode", {{"native", "native"}, {"skb", "skb"}}))
      e.xdp_mode = *m;
    if (auto a = t->string("dst_ipv4")) {
      if (!valid::ip_literal(*a, AF_INET)) {
        t->error("dst_ipv4", "not an IPv4 address: " + quote(*a));
      } else {
        e.dst_ipv4 = *a;
      }
    }
    if (auto a = t->string("dst_ipv6")) {
      if (!valid::ip_literal(*a, AF_INET6)) {
        t->error("dst_ipv6", "not an IPv6 address: " + quote(*a));
      } else {
        e.dst_ipv6 = *a;
      }
    }
    if (auto ports = t->integer_array("ports", 1, 65535)) {
      if (ports->size() > ipc::helper::kMaxPorts)
        t->error("ports", "at most " + std::to_string(ipc::helper::kMaxPorts) + " ports");
      for (const auto& [p, pos] : *ports) {
        const auto port = static_cast<uint16_t>(p);
        if (std::find(e.ports.begin(), e.ports.end(), port) != e.ports.end()) {
          ctx.error(t->key_path("ports"), "duplicate port " + std::to_string(p), pos);
        } else {
          e.ports.push_back(port);
        }
      }
    }
    if (auto p = t->string("pin_path")) {
      if (!ipc::helper::valid_pin_path(*p)) {
        t->error("pin_path", "must be an absolute path of at most " +
                                 std::to_string(ipc::helper::kMaxPinPath) +
                                 " bytes without \".\" or \"..\" components: " + quote(*p));
      } else {
        e.pin_path = *p;
      }
    }
    t->set("syn_map_max_entries", e.syn_map_max_entries, 1, ipc::helper::kMaxMapEntries);
  }
  if (auto t = root.table("dbus")) {
    if (auto b = t->string("bus")) {
      if (*b != "system" && *b != "session" && *b != "none" && !valid::dbus_address(*b)) {
        t->error("bus",
                 "must be \"system\", \"session\", \"none\" or a D-Bus address (\"unix:path=...\"); got " +
                     quote(*b));
      } else {
        cfg.dbus.bus = *b;
      }
    }
  }
}

// worker_cpu_affinity = "off" | "auto" | ["0-1", "2", ...] (one CPU list per
// worker, reused in turn when there are more workers than lists).
void parse_cpu_affinity(Table& root, Config& cfg) {
  constexpr const char* kKey = "worker_cpu_affinity";
  const toml::node* n = root.node(kKey);
  if (n == nullptr) return;
  auto& a = cfg.worker_cpu_affinity;
  if (n->is_string()) {
    const std::optional<std::string> s = root.string(kKey);  // nullopt: NUL inside, reported
    if (!s) return;
    const std::string& v = *s;
    if (v == "off") {
      a.mode = CpuAffinity::Mode::kOff;
    } else if (v == "auto") {
      a.mode = CpuAffinity::Mode::kAuto;
    } else {
      root.error(kKey,
                 "must be \"off\", \"auto\" or an array of CPU lists (\"0-3\", \"4,6\"); got " + quote(v));
    }
    return;
  }
  if (!n->is_array()) {
    root.error(kKey,
               std::string("expected a string or an array of strings, got ") + detail::type_name(n->type()));
    return;
  }
  auto items = root.string_array(kKey);
  if (!items) return;
  if (items->empty() || items->size() > kMaxWorkers) {
    root.error(kKey, "must hold 1 to " + std::to_string(kMaxWorkers) + " CPU lists");
    return;
  }
  std::vector<std::vector<uint32_t>> lists;
  for (const auto& it : *items) {
    std::vector<uint32_t> cpus;
    std::string err;
    if (!valid::cpu_list(it.value, cpus, err)) {
      root.error_at(it, err);
      return;
    }
    lists.push_back(std::move(cpus));
  }
  a.mode = CpuAffinity::Mode::kLists;
  a.lists = std::move(lists);
}

uint32_t default_workers(const LoadOptions& opts) {
  if (opts.default_workers != 0) return std::min(opts.default_workers, kMaxWorkers);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return static_cast<uint32_t>(std::min<long>(n, kMaxWorkers));
}

void parse_root(Ctx& ctx, const toml::table& doc, Config& cfg, const LoadOptions& opts) {
  Table root(ctx, doc, "");
  root.set("preserve_host", cfg.preserve_host);
  cfg.workers = default_workers(opts);
  root.set("workers", cfg.workers, 1, kMaxWorkers);
  parse_cpu_affinity(root, cfg);
  if (auto u = root.string("user")) {
    if (!valid::user_name(*u)) {
      root.error("user", "not a valid user name: " + quote(*u));
    } else {
      cfg.user = *u;
    }
  }
  parse_listen(ctx, root, cfg);
  parse_backends(root, cfg);

  bool any_domain_cert = false;
  if (const auto* ds = doc.get_as<toml::array>("domains")) {
    for (const auto& d : *ds)
      if (const auto* dt = d.as_table(); dt && (dt->contains("cert_path") || dt->contains("key_path")))
        any_domain_cert = true;
  }
  const bool have_tls = doc.contains("tls");
  parse_domains(ctx, root, cfg, have_tls);
  cfg.headers = header_rules(root);
  parse_security(ctx, root, cfg);
  parse_tls(ctx, root, cfg, any_domain_cert);
  parse_fingerprint(root, cfg);
  parse_timeout(root, cfg);
  parse_misc(ctx, root, cfg);
}

bool pos_less(const ConfigError& a, const ConfigError& b) {
  return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
}

}  // namespace

std::string ConfigError::to_string() const {
  std::string out;
  if (!key_path.empty()) out = key_path + ": ";
  out += message;
  out += " (" + file;
  if (pos.line != 0) out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  out += ")";
  return out;
}

LoadResult load_text(std::string_view text, std::string_view source_name, const LoadOptions& opts) {
  Ctx ctx;
  ctx.file = std::string(source_name);
  toml::table doc;
  try {
    doc = toml::parse(text, std::string(source_name));
  } catch (const toml::parse_error& e) {
    SourcePos p = detail::pos_of(e.source());
    if (p.line == 0) p = SourcePos{1, 1};
    ctx.error("", "syntax error: " + std::string(e.description()), p);
    return ctx.errors;
  }
  auto cfg = std::make_shared<Config>();
  parse_root(ctx, doc, *cfg, opts);
  if (!ctx.errors.empty()) {
    std::stable_sort(ctx.errors.begin(), ctx.errors.end(), pos_less);
    return ctx.errors;
  }
  cfg->source_name = std::string(source_name);
  cfg->source_text = std::string(text);
  return std::shared_ptr<const Config>(std::move(cfg));
}

LoadResult load_file(const std::string& path, const LoadOptions& opts) {
  auto fail = [&](std::string msg) {
    return LoadResult(std::vector<ConfigError>{ConfigError{"", std::move(msg), path, SourcePos{}}});
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail(std::string("cannot open configuration file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  std::string text;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return fail(std::string("cannot read configuration file: ") + std::strerror(err));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxFileBytes) {
      ::close(fd);
      return fail("configuration file is larger than 4 MiB");
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return load_text(text, path, opts);
}

}  // namespace huginn::config
