// --print-effective-config: the whole Config as JSON, defaults applied, secrets redacted.
#include <json/json.h>

#include <algorithm>
#include <memory>
#include <sstream>

#include "common/config/cpu_affinity.h"
#include "common/config/loader.h"

namespace huginn::config {

namespace {

const char* const kRedacted = "<redacted>";

Json::Value strings(const std::vector<std::string>& v) {
  Json::Value a(Json::arrayValue);
  for (const auto& s : v) a.append(s);
  return a;
}

Json::Value cidrs(const std::vector<net::Cidr>& v) {
  Json::Value a(Json::arrayValue);
  for (const auto& c : v) a.append(c.to_string());
  return a;
}

// Header names are shown, values are redacted (they may carry tokens).
Json::Value pairs(const std::vector<HeaderPair>& v) {
  Json::Value a(Json::arrayValue);
  for (const auto& p : v) {
    Json::Value e(Json::objectValue);
    e["name"] = p.name;
    e["value"] = kRedacted;
    a.append(e);
  }
  return a;
}

Json::Value header_ops(const HeaderOps& o) {
  Json::Value v(Json::objectValue);
  v["add"] = pairs(o.add);
  v["remove"] = strings(o.remove);
  return v;
}

Json::Value header_rules(const HeaderRules& r) {
  Json::Value v(Json::objectValue);
  v["request"] = header_ops(r.request);
  v["response"] = header_ops(r.response);
  return v;
}

const char* ip_filter_mode(IpFilter::Mode m) {
  switch (m) {
    case IpFilter::Mode::kAllowlist:
      return "allowlist";
    case IpFilter::Mode::kDenylist:
      return "denylist";
    case IpFilter::Mode::kDisabled:
      break;
  }
  return "disabled";
}

Json::Value ip_filter(const IpFilter& f) {
  Json::Value v(Json::objectValue);
  v["mode"] = ip_filter_mode(f.mode);
  v["allowlist"] = cidrs(f.allowlist);
  v["denylist"] = cidrs(f.denylist);
  return v;
}

const char* limit_by(RateLimit::LimitBy l) {
  switch (l) {
    case RateLimit::LimitBy::kHeader:
      return "header";
    case RateLimit::LimitBy::kRoute:
      return "route";
    case RateLimit::LimitBy::kCombined:
      return "combined";
    case RateLimit::LimitBy::kIp:
      break;
  }
  return "ip";
}

Json::Value rate_limit(const RateLimit& r) {
  Json::Value v(Json::objectValue);
  v["enabled"] = r.enabled;
  v["requests_per_second"] = r.requests_per_second;
  v["burst"] = r.burst;
  v["window_seconds"] = Json::UInt64(r.window_seconds);
  v["limit_by"] = limit_by(r.limit_by);
  v["limit_by_header"] =
      r.limit_by_header.empty() ? Json::Value(Json::nullValue) : Json::Value(r.limit_by_header);
  return v;
}

Json::Value security_headers(const SecurityHeaders& h) {
  Json::Value v(Json::objectValue);
  v["custom"] = pairs(h.custom);
  Json::Value hsts(Json::objectValue);
  hsts["enabled"] = h.hsts.enabled;
  hsts["max_age"] = Json::UInt64(h.hsts.max_age);
  hsts["include_subdomains"] = h.hsts.include_subdomains;
  hsts["preload"] = h.hsts.preload;
  v["hsts"] = hsts;
  Json::Value csp(Json::objectValue);
  csp["enabled"] = h.csp.enabled;
  csp["policy"] = kRedacted;
  v["csp"] = csp;
  return v;
}

// Only the blocks that are present: an absent block inherits the parent's.
Json::Value scoped_security(const ScopedSecurity& s) {
  Json::Value v(Json::objectValue);
  if (s.ip_filter) v["ip_filter"] = ip_filter(*s.ip_filter);
  if (s.rate_limit) v["rate_limit"] = rate_limit(*s.rate_limit);
  if (s.headers) v["headers"] = security_headers(*s.headers);
  return v;
}

Json::Value optional_bool(const std::optional<bool>& b) {
  return b ? Json::Value(*b) : Json::Value(Json::nullValue);
}

const char* http_version(HttpVersion h) {
  switch (h) {
    case HttpVersion::kHttp11:
      return "http11";
    case HttpVersion::kHttp2:
      return "http2";
    case HttpVersion::kPreserve:
      return "preserve";
    case HttpVersion::kUnset:
      break;
  }
  return nullptr;
}

Json::Value backend(const Backend& b) {
  Json::Value v(Json::objectValue);
  v["address"] = b.address;
  const char* hv = http_version(b.http_version);
  v["http_version"] = hv ? Json::Value(hv) : Json::Value(Json::nullValue);
  if (b.health_check) {
    const auto& h = *b.health_check;
    Json::Value hc(Json::objectValue);
    const bool http = h.type == HealthCheck::Type::kHttp;
    hc["type"] = http ? "http" : "tcp";
    if (http) {
      hc["path"] = h.path;
      hc["expected_status"] = h.expected_status;
    }
    hc["interval_secs"] = h.interval_secs;
    hc["timeout_secs"] = h.timeout_secs;
    hc["unhealthy_threshold"] = h.unhealthy_threshold;
    hc["healthy_threshold"] = h.healthy_threshold;
    v["health_check"] = hc;
  } else {
    v["health_check"] = Json::Value(Json::nullValue);
  }
  return v;
}

Json::Value route(const Route& r) {
  Json::Value v(Json::objectValue);
  v["prefix"] = r.prefix;
  v["backend"] = r.backend;
  v["fingerprinting"] = optional_bool(r.fingerprinting);
  v["force_new_connection"] = r.force_new_connection;
  v["replace_path"] = r.replace_path ? Json::Value(*r.replace_path) : Json::Value(Json::nullValue);
  v["security"] = scoped_security(r.security);
  v["headers"] = header_rules(r.headers);
  return v;
}

Json::Value domain(const Domain& d) {
  Json::Value v(Json::objectValue);
  v["host"] = d.host ? Json::Value(*d.host) : Json::Value(Json::nullValue);
  v["cert_configured"] = !d.cert_path.empty();
  v["private_key_configured"] = !d.key_path.empty();
  v["client_auth_configured"] = !d.client_ca_path.empty();
  v["fingerprinting"] = optional_bool(d.fingerprinting);
  v["headers"] = header_rules(d.headers);
  v["security"] = scoped_security(d.security);
  Json::Value routes(Json::arrayValue);
  for (const auto& r : d.routes) routes.append(route(r));
  v["routes"] = routes;
  return v;
}

const char* pp_mode(ProxyProtocol::Mode m) {
  switch (m) {
    case ProxyProtocol::Mode::kOptional:
      return "optional";
    case ProxyProtocol::Mode::kRequire:
      return "require";
    case ProxyProtocol::Mode::kOff:
      break;
  }
  return "off";
}

const char* tcp_source(Fingerprint::TcpSource s) {
  switch (s) {
    case Fingerprint::TcpSource::kXdp:
      return "xdp";
    case Fingerprint::TcpSource::kSavedSyn:
      return "saved_syn";
    case Fingerprint::TcpSource::kAuto:
      break;
  }
  return "auto";
}

Json::Value optional_string(const std::optional<std::string>& s) {
  return s ? Json::Value(*s) : Json::Value(Json::nullValue);
}

}  // namespace

std::string effective_config_json(const Config& cfg) {
  Json::Value root(Json::objectValue);
  root["preserve_host"] = cfg.preserve_host;
  root["workers"] = cfg.workers;
  switch (cfg.worker_cpu_affinity.mode) {
    case CpuAffinity::Mode::kOff:
      root["worker_cpu_affinity"] = "off";
      break;
    case CpuAffinity::Mode::kAuto:
      root["worker_cpu_affinity"] = "auto";
      break;
    case CpuAffinity::Mode::kLists: {
      Json::Value lists(Json::arrayValue);
      for (const auto& l : cfg.worker_cpu_affinity.lists) lists.append(cpu_list_text(l));
      root["worker_cpu_affinity"] = lists;
      break;
    }
  }
  root["user"] = cfg.user;

  Json::Value listen(Json::objectValue);
  Json::Value addrs(Json::arrayValue);
  for (const auto& a : cfg.listen.addrs) addrs.append(a.to_string());
  listen["addrs"] = addrs;
  Json::Value clear(Json::arrayValue);
  for (const auto& a : cfg.listen.cleartext_addrs) clear.append(a.to_string());
  listen["cleartext_addrs"] = clear;
  listen["tcp_backlog"] = cfg.listen.tcp_backlog;
  Json::Value pp(Json::objectValue);
  pp["mode"] = pp_mode(cfg.listen.proxy_protocol.mode);
  pp["header_timeout_ms"] = cfg.listen.proxy_protocol.header_timeout_ms;
  listen["proxy_protocol"] = pp;
  root["listen"] = listen;

  Json::Value backends(Json::arrayValue);
  for (const auto& b : cfg.backends) backends.append(backend(b));
  root["backends"] = backends;
  Json::Value domains(Json::arrayValue);
  for (const auto& d : cfg.domains) domains.append(domain(d));
  root["domains"] = domains;
  root["headers"] = header_rules(cfg.headers);

  Json::Value sec(Json::objectValue);
  sec["max_connections"] = cfg.security.max_connections;
  Json::Value tp(Json::objectValue);
  tp["cidrs"] = cidrs(cfg.security.trusted_proxies.cidrs);
  tp["insecure"] = cfg.security.trusted_proxies.insecure;
  sec["trusted_proxies"] = tp;
  sec["ip_filter"] = ip_filter(cfg.security.ip_filter);
  sec["rate_limit"] = rate_limit(cfg.security.rate_limit);
  sec["headers"] = security_headers(cfg.security.headers);
  root["security"] = sec;

  if (cfg.tls) {
    const Tls& t = *cfg.tls;
    Json::Value tls(Json::objectValue);
    tls["alpn"] = strings(t.alpn);
    tls["cert_configured"] = !t.cert_path.empty();
    tls["private_key_configured"] = !t.key_path.empty();
    Json::Value o(Json::objectValue);
    o["versions"] = strings(t.options.versions.empty() && !t.options.min_version && !t.options.max_version
                                ? std::vector<std::string>{"1.2", "1.3"}
                                : t.options.versions);
    o["min_version"] = optional_string(t.options.min_version);
    o["max_version"] = optional_string(t.options.max_version);
    o["cipher_suites"] = strings(t.options.cipher_suites);
    o["curve_preferences"] = strings(t.options.curve_preferences);
    o["sni_strict"] = t.options.sni_strict;
    tls["options"] = o;
    Json::Value sr(Json::objectValue);
    sr["enabled"] = t.session_resumption_enabled;
    tls["session_resumption"] = sr;
    root["tls"] = tls;
  } else {
    root["tls"] = Json::Value(Json::nullValue);
  }

  const Fingerprint& f = cfg.fingerprint;
  Json::Value fp(Json::objectValue);
  fp["tls_enabled"] = f.tls_enabled;
  fp["http_enabled"] = f.http_enabled;
  fp["tcp_enabled"] = f.tcp_enabled;
  fp["tcp_source"] = tcp_source(f.tcp_source);
  fp["max_capture"] = f.max_capture;
  Json::Value fh(Json::objectValue);
  fh["ja4"] = f.headers.ja4;
  fh["ja4_r"] = f.headers.ja4_r;
  fh["ja4_o"] = f.headers.ja4_o;
  fh["ja4_or"] = f.headers.ja4_or;
  fh["akamai"] = f.headers.akamai;
  fh["tcp"] = f.headers.tcp;
  fp["headers"] = fh;
  root["fingerprint"] = fp;

  const Timeout& to = cfg.timeout;
  Json::Value t(Json::objectValue);
  t["upstream_connect_ms"] = to.upstream_connect_ms;
  t["upstream_response_secs"] = to.upstream_response_secs;
  t["proxy_idle_ms"] = to.proxy_idle_ms;
  t["request_header_ms"] = to.request_header_ms;
  t["tls_handshake_secs"] = to.tls_handshake_secs;
  t["connection_handling_secs"] =
      to.connection_handling_secs ? Json::Value(*to.connection_handling_secs) : Json::Value(Json::nullValue);
  t["shutdown_secs"] = to.shutdown_secs;
  Json::Value ka(Json::objectValue);
  ka["enabled"] = to.keep_alive.enabled;
  ka["upstream_idle_timeout"] = to.keep_alive.upstream_idle_timeout;
  t["keep_alive"] = ka;
  root["timeout"] = t;

  Json::Value bp(Json::objectValue);
  bp["enabled"] = cfg.backend_pool.enabled;
  bp["idle_timeout"] = cfg.backend_pool.idle_timeout;
  bp["pool_max_idle_per_host"] = cfg.backend_pool.pool_max_idle_per_host;
  root["backend_pool"] = bp;

  Json::Value lim(Json::objectValue);
  lim["max_header_bytes"] = cfg.limits.max_header_bytes;
  lim["max_headers"] = cfg.limits.max_headers;
  lim["h2_max_concurrent_streams"] = cfg.limits.h2_max_concurrent_streams;
  root["limits"] = lim;

  Json::Value tel(Json::objectValue);
  tel["metrics_port"] =
      cfg.telemetry.metrics_port ? Json::Value(*cfg.telemetry.metrics_port) : Json::Value(Json::nullValue);
  tel["metrics_address"] = cfg.telemetry.metrics_address.value_or("0.0.0.0");
  tel["otel_log_level"] = cfg.telemetry.otel_log_level;
  root["telemetry"] = tel;

  Json::Value log(Json::objectValue);
  log["level"] = cfg.logging.level;
  log["show_target"] = cfg.logging.show_target;
  log["format"] = cfg.logging.format;
  log["access_log"] = cfg.logging.access_log;
  root["logging"] = log;

  Json::Value rl(Json::objectValue);
  rl["watch"] = cfg.reload.watch;
  rl["debounce_secs"] = cfg.reload.debounce_secs;
  root["reload"] = rl;

  const Ebpf& e = cfg.ebpf;
  Json::Value eb(Json::objectValue);
  eb["interfaces"] = strings(e.interfaces);
  eb["xdp_mode"] = e.xdp_mode;
  eb["dst_ipv4"] = optional_string(e.dst_ipv4);
  eb["dst_ipv6"] = optional_string(e.dst_ipv6);
  // Empty means "the listener ports": show what that resolves to.
  std::vector<uint16_t> ports = e.ports;
  if (ports.empty()) {
    for (const auto& l : cfg.listeners())
      if (l.address.port() != 0 && std::find(ports.begin(), ports.end(), l.address.port()) == ports.end())
        ports.push_back(l.address.port());
  }
  Json::Value pa(Json::arrayValue);
  for (uint16_t p : ports) pa.append(p);
  eb["ports"] = pa;
  eb["pin_path"] = e.pin_path;
  eb["syn_map_max_entries"] = e.syn_map_max_entries;
  root["ebpf"] = eb;

  Json::Value db(Json::objectValue);
  db["bus"] = cfg.dbus.bus;
  root["dbus"] = db;

  // jsoncpp keeps object members sorted by key: the output is deterministic.
  Json::StreamWriterBuilder wb;
  wb["indentation"] = "  ";
  wb["emitUTF8"] = true;
  std::unique_ptr<Json::StreamWriter> w(wb.newStreamWriter());
  std::ostringstream out;
  w->write(root, &out);
  out << '\n';
  return out.str();
}

}  // namespace huginn::config
