// The typed, immutable configuration value (SPEC.md §3).
//
// A Config is produced only by config::load() (loader.h), which applies every
// default and validation rule; code that consumes it may rely on:
//   * every route's `backend` names an entry of `backends`;
//   * domain hosts are lowercase, without a trailing dot, unique, and at most
//     one domain is the catch-all (host == nullopt);
//   * listener addresses are numeric IPv4/IPv6 socket addresses;
//   * `workers` is resolved (>= 1).
// Defaults below are the documented defaults (man huginn-proxy.toml(5)).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/net/address.h"

namespace huginn::config {

// Caps on the configuration's size (config errors beyond them): one HEALTH
// message carries a state per backend, the metrics table a section per route.
inline constexpr size_t kMaxBackends = 4096;
inline constexpr size_t kMaxRoutes = 16000;  // over all domains

// Where a key was written: 1-based line and column; 0 when the key was absent.
struct SourcePos {
  uint32_t line = 0;
  uint32_t column = 0;
};

struct HeaderPair {
  std::string name;
  std::string value;
};

// One direction of header manipulation: remove first, then add (overwrite).
struct HeaderOps {
  std::vector<std::string> remove;  // lowercased
  std::vector<HeaderPair> add;      // name lowercased, value verbatim
  bool empty() const { return remove.empty() && add.empty(); }
};

struct HeaderRules {
  HeaderOps request;
  HeaderOps response;
};

enum class HttpVersion { kUnset, kHttp11, kHttp2, kPreserve };

struct HealthCheck {
  enum class Type { kTcp, kHttp };
  Type type = Type::kTcp;
  std::string path;  // http only, starts with '/'
  uint32_t expected_status = 200;
  uint32_t interval_secs = 10;
  uint32_t timeout_secs = 5;
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 2;
};

struct Backend {
  std::string address;  // as written: "host:port"; routes refer to it by this string
  std::string host;     // host name or IP literal (no brackets)
  uint16_t port = 0;
  HttpVersion http_version = HttpVersion::kUnset;
  std::optional<HealthCheck> health_check;
  SourcePos pos;
};

struct IpFilter {
  enum class Mode { kDisabled, kAllowlist, kDenylist };
  Mode mode = Mode::kDisabled;
  std::vector<net::Cidr> allowlist;
  std::vector<net::Cidr> denylist;
};

struct RateLimit {
  enum class LimitBy { kIp, kHeader, kRoute, kCombined };
  bool enabled = false;
  uint32_t requests_per_second = 1000;  // token refill rate
  uint32_t burst = 2000;                // bucket capacity
  uint64_t window_seconds = 1;          // accepted for upstream compatibility (reset hint)
  LimitBy limit_by = LimitBy::kIp;
  std::string limit_by_header;  // lowercased; for kHeader / kCombined
};

struct Hsts {
  bool enabled = false;
  uint64_t max_age = 31536000;
  bool include_subdomains = false;
  bool preload = false;
};

struct Csp {
  bool enabled = false;
  std::string policy = "default-src 'self'";
};

struct SecurityHeaders {
  std::vector<HeaderPair> custom;
  Hsts hsts;
  Csp csp;
};

// Domain- and route-level overrides; each present block replaces the parent's
// block as a whole (no field-level inheritance), as upstream.
struct ScopedSecurity {
  std::optional<IpFilter> ip_filter;
  std::optional<RateLimit> rate_limit;
  std::optional<SecurityHeaders> headers;
};

struct Route {
  std::string prefix;   // starts with '/'
  std::string backend;  // == some Backend::address
  std::optional<bool> fingerprinting;
  bool force_new_connection = false;
  std::optional<std::string> replace_path;
  ScopedSecurity security;
  HeaderRules headers;
  SourcePos pos;
};

struct Domain {
  std::optional<std::string> host;  // normalized; nullopt = catch-all; "*.x.y" = wildcard
  std::string cert_path;
  std::string key_path;
  std::string client_ca_path;
  std::optional<bool> fingerprinting;
  HeaderRules headers;
  ScopedSecurity security;
  std::vector<Route> routes;  // declaration order
  SourcePos pos;
};

struct ProxyProtocol {
  enum class Mode { kOff, kOptional, kRequire };
  Mode mode = Mode::kOff;
  uint32_t header_timeout_ms = 100;
};

struct ListenAddr {
  net::SocketAddress address;
  bool tls = false;
};

struct Listen {
  std::vector<net::SocketAddress> addrs;            // TLS when [tls] is present
  std::vector<net::SocketAddress> cleartext_addrs;  // ours: always cleartext (HTTP/1.1, h2c)
  uint32_t tcp_backlog = 4096;
  ProxyProtocol proxy_protocol;
};

struct TrustedProxies {
  std::vector<net::Cidr> cidrs;
  bool insecure = false;
};

struct Security {
  uint32_t max_connections = 512;
  TrustedProxies trusted_proxies;
  IpFilter ip_filter;
  RateLimit rate_limit;
  SecurityHeaders headers;
};

struct TlsOptions {
  std::vector<std::string> versions;  // subset of {"1.2","1.3"}; empty = both
  std::optional<std::string> min_version;
  std::optional<std::string> max_version;
  std::vector<std::string> cipher_suites;      // empty = OpenSSL defaults
  std::vector<std::string> curve_preferences;  // empty = OpenSSL defaults
  bool sni_strict = false;
};

struct Tls {
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  std::string cert_path;  // seed-style default certificate
  std::string key_path;
  TlsOptions options;
  bool session_resumption_enabled = true;
  SourcePos pos;
};

struct FingerprintHeaders {
  std::string ja4 = "x-huginn-net-ja4";
  std::string ja4_r = "x-huginn-net-ja4_r";
  std::string ja4_o = "x-huginn-net-ja4_o";
  std::string ja4_or = "x-huginn-net-ja4_or";
  std::string akamai = "x-huginn-net-akamai";
  std::string tcp = "x-huginn-net-tcp";
};

struct Fingerprint {
  enum class TcpSource { kXdp, kSavedSyn, kAuto };
  bool tls_enabled = true;
  bool http_enabled = true;
  bool tcp_enabled = true;
  TcpSource tcp_source = TcpSource::kAuto;
  uint32_t max_capture = 65536;
  FingerprintHeaders headers;
};

struct KeepAlive {
  bool enabled = true;
  uint32_t upstream_idle_timeout = 60;  // seconds; TCP keepalive on upstream sockets
};

struct Timeout {
  uint32_t upstream_connect_ms = 5000;
  uint32_t upstream_response_secs = 60;              // first response byte from the backend → 504
  uint32_t proxy_idle_ms = 60000;                    // idle keep-alive client connection
  uint32_t request_header_ms = 10000;                // whole request header block (slowloris)
  uint32_t tls_handshake_secs = 15;                  // PROXY header + ClientHello + handshake
  std::optional<uint32_t> connection_handling_secs;  // accepted, no effect (no lifetime kill)
  uint32_t shutdown_secs = 30;
  KeepAlive keep_alive;
};

struct BackendPool {
  bool enabled = true;
  uint32_t idle_timeout = 90;           // seconds
  uint32_t pool_max_idle_per_host = 0;  // 0 = unlimited
};

struct Limits {
  uint32_t max_header_bytes = 65536;  // request line + header block
  uint32_t max_headers = 100;
  uint32_t h2_max_concurrent_streams = 100;
};

struct Telemetry {
  std::optional<uint16_t> metrics_port;
  std::optional<std::string> metrics_address;  // IP literal; default 0.0.0.0
  std::string otel_log_level = "warn";
};

struct Logging {
  std::string level = "info";  // trace, debug, info, warn, error
  bool show_target = false;
  std::string format = "text";  // text | json
  bool access_log = false;
};

struct Reload {
  bool watch = true;
  uint32_t debounce_secs = 60;
};

struct Ebpf {
  std::vector<std::string> interfaces;
  std::string xdp_mode = "native";  // native | skb
  std::optional<std::string> dst_ipv4;
  std::optional<std::string> dst_ipv6;
  std::vector<uint16_t> ports;  // empty = the listener ports
  std::string pin_path = "/sys/fs/bpf/huginn";
  uint32_t syn_map_max_entries = 8192;
};

struct Dbus {
  std::string bus = "system";  // system | session | none (no D-Bus service) | a D-Bus address
};

// worker_cpu_affinity: the CPUs each worker may run on.
struct CpuAffinity {
  enum class Mode {
    kOff,    // the scheduler places workers freely
    kAuto,   // worker i on the i-th CPU the supervisor may use (wrapping)
    kLists,  // worker i on lists[i % lists.size()]
  };
  Mode mode = Mode::kOff;
  std::vector<std::vector<uint32_t>> lists;  // kLists: each sorted, unique, non-empty
};

struct Config {
  // Top level.
  bool preserve_host = false;
  uint32_t workers = 1;  // resolved: default = online CPUs
  CpuAffinity worker_cpu_affinity;
  std::string user = "huginn";

  Listen listen;
  std::vector<Backend> backends;
  std::vector<Domain> domains;
  HeaderRules headers;
  Security security;
  std::optional<Tls> tls;  // absent = cleartext listeners
  Fingerprint fingerprint;
  Timeout timeout;
  BackendPool backend_pool;
  Limits limits;
  Telemetry telemetry;
  Logging logging;
  Reload reload;
  Ebpf ebpf;
  Dbus dbus;

  // Provenance: the exact bytes that were parsed, and their name (a path).
  std::string source_name;
  std::string source_text;

  // Every listener: `listen.addrs` (TLS when [tls] is present), then
  // `listen.cleartext_addrs`.
  std::vector<ListenAddr> listeners() const {
    std::vector<ListenAddr> out;
    out.reserve(listen.addrs.size() + listen.cleartext_addrs.size());
    for (const auto& a : listen.addrs) out.push_back({a, tls.has_value()});
    for (const auto& a : listen.cleartext_addrs) out.push_back({a, false});
    return out;
  }

  const Backend* find_backend(std::string_view address) const {
    for (const auto& b : backends)
      if (b.address == address) return &b;
    return nullptr;
  }
};

}  // namespace huginn::config
