// Per-request cost of fingerprint injection: the request header rewrite and
// the backend request head, for a browser-like HTTP/1.1 request, without and
// with the connection's fingerprints (the JA4 family, Akamai, p0f TCP). The
// difference is what fingerprinting adds to every request in user space; the
// per-connection parts (ClientHello + JA4, Akamai, p0f) are in
// fingerprint_bench.cpp and p0f_bench.cpp. bench/README.md relates both to
// the measured CPU time per request of the whole proxy.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <variant>

#include "common/config/loader.h"
#include "worker/http1/writer.h"
#include "worker/proxy/header_rewrite.h"

namespace {

using namespace huginn;

std::shared_ptr<const config::Config> bench_config() {
  static const auto cfg = [] {
    auto r = config::load_text(
        "[listen]\naddrs = [\"127.0.0.1:8443\"]\n[[backends]]\naddress = \"127.0.0.1:9000\"\n"
        "[[domains]]\nhost = \"example.test\"\n[[domains.routes]]\nprefix = \"/\"\nbackend = "
        "\"127.0.0.1:9000\"\n",
        "bench");
    auto* ok = std::get_if<std::shared_ptr<const config::Config>>(&r);
    if (ok == nullptr) {
      std::fprintf(stderr, "bench config rejected\n");
      std::abort();
    }
    return *ok;
  }();
  return cfg;
}

worker::http1::Headers browser_request() {
  return {{"Host", "example.test"},
          {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
          {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
          {"Accept-Language", "en-US,en;q=0.5"},
          {"Accept-Encoding", "gzip, deflate, br, zstd"},
          {"Connection", "keep-alive"},
          {"Cookie", "session=4f6b2c1e9a7d3b5c8e0f1a2b3c4d5e6f; theme=dark"},
          {"Upgrade-Insecure-Requests", "1"},
          {"Sec-Fetch-Dest", "document"},
          {"Sec-Fetch-Mode", "navigate"},
          {"Sec-Fetch-Site", "none"},
          {"Priority", "u=0, i"}};
}

// A curl/OpenSSL 3 client over TLS with h2, from the oracle captures.
worker::proxy::ConnectionFingerprints fingerprints() {
  using K = worker::proxy::ConnectionFingerprints;
  K f;
  f.set(K::kJa4, "t13d3112h2_e8f1e7e78f70_6bebaf5329ac");
  const std::string_view ja4_r =
      "t13d3112h2_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,1301,1302,1303,"
      "c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,ccaa_000a,000b,000d,"
      "0015,0016,0017,002b,002d,0031,0033_0403,0503,0603,0807,0808,0809,080a,080b,0804,0805,0806,"
      "0401,0501,0601,0303,0203,0301,0201,0302,0202,0402,0502,0602";
  f.set(K::kJa4R, ja4_r);
  f.set(K::kJa4O, "t13d3112h2_ea8c8a4d5e9a_7f6e9d8b7a6c");
  f.set(K::kJa4Or, ja4_r);
  f.set(K::kAkamai, "2:0;3:100;4:10485760|1048510465|0|m,s,a,p");
  f.set(K::kTcp, "4:64+0:0:65495:mss*10,7:mss,sok,ts,nop,ws:df,id+:0");
  return f;
}

void rewrite_and_serialise(benchmark::State& state, bool with_fingerprints) {
  const auto cfg = bench_config();
  const worker::http1::Headers in = browser_request();
  const worker::proxy::ConnectionFingerprints fp = fingerprints();
  worker::proxy::RequestContext ctx;
  ctx.cfg = cfg.get();
  ctx.domain = &cfg->domains.front();
  ctx.route = &cfg->domains.front().routes.front();
  ctx.backend = &cfg->backends.front();
  ctx.fingerprints = with_fingerprints ? &fp : nullptr;
  ctx.peer_ip = "203.0.113.7";
  ctx.local_port = 8443;
  ctx.tls = true;
  ctx.host = "example.test";
  std::string head;
  for (auto _ : state) {
    worker::http1::Headers out = worker::proxy::rewrite_request(in, ctx);
    head.clear();
    worker::http1::append_request_head(head, "GET", "/index.html", out);
    benchmark::DoNotOptimize(head.data());
  }
  state.counters["head_bytes"] = static_cast<double>(head.size());
}

void BM_rewrite_request_plain(benchmark::State& s) { rewrite_and_serialise(s, false); }
void BM_rewrite_request_fingerprints(benchmark::State& s) { rewrite_and_serialise(s, true); }
BENCHMARK(BM_rewrite_request_plain);
BENCHMARK(BM_rewrite_request_fingerprints);

}  // namespace

BENCHMARK_MAIN();
