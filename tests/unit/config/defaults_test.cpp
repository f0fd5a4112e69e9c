// Every key's default, read from a config that sets only [listen].
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "tests/unit/config/config_test_util.h"

namespace huginn::config::test {
namespace {

TEST(ConfigDefaults, EveryKey) {
  auto c = ok(kListen);
  EXPECT_FALSE(c->preserve_host);
  EXPECT_EQ(c->workers, kTestWorkers);
  EXPECT_EQ(c->user, "huginn");

  ASSERT_EQ(c->listen.addrs.size(), 1u);
  EXPECT_EQ(c->listen.addrs[0].to_string(), "127.0.0.1:8080");
  EXPECT_EQ(c->listen.tcp_backlog, 4096u);
  EXPECT_EQ(c->listen.proxy_protocol.mode, ProxyProtocol::Mode::kOff);
  EXPECT_EQ(c->listen.proxy_protocol.header_timeout_ms, 100u);

  EXPECT_TRUE(c->backends.empty());
  EXPECT_TRUE(c->domains.empty());
  EXPECT_TRUE(c->headers.request.empty());
  EXPECT_TRUE(c->headers.response.empty());

  const Security& s = c->security;
  EXPECT_EQ(s.max_connections, 512u);
  EXPECT_TRUE(s.trusted_proxies.cidrs.empty());
  EXPECT_FALSE(s.trusted_proxies.insecure);
  EXPECT_EQ(s.ip_filter.mode, IpFilter::Mode::kDisabled);
  EXPECT_TRUE(s.ip_filter.allowlist.empty());
  EXPECT_TRUE(s.ip_filter.denylist.empty());
  EXPECT_FALSE(s.rate_limit.enabled);
  EXPECT_EQ(s.rate_limit.requests_per_second, 1000u);
  EXPECT_EQ(s.rate_limit.burst, 2000u);
  EXPECT_EQ(s.rate_limit.window_seconds, 1u);
  EXPECT_EQ(s.rate_limit.limit_by, RateLimit::LimitBy::kIp);
  EXPECT_EQ(s.rate_limit.limit_by_header, "");
  EXPECT_TRUE(s.headers.custom.empty());
  EXPECT_FALSE(s.headers.hsts.enabled);
  EXPECT_EQ(s.headers.hsts.max_age, 31536000u);
  EXPECT_FALSE(s.headers.hsts.include_subdomains);
  EXPECT_FALSE(s.headers.hsts.preload);
  EXPECT_FALSE(s.headers.csp.enabled);
  EXPECT_EQ(s.headers.csp.policy, "default-src 'self'");

  EXPECT_FALSE(c->tls.has_value());

  const Fingerprint& f = c->fingerprint;
  EXPECT_TRUE(f.tls_enabled);
  EXPECT_TRUE(f.http_enabled);
  EXPECT_TRUE(f.tcp_enabled);
  EXPECT_EQ(f.tcp_source, Fingerprint::TcpSource::kAuto);
  EXPECT_EQ(f.max_capture, 65536u);
  EXPECT_EQ(f.headers.ja4, "x-huginn-net-ja4");
  EXPECT_EQ(f.headers.ja4_r, "x-huginn-net-ja4_r");
  EXPECT_EQ(f.headers.ja4_o, "x-huginn-net-ja4_o");
  EXPECT_EQ(f.headers.ja4_or, "x-huginn-net-ja4_or");
  EXPECT_EQ(f.headers.akamai, "x-huginn-net-akamai");
  EXPECT_EQ(f.headers.tcp, "x-huginn-net-tcp");

  const Timeout& t = c->timeout;
  EXPECT_EQ(t.upstream_connect_ms, 5000u);
  EXPECT_EQ(t.upstream_response_secs, 60u);
  EXPECT_EQ(t.proxy_idle_ms, 60000u);
  EXPECT_EQ(t.request_header_ms, 10000u);
  EXPECT_EQ(t.tls_handshake_secs, 15u);
  EXPECT_FALSE(t.connection_handling_secs.has_value());
  EXPECT_EQ(t.shutdown_secs, 30u);
  EXPECT_TRUE(t.keep_alive.enabled);
  EXPECT_EQ(t.keep_alive.upstream_idle_timeout, 60u);

  EXPECT_TRUE(c->backend_pool.enabled);
  EXPECT_EQ(c->backend_pool.idle_timeout, 90u);
  EXPECT_EQ(c->backend_pool.pool_max_idle_per_host, 0u);

  EXPECT_EQ(c->limits.max_header_bytes, 65536u);
  EXPECT_EQ(c->limits.max_headers, 100u);
  EXPECT_EQ(c->limits.h2_max_concurrent_streams, 100u);

  EXPECT_FALSE(c->telemetry.metrics_port.has_value());
  EXPECT_FALSE(c->telemetry.metrics_address.has_value());
  EXPECT_EQ(c->telemetry.otel_log_level, "warn");

  EXPECT_EQ(c->logging.level, "info");
  EXPECT_FALSE(c->logging.show_target);
  EXPECT_EQ(c->logging.format, "text");
  EXPECT_FALSE(c->logging.access_log);

  EXPECT_TRUE(c->reload.watch);
  EXPECT_EQ(c->reload.debounce_secs, 60u);

  EXPECT_TRUE(c->ebpf.interfaces.empty());
  EXPECT_EQ(c->ebpf.xdp_mode, "native");
  EXPECT_FALSE(c->ebpf.dst_ipv4.has_value());
  EXPECT_FALSE(c->ebpf.dst_ipv6.has_value());
  EXPECT_TRUE(c->ebpf.ports.empty());
  EXPECT_EQ(c->ebpf.pin_path, "/sys/fs/bpf/huginn");
  EXPECT_EQ(c->ebpf.syn_map_max_entries, 8192u);

  EXPECT_EQ(c->dbus.bus, "system");

  EXPECT_EQ(c->source_name, "config.toml");
  EXPECT_EQ(c->source_text, kListen);
}

TEST(ConfigDefaults, TablesPresentButEmptyKeepDefaults) {
  auto c =
      ok(std::string(kListen) +
         "[security]\n[security.rate_limit]\n[security.headers.hsts]\n[tls]\ncert_path = \"/c\"\n"
         "key_path = \"/k\"\n[tls.options]\n[tls.session_resumption]\n[fingerprint]\n[fingerprint.headers]\n"
         "[timeout]\n[timeout.keep_alive]\n[backend_pool]\n[limits]\n[telemetry]\n[logging]\n[reload]\n"
         "[ebpf]\n[dbus]\n[headers]\n[headers.request]\n");
  EXPECT_EQ(c->security.rate_limit.burst, 2000u);
  EXPECT_EQ(c->security.headers.hsts.max_age, 31536000u);
  ASSERT_TRUE(c->tls.has_value());
  EXPECT_EQ(c->tls->alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(c->tls->cert_path, "/c");
  EXPECT_EQ(c->tls->key_path, "/k");
  EXPECT_TRUE(c->tls->options.versions.empty());
  EXPECT_FALSE(c->tls->options.min_version.has_value());
  EXPECT_FALSE(c->tls->options.max_version.has_value());
  EXPECT_TRUE(c->tls->options.cipher_suites.empty());
  EXPECT_TRUE(c->tls->options.curve_preferences.empty());
  EXPECT_FALSE(c->tls->options.sni_strict);
  EXPECT_TRUE(c->tls->session_resumption_enabled);
  EXPECT_EQ(c->tls->pos.line, 6u);
  EXPECT_EQ(c->timeout.upstream_connect_ms, 5000u);
  EXPECT_EQ(c->dbus.bus, "system");
}

TEST(ConfigDefaults, BackendAndHealthCheckDefaults) {
  auto c =
      ok(std::string(kListen) +
         "[[backends]]\naddress = \"127.0.0.1:9000\"\n[[backends]]\naddress = \"b:1\"\nhealth_check = {}\n");
  ASSERT_EQ(c->backends.size(), 2u);
  EXPECT_EQ(c->backends[0].http_version, HttpVersion::kUnset);
  EXPECT_FALSE(c->backends[0].health_check.has_value());
  EXPECT_EQ(c->backends[0].pos.line, 4u);
  ASSERT_TRUE(c->backends[1].health_check.has_value());
  const HealthCheck& h = *c->backends[1].health_check;
  EXPECT_EQ(h.type, HealthCheck::Type::kTcp);
  EXPECT_EQ(h.path, "");
  EXPECT_EQ(h.expected_status, 200u);
  EXPECT_EQ(h.interval_secs, 10u);
  EXPECT_EQ(h.timeout_secs, 5u);
  EXPECT_EQ(h.unhealthy_threshold, 3u);
  EXPECT_EQ(h.healthy_threshold, 2u);
}

TEST(ConfigDefaults, DomainAndRouteDefaults) {
  auto c = ok(std::string(kListen) +
              "[[backends]]\naddress = \"a:1\"\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = "
              "\"a:1\"\n");
  ASSERT_EQ(c->domains.size(), 1u);
  const Domain& d = c->domains[0];
  EXPECT_FALSE(d.host.has_value());
  EXPECT_EQ(d.cert_path, "");
  EXPECT_EQ(d.key_path, "");
  EXPECT_EQ(d.client_ca_path, "");
  EXPECT_FALSE(d.fingerprinting.has_value());
  EXPECT_FALSE(d.security.ip_filter || d.security.rate_limit || d.security.headers);
  ASSERT_EQ(d.routes.size(), 1u);
  const Route& r = d.routes[0];
  EXPECT_FALSE(r.fingerprinting.has_value());
  EXPECT_FALSE(r.force_new_connection);
  EXPECT_FALSE(r.replace_path.has_value());
  EXPECT_FALSE(r.security.ip_filter || r.security.rate_limit || r.security.headers);
  EXPECT_TRUE(r.headers.request.empty() && r.headers.response.empty());
  EXPECT_EQ(r.pos.line, 7u);
  EXPECT_EQ(r.pos.column, 10u);
}

TEST(ConfigDefaults, WorkersDefaultIsOnlineCpus) {
  auto r = load_text(kListen, "x.toml", LoadOptions{});
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const Config>>(r));
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_EQ(std::get<std::shared_ptr<const Config>>(r)->workers,
            static_cast<uint32_t>(std::clamp<long>(cpus, 1, 256)));
  LoadOptions big;
  big.default_workers = 1000;
  auto r2 = load_text(kListen, "x.toml", big);
  EXPECT_EQ(std::get<std::shared_ptr<const Config>>(r2)->workers, 256u);
  // An explicit value wins over the default.
  auto c = ok(std::string("workers = 7\n") + kListen);
  EXPECT_EQ(c->workers, 7u);
}

}  // namespace
}  // namespace huginn::config::test
