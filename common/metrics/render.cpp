#include "common/metrics/render.h"

#include <cinttypes>
#include <cstdio>
#include <initializer_list>
#include <utility>
#include <vector>

namespace huginn::metrics {

namespace {

using Label = std::pair<std::string_view, std::string_view>;

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
  template <typename Labels = std::initializer_list<Label>>
  void sample(std::string_view name, const Labels& labels, uint64_t v) {
    head(name, labels);
    s_ += std::to_string(v);
    s_ += '\n';
  }
  template <typename Labels = std::initializer_list<Label>>
  void sample_f(std::string_view name, const Labels& labels, double v) {
    head(name, labels);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    s_ += buf;
    s_ += '\n';
  }
  std::string take() { return std::move(s_); }

 private:
  template <typename Labels>
  void head(std::string_view name, const Labels& labels) {
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

// One histogram series: `b` = kBuckets + 1 non-cumulative bucket words.
void histogram(Out& o, std::string_view family, std::initializer_list<Label> labels, const uint64_t* b,
               uint64_t sum_us) {
  const std::string bucket = std::string(family) + "_bucket";
  std::vector<Label> with_le(labels);
  with_le.emplace_back("le", "");
  uint64_t cum = 0;
  for (size_t i = 0; i <= kBuckets; ++i) {
    cum += b[i];
    const std::string le = i < kBuckets ? le_label(kBucketBoundsUs[i]) : "+Inf";
    with_le.back().second = le;
    o.sample(bucket, with_le, cum);
  }
  o.sample_f(std::string(family) + "_sum", labels, static_cast<double>(sum_us) / 1e6);
  o.sample(std::string(family) + "_count", labels, cum);
}

// The same, for a labelled series shown only once it has observations.
void histogram_if_any(Out& o, std::string_view family, std::initializer_list<Label> labels, const uint64_t* b,
                      uint64_t sum_us) {
  uint64_t n = 0;
  for (size_t i = 0; i <= kBuckets; ++i) n += b[i];
  if (n != 0) histogram(o, family, labels, b, sum_us);
}

// huginn_rate_limit_*_total: allowed, rejected or both summed, per strategy
// and route; only series that ever counted.
void rate_limit(Out& o, const RouteTotals& routes, std::string_view name, bool allowed, bool rejected) {
  for (const auto& [key, rc] : routes)
    for (size_t s = 0; s < kStrategies; ++s) {
      const uint64_t a = rc[route_word::kRateLimitAllowed + s];
      const uint64_t r = rc[route_word::kRateLimitRejected + s];
      if (a + r == 0) continue;
      o.sample(name, {{"strategy", kStrategyLabels[s]}, {"route", key.route}, {"domain", key.domain}},
               (allowed ? a : 0) + (rejected ? r : 0));
    }
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

std::string render(const Counters& t, const RouteTotals& routes, const SupervisorFacts& f) {
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

  o.family("huginn_tls_handshakes_total", "counter",
           "Completed TLS handshakes by protocol version and cipher suite.");
  for (size_t i = 0; i < kTlsVersionLabels.size(); ++i)
    for (size_t c = 0; c < kCiphers; ++c)
      if (const uint64_t v = t[word::kTlsHandshakes + i * kCiphers + c])
        o.sample("huginn_tls_handshakes_total",
                 {{"tls_version", kTlsVersionLabels[i]}, {"cipher_suite", kCipherLabels[c]}}, v);
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
  o.family("huginn_tcp_syn_lookups_total", "counter",
           "SYN sources asked at accept (XDP ring, XDP LRU map, TCP_SAVED_SYN) by source and answer.");
  for (size_t e = 0; e < kSynLookupEvents; ++e)
    o.sample("huginn_tcp_syn_lookups_total",
             {{"source", kSynLookupLabels[e].source}, {"result", kSynLookupLabels[e].result}},
             t[word::kSynLookups + e]);
  o.family("huginn_fingerprint_memo_total", "counter",
           "Fingerprint computations (p0f signature, JA4 family) by kind and result: served from the "
           "worker's memo of recent inputs (hit) or computed (miss).");
  for (size_t k = 0; k < kMemoKindLabels.size(); ++k) {
    o.sample("huginn_fingerprint_memo_total", {{"fingerprint", kMemoKindLabels[k]}, {"result", "hit"}},
             t[word::kFingerprintMemo + k * 2]);
    o.sample("huginn_fingerprint_memo_total", {{"fingerprint", kMemoKindLabels[k]}, {"result", "miss"}},
             t[word::kFingerprintMemo + k * 2 + 1]);
  }

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
  o.family("huginn_entrypoint_requests_duration_seconds", "histogram",
           "Time from the request head to the response head of every response, by protocol.");
  for (size_t p = 0; p < kProtocols; ++p)
    histogram(o, "huginn_entrypoint_requests_duration_seconds", {{"protocol", kProtocolLabels[p]}},
              &t[word::kDuration + p * (kBuckets + 1)], t[word::kDurationSumUs + p]);

  o.family(
      "huginn_requests_total", "counter",
      "Responses to requests that matched a route, by method, status class, protocol, route and domain.");
  for (const auto& [key, rc] : routes)
    for (size_t p = 0; p < kProtocols; ++p)
      for (size_t m = 0; m < kMethods; ++m)
        for (size_t c = 0; c < kStatusClasses; ++c)
          if (const uint64_t v = rc[route_word::kRequests + (p * kMethods + m) * kStatusClasses + c]) {
            const char cls[3] = {static_cast<char>('1' + c), 'x', 'x'};
            o.sample("huginn_requests_total",
                     {{"method", kMethodLabels[m]},
                      {"status_code", std::string_view(cls, 3)},
                      {"protocol", kProtocolLabels[p]},
                      {"route", key.route},
                      {"domain", key.domain}},
                     v);
          }
  o.family("huginn_requests_duration_seconds", "histogram",
           "Time from the request head to the response head of requests that matched a route, by protocol, "
           "route and domain.");
  for (const auto& [key, rc] : routes)
    for (size_t p = 0; p < kProtocols; ++p) {
      histogram_if_any(o, "huginn_requests_duration_seconds",
                       {{"protocol", kProtocolLabels[p]}, {"route", key.route}, {"domain", key.domain}},
                       &rc[route_word::kDuration + p * (kBuckets + 1)], rc[route_word::kDurationSumUs + p]);
    }
  o.family("huginn_backend_requests_total", "counter",
           "Response heads received from backends by backend, status class, route and domain.");
  for (const auto& [key, rc] : routes)
    for (size_t c = 0; c < kStatusClasses; ++c)
      if (const uint64_t v = rc[route_word::kBackendResponses + c]) {
        const char cls[3] = {static_cast<char>('1' + c), 'x', 'x'};
        o.sample("huginn_backend_requests_total",
                 {{"backend_address", key.backend},
                  {"status_code", std::string_view(cls, 3)},
                  {"route", key.route},
                  {"domain", key.domain}},
                 v);
      }
  o.family("huginn_backend_errors_total", "counter",
           "Backend exchanges that failed (502) or timed out (504) by backend, route and domain.");
  for (const auto& [key, rc] : routes)
    for (size_t e = 0; e < kBackendErrorLabels.size(); ++e)
      if (const uint64_t v = rc[route_word::kBackendErrors + e])
        o.sample("huginn_backend_errors_total",
                 {{"backend_address", key.backend},
                  {"error_type", kBackendErrorLabels[e]},
                  {"route", key.route},
                  {"domain", key.domain}},
                 v);
  o.family("huginn_backend_duration_seconds", "histogram",
           "Time from the start of a backend exchange (connect included) to the response head, by backend, "
           "route and domain.");
  for (const auto& [key, rc] : routes)
    histogram_if_any(o, "huginn_backend_duration_seconds",
                     {{"backend_address", key.backend}, {"route", key.route}, {"domain", key.domain}},
                     &rc[route_word::kBackendDuration], rc[route_word::kBackendDurationSumUs]);

  o.family("huginn_rate_limit_requests_total", "counter", "Rate-limit checks by strategy, route and domain.");
  rate_limit(o, routes, "huginn_rate_limit_requests_total", true, true);
  o.family("huginn_rate_limit_allowed_total", "counter", "Requests a rate limit let through.");
  rate_limit(o, routes, "huginn_rate_limit_allowed_total", true, false);
  o.family("huginn_rate_limit_rejected_total", "counter", "Requests a rate limit rejected (429).");
  rate_limit(o, routes, "huginn_rate_limit_rejected_total", false, true);

  o.family("huginn_ip_filter_requests_total", "counter", "IP filter checks.");
  o.sample("huginn_ip_filter_requests_total", {}, t[word::kIpFilterAllowed] + t[word::kIpFilterDenied]);
  o.family("huginn_ip_filter_allowed_total", "counter", "Requests the IP filter let through.");
  o.sample("huginn_ip_filter_allowed_total", {}, t[word::kIpFilterAllowed]);
  o.family("huginn_ip_filter_denied_total", "counter", "Requests the IP filter denied (403).");
  o.sample("huginn_ip_filter_denied_total", {}, t[word::kIpFilterDenied]);

  const auto pp = [&t](ProxyProtocolEvent e) { return t[word::kProxyProtocol + static_cast<size_t>(e)]; };
  o.family("huginn_proxy_protocol_accepted_total", "counter",
           "Connections whose PROXY protocol header from a trusted peer gave the client address.");
  o.sample("huginn_proxy_protocol_accepted_total", {}, pp(ProxyProtocolEvent::kAccepted));
  o.family("huginn_proxy_protocol_passthrough_total", "counter",
           "Connections without a PROXY protocol header where it is optional (peer address used).");
  o.sample("huginn_proxy_protocol_passthrough_total", {}, pp(ProxyProtocolEvent::kPassthrough));
  o.family("huginn_proxy_protocol_no_client_addr_total", "counter",
           "Valid PROXY protocol headers without a client address (LOCAL, UNKNOWN).");
  o.sample("huginn_proxy_protocol_no_client_addr_total", {}, pp(ProxyProtocolEvent::kNoClientAddr));
  o.family("huginn_proxy_protocol_dropped_total", "counter",
           "Connections closed over the PROXY protocol by reason.");
  o.sample("huginn_proxy_protocol_dropped_total", {{"reason", kProxyProtocolDropLabels[0]}},
           pp(ProxyProtocolEvent::kDroppedUntrusted));
  o.sample("huginn_proxy_protocol_dropped_total", {{"reason", kProxyProtocolDropLabels[1]}},
           pp(ProxyProtocolEvent::kDroppedBadHeader));
  o.sample("huginn_proxy_protocol_dropped_total", {{"reason", kProxyProtocolDropLabels[2]}},
           pp(ProxyProtocolEvent::kDroppedTimeout));

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
