// The telemetry endpoint of the real proxy: exact host-wide counters from
// /metrics after a known sequence of requests served by several workers,
// counters that survive killed workers, the Prometheus text parser, and
// /ready flipping at start and stop.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/support/test_certs.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;

// One sample value of /metrics text; -1 when the series is absent.
double sample(const std::string& text, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = ("\n" + text).find(needle);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + needle.size() - 1, nullptr);
}

std::string req_series(int status) {
  return "huginn_entrypoint_requests_total{method=\"GET\",protocol=\"HTTP/1.1\",status_code=\"" +
         std::to_string(status) + "\"}";
}

// Every sample line of `family` (exact name, with labels), sorted.
std::vector<std::string> series_of(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) out.push_back(line);
    at = end + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A huginn_requests_total series of an HTTP/1.1 request, upstream's label order.
std::string route_series(const std::string& method, const std::string& cls, const std::string& route,
                         const std::string& domain) {
  return "huginn_requests_total{method=\"" + method + "\",status_code=\"" + cls +
         "\",protocol=\"HTTP/1.1\",route=\"" + route + "\",domain=\"" + domain + "\"}";
}
std::string route_line(const std::string& method, const std::string& cls, const std::string& route,
                       const std::string& domain, int n) {
  return route_series(method, cls, route, domain) + " " + std::to_string(n);
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    metrics_port_ = free_port();
  }

  HttpResponse get(const std::string& path) { return http_request(metrics_port_, "GET", path); }

  std::string metrics_text() {
    auto r = get("/metrics");
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    return r.body;
  }

  // Waits until /metrics shows `want` for `series`.
  bool wait_sample(const std::string& series, double want, std::string* last) {
    for (int i = 0; i < 200; ++i) {
      *last = metrics_text();
      if (sample(*last, series) == want) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // Parses the whole document with the Prometheus project's text parser
  // (Debian python3-prometheus-client) and prints the samples named `names`
  // as "name{k=v,...} value" lines (labels sorted), sorted; false when the
  // parser is not installed (printed as skipped).
  bool parse_with_prometheus(const std::string& text, const std::string& names,
                             std::vector<std::string>* lines) {
    std::string out;
    if (run_command({"/usr/bin/python3", "-c", "import prometheus_client.parser"}, &out) != 0) {
      std::printf("[  SKIPPED ] prometheus parser check: python3-prometheus-client is not installed\n");
      return false;
    }
    const std::string mpath = dir_.write("metrics.txt", text);
    const std::string script =
        dir_.write("parse.py",
                   "import sys\nfrom prometheus_client.parser import text_string_to_metric_families\n"
                   "names = sys.argv[2].split(',')\nout = []\n"
                   "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
                   "    for s in f.samples:\n"
                   "        if s.name in names:\n"
                   "            out.append('%s{%s} %d' % (s.name, ','.join('%s=%s' % kv for kv in "
                   "sorted(s.labels.items())), "
                   "s.value))\n"
                   "print('\\n'.join(sorted(out)))\n");
    EXPECT_EQ(run_command({"/usr/bin/python3", script, mpath, names}, &out), 0) << out << text;
    lines->clear();
    size_t at = 0;
    while (at < out.size()) {
      size_t end = out.find('\n', at);
      if (end == std::string::npos) end = out.size();
      if (end > at) lines->push_back(out.substr(at, end - at));
      at = end + 1;
    }
    return true;
  }

  // Starts a TLS proxy of `workers` in front of `be` with a certificate for
  // localhost from `pki`, its metrics endpoint on `metrics_address`; `extra`
  // is added to the configuration.
  void start_tls(const Backend& be, test::TestPki& pki, int workers, const std::string& metrics_address,
                 const std::string& extra = "") {
    const auto srv = pki.server("localhost", {"localhost", "127.0.0.1"});
    const std::string cfg =
        "workers = " + std::to_string(workers) +
        "\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port_) +
        "\"]\n\n[tls]\ncert_path = \"" + srv.cert_path + "\"\nkey_path = \"" + srv.key_path + "\"\n" + extra +
        "\n[timeout]\nshutdown_secs = 5\ntls_handshake_secs = 3\n\n[dbus]\nbus = " +
        "\"none\"\n\n[telemetry]\nmetrics_port = " + std::to_string(metrics_port_) +
        "\nmetrics_address = \"" + metrics_address + "\"\n\n[[backends]]\naddress = \"" + be.address() +
        "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be.address() + "\"\n";
    proxy_ = std::make_unique<Process>(std::vector<std::string>{binary_path("sbin/huginn-proxy"), "--config",
                                                                dir_.write("config.toml", cfg)},
                                       dir_.path() + "/proxy.log");
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
  std::unique_ptr<Process> proxy_;
};

// `extra_route`: a route declared first in api.test's domain (a reload adds it
// so that every other route's section moves).
std::string counting_config(uint16_t port, uint16_t metrics_port, const std::string& be, uint16_t dead,
                            bool extra_route) {
  const std::string bad = "127.0.0.1:" + std::to_string(dead);
  return "workers = 4\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port) +
         "\"]\n\n[timeout]\nshutdown_secs = 10\nupstream_connect_ms = 1000\nupstream_response_secs = 10\n\n"
         "[dbus]\nbus = \"none\"\n\n[telemetry]\nmetrics_port = " +
         std::to_string(metrics_port) + "\nmetrics_address = \"127.0.0.1\"\n\n[[backends]]\naddress = \"" +
         be + "\"\n\n[[backends]]\naddress = \"" + bad + "\"\n\n[[domains]]\nhost = \"api.test\"\n" +
         (extra_route ? "[[domains.routes]]\nprefix = \"/new\"\nbackend = \"" + be + "\"\n" : "") +
         "[[domains.routes]]\nprefix = \"/ok\"\nbackend = \"" + be +
         "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/ok\"\nbackend = \"" + be +
         "\"\n[[domains.routes]]\nprefix = \"/slow\"\nbackend = \"" + be +
         "\"\n[[domains.routes]]\nprefix = \"/bad\"\nbackend = \"" + bad + "\"\n";
}

TEST_F(MetricsTest, CountsAreExactHostWideAndSurviveWorkerDeaths) {
  Backend be([](const Request& req) {
    Response r;
    r.body = "ok";
    if (req.target == "/slow") r.delay_ms = 3000;
    return r;
  });
  const uint16_t dead = free_port();  // nothing listens: connect fails → 502
  const std::string path =
      dir_.write("config.toml", counting_config(port_, metrics_port_, be.address(), dead, false));
  proxy_ =
      std::make_unique<Process>(std::vector<std::string>{binary_path("sbin/huginn-proxy"), "--config", path},
                                dir_.path() + "/proxy.log");

  // /ready: 503 proxy_starting while the workers start, then 200.
  bool saw_starting = false, saw_ready = false;
  for (auto until = std::chrono::steady_clock::now() + 15s; std::chrono::steady_clock::now() < until;) {
    auto r = get("/ready");
    if (!r.ok) continue;  // not bound yet
    if (r.status == 503) {
      EXPECT_EQ(r.body, R"({"status":"not_ready","reason":"proxy_starting"})");
      EXPECT_FALSE(saw_ready) << "/ready went back to 503";
      saw_starting = true;
    } else {
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(r.body, R"({"status":"ready"})");
      saw_ready = true;
      break;
    }
  }
  ASSERT_TRUE(saw_ready) << proxy_->log();
  EXPECT_TRUE(saw_starting) << "the endpoint answers before the workers are READY";
  ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  EXPECT_EQ(get("/health").body, R"({"status":"healthy"})");
  EXPECT_EQ(get("/live").body, R"({"status":"alive"})");
  EXPECT_EQ(get("/nowhere").status, 404);

  // Each request on its own connection (spread over the four workers):
  // api.test /ok: 5 GET + 1 POST → 200; catch-all /ok: 2 × 200; no route:
  // 3 × 404; catch-all /bad: 2 × 502.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(http_request(port_, "GET", "/ok/" + std::to_string(i), "api.test").status, 200);
  EXPECT_EQ(http_request(port_, "POST", "/ok/post", "api.test", "", "body").status, 200);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(http_request(port_, "GET", "/ok/" + std::to_string(i)).status, 200);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(http_request(port_, "GET", "/missing").status, 404);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(http_request(port_, "GET", "/bad").status, 502);

  const std::string eh = "huginn_entrypoint_requests_duration_seconds";
  std::string text;
  ASSERT_TRUE(wait_sample(eh + "_count{protocol=\"HTTP/1.1\"}", 13, &text)) << text;
  EXPECT_EQ(sample(text, req_series(200)), 7) << text;
  EXPECT_EQ(sample(text, req_series(404)), 3) << text;
  EXPECT_EQ(sample(text, req_series(502)), 2) << text;
  EXPECT_EQ(
      sample(text,
             "huginn_entrypoint_requests_total{method=\"POST\",protocol=\"HTTP/1.1\",status_code=\"200\"}"),
      1)
      << text;
  EXPECT_EQ(sample(text, "huginn_connections_total"), 13) << text;
  // Backend series carry the route's backend, route and domain.
  const std::string ok_api = "route=\"/ok\",domain=\"api.test\"";
  const std::string ok_any = "route=\"/ok\",domain=\"_default_\"";
  const std::string be_l = "backend_address=\"" + be.address() + "\"";
  const std::string bad_l = "backend_address=\"127.0.0.1:" + std::to_string(dead) + "\"";
  EXPECT_EQ(sample(text, "huginn_backend_requests_total{" + be_l + ",status_code=\"2xx\"," + ok_api + "}"), 6)
      << text;
  EXPECT_EQ(sample(text, "huginn_backend_requests_total{" + be_l + ",status_code=\"2xx\"," + ok_any + "}"), 2)
      << text;
  EXPECT_EQ(sample(text, "huginn_backend_duration_seconds_count{" + be_l + "," + ok_api + "}"), 6) << text;
  EXPECT_EQ(sample(text, "huginn_backend_errors_total{" + bad_l +
                             ",error_type=\"backend_error\",route=\"/bad\",domain=\"_default_\"}"),
            2)
      << text;
  EXPECT_EQ(text.find("error_type=\"gateway_timeout\""), std::string::npos) << text;
  EXPECT_EQ(sample(text, eh + "_bucket{protocol=\"HTTP/1.1\",le=\"+Inf\"}"), 13);
  EXPECT_EQ(sample(text, eh + "_count{protocol=\"HTTP/2.0\"}"), 0);
  EXPECT_EQ(sample(text, "huginn_config_generation"), 1);
  EXPECT_EQ(sample(text, "huginn_workers"), 4);
  EXPECT_EQ(sample(text, "huginn_config_reload_total{result=\"success\"}"), 0);

  // Per route: exactly these series (status class; 404s matched no route).
  const std::vector<std::string> routes_want = {
      route_line("GET", "2xx", "/ok", "_default_", 2), route_line("GET", "2xx", "/ok", "api.test", 5),
      route_line("GET", "5xx", "/bad", "_default_", 2), route_line("POST", "2xx", "/ok", "api.test", 1)};
  EXPECT_EQ(series_of(text, "huginn_requests_total"), routes_want) << text;
  const std::string rh = "huginn_requests_duration_seconds";
  const std::vector<std::string> counts_want = {
      rh + "_count{protocol=\"HTTP/1.1\",route=\"/bad\",domain=\"_default_\"} 2",
      rh + "_count{protocol=\"HTTP/1.1\",route=\"/ok\",domain=\"_default_\"} 2",
      rh + "_count{protocol=\"HTTP/1.1\",route=\"/ok\",domain=\"api.test\"} 6"};
  EXPECT_EQ(series_of(text, rh + "_count"), counts_want) << text;
  EXPECT_EQ(sample(text, rh + "_bucket{protocol=\"HTTP/1.1\",route=\"/ok\",domain=\"api.test\",le=\"+Inf\"}"),
            6);

  // The Prometheus project's own text parser accepts the whole document and
  // reads the same values.
  std::vector<std::string> parsed;
  if (parse_with_prometheus(text, "huginn_requests_total,huginn_entrypoint_requests_total", &parsed)) {
    const std::vector<std::string> parsed_want = {
        "huginn_entrypoint_requests_total{method=GET,protocol=HTTP/1.1,status_code=200} 7",
        "huginn_entrypoint_requests_total{method=GET,protocol=HTTP/1.1,status_code=404} 3",
        "huginn_entrypoint_requests_total{method=GET,protocol=HTTP/1.1,status_code=502} 2",
        "huginn_entrypoint_requests_total{method=POST,protocol=HTTP/1.1,status_code=200} 1",
        "huginn_requests_total{domain=_default_,method=GET,protocol=HTTP/1.1,route=/bad,status_code=5xx} 2",
        "huginn_requests_total{domain=_default_,method=GET,protocol=HTTP/1.1,route=/ok,status_code=2xx} 2",
        "huginn_requests_total{domain=api.test,method=GET,protocol=HTTP/1.1,route=/ok,status_code=2xx} 5",
        "huginn_requests_total{domain=api.test,method=POST,protocol=HTTP/1.1,route=/ok,status_code=2xx} 1"};
    EXPECT_EQ(parsed, parsed_want);
  }

  // SIGKILL every worker: the supervisor folds their slots (per-route
  // sections too) and restarts them; no counter goes down, and the new
  // workers count on top.
  const auto kids = children_of(proxy_->pid());
  ASSERT_EQ(kids.size(), 4u);
  for (pid_t p : kids) kill(p, SIGKILL);
  ASSERT_TRUE(wait_sample("huginn_worker_restarts_total", 4, &text)) << text;
  EXPECT_EQ(sample(text, req_series(200)), 7) << text;
  EXPECT_EQ(sample(text, req_series(404)), 3) << text;
  EXPECT_EQ(sample(text, req_series(502)), 2) << text;
  EXPECT_EQ(sample(text, "huginn_connections_total"), 13) << text;
  EXPECT_EQ(sample(text, "huginn_connections_active"), 0) << text;
  EXPECT_EQ(series_of(text, "huginn_requests_total"), routes_want) << text;
  EXPECT_EQ(series_of(text, rh + "_count"), counts_want) << text;
  HttpResponse after;
  for (int i = 0; i < 100 && !(after = http_request(port_, "GET", "/ok/after", "api.test")).ok; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(after.status, 200);
  ASSERT_TRUE(wait_sample(req_series(200), 8, &text)) << text;
  EXPECT_EQ(sample(text, "huginn_connections_total"), 14) << text;
  EXPECT_EQ(sample(text, route_series("GET", "2xx", "/ok", "api.test")), 6) << text;

  // A reload adds a route before api.test /ok: its section moves, its count
  // follows its labels (the old generation's workers are folded when they
  // exit), the new route starts at zero and shows only once it counts.
  dir_.write("config.toml", counting_config(port_, metrics_port_, be.address(), dead, true));
  proxy_->signal(SIGHUP);
  ASSERT_TRUE(wait_sample("huginn_config_reload_total{result=\"success\"}", 1, &text)) << proxy_->log();
  ASSERT_TRUE(wait_sample("huginn_config_generation", 2, &text)) << text;
  ASSERT_TRUE(wait_sample("huginn_workers", 4, &text)) << text;  // the old generation has drained
  EXPECT_EQ(http_request(port_, "GET", "/ok/reloaded", "api.test").status, 200);
  EXPECT_EQ(http_request(port_, "GET", "/new", "api.test").status, 200);
  ASSERT_TRUE(wait_sample(req_series(200), 10, &text)) << text;
  const std::vector<std::string> reloaded_want = {
      route_line("GET", "2xx", "/new", "api.test", 1), route_line("GET", "2xx", "/ok", "_default_", 2),
      route_line("GET", "2xx", "/ok", "api.test", 7), route_line("GET", "5xx", "/bad", "_default_", 2),
      route_line("POST", "2xx", "/ok", "api.test", 1)};
  EXPECT_EQ(series_of(text, "huginn_requests_total"), reloaded_want) << text;

  // HTTP/2 (cleartext, prior knowledge): counted under its own protocol label.
  const std::string base = "http://127.0.0.1:" + std::to_string(port_);
  std::string out;
  ASSERT_EQ(run_command({"/usr/bin/nghttp", "-n", base + "/ok/h2a", base + "/ok/h2b", base + "/nope"}, &out),
            0)
      << out;
  const std::string h2 = "huginn_entrypoint_requests_total{method=\"GET\",protocol=\"HTTP/2.0\",status_code=";
  ASSERT_TRUE(wait_sample(eh + "_count{protocol=\"HTTP/2.0\"}", 3, &text)) << text;
  EXPECT_EQ(sample(text, h2 + "\"200\"}"), 2) << text;
  EXPECT_EQ(sample(text, h2 + "\"404\"}"), 1) << text;
  EXPECT_EQ(sample(text, req_series(200)), 10) << text;
  EXPECT_EQ(sample(text,
                   "huginn_requests_total{method=\"GET\",status_code=\"2xx\",protocol=\"HTTP/2.0\",route=\"/"
                   "ok\",domain=\"_default_\"}"),
            2)
      << text;
  EXPECT_EQ(sample(text, rh + "_count{protocol=\"HTTP/2.0\",route=\"/ok\",domain=\"_default_\"}"), 2) << text;

  // Stop with a slow request in flight: /ready says shutting_down while the
  // process drains, the request still completes.
  HttpResponse slow;
  std::thread t([&] { slow = http_request(port_, "GET", "/slow"); });
  ASSERT_TRUE(wait_sample("huginn_connections_active", 1, &text)) << text;
  std::this_thread::sleep_for(200ms);  // the request head reached the backend
  proxy_->signal(SIGTERM);
  bool saw_stopping = false;
  for (int i = 0; i < 100 && !saw_stopping; ++i) {
    auto r = get("/ready");
    if (r.ok && r.status == 503 && r.body == R"({"status":"not_ready","reason":"shutting_down"})")
      saw_stopping = true;
    else
      std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(saw_stopping) << proxy_->log();
  t.join();
  EXPECT_TRUE(slow.ok) << slow.error;
  EXPECT_EQ(slow.status, 200);
  const int st = proxy_->wait_exit(20000);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << proxy_->log();
}

TEST_F(MetricsTest, CountsTlsHandshakesAndFingerprints) {
  Backend be;
  test::TestPki pki;
  ASSERT_NO_FATAL_FAILURE(start_tls(be, pki, 2, "::1"));

  const std::string url = "https://localhost:" + std::to_string(port_) + "/";
  const std::string resolve = "localhost:" + std::to_string(port_) + ":127.0.0.1";
  std::string out;
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(
        run_command({"/usr/bin/curl", "-sS", "--fail", "--http2", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256",
                     "--cacert", pki.ca().cert_path, "--resolve", resolve, "-o", "/dev/null", url},
                    &out),
        0)
        << out;
  ASSERT_EQ(run_command({"/usr/bin/curl", "-sS", "--fail", "--http1.1", "--tlsv1.2", "--tls-max", "1.2",
                         "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384", "--cacert", pki.ca().cert_path,
                         "--resolve", resolve, "-o", "/dev/null", url},
                        &out),
            0)
      << out;
  {
    HttpClient garbage("127.0.0.1", port_);  // not a ClientHello: the handshake fails
    ASSERT_TRUE(garbage.connected());
    garbage.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(garbage.wait_closed(5000));
  }

  // The endpoint listens on ::1 only.
  auto get6 = [this](const std::string& path) {
    HttpClient c("::1", metrics_port_);
    c.send("GET " + path + " HTTP/1.1\r\nHost: [::1]\r\n\r\n");
    return c.read_response();
  };
  std::string text;
  for (int i = 0; i < 100; ++i) {
    text = get6("/metrics").body;
    if (sample(text, "huginn_tls_handshake_errors_total") == 1) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(sample(text, "huginn_tls_handshake_errors_total"), 1) << text;
  const std::vector<std::string> handshakes_want = {
      "huginn_tls_handshakes_total{tls_version=\"TLSv1.2\",cipher_suite=\"ECDHE-ECDSA-AES256-GCM-SHA384\"} 1",
      "huginn_tls_handshakes_total{tls_version=\"TLSv1.3\",cipher_suite=\"TLS_AES_128_GCM_SHA256\"} 2"};
  EXPECT_EQ(series_of(text, "huginn_tls_handshakes_total"), handshakes_want) << text;
  EXPECT_EQ(sample(text,
                   "huginn_requests_total{method=\"GET\",status_code=\"2xx\",protocol=\"HTTP/2.0\",route=\"/"
                   "\",domain=\"_default_\"}"),
            2)
      << text;
  EXPECT_EQ(sample(text, "huginn_tls_fingerprints_extracted_total"), 3) << text;
  EXPECT_EQ(sample(text, "huginn_tls_fingerprint_failures_total"), 0) << text;
  EXPECT_EQ(sample(text, "huginn_http2_fingerprints_extracted_total"), 2) << text;
  EXPECT_EQ(sample(text, "huginn_connections_total"), 4) << text;
  EXPECT_EQ(
      sample(text,
             "huginn_entrypoint_requests_total{method=\"GET\",protocol=\"HTTP/2.0\",status_code=\"200\"}"),
      2)
      << text;
  EXPECT_EQ(
      sample(text,
             "huginn_entrypoint_requests_total{method=\"GET\",protocol=\"HTTP/1.1\",status_code=\"200\"}"),
      1)
      << text;
  EXPECT_EQ(get6("/ready").status, 200);
  HttpClient v4("127.0.0.1", metrics_port_);
  EXPECT_FALSE(v4.connected()) << "metrics_address = \"::1\" binds IPv6 only";
}

// Connections from one client repeat its SYN shape and its ClientHello: with
// one worker, the first connection computes the p0f signature and the JA4
// family and the four after it are served by the worker's memo.
TEST_F(MetricsTest, CountsFingerprintMemoHitsAndMisses) {
  Backend be;
  test::TestPki pki;
  ASSERT_NO_FATAL_FAILURE(start_tls(be, pki, 1, "127.0.0.1",
                                    "\n[fingerprint]\ntcp_enabled = true\ntcp_source = \"saved_syn\"\n"));

  const std::string url = "https://localhost:" + std::to_string(port_) + "/";
  const std::string resolve = "localhost:" + std::to_string(port_) + ":127.0.0.1";
  std::string out;
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(run_command({"/usr/bin/curl", "-sS", "--fail", "--http1.1", "--cacert", pki.ca().cert_path,
                           "--resolve", resolve, "-o", "/dev/null", url},
                          &out),
              0)
        << out;

  std::string text;
  ASSERT_TRUE(wait_sample("huginn_tls_fingerprints_extracted_total", 5, &text)) << text;
  EXPECT_EQ(sample(text, "huginn_tcp_syn_fingerprints_total{reason=\"hit\"}"), 5) << text;
  // tcp_source = "saved_syn" asks the socket only, never the XDP source.
  EXPECT_EQ(sample(text, "huginn_tcp_syn_lookups_total{source=\"saved_syn\",result=\"hit\"}"), 5) << text;
  EXPECT_EQ(sample(text, "huginn_tcp_syn_lookups_total{source=\"xdp_map\",result=\"no_grant\"}"), 0) << text;
  EXPECT_EQ(sample(text, "huginn_tcp_syn_lookups_total{source=\"xdp_ring\",result=\"miss\"}"), 0) << text;
  EXPECT_EQ(sample(text, "huginn_fingerprint_memo_total{fingerprint=\"ja4\",result=\"miss\"}"), 1) << text;
  EXPECT_EQ(sample(text, "huginn_fingerprint_memo_total{fingerprint=\"ja4\",result=\"hit\"}"), 4) << text;
  EXPECT_EQ(sample(text, "huginn_fingerprint_memo_total{fingerprint=\"tcp\",result=\"miss\"}"), 1) << text;
  EXPECT_EQ(sample(text, "huginn_fingerprint_memo_total{fingerprint=\"tcp\",result=\"hit\"}"), 4) << text;
}

}  // namespace
}  // namespace huginn::testing
