// The shared metrics table (layout, slots, folding), the Prometheus renderer
// (checked with Debian's python3-prometheus-client parser when installed),
// the telemetry endpoint's strict request reader and its routing.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "common/metrics/http_request.h"
#include "common/metrics/render.h"
#include "common/metrics/table.h"
#include "supervisor/metrics_endpoint.h"
#include "tests/support/harness.h"

namespace huginn::metrics {
namespace {

TEST(MetricsLayout, StatusCodesMapToBoundedSeries) {
  char buf[4];
  EXPECT_EQ(status_label(status_index(200), buf), "200");
  EXPECT_EQ(status_label(status_index(404), buf), "404");
  EXPECT_EQ(status_label(status_index(502), buf), "502");
  EXPECT_EQ(status_label(status_index(299), buf), "2xx");
  EXPECT_EQ(status_label(status_index(418), buf), "4xx");
  EXPECT_EQ(status_label(status_index(103), buf), "1xx");
  EXPECT_EQ(status_label(status_index(0), buf), "5xx");
  EXPECT_EQ(status_label(status_index(999), buf), "5xx");
  for (uint32_t s = 0; s < 70000; s += 7) EXPECT_LT(status_index(static_cast<uint16_t>(s)), kStatusSlots);
}

TEST(MetricsLayout, BucketsCoverHundredMicrosecondsToTenSeconds) {
  EXPECT_EQ(bucket_index(0), 0u);
  EXPECT_EQ(bucket_index(100), 0u);
  EXPECT_EQ(bucket_index(101), 1u);
  EXPECT_EQ(bucket_index(10000000), kBuckets - 1);
  EXPECT_EQ(bucket_index(10000001), kBuckets);
  EXPECT_EQ(kBucketBoundsUs.front(), 100u);
  EXPECT_EQ(kBucketBoundsUs.back(), 10000000u);
  EXPECT_EQ(tls_version_index("TLSv1.3"), 1u);
  EXPECT_EQ(tls_version_index("SSLv3"), kTlsVersionLabels.size() - 1);
}

TEST(MetricsLayout, CipherSuitesMapToBoundedSeries) {
  EXPECT_EQ(kCipherLabels[cipher_index("TLS_AES_256_GCM_SHA384")], "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(kCipherLabels[cipher_index("ECDHE-RSA-CHACHA20-POLY1305")], "ECDHE-RSA-CHACHA20-POLY1305");
  EXPECT_EQ(kCipherLabels[cipher_index("AES128-SHA")], "other");
  EXPECT_EQ(kCipherLabels[cipher_index("")], "other");
  EXPECT_EQ(status_class_index(200), 1u);
  EXPECT_EQ(status_class_index(404), 3u);
  EXPECT_EQ(status_class_index(99), 4u);
  EXPECT_EQ(status_class_index(600), 4u);
}

// Two named domains and a catch-all: five routes, six route slots.
config::Config routes_config() {
  config::Config c;
  c.domains.resize(3);
  c.domains[0].host = "api.example.com";
  c.domains[0].routes.resize(2);
  c.domains[0].routes[0].prefix = "/v1";
  c.domains[0].routes[1].prefix = "/v2";
  c.domains[1].host = "*.example.org";
  c.domains[1].routes.resize(1);
  c.domains[1].routes[0].prefix = "/";
  c.domains[2].routes.resize(2);  // catch-all
  c.domains[2].routes[0].prefix = "/static/";
  c.domains[2].routes[1].prefix = "/";
  for (auto& d : c.domains)
    for (auto& r : d.routes) r.backend = "10.0.0.1:80";
  c.domains[0].routes[1].backend = "10.0.0.2:80";
  return c;
}

TEST(MetricsRoutes, SlotsFollowDeclarationOrderWithOneForNoRoute) {
  const config::Config c = routes_config();
  ASSERT_EQ(route_slot_count(c), 6u);
  EXPECT_EQ(route_slot(c, &c.domains[0], &c.domains[0].routes[0]), 0u);
  EXPECT_EQ(route_slot(c, &c.domains[0], &c.domains[0].routes[1]), 1u);
  EXPECT_EQ(route_slot(c, &c.domains[1], &c.domains[1].routes[0]), 2u);
  EXPECT_EQ(route_slot(c, &c.domains[2], &c.domains[2].routes[0]), 3u);
  EXPECT_EQ(route_slot(c, &c.domains[2], &c.domains[2].routes[1]), 4u);
  EXPECT_EQ(route_slot(c, nullptr, nullptr), 5u);
  EXPECT_EQ(route_slot(c, &c.domains[0], nullptr), 5u);
  // A route of another domain, or of another config, is "no route".
  EXPECT_EQ(route_slot(c, &c.domains[1], &c.domains[0].routes[0]), 5u);
  const config::Config other = routes_config();
  EXPECT_EQ(route_slot(c, &other.domains[0], &other.domains[0].routes[0]), 5u);
  const std::vector<RouteKey> keys = route_keys(c);
  const std::vector<RouteKey> want = {
      {"api.example.com", "/v1", "10.0.0.1:80"}, {"api.example.com", "/v2", "10.0.0.2:80"},
      {"*.example.org", "/", "10.0.0.1:80"},     {"_default_", "/static/", "10.0.0.1:80"},
      {"_default_", "/", "10.0.0.1:80"},         {"", "", ""}};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(route_slot_count(config::Config{}), 1u);
}

TEST(MetricsTable, WorkerMappingSharesTheSupervisorsWords) {
  std::string err;
  auto sup = Table::create(3, 4, &err);
  ASSERT_TRUE(sup) << err;
  // The size is sealed: a peer cannot shrink the table under a reader.
  EXPECT_NE(ftruncate(sup->fd(), 64), 0);
  auto worker = Table::attach(sup->fd(), 3, 4, &err);
  ASSERT_TRUE(worker) << err;
  Slot s = worker->slot(1);
  s.connection_accepted();
  s.connection_accepted();
  s.request(Protocol::kHttp2, method_index("POST"), 404, 1500, 2);
  s.set_active_connections(5);
  s.rate_limit(3, config::RateLimit::LimitBy::kHeader, false);
  s.tls_handshake("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256");
  const Counters c = sup->read(1);
  EXPECT_EQ(c[word::kConnectionsTotal], 2u);
  EXPECT_EQ(c[word::kConnectionsActive], 5u);
  EXPECT_EQ(c[word::kRequests + (kMethods + method_index("POST")) * kStatusSlots + status_index(404)], 1u);
  EXPECT_EQ(c[word::kDuration + (kBuckets + 1) + bucket_index(1500)], 1u);
  EXPECT_EQ(c[word::kDurationSumUs + 1], 1500u);
  EXPECT_EQ(c[word::kTlsHandshakes + tls_version_index("TLSv1.2") * kCiphers +
              cipher_index("ECDHE-RSA-AES128-GCM-SHA256")],
            1u);
  const RouteCounters r2 = sup->read_route(1, 2);
  EXPECT_EQ(r2[route_word::kRequests + (kMethods + method_index("POST")) * kStatusClasses + 3], 1u);
  EXPECT_EQ(r2[route_word::kDuration + (kBuckets + 1) + bucket_index(1500)], 1u);
  EXPECT_EQ(r2[route_word::kDurationSumUs + 1], 1500u);
  EXPECT_EQ(sup->read_route(1, 3)[route_word::kRateLimitRejected + 1], 1u);
  EXPECT_EQ(sup->read_route(1, 0), RouteCounters{});
  EXPECT_EQ(sup->read(0)[word::kConnectionsTotal], 0u);
  EXPECT_EQ(sup->read(2)[word::kConnectionsTotal], 0u);
  EXPECT_EQ(sup->read_route(2, 2), RouteCounters{}) << "slots do not overlap";
}

TEST(MetricsTable, RequestsOutsideARouteCountOnlyAtTheEntrypoint) {
  LocalSlot ls(3);
  Slot s = ls.slot();
  s.request(Protocol::kHttp1, 0, 404, 10);                       // no route at all
  s.request(Protocol::kHttp1, 0, 404, 10, 2);                    // the "no route" section
  s.request(Protocol::kHttp1, 0, 200, 10, 3);                    // out of range
  s.rate_limit(9, config::RateLimit::LimitBy::kIp, true);        // out of range: ignored
  s.rate_limit(2, config::RateLimit::LimitBy::kCombined, true);  // "no route" may rate-limit
  EXPECT_EQ(ls.counters()[word::kRequests + status_index(404)], 2u);
  EXPECT_EQ(ls.counters()[word::kRequests + status_index(200)], 1u);
  // Nothing else was written: 3 × (status word + bucket word) + 3 × 10 µs.
  uint64_t all = 0;
  for (uint64_t v : ls.counters()) all += v;
  EXPECT_EQ(all, 36u);
  EXPECT_EQ(ls.route(0), RouteCounters{});
  EXPECT_EQ(ls.route(1), RouteCounters{});
  RouteCounters want{};
  want[route_word::kRateLimitAllowed + 3] = 1;
  EXPECT_EQ(ls.route(2), want);
}

TEST(MetricsTable, AttachRejectsWrongShapes) {
  std::string err;
  auto sup = Table::create(2, 5, &err);
  ASSERT_TRUE(sup) << err;
  EXPECT_FALSE(Table::attach(sup->fd(), 3, 5, &err));
  EXPECT_FALSE(Table::attach(sup->fd(), 0, 5, &err));
  // Another config's route count: another size, refused.
  EXPECT_FALSE(Table::attach(sup->fd(), 2, 4, &err));
  EXPECT_FALSE(Table::attach(sup->fd(), 2, 6, &err));
  EXPECT_TRUE(Table::attach(sup->fd(), 2, 5, &err)) << err;
  // A memfd without the size seals is refused.
  sys::UniqueFd plain(memfd_create("plain", MFD_CLOEXEC));
  ASSERT_TRUE(plain);
  ASSERT_EQ(ftruncate(plain.get(), static_cast<off_t>(Table::bytes_for(2, 5))), 0);
  EXPECT_FALSE(Table::attach(plain.get(), 2, 5, &err));
  EXPECT_NE(err.find("sealed"), std::string::npos) << err;
  EXPECT_FALSE(Table::create(0, 1, &err));
  EXPECT_FALSE(Table::create(kMaxSlots + 1, 1, &err));
  EXPECT_FALSE(Table::create(1, 0, &err));
  EXPECT_FALSE(Table::create(1, size_t{kMaxRouteSlots} + 1, &err));
  EXPECT_NE(err.find("too many routes"), std::string::npos) << err;
  EXPECT_FALSE(Table::create(1, size_t{1} << 33, &err)) << "not truncated to 32 bits";
}

TEST(MetricsTable, FoldingKeepsCountersAndDropsGauges) {
  std::string err;
  const config::Config cfg = routes_config();
  const std::vector<RouteKey> keys = route_keys(cfg);
  auto t = Table::create(2, keys.size(), &err);
  ASSERT_TRUE(t) << err;
  Counters base{};
  RouteTotals route_base;
  Slot s = t->slot(0);
  for (int i = 0; i < 7; ++i) s.request(Protocol::kHttp1, 0, 200, 50, 1);
  s.set_active_connections(4);
  t->fold_into(0, keys, &base, &route_base);
  EXPECT_EQ(base[word::kRequests + status_index(200)], 7u);  // GET = method 0
  EXPECT_EQ(base[word::kConnectionsActive], 0u) << "a dead worker has no open connections";
  EXPECT_EQ(t->read(0), Counters{}) << "the slot is clean for the next worker";
  EXPECT_EQ(t->read_route(0, 1), RouteCounters{});
  ASSERT_EQ(route_base.size(), 1u) << "only sections that counted";
  const RouteKey v2{"api.example.com", "/v2", "10.0.0.2:80"};
  EXPECT_EQ(route_base.at(v2)[route_word::kRequests + 1], 7u);  // GET, HTTP/1.1, 2xx
  // The next worker in the slot adds to what was folded.
  s.request(Protocol::kHttp1, 0, 200, 50, 1);
  Counters total = base;
  RouteTotals routes = route_base;
  t->sum_into(keys, &total, &routes);
  EXPECT_EQ(total[word::kRequests + status_index(200)], 8u);
  EXPECT_EQ(routes.at(v2)[route_word::kRequests + 1], 8u);

  // A reload that adds a route before /v2 moves its section; the label
  // values, not the index, carry its count across generations.
  config::Config next = routes_config();
  next.domains[0].routes.insert(next.domains[0].routes.begin(), config::Route{});
  next.domains[0].routes[0].prefix = "/v0";
  const std::vector<RouteKey> next_keys = route_keys(next);
  auto t2 = Table::create(1, next_keys.size(), &err);
  ASSERT_TRUE(t2) << err;
  ASSERT_EQ(next_keys[2], v2);
  t2->slot(0).request(Protocol::kHttp1, 0, 204, 50, 2);
  t2->sum_into(next_keys, &total, &routes);
  EXPECT_EQ(routes.at(v2)[route_word::kRequests + 1], 9u);
  EXPECT_EQ(routes.count(RouteKey{"api.example.com", "/v0", ""}), 0u);
}

std::string sample_text() {
  const config::Config cfg = routes_config();
  const std::vector<RouteKey> keys = route_keys(cfg);
  LocalSlot ls(static_cast<uint32_t>(keys.size()));
  Slot s = ls.slot();
  for (int i = 0; i < 7; ++i)
    s.request(Protocol::kHttp1, method_index("GET"), 200, 120, 0);  // bucket 250 µs, route /v1
  for (int i = 0; i < 3; ++i) s.request(Protocol::kHttp2, method_index("BREW"), 404, 20000000);  // +Inf
  s.request(Protocol::kHttp2, method_index("POST"), 418, 3000, 4);  // catch-all "/", 4xx
  s.rate_limit(0, config::RateLimit::LimitBy::kIp, true);
  s.rate_limit(0, config::RateLimit::LimitBy::kIp, false);
  s.rate_limit(0, config::RateLimit::LimitBy::kIp, false);
  s.ip_filter(true);
  s.ip_filter(false);
  s.ip_filter(true);
  s.proxy_protocol(ProxyProtocolEvent::kAccepted);
  s.proxy_protocol(ProxyProtocolEvent::kDroppedTimeout);
  s.connection_accepted();
  s.tls_handshake("TLSv1.3", "TLS_AES_128_GCM_SHA256");
  s.tls_handshake("TLSv1.2", "AES128-SHA");
  s.syn_lookup(true);
  s.syn_source(SynLookupEvent::kRingMiss);
  s.syn_source(SynLookupEvent::kMapHit);
  s.syn_source(SynLookupEvent::kSavedSynMiss);
  s.syn_source(SynLookupEvent::kSavedSynMiss);
  s.fingerprint_memo(MemoKind::kJa4, true);
  s.fingerprint_memo(MemoKind::kJa4, true);
  s.fingerprint_memo(MemoKind::kJa4, false);
  s.backend_response(0, 502, 3000);  // route /v1: 5xx, bucket 5 ms
  s.backend_response(0, 200, 120);
  s.backend_error(0, BackendError::kFailed);
  s.backend_response(99, 200, 1);  // out of range: not counted
  RouteTotals routes;
  for (uint32_t r = 0; r < keys.size(); ++r)
    if (ls.route(r) != RouteCounters{}) routes[keys[r]] = ls.route(r);
  SupervisorFacts f;
  f.version = "1.2.3 \"quoted\"\\x\nline";
  f.generation = 4;
  f.reloads_ok = 2;
  f.reloads_failed = 1;
  f.last_reload_unix = 1700000000.5;
  f.live_workers = 3;
  f.syn_v4 = SynMapCounters{10, 1, 0};
  return render(ls.counters(), routes, f);
}

TEST(MetricsRender, WritesPrometheusTextWithCumulativeBuckets) {
  const std::string t = sample_text();
  auto has = [&t](const std::string& line) {
    return t.find(line) != std::string::npos ? ::testing::AssertionSuccess()
                                             : ::testing::AssertionFailure() << "missing: " << line << "\n"
                                                                             << t;
  };
  EXPECT_TRUE(has("# TYPE huginn_entrypoint_requests_total counter\n"));
  EXPECT_TRUE(
      has("huginn_entrypoint_requests_total{method=\"GET\",protocol=\"HTTP/1.1\",status_code=\"200\"} 7\n"));
  EXPECT_TRUE(has(
      "huginn_entrypoint_requests_total{method=\"OTHER\",protocol=\"HTTP/2.0\",status_code=\"404\"} 3\n"));
  EXPECT_TRUE(
      has("huginn_entrypoint_requests_total{method=\"POST\",protocol=\"HTTP/2.0\",status_code=\"4xx\"} 1\n"));
  const std::string eh = "huginn_entrypoint_requests_duration_seconds";
  EXPECT_TRUE(has("# TYPE " + eh + " histogram\n"));
  EXPECT_TRUE(has(eh + "_bucket{protocol=\"HTTP/1.1\",le=\"0.0001\"} 0\n"));
  EXPECT_TRUE(has(eh + "_bucket{protocol=\"HTTP/1.1\",le=\"0.00025\"} 7\n"));
  EXPECT_TRUE(has(eh + "_bucket{protocol=\"HTTP/1.1\",le=\"10\"} 7\n"));
  EXPECT_TRUE(has(eh + "_bucket{protocol=\"HTTP/2.0\",le=\"10\"} 1\n"));
  EXPECT_TRUE(has(eh + "_bucket{protocol=\"HTTP/2.0\",le=\"+Inf\"} 4\n"));
  EXPECT_TRUE(has(eh + "_count{protocol=\"HTTP/2.0\"} 4\n"));
  EXPECT_TRUE(has(eh + "_sum{protocol=\"HTTP/2.0\"} 60.003000\n"));
  // Per route: status class, labels from the config only, catch-all "_default_".
  EXPECT_TRUE(has("# TYPE huginn_requests_total counter\n"));
  EXPECT_TRUE(
      has("huginn_requests_total{method=\"GET\",status_code=\"2xx\",protocol=\"HTTP/1.1\",route=\"/"
          "v1\",domain=\"api.example.com\"} 7\n"));
  EXPECT_TRUE(
      has("huginn_requests_total{method=\"POST\",status_code=\"4xx\",protocol=\"HTTP/2.0\",route=\"/"
          "\",domain=\"_default_\"} 1\n"));
  EXPECT_EQ(t.find("huginn_requests_total{method=\"OTHER\""), std::string::npos) << "not route-matched";
  const std::string rh = "huginn_requests_duration_seconds";
  EXPECT_TRUE(
      has(rh + "_bucket{protocol=\"HTTP/1.1\",route=\"/v1\",domain=\"api.example.com\",le=\"0.00025\"} 7\n"));
  EXPECT_TRUE(has(rh + "_bucket{protocol=\"HTTP/2.0\",route=\"/\",domain=\"_default_\",le=\"0.0025\"} 0\n"));
  EXPECT_TRUE(has(rh + "_bucket{protocol=\"HTTP/2.0\",route=\"/\",domain=\"_default_\",le=\"0.005\"} 1\n"));
  EXPECT_TRUE(has(rh + "_sum{protocol=\"HTTP/2.0\",route=\"/\",domain=\"_default_\"} 0.003000\n"));
  EXPECT_TRUE(has(rh + "_count{protocol=\"HTTP/1.1\",route=\"/v1\",domain=\"api.example.com\"} 7\n"));
  EXPECT_EQ(t.find(rh + "_count{protocol=\"HTTP/2.0\",route=\"/v1\""), std::string::npos)
      << "no empty series";
  EXPECT_TRUE(
      has("huginn_rate_limit_requests_total{strategy=\"ip\",route=\"/v1\",domain=\"api.example.com\"} 3\n"));
  EXPECT_TRUE(
      has("huginn_rate_limit_allowed_total{strategy=\"ip\",route=\"/v1\",domain=\"api.example.com\"} 1\n"));
  EXPECT_TRUE(
      has("huginn_rate_limit_rejected_total{strategy=\"ip\",route=\"/v1\",domain=\"api.example.com\"} 2\n"));
  EXPECT_TRUE(has("huginn_ip_filter_requests_total 3\n"));
  EXPECT_TRUE(has("huginn_ip_filter_allowed_total 2\n"));
  EXPECT_TRUE(has("huginn_ip_filter_denied_total 1\n"));
  EXPECT_TRUE(has("huginn_proxy_protocol_accepted_total 1\n"));
  EXPECT_TRUE(has("huginn_proxy_protocol_passthrough_total 0\n"));
  EXPECT_TRUE(has("huginn_proxy_protocol_no_client_addr_total 0\n"));
  EXPECT_TRUE(has("huginn_proxy_protocol_dropped_total{reason=\"timeout\"} 1\n"));
  EXPECT_TRUE(has("huginn_proxy_protocol_dropped_total{reason=\"bad_header\"} 0\n"));
  EXPECT_TRUE(has("huginn_proxy_protocol_dropped_total{reason=\"untrusted_require\"} 0\n"));
  EXPECT_TRUE(has("huginn_build_info{version=\"1.2.3 \\\"quoted\\\"\\\\x\\nline\"} 1\n"));
  EXPECT_TRUE(has("huginn_config_reload_total{result=\"error\"} 1\n"));
  EXPECT_TRUE(has(
      "huginn_tls_handshakes_total{tls_version=\"TLSv1.3\",cipher_suite=\"TLS_AES_128_GCM_SHA256\"} 1\n"));
  EXPECT_TRUE(has("huginn_tls_handshakes_total{tls_version=\"TLSv1.2\",cipher_suite=\"other\"} 1\n"));
  EXPECT_TRUE(has("huginn_tcp_syn_fingerprints_total{reason=\"hit\"} 1\n"));
  EXPECT_TRUE(has("huginn_tcp_syn_lookups_total{source=\"xdp_ring\",result=\"hit\"} 0\n"));
  EXPECT_TRUE(has("huginn_tcp_syn_lookups_total{source=\"xdp_ring\",result=\"miss\"} 1\n"));
  EXPECT_TRUE(has("huginn_tcp_syn_lookups_total{source=\"xdp_map\",result=\"hit\"} 1\n"));
  EXPECT_TRUE(has("huginn_tcp_syn_lookups_total{source=\"xdp_map\",result=\"no_grant\"} 0\n"));
  EXPECT_TRUE(has("huginn_tcp_syn_lookups_total{source=\"saved_syn\",result=\"miss\"} 2\n"));
  EXPECT_TRUE(has("huginn_fingerprint_memo_total{fingerprint=\"ja4\",result=\"hit\"} 2\n"));
  EXPECT_TRUE(has("huginn_fingerprint_memo_total{fingerprint=\"ja4\",result=\"miss\"} 1\n"));
  EXPECT_TRUE(has("huginn_fingerprint_memo_total{fingerprint=\"tcp\",result=\"hit\"} 0\n"));
  const std::string v1 = "route=\"/v1\",domain=\"api.example.com\"";
  EXPECT_TRUE(has("huginn_backend_requests_total{backend_address=\"10.0.0.1:80\",status_code=\"5xx\"," + v1 +
                  "} 1\n"));
  EXPECT_TRUE(has("huginn_backend_requests_total{backend_address=\"10.0.0.1:80\",status_code=\"2xx\"," + v1 +
                  "} 1\n"));
  EXPECT_TRUE(
      has("huginn_backend_errors_total{backend_address=\"10.0.0.1:80\",error_type=\"backend_error\"," + v1 +
          "} 1\n"));
  EXPECT_TRUE(has("huginn_backend_duration_seconds_bucket{backend_address=\"10.0.0.1:80\"," + v1 +
                  ",le=\"0.00025\"} 1\n"));
  EXPECT_TRUE(has("huginn_backend_duration_seconds_bucket{backend_address=\"10.0.0.1:80\"," + v1 +
                  ",le=\"0.005\"} 2\n"));
  EXPECT_TRUE(has("huginn_backend_duration_seconds_count{backend_address=\"10.0.0.1:80\"," + v1 + "} 2\n"));
  EXPECT_TRUE(has("huginn_tcp_syn_captured_total{family=\"ipv4\"} 10\n"));
  EXPECT_EQ(t.find("family=\"ipv6\""), std::string::npos);
  EXPECT_EQ(t.back(), '\n');
}

TEST(MetricsRender, ParsesWithThePrometheusClientParser) {
  std::string out;
  if (testing::run_command({"/usr/bin/python3", "-c", "import prometheus_client.parser"}, &out) != 0)
    GTEST_SKIP() << "python3-prometheus-client is not installed (scripts/install-deps.sh installs it)";
  testing::TempDir dir;
  const std::string path = dir.write("metrics.txt", sample_text());
  const std::string script =
      "import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "n = {}\n"
      "for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
      "    for s in fam.samples:\n"
      "        n[s.name + repr(sorted(s.labels.items()))] = s.value\n"
      "print(n[\"huginn_entrypoint_requests_total[('method', 'GET'), ('protocol', 'HTTP/1.1'), "
      "('status_code', '200')]\"])\n"
      "print(n[\"huginn_entrypoint_requests_duration_seconds_bucket[('le', '+Inf'), ('protocol', "
      "'HTTP/2.0')]\"])\n"
      "print(n[\"huginn_requests_total[('domain', '_default_'), ('method', 'POST'), ('protocol', "
      "'HTTP/2.0'), "
      "('route', '/'), ('status_code', '4xx')]\"])\n"
      "print(n[\"huginn_rate_limit_rejected_total[('domain', 'api.example.com'), ('route', '/v1'), "
      "('strategy', 'ip')]\"])\n"
      "print(n[\"huginn_build_info[('version', '1.2.3 \\\"quoted\\\"\\\\\\\\x\\\\nline')]\"])\n";
  const std::string spath = dir.write("check.py", script);
  ASSERT_EQ(testing::run_command({"/usr/bin/python3", spath, path}, &out), 0) << out;
  EXPECT_EQ(out, "7.0\n4.0\n1.0\n2.0\n1.0\n");
}

TEST(MetricsRequest, AcceptsStrictRequestsOnly) {
  Request r;
  EXPECT_EQ(parse_request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), RequestStatus::kComplete);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(parse_request("GET /ready?verbose=1 HTTP/1.0\r\n\r\n", &r), RequestStatus::kComplete);
  EXPECT_EQ(r.path, "/ready");
  EXPECT_EQ(parse_request("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r), RequestStatus::kIncomplete);
  EXPECT_EQ(parse_request("GET /metrics HTTP/1.1\nHost: x\n\n", &r), RequestStatus::kIncomplete);
  EXPECT_EQ(parse_request("GET /metrics HTTP/1.1\nHost: x\r\n\r\n", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("GET metrics HTTP/1.1\r\n\r\n", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("GET /metrics HTTP/2\r\n\r\n", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("GET  /metrics HTTP/1.1\r\n\r\n", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("GET /a\x01 HTTP/1.1\r\n\r\n", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), RequestStatus::kBad);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r), RequestStatus::kComplete);
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHeaders; ++i) many += "X: y\r\n";
  EXPECT_EQ(parse_request(many + "\r\n", &r), RequestStatus::kBad);
  const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestBytes, 'a');
  EXPECT_EQ(parse_request(big, &r), RequestStatus::kTooLarge);
  EXPECT_EQ(parse_request(big + "\r\n\r\n", &r), RequestStatus::kTooLarge);
}

TEST(MetricsEndpointRouting, AnswersLikeUpstream) {
  using supervisor::Readiness;
  using supervisor::route_telemetry;
  auto body = [] { return std::string("m 1\n"); };
  Request r{"GET", "/ready"};
  EXPECT_EQ(route_telemetry(r, Readiness::kStarting, body).status, 503);
  EXPECT_EQ(route_telemetry(r, Readiness::kStarting, body).body,
            R"({"status":"not_ready","reason":"proxy_starting"})");
  EXPECT_EQ(route_telemetry(r, Readiness::kReady, body).status, 200);
  EXPECT_EQ(route_telemetry(r, Readiness::kReady, body).body, R"({"status":"ready"})");
  EXPECT_EQ(route_telemetry(r, Readiness::kStopping, body).status, 503);
  EXPECT_EQ(route_telemetry(r, Readiness::kStopping, body).body,
            R"({"status":"not_ready","reason":"shutting_down"})");
  EXPECT_EQ(route_telemetry({"GET", "/health"}, Readiness::kStarting, body).body, R"({"status":"healthy"})");
  EXPECT_EQ(route_telemetry({"GET", "/live"}, Readiness::kStarting, body).body, R"({"status":"alive"})");
  auto m = route_telemetry({"GET", "/metrics"}, Readiness::kReady, body);
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, kContentType);
  EXPECT_EQ(m.body, "m 1\n");
  EXPECT_EQ(route_telemetry({"GET", "/nope"}, Readiness::kReady, body).status, 404);
  EXPECT_EQ(route_telemetry({"POST", "/metrics"}, Readiness::kReady, body).status, 405);
  const std::string head = supervisor::serialize_response(m, true);
  EXPECT_NE(head.find("Content-Length: 4\r\n"), std::string::npos);
  EXPECT_EQ(head.find("m 1"), std::string::npos) << "HEAD has no body";
}

}  // namespace
}  // namespace huginn::metrics
