// One validation error per case: the key path, line:column and message are asserted.
#include <gtest/gtest.h>

#include "tests/unit/config/config_test_util.h"

namespace huginn::config::test {
namespace {

struct ErrorCase {
  const char* name;
  const char* toml;  // [listen] is appended unless the snippet mentions listen
  const char* path;
  uint32_t line;
  uint32_t column;
  const char* message;  // substring
};

std::ostream& operator<<(std::ostream& os, const ErrorCase& c) { return os << c.name; }

class ConfigError1 : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigError1, Reported) {
  const ErrorCase& c = GetParam();
  std::string text = c.toml;
  if (text.find("listen") == std::string::npos) text += std::string("\n") + kListen;
  auto errs = errors(text);
  ASSERT_EQ(errs.size(), 1u) << join_errors(errs) << "for:\n" << text;
  const ConfigError& e = errs[0];
  EXPECT_EQ(e.key_path, c.path) << e.to_string();
  EXPECT_EQ(e.pos.line, c.line) << e.to_string();
  EXPECT_EQ(e.pos.column, c.column) << e.to_string();
  EXPECT_NE(e.message.find(c.message), std::string::npos) << e.to_string();
  EXPECT_EQ(e.file, "config.toml");
  // The rendered form names all three.
  const std::string rendered = e.to_string();
  if (!e.key_path.empty()) {
    EXPECT_EQ(rendered.rfind(e.key_path + ": ", 0), 0u) << rendered;
  }
  const std::string where = "(config.toml:" + std::to_string(c.line) + ":" + std::to_string(c.column) + ")";
  EXPECT_NE(rendered.find(where), std::string::npos) << rendered;
}

#define BACKEND "[[backends]]\naddress = \"127.0.0.1:9000\"\n"
#define ROUTE "[[domains.routes]]\nprefix = \"/\"\nbackend = \"127.0.0.1:9000\"\n"
#define TLS_CERT "[tls]\ncert_path = \"/c.pem\"\nkey_path = \"/k.pem\"\n"

const ErrorCase kTopLevel[] = {
    {"syntax", "a = \n", "", 1, 5, "syntax error"},
    {"syntax_dup_key", "workers = 1\nworkers = 2\n", "", 2, 11, "syntax error"},
    {"preserve_host_type", "preserve_host = \"yes\"", "preserve_host", 1, 17, "expected boolean, got string"},
    {"workers_zero", "workers = 0", "workers", 1, 11, "between 1 and 256, got 0"},
    {"workers_big", "workers = 257", "workers", 1, 11, "between 1 and 256, got 257"},
    {"workers_huge", "workers = 9223372036854775807", "workers", 1, 11, "between 1 and 256"},
    {"workers_float", "workers = 1.5", "workers", 1, 11, "expected integer, got float"},
    {"cpu_affinity_word", "worker_cpu_affinity = \"all\"", "worker_cpu_affinity", 1, 23,
     "must be \"off\", \"auto\" or an array of CPU lists"},
    {"cpu_affinity_nul", "worker_cpu_affinity = \"au\\u0000to\"", "worker_cpu_affinity", 1, 23, "NUL"},
    {"cpu_affinity_type", "worker_cpu_affinity = 3", "worker_cpu_affinity", 1, 23,
     "expected a string or an array of strings, got integer"},
    {"cpu_affinity_empty", "worker_cpu_affinity = []", "worker_cpu_affinity", 1, 23,
     "must hold 1 to 256 CPU lists"},
    {"cpu_affinity_item_type", "worker_cpu_affinity = [\"0\", 1]", "worker_cpu_affinity[1]", 1, 29,
     "expected string, got integer"},
    {"cpu_affinity_backwards", "worker_cpu_affinity = [\"0\", \"3-1\"]", "worker_cpu_affinity[1]", 1, 29,
     "range \"3-1\" runs backwards"},
    {"cpu_affinity_too_big", "worker_cpu_affinity = [\"1024\"]", "worker_cpu_affinity[0]", 1, 24,
     "CPU 1024 is not below 1024"},
    {"cpu_affinity_blank", "worker_cpu_affinity = [\"0, 1\"]", "worker_cpu_affinity[0]", 1, 24,
     "not a CPU number: \" 1\""},
    {"cpu_affinity_trailing_comma", "worker_cpu_affinity = [\"0,\"]", "worker_cpu_affinity[0]", 1, 24,
     "not a CPU number: \"\""},
    {"cpu_affinity_open_range", "worker_cpu_affinity = [\"2-\"]", "worker_cpu_affinity[0]", 1, 24,
     "not a CPU number: \"\""},
    {"user_empty", "user = \"\"", "user", 1, 8, "not a valid user name"},
    {"user_colon", "user = \"root:x\"", "user", 1, 8, "not a valid user name"},
    {"user_numeric", "user = \"1000\"", "user", 1, 8, "not a valid user name"},
    {"user_type", "user = 1000", "user", 1, 8, "expected string, got integer"},
    {"user_nul", "user = \"a\\u0000b\"", "user", 1, 8, "NUL"},
    {"unknown_top", "colour = 1", "colour", 1, 1, "unknown key \"colour\""},
    {"legacy_routes", "[[routes]]\nprefix = \"/\"", "routes", 1, 3, "legacy schema"},
    {"no_listen", "# no listen table\nworkers = 1", "listen", 1, 1, "[listen] table is required"},
    {"listen_not_table", "listen = 1", "listen", 1, 10, "expected table, got integer"},
};

const ErrorCase kListenCases[] = {
    {"addrs_missing", "[listen]\ntcp_backlog = 5", "listen.addrs", 1, 1, "required key is missing"},
    {"addrs_empty", "[listen]\naddrs = []", "listen.addrs", 2, 9, "at least one"},
    {"addrs_type", "[listen]\naddrs = \"127.0.0.1:80\"", "listen.addrs", 2, 9, "expected array of strings"},
    {"addrs_elem_type", "[listen]\naddrs = [80]", "listen.addrs[0]", 2, 10, "expected string, got integer"},
    {"addrs_hostname", "[listen]\naddrs = [\"localhost:80\"]", "listen.addrs[0]", 2, 10,
     "not a numeric socket"},
    {"addrs_v6_unbracketed", "[listen]\naddrs = [\"::1:80\"]", "listen.addrs[0]", 2, 10,
     "not a numeric socket"},
    {"addrs_dup", "[listen]\naddrs = [\"127.0.0.1:80\", \"127.0.0.1:80\"]", "listen.addrs[1]", 2, 26,
     "duplicate listen address"},
    {"addrs_dup_v6", "[listen]\naddrs = [\"[::1]:80\", \"[0::1]:80\"]", "listen.addrs[1]", 2, 22,
     "duplicate"},
    {"backlog_zero", "[listen]\naddrs = [\"127.0.0.1:80\"]\ntcp_backlog = 0", "listen.tcp_backlog", 3, 15,
     "between 1 and 65535"},
    {"backlog_big", "[listen]\naddrs = [\"127.0.0.1:80\"]\ntcp_backlog = 65536", "listen.tcp_backlog", 3, 15,
     "between 1 and 65535"},
    {"pp_mode", "[listen]\naddrs = [\"127.0.0.1:80\"]\nproxy_protocol = { mode = \"on\" }",
     "listen.proxy_protocol.mode", 3, 27, "must be one of \"off\", \"optional\", \"require\"; got \"on\""},
    {"pp_timeout", "[listen]\naddrs = [\"127.0.0.1:80\"]\nproxy_protocol.header_timeout_ms = 0",
     "listen.proxy_protocol.header_timeout_ms", 3, 36, "between 1 and 60000"},
    {"pp_unknown", "[listen]\naddrs = [\"127.0.0.1:80\"]\n[listen.proxy_protocol]\nversion = 2",
     "listen.proxy_protocol.version", 4, 1, "unknown key"},
    {"listen_unknown", "[listen]\naddrs = [\"127.0.0.1:80\"]\nreuse_port = true", "listen.reuse_port", 3, 1,
     "unknown key"},
    {"misplaced_top_key", "[listen]\naddrs = [\"127.0.0.1:80\"]\npreserve_host = true",
     "listen.preserve_host", 3, 1, "top-level key"},
};

const ErrorCase kBackendCases[] = {
    {"not_array", "[backends]\naddress = \"a:1\"", "backends", 1, 1, "expected array of tables, got table"},
    {"address_missing", "[[backends]]\nhttp_version = \"http11\"", "backends[0].address", 1, 1, "required"},
    {"address_no_port", "[[backends]]\naddress = \"host\"", "backends[0].address", 2, 11, "host:port"},
    {"address_port0", "[[backends]]\naddress = \"host:0\"", "backends[0].address", 2, 11, "port must be"},
    {"address_port_big", "[[backends]]\naddress = \"host:65536\"", "backends[0].address", 2, 11,
     "port must be"},
    {"address_port_alpha", "[[backends]]\naddress = \"host:http\"", "backends[0].address", 2, 11,
     "port must be"},
    {"address_v6_bare", "[[backends]]\naddress = \"::1:80\"", "backends[0].address", 2, 11, "brackets"},
    {"address_v6_bad", "[[backends]]\naddress = \"[zz::]:80\"", "backends[0].address", 2, 11, "IPv6"},
    {"address_v6_noport", "[[backends]]\naddress = \"[::1]80\"", "backends[0].address", 2, 11, "[ipv6]:port"},
    {"address_bad_host", "[[backends]]\naddress = \"bad host:80\"", "backends[0].address", 2, 11,
     "host name"},
    {"address_empty_host", "[[backends]]\naddress = \":80\"", "backends[0].address", 2, 11, "host name"},
    {"address_dup", BACKEND BACKEND, "backends[1].address", 4, 11, "duplicate backend"},
    {"http_version", "[[backends]]\naddress = \"a:1\"\nhttp_version = \"http3\"", "backends[0].http_version",
     3, 16, "\"http11\", \"http2\", \"preserve\""},
    {"hc_type", "[[backends]]\naddress = \"a:1\"\nhealth_check = \"yes\"", "backends[0].health_check", 3, 16,
     "expected table, got string"},
    {"hc_kind", "[[backends]]\naddress = \"a:1\"\nhealth_check = { type = \"icmp\" }",
     "backends[0].health_check.type", 3, 25, "\"tcp\", \"http\""},
    {"hc_http_no_path", "[[backends]]\naddress = \"a:1\"\n[backends.health_check]\ntype = \"http\"",
     "backends[0].health_check.path", 3, 1, "required"},
    {"hc_tcp_path", "[[backends]]\naddress = \"a:1\"\nhealth_check = { path = \"/h\" }",
     "backends[0].health_check.path", 3, 25, "only valid with type = \"http\""},
    {"hc_tcp_status", "[[backends]]\naddress = \"a:1\"\nhealth_check = { expected_status = 204 }",
     "backends[0].health_check.expected_status", 3, 36, "only valid with type"},
    {"hc_path_rel", "[[backends]]\naddress = \"a:1\"\nhealth_check = { type = \"http\", path = \"h\" }",
     "backends[0].health_check.path", 3, 40, "must start with '/'"},
    {"hc_path_fragment",
     "[[backends]]\naddress = \"a:1\"\nhealth_check = { type = \"http\", path = \"/h#x\" }",
     "backends[0].health_check.path", 3, 40, "'#'"},
    {"hc_status",
     "[[backends]]\naddress = \"a:1\"\nhealth_check = { type = \"http\", path = \"/\", expected_status = 600 "
     "}",
     "backends[0].health_check.expected_status", 3, 63, "between 100 and 599"},
    {"hc_interval", "[[backends]]\naddress = \"a:1\"\nhealth_check = { interval_secs = 0 }",
     "backends[0].health_check.interval_secs", 3, 34, "between 1 and 86400"},
    {"hc_timeout_gt_interval",
     "[[backends]]\naddress = \"a:1\"\nhealth_check = { interval_secs = 2, timeout_secs = 3 }",
     "backends[0].health_check.timeout_secs", 3, 52, "must not exceed interval_secs"},
    {"hc_timeout_gt_default_interval",
     "[[backends]]\naddress = \"a:1\"\nhealth_check = { timeout_secs = 11 }",
     "backends[0].health_check.timeout_secs", 3, 33, "must not exceed interval_secs (10)"},
    {"hc_timeout_zero", "[[backends]]\naddress = \"a:1\"\nhealth_check = { timeout_secs = 0 }",
     "backends[0].health_check.timeout_secs", 3, 33, "between 1 and 86400"},
    {"hc_unhealthy", "[[backends]]\naddress = \"a:1\"\nhealth_check = { unhealthy_threshold = 0 }",
     "backends[0].health_check.unhealthy_threshold", 3, 40, "between 1 and 1000"},
    {"hc_healthy", "[[backends]]\naddress = \"a:1\"\nhealth_check = { healthy_threshold = 0 }",
     "backends[0].health_check.healthy_threshold", 3, 38, "between 1 and 1000"},
    {"hc_unknown", "[[backends]]\naddress = \"a:1\"\nhealth_check = { method = \"GET\" }",
     "backends[0].health_check.method", 3, 18, "unknown key"},
    {"backend_unknown", "[[backends]]\naddress = \"a:1\"\nweight = 2", "backends[0].weight", 3, 1,
     "unknown key"},
};

const ErrorCase kDomainCases[] = {
    {"not_array", "[domains]\nhost = \"a\"", "domains", 1, 1, "expected array of tables"},
    {"host_empty", "[[domains]]\nhost = \"\"", "domains[0].host", 2, 8, "omit host"},
    {"host_dot", "[[domains]]\nhost = \".\"", "domains[0].host", 2, 8, "not a host name"},
    {"host_wild_only", "[[domains]]\nhost = \"*\"", "domains[0].host", 2, 8, "wildcard"},
    {"host_wild_dot", "[[domains]]\nhost = \"*.\"", "domains[0].host", 2, 8, "wildcard"},
    {"host_wild_mid", "[[domains]]\nhost = \"a.*.example.com\"", "domains[0].host", 2, 8, "wildcard"},
    {"host_wild_partial", "[[domains]]\nhost = \"*foo.example.com\"", "domains[0].host", 2, 8, "wildcard"},
    {"host_wild_double", "[[domains]]\nhost = \"*.*.example.com\"", "domains[0].host", 2, 8, "wildcard"},
    {"host_wild_bad_base", "[[domains]]\nhost = \"*.exa mple.com\"", "domains[0].host", 2, 8, "wildcard"},
    {"host_space", "[[domains]]\nhost = \"ex ample.com\"", "domains[0].host", 2, 8, "not a valid host name"},
    {"host_double_dot", "[[domains]]\nhost = \"a..b\"", "domains[0].host", 2, 8, "not a valid host name"},
    {"host_two_trailing_dots", "[[domains]]\nhost = \"a.b..\"", "domains[0].host", 2, 8,
     "not a valid host name"},
    {"host_port", "[[domains]]\nhost = \"example.com:443\"", "domains[0].host", 2, 8, "port"},
    {"host_type", "[[domains]]\nhost = 1", "domains[0].host", 2, 8, "expected string, got integer"},
    {"host_dup", "[[domains]]\nhost = \"Example.COM.\"\n[[domains]]\nhost = \"example.com\"",
     "domains[1].host", 4, 8, "duplicate domain \"example.com\""},
    {"host_dup_wild", "[[domains]]\nhost = \"*.a.b\"\n[[domains]]\nhost = \"*.A.B.\"", "domains[1].host", 4,
     8, "duplicate domain"},
    {"two_catch_all", "[[domains]]\nfingerprinting = true\n[[domains]]\nfingerprinting = false", "domains[1]",
     3, 1, "more than one catch-all"},
    {"cert_no_key", TLS_CERT "[[domains]]\ncert_path = \"/d.pem\"", "domains[0].cert_path", 5, 13,
     "needs key_path"},
    {"key_no_cert", TLS_CERT "[[domains]]\nkey_path = \"/d.key\"", "domains[0].key_path", 5, 12,
     "needs cert_path"},
    {"ca_without_cert", TLS_CERT "[[domains]]\nclient_ca_path = \"/ca.pem\"", "domains[0].client_ca_path", 5,
     18, "needs cert_path and key_path"},
    {"cert_without_tls", "[[domains]]\ncert_path = \"/d.pem\"\nkey_path = \"/d.key\"", "domains[0].cert_path",
     2, 13, "needs a [tls] section"},
    {"cert_empty", TLS_CERT "[[domains]]\ncert_path = \"\"\nkey_path = \"/d.key\"", "domains[0].cert_path", 5,
     13, "must not be empty"},
    {"fingerprinting_type", "[[domains]]\nfingerprinting = 1", "domains[0].fingerprinting", 2, 18,
     "expected boolean, got integer"},
    {"domain_unknown", "[[domains]]\nhosts = [\"a\"]", "domains[0].hosts", 2, 1, "unknown key"},
    {"domain_misplaced_security_key", "[[domains]]\n[domains.security]\nmax_connections = 1",
     "domains[0].security.max_connections", 3, 1, "unknown key"},
    {"routes_not_array", "[[domains]]\nroutes = 1", "domains[0].routes", 2, 10, "expected array of tables"},
    {"route_prefix_missing", BACKEND "[[domains]]\n[[domains.routes]]\nbackend = \"127.0.0.1:9000\"",
     "domains[0].routes[0].prefix", 4, 1, "required"},
    {"route_prefix_rel",
     BACKEND "[[domains]]\n[[domains.routes]]\nprefix = \"api\"\nbackend = \"127.0.0.1:9000\"",
     "domains[0].routes[0].prefix", 5, 10, "must start with '/'"},
    {"route_prefix_space",
     BACKEND "[[domains]]\n[[domains.routes]]\nprefix = \"/a b\"\nbackend = \"127.0.0.1:9000\"",
     "domains[0].routes[0].prefix", 5, 10, "no spaces"},
    {"route_prefix_query",
     BACKEND "[[domains]]\n[[domains.routes]]\nprefix = \"/a?b\"\nbackend = \"127.0.0.1:9000\"",
     "domains[0].routes[0].prefix", 5, 10, "'?'"},
    {"route_backend_missing", "[[domains]]\n[[domains.routes]]\nprefix = \"/\"",
     "domains[0].routes[0].backend", 2, 1, "required"},
    {"route_backend_unknown",
     BACKEND "[[domains]]\n" ROUTE ROUTE "[[domains.routes]]\nprefix = \"/x\"\nbackend = \"10.0.0.9:80\"",
     "domains[0].routes[2].backend", 12, 11, "no [[backends]] entry \"10.0.0.9:80\""},
    {"route_backend_case",
     BACKEND "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"127.0.0.1:9000 \"",
     "domains[0].routes[0].backend", 6, 11, "no [[backends]] entry"},
    {"route_replace_path", BACKEND "[[domains]]\n" ROUTE "replace_path = \"new\"",
     "domains[0].routes[0].replace_path", 7, 16, "must be empty or start with '/'"},
    {"route_force_type", BACKEND "[[domains]]\n" ROUTE "force_new_connection = \"no\"",
     "domains[0].routes[0].force_new_connection", 7, 24, "expected boolean, got string"},
    {"route_fp_type", BACKEND "[[domains]]\n" ROUTE "fingerprinting = \"no\"",
     "domains[0].routes[0].fingerprinting", 7, 18, "expected boolean"},
    {"route_unknown", BACKEND "[[domains]]\n" ROUTE "method = \"GET\"", "domains[0].routes[0].method", 7, 1,
     "unknown key"},
    {"route_security_bad_cidr",
     BACKEND "[[domains]]\n" ROUTE "[domains.routes.security.ip_filter]\nallowlist = [\"x\"]",
     "domains[0].routes[0].security.ip_filter.allowlist[0]", 8, 14, "not a valid IPv4/IPv6 address or CIDR"},
    {"route_security_unknown",
     BACKEND "[[domains]]\n" ROUTE "[domains.routes.security]\ntrusted_proxies = {}",
     "domains[0].routes[0].security.trusted_proxies", 8, 1, "unknown key"},
    {"second_domain_second_route",
     BACKEND "[[domains]]\nhost = \"a\"\n[[domains]]\nhost = \"b\"\n" ROUTE
             "[[domains.routes]]\nprefix = \"x\"\n"
             "backend = \"127.0.0.1:9000\"",
     "domains[1].routes[1].prefix", 11, 10, "must start with '/'"},
};

const ErrorCase kHeaderCases[] = {
    {"add_bad_name", "[headers.request]\nadd = [{ name = \"bad name\", value = \"x\" }]",
     "headers.request.add[0].name", 2, 17, "not a valid HTTP header name"},
    {"add_name_colon", "[headers.response]\nadd = [{ name = \":status\", value = \"x\" }]",
     "headers.response.add[0].name", 2, 17, "not a valid HTTP header name"},
    {"add_value_crlf", "[headers.request]\nadd = [{ name = \"x-a\", value = \"a\\r\\nb: c\" }]",
     "headers.request.add[0].value", 2, 32, "CR, LF"},
    {"add_missing_value", "[headers.request]\nadd = [{ name = \"x-a\" }]", "headers.request.add[0].value", 2,
     8, "required"},
    {"add_missing_name", "[headers.request]\nadd = [{ value = \"x\" }]", "headers.request.add[0].name", 2, 8,
     "required"},
    {"add_unknown", "[headers.request]\nadd = [{ name = \"x-a\", value = \"1\", mode = \"append\" }]",
     "headers.request.add[0].mode", 2, 37, "unknown key"},
    {"add_not_tables", "[headers.request]\nadd = [\"x-a: 1\"]", "headers.request.add[0]", 2, 8,
     "expected table, got string"},
    {"add_type", "[headers.request]\nadd = { name = \"x\", value = \"y\" }", "headers.request.add", 2, 7,
     "expected array of tables, got table"},
    {"remove_bad", "[headers.request]\nremove = [\"ok\", \"bad:\"]", "headers.request.remove[1]", 2, 17,
     "not a valid HTTP header name: \"bad:\""},
    {"remove_type", "[headers.request]\nremove = \"x\"", "headers.request.remove", 2, 10,
     "expected array of strings"},
    {"headers_unknown_dir", "[headers.upstream]\nremove = []", "headers.upstream", 1, 10, "unknown key"},
    {"ops_unknown", "[headers.request]\nset = []", "headers.request.set", 2, 1, "unknown key"},
    {"domain_headers", "[[domains]]\n[domains.headers.response]\nremove = [\"bad header\"]",
     "domains[0].headers.response.remove[0]", 3, 11, "not a valid HTTP header name"},
    {"route_headers",
     BACKEND "[[domains]]\n" ROUTE
             "[domains.routes.headers.request]\nadd = [{ name = \"x y\", value = \"1\" }]",
     "domains[0].routes[0].headers.request.add[0].name", 8, 17, "not a valid HTTP header name"},
};

const ErrorCase kSecurityCases[] = {
    {"max_conn", "[security]\nmax_connections = 0", "security.max_connections", 2, 19,
     "between 1 and 10000000"},
    {"trusted_cidr", "[security.trusted_proxies]\ncidrs = [\"10.0.0.0/8\", \"10.0.0.0/33\"]",
     "security.trusted_proxies.cidrs[1]", 2, 24,
     "not a valid IPv4/IPv6 address or CIDR prefix: \"10.0.0.0/33\""},
    {"trusted_insecure", "[security.trusted_proxies]\ninsecure = \"true\"",
     "security.trusted_proxies.insecure", 2, 12, "expected boolean"},
    {"trusted_unknown", "[security.trusted_proxies]\nheader = \"x-real-ip\"",
     "security.trusted_proxies.header", 2, 1, "unknown key"},
    {"ipf_mode", "[security.ip_filter]\nmode = \"block\"", "security.ip_filter.mode", 2, 8,
     "\"disabled\", \"allowlist\", \"denylist\"; got \"block\""},
    {"ipf_allow", "[security.ip_filter]\nallowlist = [\"nope\"]", "security.ip_filter.allowlist[0]", 2, 14,
     "CIDR"},
    {"ipf_deny", "[security.ip_filter]\ndenylist = [\"::/200\"]", "security.ip_filter.denylist[0]", 2, 13,
     "CIDR"},
    {"rl_rps", "[security.rate_limit]\nrequests_per_second = 0", "security.rate_limit.requests_per_second", 2,
     23, "between 1 and 100000000"},
    {"rl_rps_neg", "[security.rate_limit]\nrequests_per_second = -5",
     "security.rate_limit.requests_per_second", 2, 23, "got -5"},
    {"rl_burst", "[security.rate_limit]\nburst = 0", "security.rate_limit.burst", 2, 9, "between 1"},
    {"rl_window", "[security.rate_limit]\nwindow_seconds = 0", "security.rate_limit.window_seconds", 2, 18,
     "between 1 and 86400"},
    {"rl_limit_by", "[security.rate_limit]\nlimit_by = \"user\"", "security.rate_limit.limit_by", 2, 12,
     "\"ip\", \"header\", \"route\", \"combined\""},
    {"rl_header_name", "[security.rate_limit]\nlimit_by = \"header\"\nlimit_by_header = \"x y\"",
     "security.rate_limit.limit_by_header", 3, 19, "not a valid HTTP header name"},
    {"rl_header_missing", "[security.rate_limit]\nlimit_by = \"header\"", "security.rate_limit.limit_by", 2,
     12, "needs limit_by_header"},
    {"rl_enabled", "[security.rate_limit]\nenabled = 1", "security.rate_limit.enabled", 2, 11,
     "expected boolean"},
    {"rl_unknown", "[security.rate_limit]\nalgorithm = \"gcra\"", "security.rate_limit.algorithm", 2, 1,
     "unknown key"},
    {"custom_missing_value", "[security.headers]\ncustom = [{ name = \"X-Frame-Options\" }]",
     "security.headers.custom[0].value", 2, 11, "required"},
    {"custom_bad_name", "[security.headers]\ncustom = [{ name = \"\", value = \"x\" }]",
     "security.headers.custom[0].name", 2, 20, "not a valid HTTP header name"},
    {"hsts_max_age", "[security.headers.hsts]\nmax_age = -1", "security.headers.hsts.max_age", 2, 11,
     "between 0 and"},
    {"hsts_type", "[security.headers]\nhsts = true", "security.headers.hsts", 2, 8,
     "expected table, got boolean"},
    {"hsts_unknown", "[security.headers.hsts]\nsubdomains = true", "security.headers.hsts.subdomains", 2, 1,
     "unknown key"},
    {"csp_empty", "[security.headers.csp]\npolicy = \"\"", "security.headers.csp.policy", 2, 10,
     "must not be empty"},
    {"csp_newline", "[security.headers.csp]\npolicy = \"a\\nb\"", "security.headers.csp.policy", 2, 10, "LF"},
    {"sec_headers_unknown", "[security.headers]\nx_frame_options = \"DENY\"",
     "security.headers.x_frame_options", 2, 1, "unknown key"},
    {"security_unknown", "[security]\nwaf = true", "security.waf", 2, 1, "unknown key"},
    {"domain_rl", "[[domains]]\n[domains.security.rate_limit]\nburst = 0",
     "domains[0].security.rate_limit.burst", 3, 9, "between 1"},
    {"domain_csp", "[[domains]]\nsecurity.headers.csp.policy = \"\"",
     "domains[0].security.headers.csp.policy", 2, 31, "must not be empty"},
    {"route_rl_mode", BACKEND "[[domains]]\n" ROUTE "security.rate_limit.limit_by = \"cookie\"",
     "domains[0].routes[0].security.rate_limit.limit_by", 7, 32, "must be one of"},
};

const ErrorCase kTlsCases[] = {
    {"no_cert", "[tls]\nalpn = [\"h2\"]", "tls", 1, 1, "needs a certificate"},
    {"alpn_value", TLS_CERT "alpn = [\"h2\", \"h3\"]", "tls.alpn[1]", 4, 15,
     "must be \"h2\" or \"http/1.1\"; got \"h3\""},
    {"alpn_dup", TLS_CERT "alpn = [\"h2\", \"h2\"]", "tls.alpn[1]", 4, 15, "duplicate"},
    {"alpn_type", TLS_CERT "alpn = \"h2\"", "tls.alpn", 4, 8, "expected array of strings"},
    {"cert_no_key", "[tls]\ncert_path = \"/c.pem\"", "tls.cert_path", 2, 13, "needs key_path"},
    {"key_no_cert", "[tls]\nkey_path = \"/k.pem\"", "tls.key_path", 2, 12, "needs cert_path"},
    {"cert_empty", "[tls]\ncert_path = \"\"\nkey_path = \"/k\"", "tls.cert_path", 2, 13, "must not be empty"},
    {"versions_value", TLS_CERT "[tls.options]\nversions = [\"1.1\"]", "tls.options.versions[0]", 5, 13,
     "must be \"1.2\" or \"1.3\"; got \"1.1\""},
    {"versions_dup", TLS_CERT "[tls.options]\nversions = [\"1.3\", \"1.3\"]", "tls.options.versions[1]", 5,
     20, "duplicate"},
    {"versions_and_min", TLS_CERT "[tls.options]\nversions = [\"1.3\"]\nmin_version = \"1.2\"",
     "tls.options.min_version", 6, 15, "mutually exclusive"},
    {"versions_and_max", TLS_CERT "[tls.options]\nversions = [\"1.3\"]\nmax_version = \"1.3\"",
     "tls.options.max_version", 6, 15, "mutually exclusive"},
    {"min_above_max", TLS_CERT "[tls.options]\nmin_version = \"1.3\"\nmax_version = \"1.2\"",
     "tls.options.min_version", 5, 15, "min_version 1.3 is above max_version 1.2"},
    {"min_value", TLS_CERT "[tls.options]\nmin_version = \"1.0\"", "tls.options.min_version", 5, 15,
     "must be \"1.2\" or \"1.3\""},
    {"max_value", TLS_CERT "[tls.options]\nmax_version = \"TLSv1.3\"", "tls.options.max_version", 5, 15,
     "must be \"1.2\" or \"1.3\""},
    {"cipher_colon", TLS_CERT "[tls.options]\ncipher_suites = [\"A:B\"]", "tls.options.cipher_suites[0]", 5,
     18, "not a valid name"},
    {"cipher_dup", TLS_CERT "[tls.options]\ncipher_suites = [\"A\", \"A\"]", "tls.options.cipher_suites[1]",
     5, 23, "duplicate"},
    {"curve_empty", TLS_CERT "[tls.options]\ncurve_preferences = [\"\"]", "tls.options.curve_preferences[0]",
     5, 22, "not a valid name"},
    {"sni_strict", TLS_CERT "[tls.options]\nsni_strict = \"yes\"", "tls.options.sni_strict", 5, 14,
     "expected boolean"},
    {"options_unknown", TLS_CERT "[tls.options]\nocsp = true", "tls.options.ocsp", 5, 1, "unknown key"},
    {"max_sessions", TLS_CERT "[tls.session_resumption]\nenabled = true\nmax_sessions = 256",
     "tls.session_resumption.max_sessions", 6, 1, "max_sessions was removed"},
    {"resumption_type", TLS_CERT "[tls.session_resumption]\nenabled = \"on\"",
     "tls.session_resumption.enabled", 5, 11, "expected boolean"},
    {"client_auth", TLS_CERT "[tls.client_auth]\nrequired = {}", "tls.client_auth", 4, 6, "client_ca_path"},
};

const ErrorCase kFingerprintCases[] = {
    {"tcp_source", "[fingerprint]\ntcp_source = \"ebpf\"", "fingerprint.tcp_source", 2, 14,
     "\"xdp\", \"saved_syn\", \"auto\""},
    {"max_capture_small", "[fingerprint]\nmax_capture = 10", "fingerprint.max_capture", 2, 15,
     "between 1024 and 16777216"},
    {"max_capture_big", "[fingerprint]\nmax_capture = 4294967296", "fingerprint.max_capture", 2, 15,
     "between"},
    {"tls_enabled", "[fingerprint]\ntls_enabled = \"no\"", "fingerprint.tls_enabled", 2, 15,
     "expected boolean"},
    {"http_enabled", "[fingerprint]\nhttp_enabled = 0", "fingerprint.http_enabled", 2, 16,
     "expected boolean"},
    {"tcp_enabled", "[fingerprint]\ntcp_enabled = []", "fingerprint.tcp_enabled", 2, 15,
     "expected boolean, got array"},
    {"header_bad", "[fingerprint.headers]\nja4 = \"x ja4\"", "fingerprint.headers.ja4", 2, 7,
     "not a valid HTTP header name"},
    {"header_reserved", "[fingerprint.headers]\nakamai = \"X-Forwarded-For\"", "fingerprint.headers.akamai",
     2, 10, "manages itself"},
    {"header_spoof_reserved", "[fingerprint.headers]\ntcp = \"x-fingerprint-spoofing-detected\"",
     "fingerprint.headers.tcp", 2, 7, "manages itself"},
    {"header_dup_default", "[fingerprint.headers]\nja4_r = \"X-Huginn-Net-JA4\"", "fingerprint.headers.ja4_r",
     2, 9, "already used by ja4"},
    {"header_dup", "[fingerprint.headers]\nja4 = \"x-a\"\ntcp = \"x-a\"", "fingerprint.headers.tcp", 3, 7,
     "already used by ja4"},
    {"header_unknown", "[fingerprint.headers]\nja4_s = \"x-a\"", "fingerprint.headers.ja4_s", 2, 1,
     "unknown key"},
    {"fp_unknown", "[fingerprint]\nenabled = true", "fingerprint.enabled", 2, 1, "unknown key"},
};

const ErrorCase kMiscCases[] = {
    {"connect_ms", "[timeout]\nupstream_connect_ms = 0", "timeout.upstream_connect_ms", 2, 23,
     "between 1 and 600000"},
    {"connect_ms_huge", "[timeout]\nupstream_connect_ms = 99999999999", "timeout.upstream_connect_ms", 2, 23,
     "got 99999999999"},
    {"response_secs", "[timeout]\nupstream_response_secs = 0", "timeout.upstream_response_secs", 2, 26,
     "between 1"},
    {"idle_ms", "[timeout]\nproxy_idle_ms = 0", "timeout.proxy_idle_ms", 2, 17, "between 1"},
    {"header_ms", "[timeout]\nrequest_header_ms = 3600001", "timeout.request_header_ms", 2, 21,
     "between 1 and 3600000"},
    {"handshake", "[timeout]\ntls_handshake_secs = 0", "timeout.tls_handshake_secs", 2, 22,
     "between 1 and 3600"},
    {"handling", "[timeout]\nconnection_handling_secs = -1", "timeout.connection_handling_secs", 2, 28,
     "between 0 and 4294967295"},
    {"shutdown", "[timeout]\nshutdown_secs = -1", "timeout.shutdown_secs", 2, 17, "between 0 and 86400"},
    {"shutdown_type", "[timeout]\nshutdown_secs = \"30s\"", "timeout.shutdown_secs", 2, 17,
     "expected integer, got string"},
    {"ka_enabled", "[timeout.keep_alive]\nenabled = 1", "timeout.keep_alive.enabled", 2, 11,
     "expected boolean"},
    {"ka_idle", "[timeout.keep_alive]\nupstream_idle_timeout = 0", "timeout.keep_alive.upstream_idle_timeout",
     2, 25, "between 1 and 86400"},
    {"timeout_unknown", "[timeout]\nread_ms = 5", "timeout.read_ms", 2, 1, "unknown key"},
    {"pool_enabled", "[backend_pool]\nenabled = \"false\"", "backend_pool.enabled", 2, 11,
     "expected boolean"},
    {"pool_idle", "[backend_pool]\nidle_timeout = 0", "backend_pool.idle_timeout", 2, 16,
     "between 1 and 86400"},
    {"pool_max_idle", "[backend_pool]\npool_max_idle_per_host = -1", "backend_pool.pool_max_idle_per_host", 2,
     26, "between 0 and 65535"},
    {"pool_unknown", "[backend_pool]\nmax_size = 1", "backend_pool.max_size", 2, 1, "unknown key"},
    {"limits_bytes", "[limits]\nmax_header_bytes = 100", "limits.max_header_bytes", 2, 20,
     "between 1024 and 1048576"},
    {"limits_headers", "[limits]\nmax_headers = 0", "limits.max_headers", 2, 15, "between 1 and 1000"},
    {"limits_streams", "[limits]\nh2_max_concurrent_streams = 0", "limits.h2_max_concurrent_streams", 2, 29,
     "between 1 and 10000"},
    {"limits_unknown", "[limits]\nmax_body_bytes = 1", "limits.max_body_bytes", 2, 1, "unknown key"},
    {"metrics_port0", "[telemetry]\nmetrics_port = 0", "telemetry.metrics_port", 2, 16,
     "between 1 and 65535"},
    {"metrics_port_big", "[telemetry]\nmetrics_port = 65536", "telemetry.metrics_port", 2, 16,
     "between 1 and 65535"},
    {"metrics_address", "[telemetry]\nmetrics_address = \"localhost\"", "telemetry.metrics_address", 2, 19,
     "not an IPv4 or IPv6 address"},
    {"metrics_address_port", "[telemetry]\nmetrics_address = \"127.0.0.1:9090\"", "telemetry.metrics_address",
     2, 19, "not an IPv4 or IPv6 address"},
    {"otel_level", "[telemetry]\notel_log_level = \"verbose\"", "telemetry.otel_log_level", 2, 18,
     "must be one of"},
    {"telemetry_unknown", "[telemetry]\notlp_endpoint = \"x\"", "telemetry.otlp_endpoint", 2, 1,
     "unknown key"},
    {"log_level", "[logging]\nlevel = \"fatal\"", "logging.level", 2, 9,
     "\"trace\", \"debug\", \"info\", \"warn\", \"error\"; got \"fatal\""},
    {"log_level_case", "[logging]\nlevel = \"INFO\"", "logging.level", 2, 9, "must be one of"},
    {"log_format", "[logging]\nformat = \"xml\"", "logging.format", 2, 10, "\"text\", \"json\""},
    {"log_show_target", "[logging]\nshow_target = 1", "logging.show_target", 2, 15, "expected boolean"},
    {"log_access", "[logging]\naccess_log = \"y\"", "logging.access_log", 2, 14, "expected boolean"},
    {"log_unknown", "[logging]\nfile = \"/x\"", "logging.file", 2, 1, "unknown key"},
    {"reload_watch", "[reload]\nwatch = \"no\"", "reload.watch", 2, 9, "expected boolean"},
    {"reload_debounce", "[reload]\ndebounce_secs = -1", "reload.debounce_secs", 2, 17, "between 0 and 86400"},
    {"reload_unknown", "[reload]\nwatch_certs = true", "reload.watch_certs", 2, 1, "unknown key"},
    {"ebpf_iface", "[ebpf]\ninterfaces = [\"eth0\", \"a/b\"]", "ebpf.interfaces[1]", 2, 23,
     "not a valid interface"},
    {"ebpf_iface_long", "[ebpf]\ninterfaces = [\"abcdefghijklmnop\"]", "ebpf.interfaces[0]", 2, 15,
     "not a valid interface"},
    {"ebpf_iface_dup", "[ebpf]\ninterfaces = [\"lo\", \"lo\"]", "ebpf.interfaces[1]", 2, 21,
     "duplicate interface"},
    {"ebpf_mode", "[ebpf]\nxdp_mode = \"generic\"", "ebpf.xdp_mode", 2, 12, "\"native\", \"skb\""},
    {"ebpf_ipv4", "[ebpf]\ndst_ipv4 = \"::1\"", "ebpf.dst_ipv4", 2, 12, "not an IPv4 address"},
    {"ebpf_ipv6", "[ebpf]\ndst_ipv6 = \"1.2.3.4\"", "ebpf.dst_ipv6", 2, 12, "not an IPv6 address"},
    {"ebpf_port0", "[ebpf]\nports = [0]", "ebpf.ports[0]", 2, 10, "between 1 and 65535"},
    {"ebpf_port_type", "[ebpf]\nports = [\"80\"]", "ebpf.ports[0]", 2, 10, "expected integer, got string"},
    {"ebpf_ports_type", "[ebpf]\nports = 80", "ebpf.ports", 2, 9, "expected array of integers"},
    {"ebpf_port_dup", "[ebpf]\nports = [80, 443, 80]", "ebpf.ports", 2, 19, "duplicate port 80"},
    {"ebpf_pin_rel", "[ebpf]\npin_path = \"sys/fs/bpf\"", "ebpf.pin_path", 2, 12, "absolute path"},
    {"ebpf_pin_dotdot", "[ebpf]\npin_path = \"/sys/fs/bpf/../x\"", "ebpf.pin_path", 2, 12, "\"..\""},
    {"ebpf_pin_dot", "[ebpf]\npin_path = \"/sys/fs/bpf/./x\"", "ebpf.pin_path", 2, 12, "absolute path"},
    {"ebpf_pin_long",
     "[ebpf]\npin_path = "
     "\"/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
     "ebpf.pin_path", 2, 12, "at most 200 bytes"},
    {"ebpf_too_many_ifaces",
     "[ebpf]\ninterfaces = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\", \"j\", \"k\", "
     "\"l\", \"m\", \"n\", \"o\", "
     "\"p\", \"q\"]",
     "ebpf.interfaces", 2, 14, "at most 16 interfaces"},
    {"ebpf_entries0", "[ebpf]\nsyn_map_max_entries = 0", "ebpf.syn_map_max_entries", 2, 23,
     "between 1 and 16777216"},
    {"ebpf_entries_big", "[ebpf]\nsyn_map_max_entries = 16777217", "ebpf.syn_map_max_entries", 2, 23,
     "between 1"},
    {"ebpf_unknown", "[ebpf]\nmode = \"tc\"", "ebpf.mode", 2, 1, "unknown key"},
    {"dbus_bus", "[dbus]\nbus = \"tcp\"", "dbus.bus", 2, 7,
     "\"system\", \"session\", \"none\" or a D-Bus address"},
    {"dbus_empty", "[dbus]\nbus = \"\"", "dbus.bus", 2, 7, "D-Bus address"},
    {"dbus_unknown", "[dbus]\nname = \"org.x\"", "dbus.name", 2, 1, "unknown key"},
};

INSTANTIATE_TEST_SUITE_P(TopLevel, ConfigError1, ::testing::ValuesIn(kTopLevel));
INSTANTIATE_TEST_SUITE_P(Listen, ConfigError1, ::testing::ValuesIn(kListenCases));
INSTANTIATE_TEST_SUITE_P(Backends, ConfigError1, ::testing::ValuesIn(kBackendCases));
INSTANTIATE_TEST_SUITE_P(Domains, ConfigError1, ::testing::ValuesIn(kDomainCases));
INSTANTIATE_TEST_SUITE_P(Headers, ConfigError1, ::testing::ValuesIn(kHeaderCases));
INSTANTIATE_TEST_SUITE_P(Security, ConfigError1, ::testing::ValuesIn(kSecurityCases));
INSTANTIATE_TEST_SUITE_P(Tls, ConfigError1, ::testing::ValuesIn(kTlsCases));
INSTANTIATE_TEST_SUITE_P(Fingerprint, ConfigError1, ::testing::ValuesIn(kFingerprintCases));
INSTANTIATE_TEST_SUITE_P(Misc, ConfigError1, ::testing::ValuesIn(kMiscCases));

}  // namespace
}  // namespace huginn::config::test

namespace huginn::config::test {
namespace {

TEST(ConfigEbpf, AtMost64Ports) {
  std::string ports;
  for (int p = 1; p <= 65; ++p) ports += (p > 1 ? ", " : "") + std::to_string(p);
  auto e = errors(std::string(kListen) + "[ebpf]\nports = [" + ports + "]\n");
  ASSERT_EQ(e.size(), 1u) << join_errors(e);
  EXPECT_EQ(e[0].key_path, "ebpf.ports");
  EXPECT_NE(e[0].message.find("at most 64 ports"), std::string::npos);
  std::string ok64;
  for (int p = 1; p <= 64; ++p) ok64 += (p > 1 ? ", " : "") + std::to_string(p);
  EXPECT_EQ(ok(std::string(kListen) + "[ebpf]\nports = [" + ok64 + "]\n")->ebpf.ports.size(), 64u);
}

TEST(ConfigSize, BackendAndRouteCountsAreCapped) {
  std::string backends;
  for (size_t i = 0; i <= kMaxBackends; ++i)
    backends += "[[backends]]\naddress = \"127.0.0.1:" + std::to_string(1000 + i) + "\"\n";
  auto e = errors(std::string(kListen) + backends);
  ASSERT_EQ(e.size(), 1u) << join_errors(e);
  EXPECT_NE(e[0].message.find("at most 4096 [[backends]]"), std::string::npos) << e[0].to_string();

  std::string routes = std::string(kListen) + "[[backends]]\naddress = \"127.0.0.1:80\"\n[[domains]]\n";
  for (size_t i = 0; i <= kMaxRoutes; ++i)
    routes += "[[domains.routes]]\nprefix = \"/r" + std::to_string(i) + "\"\nbackend = \"127.0.0.1:80\"\n";
  e = errors(routes);
  ASSERT_EQ(e.size(), 1u) << join_errors(e);
  EXPECT_NE(e[0].message.find("at most 16000 routes"), std::string::npos) << e[0].to_string();
}

}  // namespace
}  // namespace huginn::config::test
