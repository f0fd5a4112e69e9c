#include "common/metrics/render.h"

#include <cinttypes>
#include <cstdio>
#include <initializer_list>
#include <utility>

namespace huginn::metrics {

namespace {

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class Out {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    s_ += "# HELP ";
    s_ += name;
    s_ += ' ';
    for (char c : help) {  // HELP text escapes only backslash and newline
      if (c == '\\')
        s_ += "\\\\";
      else if (c == '\n')
        s_ += "\\n";
      else
        s_ += c;
    }
    s_ += "\n# TYPE ";
    s_ += name;
    s_ += ' ';
    s_ += type;
    s_ += '\n';
  }
  void sample(std::string_view name, Labels labels, uint64_t v) {
    head(name, labels);
    s_ += std::to_string(v);
    s_ += '\n';
  }
  void sample_f(std::string_view name, Labels labels, double v) {
    head(name, labels);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    s_ += buf;
    s_ += '\n';
  }
  std::string take() { return std::move(s_); }

 private:
  void head(std::string_view name, Labels labels) {
    s_ += name;
    if (labels.size() > 0) {
      s_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) s_ += ',';
        first = false;
        s_ += k;
        s_ += "=\"";
        s_ += escape_label_value(v);
        s_ += '"';
      }
      s_ += '}';
    }
    s_ += ' ';
  }
  std::string s_;
};

std::string le_label(uint64_t bound_us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(bound_us) / 1e6);
  return buf;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string render(const Counters& t, const SupervisorFacts& f) {
  Out o;
  o.family("huginn_build_info", "gauge", "Build information; always 1.");
  o.sample("huginn_build_info", {{"version", f.version}}, 1);
  o.family("huginn_config_generation", "gauge", "Generation of the configuration being served.");
  o.sample("huginn_config_generation", {}, f.generation);
  o.family("huginn_config_reload_total", "counter", "Configuration reloads by result.");
  o.sample("huginn_config_reload_total", {{"result", "success"}}, f.reloads_ok);
  o.sample("huginn_config_reload_total", {{"result", "error"}}, f.reloads_failed);
  if (f.last_reload_unix > 0) {
    o.family("huginn_config_last_reload_timestamp_seconds", "gauge",
             "Unix time of the last successful configuration reload.");
    o.sample_f("huginn_config_last_reload_timestamp_seconds", {}, f.last_reload_unix);
  }
  o.family("huginn_workers", "gauge", "Worker processes alive (all generations).");
  o.sample("huginn_workers", {}, f.live_workers);
  o.family("huginn_worker_restarts_total", "counter", "Workers restarted after an unexpected exit.");
  o.sample("huginn_worker_restarts_total", {}, f.worker_restarts);

  o.family("huginn_connections_total", "counter", "Client connections accepted.");
  o.sample("huginn_connections_total", {}, t[word::kConnectionsTotal]);
  o.family("huginn_connections_active", "gauge", "Client connections open now.");
  o.sample("huginn_connections_active", {}, t[word::kConnectionsActive]);
  o.family("huginn_connections_rejected_total", "counter", "Client connections refused at accept.");
  o.sample("huginn_connections_rejected_total", {{"reason", "limit_exceeded"}},
           t[word::kConnectionsRejected]);

  o.family("huginn_tls_handshakes_total", "counter", "Completed TLS handshakes by protocol version.");
  for (size_t i = 0; i < kTlsVersionLabels.size(); ++i)
    o.sample("huginn_tls_handshakes_total", {{"tls_version", kTlsVersionLabels[i]}},
             t[word::kTlsHandshakes + i]);
  o.family("huginn_tls_handshake_errors_total", "counter", "TLS handshakes that failed or timed out.");
  o.sample("huginn_tls_handshake_errors_total", {}, t[word::kTlsHandshakeErrors]);
  o.family("huginn_tls_fingerprints_extracted_total", "counter",
           "JA4 fingerprints computed from a ClientHello.");
  o.sample("huginn_tls_fingerprints_extracted_total", {}, t[word::kTlsFingerprints]);
  o.family("huginn_tls_fingerprint_failures_total", "counter",
           "TLS handshakes that completed without a JA4 fingerprint.");
  o.sample("huginn_tls_fingerprint_failures_total", {}, t[word::kTlsFingerprintFailures]);
  o.family("huginn_http2_fingerprints_extracted_total", "counter", "Akamai HTTP/2 fingerprints fixed.");
  o.sample("huginn_http2_fingerprints_extracted_total", {}, t[word::kHttp2Fingerprints]);
  o.family("huginn_http2_fingerprint_failures_total", "counter",
           "HTTP/2 connections that ended before their Akamai fingerprint was complete.");
  o.sample("huginn_http2_fingerprint_failures_total", {{"reason", "extraction_failed"}},
           t[word::kHttp2FingerprintFailures]);
  o.family("huginn_tcp_syn_fingerprints_total", "counter", "TCP SYN lookups at accept by result.");
  o.sample("huginn_tcp_syn_fingerprints_total", {{"reason", "hit"}}, t[word::kSynHit]);
  o.sample("huginn_tcp_syn_fingerprints_total", {{"reason", "miss"}}, t[word::kSynMiss]);

  char buf[4];
  o.family("huginn_entrypoint_requests_total", "counter",
           "Responses sent to clients (proxied or generated by the proxy) by method, protocol and status.");
  for (size_t p = 0; p < kProtocols; ++p)
    for (size_t m = 0; m < kMethods; ++m)
      for (size_t s = 0; s < kStatusSlots; ++s)
        if (const uint64_t v = t[word::kRequests + (p * kMethods + m) * kStatusSlots + s])
          o.sample("huginn_entrypoint_requests_total",
                   {{"method", kMethodLabels[m]},
                    {"protocol", kProtocolLabels[p]},
                    {"status_code", status_label(s, buf)}},
                   v);
  o.family("huginn_requests_duration_seconds", "histogram",
           "Time from the request head to the response head, by protocol.");
  for (size_t p = 0; p < kProtocols; ++p) {
    uint64_t cum = 0;
    for (size_t b = 0; b <= kBuckets; ++b) {
      cum += t[word::kDuration + p * (kBuckets + 1) + b];
      const std::string le = b < kBuckets ? le_label(kBucketBoundsUs[b]) : "+Inf";
      o.sample("huginn_requests_duration_seconds_bucket", {{"protocol", kProtocolLabels[p]}, {"le", le}},
               cum);
    }
    o.sample_f("huginn_requests_duration_seconds_sum", {{"protocol", kProtocolLabels[p]}},
               static_cast<double>(t[word::kDurationSumUs + p]) / 1e6);
    o.sample("huginn_requests_duration_seconds_count", {{"protocol", kProtocolLabels[p]}}, cum);
  }
  o.family("huginn_backend_requests_total", "counter", "Response heads received from backends by status.");
  for (size_t s = 0; s < kStatusSlots; ++s)
    if (const uint64_t v = t[word::kBackendResponses + s])
      o.sample("huginn_backend_requests_total", {{"status_code", status_label(s, buf)}}, v);
  o.family("huginn_backend_errors_total", "counter", "Backend exchanges that failed by kind.");
  for (size_t e = 0; e < kBackendErrorLabels.size(); ++e)
    o.sample("huginn_backend_errors_total", {{"error_type", kBackendErrorLabels[e]}},
             t[word::kBackendErrors + e]);

  if (f.syn_v4 || f.syn_v6) {
    const std::pair<std::string_view, const std::optional<SynMapCounters>*> fams[] = {{"ipv4", &f.syn_v4},
                                                                                      {"ipv6", &f.syn_v6}};
    o.family("huginn_tcp_syn_captured_total", "counter", "SYNs recorded by the XDP program.");
    for (const auto& [fam, c] : fams)
      if (*c) o.sample("huginn_tcp_syn_captured_total", {{"family", fam}}, (*c)->captured);
    o.family("huginn_tcp_syn_malformed_total", "counter", "Packets the XDP program could not parse.");
    for (const auto& [fam, c] : fams)
      if (*c) o.sample("huginn_tcp_syn_malformed_total", {{"family", fam}}, (*c)->malformed);
    o.family("huginn_tcp_syn_insert_failures_total", "counter",
             "SYN records the XDP program could not store.");
    for (const auto& [fam, c] : fams)
      if (*c) o.sample("huginn_tcp_syn_insert_failures_total", {{"family", fam}}, (*c)->insert_failures);
  }
  return o.take();
}

}  // namespace huginn::metrics
