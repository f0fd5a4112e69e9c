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

TEST(MetricsTable, WorkerMappingSharesTheSupervisorsWords) {
  std::string err;
  auto sup = Table::create(3, &err);
  ASSERT_TRUE(sup) << err;
  // The size is sealed: a peer cannot shrink the table under a reader.
  EXPECT_NE(ftruncate(sup->fd(), 64), 0);
  auto worker = Table::attach(sup->fd(), 3, &err);
  ASSERT_TRUE(worker) << err;
  Slot s = worker->slot(1);
  s.connection_accepted();
  s.connection_accepted();
  s.request(Protocol::kHttp2, method_index("POST"), 404, 1500);
  s.set_active_connections(5);
  const Counters c = sup->read(1);
  EXPECT_EQ(c[word::kConnectionsTotal], 2u);
  EXPECT_EQ(c[word::kConnectionsActive], 5u);
  EXPECT_EQ(c[word::kRequests + (kMethods + method_index("POST")) * kStatusSlots + status_index(404)], 1u);
  EXPECT_EQ(c[word::kDuration + (kBuckets + 1) + bucket_index(1500)], 1u);
  EXPECT_EQ(c[word::kDurationSumUs + 1], 1500u);
  EXPECT_EQ(sup->read(0)[word::kConnectionsTotal], 0u);
  EXPECT_EQ(sup->read(2)[word::kConnectionsTotal], 0u);
}

TEST(MetricsTable, AttachRejectsWrongShapes) {
  std::string err;
  auto sup = Table::create(2, &err);
  ASSERT_TRUE(sup) << err;
  EXPECT_FALSE(Table::attach(sup->fd(), 3, &err));
  EXPECT_FALSE(Table::attach(sup->fd(), 0, &err));
  // A memfd without the size seals is refused.
  sys::UniqueFd plain(memfd_create("plain", MFD_CLOEXEC));
  ASSERT_TRUE(plain);
  ASSERT_EQ(ftruncate(plain.get(), static_cast<off_t>(Table::bytes_for(2))), 0);
  EXPECT_FALSE(Table::attach(plain.get(), 2, &err));
  EXPECT_NE(err.find("sealed"), std::string::npos) << err;
  EXPECT_FALSE(Table::create(0, &err));
  EXPECT_FALSE(Table::create(kMaxSlots + 1, &err));
}

TEST(MetricsTable, FoldingKeepsCountersAndDropsGauges) {
  std::string err;
  auto t = Table::create(2, &err);
  ASSERT_TRUE(t) << err;
  Counters base{};
  Slot s = t->slot(0);
  for (int i = 0; i < 7; ++i) s.request(Protocol::kHttp1, 0, 200, 50);
  s.set_active_connections(4);
  t->fold_into(0, &base);
  EXPECT_EQ(base[word::kRequests + status_index(200)], 7u);  // GET = method 0
  EXPECT_EQ(base[word::kConnectionsActive], 0u) << "a dead worker has no open connections";
  EXPECT_EQ(t->read(0), Counters{}) << "the slot is clean for the next worker";
  // The next worker in the slot adds to what was folded.
  s.request(Protocol::kHttp1, 0, 200, 50);
  Counters total = base;
  accumulate(t->read(0), &total);
  EXPECT_EQ(total[word::kRequests + status_index(200)], 8u);
}

std::string sample_text() {
  LocalSlot ls;
  Slot s = ls.slot();
  for (int i = 0; i < 7; ++i) s.request(Protocol::kHttp1, method_index("GET"), 200, 120);  // bucket 250 µs
  for (int i = 0; i < 3; ++i) s.request(Protocol::kHttp2, method_index("BREW"), 404, 20000000);  // +Inf
  s.connection_accepted();
  s.tls_handshake("TLSv1.3");
  s.syn_lookup(true);
  s.backend_response(502);
  s.backend_error(BackendError::kFailed);
  SupervisorFacts f;
  f.version = "1.2.3 \"quoted\"\\x\nline";
  f.generation = 4;
  f.reloads_ok = 2;
  f.reloads_failed = 1;
  f.last_reload_unix = 1700000000.5;
  f.live_workers = 3;
  f.syn_v4 = SynMapCounters{10, 1, 0};
  return render(ls.counters(), f);
}

TEST(MetricsRender, WritesPrometheusTextWithCumulativeBuckets) {
  const std::string t = sample_text();
  EXPECT_NE(t.find("# TYPE huginn_entrypoint_requests_total counter\n"), std::string::npos);
  EXPECT_NE(
      t.find(
          "huginn_entrypoint_requests_total{method=\"GET\",protocol=\"HTTP/1.1\",status_code=\"200\"} 7\n"),
      std::string::npos);
  EXPECT_NE(
      t.find(
          "huginn_entrypoint_requests_total{method=\"OTHER\",protocol=\"HTTP/2.0\",status_code=\"404\"} 3\n"),
      std::string::npos);
  EXPECT_NE(t.find("huginn_requests_duration_seconds_bucket{protocol=\"HTTP/1.1\",le=\"0.0001\"} 0\n"),
            std::string::npos);
  EXPECT_NE(t.find("huginn_requests_duration_seconds_bucket{protocol=\"HTTP/1.1\",le=\"0.00025\"} 7\n"),
            std::string::npos);
  EXPECT_NE(t.find("huginn_requests_duration_seconds_bucket{protocol=\"HTTP/1.1\",le=\"10\"} 7\n"),
            std::string::npos);
  EXPECT_NE(t.find("huginn_requests_duration_seconds_bucket{protocol=\"HTTP/2.0\",le=\"10\"} 0\n"),
            std::string::npos);
  EXPECT_NE(t.find("huginn_requests_duration_seconds_bucket{protocol=\"HTTP/2.0\",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(t.find("huginn_requests_duration_seconds_count{protocol=\"HTTP/2.0\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("huginn_requests_duration_seconds_sum{protocol=\"HTTP/2.0\"} 60.000000\n"),
            std::string::npos);
  EXPECT_NE(t.find("huginn_build_info{version=\"1.2.3 \\\"quoted\\\"\\\\x\\nline\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("huginn_config_reload_total{result=\"error\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("huginn_tls_handshakes_total{tls_version=\"TLSv1.3\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("huginn_tcp_syn_fingerprints_total{reason=\"hit\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("huginn_backend_requests_total{status_code=\"502\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("huginn_tcp_syn_captured_total{family=\"ipv4\"} 10\n"), std::string::npos);
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
      "print(n[\"huginn_requests_duration_seconds_bucket[('le', '+Inf'), ('protocol', 'HTTP/2.0')]\"])\n"
      "print(n[\"huginn_build_info[('version', '1.2.3 \\\"quoted\\\"\\\\\\\\x\\\\nline')]\"])\n";
  const std::string spath = dir.write("check.py", script);
  ASSERT_EQ(testing::run_command({"/usr/bin/python3", spath, path}, &out), 0) << out;
  EXPECT_EQ(out, "7.0\n3.0\n1.0\n");
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
