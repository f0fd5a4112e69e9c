// Every key set to a non-default value is read into the model; normalisation rules.
#include <gtest/gtest.h>

#include "tests/unit/config/config_test_util.h"

namespace huginn::config::test {
namespace {

constexpr const char* kFull = R"(preserve_host = true
workers = 5
user = "nobody"

[listen]
addrs = ["0.0.0.0:80", "[::]:80", "127.0.0.1:0", "127.0.0.1:0"]
tcp_backlog = 128
proxy_protocol = { mode = "require", header_timeout_ms = 500 }

[[backends]]
address = "127.0.0.1:9000"
http_version = "http11"
[backends.health_check]
type = "http"
path = "/healthz?full=1"
expected_status = 204
interval_secs = 3
timeout_secs = 3
unhealthy_threshold = 4
healthy_threshold = 1

[[backends]]
address = "[2001:db8::1]:8080"
http_version = "http2"

[[backends]]
address = "backend-b.internal:9000"
http_version = "preserve"

[[domains]]
host = "API.Example.com."
cert_path = "/etc/huginn/api.crt"
key_path = "/etc/huginn/api.key"
client_ca_path = "/etc/huginn/ca.pem"
fingerprinting = false
[domains.headers.response]
remove = ["Server", "X-Powered-By"]
add = [{ name = "X-Proxy", value = "huginn" }]
[domains.security.ip_filter]
mode = "allowlist"
allowlist = ["10.1.2.3/8", "2001:db8::/32"]
[domains.security.headers]
custom = [{ name = "X-Frame-Options", value = "DENY" }]

[[domains.routes]]
prefix = "/api"
backend = "127.0.0.1:9000"
fingerprinting = true
force_new_connection = true
replace_path = "/v2"
[domains.routes.security.rate_limit]
enabled = true
requests_per_second = 5
burst = 7
window_seconds = 2
limit_by = "combined"
limit_by_header = "X-Api-Key"
[domains.routes.headers.request]
add = [{ name = "X-Route", value = "api" }]

[[domains.routes]]
prefix = "/strip"
backend = "[2001:db8::1]:8080"
replace_path = ""

[[domains]]
host = "*.example.com"

[[domains]]

[headers.request]
add = [{ name = "X-Proxy-Name", value = "huginn-proxy" }, { name = "x-empty", value = "" }]
remove = ["X-Forwarded-Server"]
[headers.response]
remove = ["Via"]

[security]
max_connections = 1024
trusted_proxies = { cidrs = ["10.0.0.0/8", "::1"], insecure = true }
[security.ip_filter]
mode = "denylist"
denylist = ["192.0.2.0/24"]
[security.rate_limit]
enabled = true
requests_per_second = 100
burst = 200
window_seconds = 10
limit_by = "header"
limit_by_header = "X-Client"
[security.headers]
custom = [{ name = "Referrer-Policy", value = "no-referrer" }]
hsts = { enabled = true, max_age = 600, include_subdomains = true, preload = true }
csp = { enabled = true, policy = "default-src 'none'" }

[tls]
alpn = ["http/1.1"]
cert_path = "/etc/huginn/default.crt"
key_path = "/etc/huginn/default.key"
[tls.options]
min_version = "1.3"
max_version = "1.3"
cipher_suites = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
curve_preferences = ["X25519", "secp384r1"]
sni_strict = true
[tls.session_resumption]
enabled = false

[fingerprint]
tls_enabled = false
http_enabled = false
tcp_enabled = false
tcp_source = "xdp"
max_capture = 2048
[fingerprint.headers]
ja4 = "X-JA4"
ja4_r = "x-ja4-r"
ja4_o = "x-ja4-o"
ja4_or = "x-ja4-or"
akamai = "x-akamai"
tcp = "x-p0f"

[timeout]
upstream_connect_ms = 250
upstream_response_secs = 9
proxy_idle_ms = 1000
request_header_ms = 2000
tls_handshake_secs = 3
connection_handling_secs = 300
shutdown_secs = 4
[timeout.keep_alive]
enabled = false
upstream_idle_timeout = 11

[backend_pool]
enabled = false
idle_timeout = 12
pool_max_idle_per_host = 13

[limits]
max_header_bytes = 8192
max_headers = 20
h2_max_concurrent_streams = 30

[telemetry]
metrics_port = 9090
metrics_address = "::"
otel_log_level = "debug"

[logging]
level = "trace"
show_target = true
format = "json"
access_log = true

[reload]
watch = false
debounce_secs = 2

[ebpf]
interfaces = ["lo", "eth0"]
xdp_mode = "skb"
dst_ipv4 = "192.0.2.1"
dst_ipv6 = "2001:db8::2"
ports = [80, 443]
pin_path = "/sys/fs/bpf/test"
syn_map_max_entries = 1024

[dbus]
bus = "unix:path=/run/test-bus"
)";

TEST(ConfigValues, EveryKeyIsRead) {
  auto c = ok(kFull);
  EXPECT_TRUE(c->preserve_host);
  EXPECT_EQ(c->workers, 5u);
  EXPECT_EQ(c->user, "nobody");

  ASSERT_EQ(c->listen.addrs.size(), 4u);  // port 0 may repeat: each binds its own port
  EXPECT_EQ(c->listen.addrs[1].to_string(), "[::]:80");
  EXPECT_EQ(c->listen.tcp_backlog, 128u);
  EXPECT_EQ(c->listen.proxy_protocol.mode, ProxyProtocol::Mode::kRequire);
  EXPECT_EQ(c->listen.proxy_protocol.header_timeout_ms, 500u);

  ASSERT_EQ(c->backends.size(), 3u);
  const Backend& b0 = c->backends[0];
  EXPECT_EQ(b0.address, "127.0.0.1:9000");
  EXPECT_EQ(b0.host, "127.0.0.1");
  EXPECT_EQ(b0.port, 9000);
  EXPECT_EQ(b0.http_version, HttpVersion::kHttp11);
  ASSERT_TRUE(b0.health_check);
  EXPECT_EQ(b0.health_check->type, HealthCheck::Type::kHttp);
  EXPECT_EQ(b0.health_check->path, "/healthz?full=1");
  EXPECT_EQ(b0.health_check->expected_status, 204u);
  EXPECT_EQ(b0.health_check->interval_secs, 3u);
  EXPECT_EQ(b0.health_check->timeout_secs, 3u);
  EXPECT_EQ(b0.health_check->unhealthy_threshold, 4u);
  EXPECT_EQ(b0.health_check->healthy_threshold, 1u);
  EXPECT_EQ(c->backends[1].host, "2001:db8::1");
  EXPECT_EQ(c->backends[1].port, 8080);
  EXPECT_EQ(c->backends[1].http_version, HttpVersion::kHttp2);
  EXPECT_EQ(c->backends[2].host, "backend-b.internal");
  EXPECT_EQ(c->backends[2].http_version, HttpVersion::kPreserve);
  EXPECT_EQ(c->find_backend("[2001:db8::1]:8080"), &c->backends[1]);

  ASSERT_EQ(c->domains.size(), 3u);
  const Domain& d = c->domains[0];
  EXPECT_EQ(d.host, "api.example.com");
  EXPECT_EQ(d.cert_path, "/etc/huginn/api.crt");
  EXPECT_EQ(d.key_path, "/etc/huginn/api.key");
  EXPECT_EQ(d.client_ca_path, "/etc/huginn/ca.pem");
  EXPECT_EQ(d.fingerprinting, false);
  EXPECT_EQ(d.headers.response.remove, (std::vector<std::string>{"server", "x-powered-by"}));
  ASSERT_EQ(d.headers.response.add.size(), 1u);
  EXPECT_EQ(d.headers.response.add[0].name, "x-proxy");
  EXPECT_EQ(d.headers.response.add[0].value, "huginn");
  ASSERT_TRUE(d.security.ip_filter);
  EXPECT_EQ(d.security.ip_filter->mode, IpFilter::Mode::kAllowlist);
  ASSERT_EQ(d.security.ip_filter->allowlist.size(), 2u);
  EXPECT_EQ(d.security.ip_filter->allowlist[0].to_string(), "10.0.0.0/8");
  EXPECT_FALSE(d.security.rate_limit);
  ASSERT_TRUE(d.security.headers);
  EXPECT_EQ(d.security.headers->custom[0].name, "x-frame-options");
  EXPECT_FALSE(d.security.headers->hsts.enabled);  // whole-block override: defaults, not the parent's

  ASSERT_EQ(d.routes.size(), 2u);
  const Route& r = d.routes[0];
  EXPECT_EQ(r.prefix, "/api");
  EXPECT_EQ(r.backend, "127.0.0.1:9000");
  EXPECT_EQ(r.fingerprinting, true);
  EXPECT_TRUE(r.force_new_connection);
  EXPECT_EQ(r.replace_path, "/v2");
  ASSERT_TRUE(r.security.rate_limit);
  EXPECT_TRUE(r.security.rate_limit->enabled);
  EXPECT_EQ(r.security.rate_limit->requests_per_second, 5u);
  EXPECT_EQ(r.security.rate_limit->burst, 7u);
  EXPECT_EQ(r.security.rate_limit->window_seconds, 2u);
  EXPECT_EQ(r.security.rate_limit->limit_by, RateLimit::LimitBy::kCombined);
  EXPECT_EQ(r.security.rate_limit->limit_by_header, "x-api-key");
  ASSERT_EQ(r.headers.request.add.size(), 1u);
  EXPECT_EQ(r.headers.request.add[0].name, "x-route");
  EXPECT_EQ(d.routes[1].replace_path, "");
  EXPECT_EQ(c->domains[1].host, "*.example.com");
  EXPECT_FALSE(c->domains[2].host.has_value());

  ASSERT_EQ(c->headers.request.add.size(), 2u);
  EXPECT_EQ(c->headers.request.add[0].name, "x-proxy-name");
  EXPECT_EQ(c->headers.request.add[0].value, "huginn-proxy");
  EXPECT_EQ(c->headers.request.add[1].value, "");
  EXPECT_EQ(c->headers.request.remove, (std::vector<std::string>{"x-forwarded-server"}));
  EXPECT_EQ(c->headers.response.remove, (std::vector<std::string>{"via"}));

  const Security& s = c->security;
  EXPECT_EQ(s.max_connections, 1024u);
  ASSERT_EQ(s.trusted_proxies.cidrs.size(), 2u);
  EXPECT_EQ(s.trusted_proxies.cidrs[1].to_string(), "::1/128");
  EXPECT_TRUE(s.trusted_proxies.insecure);
  EXPECT_EQ(s.ip_filter.mode, IpFilter::Mode::kDenylist);
  EXPECT_EQ(s.ip_filter.denylist.size(), 1u);
  EXPECT_TRUE(s.rate_limit.enabled);
  EXPECT_EQ(s.rate_limit.requests_per_second, 100u);
  EXPECT_EQ(s.rate_limit.burst, 200u);
  EXPECT_EQ(s.rate_limit.window_seconds, 10u);
  EXPECT_EQ(s.rate_limit.limit_by, RateLimit::LimitBy::kHeader);
  EXPECT_EQ(s.rate_limit.limit_by_header, "x-client");
  EXPECT_EQ(s.headers.custom[0].name, "referrer-policy");
  EXPECT_TRUE(s.headers.hsts.enabled);
  EXPECT_EQ(s.headers.hsts.max_age, 600u);
  EXPECT_TRUE(s.headers.hsts.include_subdomains);
  EXPECT_TRUE(s.headers.hsts.preload);
  EXPECT_TRUE(s.headers.csp.enabled);
  EXPECT_EQ(s.headers.csp.policy, "default-src 'none'");

  ASSERT_TRUE(c->tls);
  EXPECT_EQ(c->tls->alpn, (std::vector<std::string>{"http/1.1"}));
  EXPECT_EQ(c->tls->cert_path, "/etc/huginn/default.crt");
  EXPECT_EQ(c->tls->key_path, "/etc/huginn/default.key");
  EXPECT_EQ(c->tls->options.min_version, "1.3");
  EXPECT_EQ(c->tls->options.max_version, "1.3");
  EXPECT_EQ(c->tls->options.cipher_suites.size(), 2u);
  EXPECT_EQ(c->tls->options.curve_preferences, (std::vector<std::string>{"X25519", "secp384r1"}));
  EXPECT_TRUE(c->tls->options.sni_strict);
  EXPECT_FALSE(c->tls->session_resumption_enabled);

  const Fingerprint& f = c->fingerprint;
  EXPECT_FALSE(f.tls_enabled);
  EXPECT_FALSE(f.http_enabled);
  EXPECT_FALSE(f.tcp_enabled);
  EXPECT_EQ(f.tcp_source, Fingerprint::TcpSource::kXdp);
  EXPECT_EQ(f.max_capture, 2048u);
  EXPECT_EQ(f.headers.ja4, "x-ja4");
  EXPECT_EQ(f.headers.ja4_r, "x-ja4-r");
  EXPECT_EQ(f.headers.ja4_o, "x-ja4-o");
  EXPECT_EQ(f.headers.ja4_or, "x-ja4-or");
  EXPECT_EQ(f.headers.akamai, "x-akamai");
  EXPECT_EQ(f.headers.tcp, "x-p0f");

  const Timeout& t = c->timeout;
  EXPECT_EQ(t.upstream_connect_ms, 250u);
  EXPECT_EQ(t.upstream_response_secs, 9u);
  EXPECT_EQ(t.proxy_idle_ms, 1000u);
  EXPECT_EQ(t.request_header_ms, 2000u);
  EXPECT_EQ(t.tls_handshake_secs, 3u);
  EXPECT_EQ(t.connection_handling_secs, 300u);
  EXPECT_EQ(t.shutdown_secs, 4u);
  EXPECT_FALSE(t.keep_alive.enabled);
  EXPECT_EQ(t.keep_alive.upstream_idle_timeout, 11u);

  EXPECT_FALSE(c->backend_pool.enabled);
  EXPECT_EQ(c->backend_pool.idle_timeout, 12u);
  EXPECT_EQ(c->backend_pool.pool_max_idle_per_host, 13u);
  EXPECT_EQ(c->limits.max_header_bytes, 8192u);
  EXPECT_EQ(c->limits.max_headers, 20u);
  EXPECT_EQ(c->limits.h2_max_concurrent_streams, 30u);
  EXPECT_EQ(c->telemetry.metrics_port, 9090);
  EXPECT_EQ(c->telemetry.metrics_address, "::");
  EXPECT_EQ(c->telemetry.otel_log_level, "debug");
  EXPECT_EQ(c->logging.level, "trace");
  EXPECT_TRUE(c->logging.show_target);
  EXPECT_EQ(c->logging.format, "json");
  EXPECT_TRUE(c->logging.access_log);
  EXPECT_FALSE(c->reload.watch);
  EXPECT_EQ(c->reload.debounce_secs, 2u);
  EXPECT_EQ(c->ebpf.interfaces, (std::vector<std::string>{"lo", "eth0"}));
  EXPECT_EQ(c->ebpf.xdp_mode, "skb");
  EXPECT_EQ(c->ebpf.dst_ipv4, "192.0.2.1");
  EXPECT_EQ(c->ebpf.dst_ipv6, "2001:db8::2");
  EXPECT_EQ(c->ebpf.ports, (std::vector<uint16_t>{80, 443}));
  EXPECT_EQ(c->ebpf.pin_path, "/sys/fs/bpf/test");
  EXPECT_EQ(c->ebpf.syn_map_max_entries, 1024u);
  EXPECT_EQ(c->dbus.bus, "unix:path=/run/test-bus");
}

// Range edges are accepted (no off-by-one in the checks).
TEST(ConfigValues, RangeEdgesAccepted) {
  auto c = ok(std::string("workers = 256\n") + kListen +
              "tcp_backlog = 65535\n[telemetry]\nmetrics_port = 65535\n[timeout]\nconnection_handling_secs = "
              "4294967295\nshutdown_secs = 0\n[security.headers.hsts]\nmax_age = 9223372036854775807\n"
              "[ebpf]\nsyn_map_max_entries = 16777216\nports = [65535, 1]\n[dbus]\nbus = \"session\"\n");
  EXPECT_EQ(c->workers, 256u);
  EXPECT_EQ(c->listen.tcp_backlog, 65535u);
  EXPECT_EQ(c->telemetry.metrics_port, 65535);
  EXPECT_EQ(c->timeout.connection_handling_secs, 4294967295u);
  EXPECT_EQ(c->timeout.shutdown_secs, 0u);
  EXPECT_EQ(c->security.headers.hsts.max_age, 9223372036854775807u);
  EXPECT_EQ(c->ebpf.syn_map_max_entries, 16777216u);
  EXPECT_EQ(c->dbus.bus, "session");
  auto one = ok(std::string("workers = 1\n") + kListen + "[dbus]\nbus = \"none\"\n");
  EXPECT_EQ(one->workers, 1u);
  EXPECT_EQ(one->dbus.bus, "none");
}

struct HostCase {
  const char* written;
  const char* stored;
};

class DomainHost : public ::testing::TestWithParam<HostCase> {};

TEST_P(DomainHost, Normalised) {
  auto c = ok(std::string(kListen) + "[[domains]]\nhost = \"" + GetParam().written + "\"\n");
  ASSERT_EQ(c->domains.size(), 1u);
  EXPECT_EQ(c->domains[0].host, GetParam().stored);
}

INSTANTIATE_TEST_SUITE_P(
    Table, DomainHost,
    ::testing::Values(HostCase{"example.com", "example.com"}, HostCase{"Example.COM", "example.com"},
                      HostCase{"example.com.", "example.com"}, HostCase{"localhost", "localhost"},
                      HostCase{"*.Example.com.", "*.example.com"}, HostCase{"*.com", "*.com"},
                      HostCase{"xn--bcher-kva.example", "xn--bcher-kva.example"},
                      HostCase{"192.0.2.1", "192.0.2.1"}, HostCase{"2001:DB8::1", "2001:db8::1"},
                      HostCase{"_service.example.com", "_service.example.com"}));

TEST(ConfigDomains, ExactWildcardAndCatchAllCoexist) {
  auto c = ok(std::string(kListen) +
              "[[domains]]\nhost = \"example.com\"\n[[domains]]\nhost = \"*.example.com\"\n[[domains]]\n");
  ASSERT_EQ(c->domains.size(), 3u);
  EXPECT_EQ(c->domains[0].host, "example.com");
  EXPECT_EQ(c->domains[1].host, "*.example.com");
  EXPECT_FALSE(c->domains[2].host);
}

TEST(ConfigDomains, CatchAllCertificateAndMtls) {
  auto c = ok(std::string(kListen) +
              "[tls]\n[[domains]]\ncert_path = \"/c\"\nkey_path = \"/k\"\n[[domains]]\nhost = \"m.example\"\n"
              "cert_path = \"/c2\"\nkey_path = \"/k2\"\nclient_ca_path = \"/ca\"\n");
  ASSERT_TRUE(c->tls);
  EXPECT_EQ(c->tls->cert_path, "");
  EXPECT_EQ(c->domains[0].cert_path, "/c");
  EXPECT_EQ(c->domains[1].client_ca_path, "/ca");
}

TEST(ConfigRoutes, OrderKeptAndSamePrefixAllowed) {
  auto c = ok(std::string(kListen) +
              "[[backends]]\naddress = \"a:1\"\n[[backends]]\naddress = \"b:1\"\n[[domains]]\n"
              "[[domains.routes]]\nprefix = \"/lb\"\nbackend = \"a:1\"\n"
              "[[domains.routes]]\nprefix = \"/lb\"\nbackend = \"b:1\"\n"
              "[[domains.routes]]\nprefix = \"/\"\nbackend = \"a:1\"\n");
  ASSERT_EQ(c->domains[0].routes.size(), 3u);
  EXPECT_EQ(c->domains[0].routes[0].backend, "a:1");
  EXPECT_EQ(c->domains[0].routes[1].backend, "b:1");
  EXPECT_EQ(c->domains[0].routes[2].prefix, "/");
}

TEST(ConfigTls, VersionsListAndInlineTables) {
  auto c = ok(std::string(kListen) +
              "[tls]\ncert_path = \"/c\"\nkey_path = \"/k\"\noptions = { versions = [\"1.3\", \"1.2\"] }\n"
              "session_resumption = { enabled = true }\n");
  EXPECT_EQ(c->tls->options.versions, (std::vector<std::string>{"1.2", "1.3"}));
  auto empty_alpn = ok(std::string(kListen) + "[tls]\ncert_path = \"/c\"\nkey_path = \"/k\"\nalpn = []\n");
  EXPECT_TRUE(empty_alpn->tls->alpn.empty());
}

TEST(ConfigLoad, ArrayOfInlineTablesFormsAreEquivalent) {
  auto a = ok(std::string("backends = [{ address = \"a:1\" }]\n") + kListen);
  auto b = ok(std::string(kListen) + "[[backends]]\naddress = \"a:1\"\n");
  ASSERT_EQ(a->backends.size(), 1u);
  EXPECT_EQ(a->backends[0].address, b->backends[0].address);
}

}  // namespace
}  // namespace huginn::config::test
