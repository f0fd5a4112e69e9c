// The list of accepted key paths (loader.h known_key_paths()).
#include <algorithm>

#include "common/config/loader.h"

namespace huginn::config {

namespace {

void add_scope_security(std::vector<std::string>& out, const std::string& p) {
  for (const char* k : {"mode", "allowlist", "denylist"}) out.push_back(p + "ip_filter." + k);
  for (const char* k :
       {"enabled", "requests_per_second", "burst", "window_seconds", "limit_by", "limit_by_header"})
    out.push_back(p + "rate_limit." + k);
  out.push_back(p + "headers.custom");
  for (const char* k : {"enabled", "max_age", "include_subdomains", "preload"})
    out.push_back(p + "headers.hsts." + k);
  for (const char* k : {"enabled", "policy"}) out.push_back(p + "headers.csp." + k);
}

void add_header_rules(std::vector<std::string>& out, const std::string& p) {
  for (const char* dir : {"request", "response"})
    for (const char* op : {"add", "remove"}) out.push_back(p + "headers." + dir + "." + op);
}

std::vector<std::string> build() {
  std::vector<std::string> k = {
      "preserve_host",
      "workers",
      "worker_cpu_affinity",
      "user",
      "listen.addrs",
      "listen.cleartext_addrs",
      "listen.tcp_backlog",
      "listen.proxy_protocol.mode",
      "listen.proxy_protocol.header_timeout_ms",
      "backends.address",
      "backends.http_version",
      "backends.health_check.type",
      "backends.health_check.path",
      "backends.health_check.expected_status",
      "backends.health_check.interval_secs",
      "backends.health_check.timeout_secs",
      "backends.health_check.unhealthy_threshold",
      "backends.health_check.healthy_threshold",
      "domains.host",
      "domains.cert_path",
      "domains.key_path",
      "domains.client_ca_path",
      "domains.fingerprinting",
      "domains.routes.prefix",
      "domains.routes.backend",
      "domains.routes.fingerprinting",
      "domains.routes.force_new_connection",
      "domains.routes.replace_path",
      "security.max_connections",
      "security.trusted_proxies.cidrs",
      "security.trusted_proxies.insecure",
      "tls.alpn",
      "tls.cert_path",
      "tls.key_path",
      "tls.options.versions",
      "tls.options.min_version",
      "tls.options.max_version",
      "tls.options.cipher_suites",
      "tls.options.curve_preferences",
      "tls.options.sni_strict",
      "tls.session_resumption.enabled",
      "fingerprint.tls_enabled",
      "fingerprint.http_enabled",
      "fingerprint.tcp_enabled",
      "fingerprint.tcp_source",
      "fingerprint.max_capture",
      "fingerprint.headers.ja4",
      "fingerprint.headers.ja4_r",
      "fingerprint.headers.ja4_o",
      "fingerprint.headers.ja4_or",
      "fingerprint.headers.akamai",
      "fingerprint.headers.tcp",
      "timeout.upstream_connect_ms",
      "timeout.upstream_response_secs",
      "timeout.proxy_idle_ms",
      "timeout.request_header_ms",
      "timeout.tls_handshake_secs",
      "timeout.connection_handling_secs",
      "timeout.shutdown_secs",
      "timeout.keep_alive.enabled",
      "timeout.keep_alive.upstream_idle_timeout",
      "backend_pool.enabled",
      "backend_pool.idle_timeout",
      "backend_pool.pool_max_idle_per_host",
      "limits.max_header_bytes",
      "limits.max_headers",
      "limits.h2_max_concurrent_streams",
      "telemetry.metrics_port",
      "telemetry.metrics_address",
      "telemetry.otel_log_level",
      "logging.level",
      "logging.show_target",
      "logging.format",
      "logging.access_log",
      "reload.watch",
      "reload.debounce_secs",
      "ebpf.interfaces",
      "ebpf.xdp_mode",
      "ebpf.dst_ipv4",
      "ebpf.dst_ipv6",
      "ebpf.ports",
      "ebpf.pin_path",
      "ebpf.syn_map_max_entries",
      "dbus.bus",
  };
  add_scope_security(k, "security.");
  add_scope_security(k, "domains.security.");
  add_scope_security(k, "domains.routes.security.");
  add_header_rules(k, "");
  add_header_rules(k, "domains.");
  add_header_rules(k, "domains.routes.");
  std::sort(k.begin(), k.end());
  return k;
}

}  // namespace

const std::vector<std::string>& known_key_paths() {
  static const std::vector<std::string> keys = build();
  return keys;
}

}  // namespace huginn::config
