// Fingerprint core benchmarks: ClientHello parse + JA4 family, and Akamai from
// raw HTTP/2 frames. Figures are recorded in bench/README.md.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "bench/bench_data.h"
#include "common/fingerprint/akamai.h"
#include "common/fingerprint/clienthello.h"
#include "common/fingerprint/h2frames.h"
#include "common/fingerprint/ja4.h"
#include "common/fingerprint/sha256.h"

namespace {

using huginn::fp::ClientHelloParse;

template <size_t N>
void parse_only(benchmark::State& state, const uint8_t (&hello)[N]) {
  for (auto _ : state) {
    ClientHelloParse p = huginn::fp::parse_client_hello(hello, N);
    benchmark::DoNotOptimize(p);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * N));
}

template <size_t N>
void parse_and_ja4(benchmark::State& state, const uint8_t (&hello)[N]) {
  for (auto _ : state) {
    ClientHelloParse p = huginn::fp::parse_client_hello(hello, N);
    if (p.status != ClientHelloParse::Status::kOk) {
      state.SkipWithError("parse failed");
      break;
    }
    huginn::fp::Ja4Set j = huginn::fp::compute_ja4(p.hello);
    benchmark::DoNotOptimize(j);
  }
}

template <size_t N>
void ja4_only(benchmark::State& state, const uint8_t (&hello)[N]) {
  const ClientHelloParse p = huginn::fp::parse_client_hello(hello, N);
  if (p.status != ClientHelloParse::Status::kOk) {
    state.SkipWithError("parse failed");
    return;
  }
  for (auto _ : state) {
    huginn::fp::Ja4Set j = huginn::fp::compute_ja4(p.hello);
    benchmark::DoNotOptimize(j);
  }
}

// ClientHello delivered in two TLS records (reassembly path).
template <size_t N>
void parse_and_ja4_two_records(benchmark::State& state, const uint8_t (&hello)[N]) {
  const size_t body = N - 5;
  const size_t first = body / 2;
  std::vector<uint8_t> wire;
  auto rec = [&](size_t off, size_t n) {
    wire.insert(wire.end(), {0x16, 0x03, 0x01, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
    wire.insert(wire.end(), hello + 5 + off, hello + 5 + off + n);
  };
  rec(0, first);
  rec(first, body - first);
  for (auto _ : state) {
    ClientHelloParse p = huginn::fp::parse_client_hello(wire.data(), wire.size());
    if (p.status != ClientHelloParse::Status::kOk) {
      state.SkipWithError("parse failed");
      break;
    }
    huginn::fp::Ja4Set j = huginn::fp::compute_ja4(p.hello);
    benchmark::DoNotOptimize(j);
  }
}

template <size_t N>
void akamai_from_frames(benchmark::State& state, const uint8_t (&stream)[N]) {
  for (auto _ : state) {
    huginn::fp::H2PrefaceScanner s;
    if (s.feed(stream, N) != huginn::fp::H2PrefaceScanner::Status::kDone) {
      state.SkipWithError("scanner did not finish");
      break;
    }
    std::string v = s.akamai();
    benchmark::DoNotOptimize(v);
  }
}

void sha256_hex12_bench(benchmark::State& state) {
  const std::string in(static_cast<size_t>(state.range(0)), 'a');
  for (auto _ : state) {
    std::string h = huginn::fp::sha256_hex12(in);
    benchmark::DoNotOptimize(h);
  }
}

void akamai_builder_only(benchmark::State& state) {
  const std::vector<std::pair<uint16_t, uint32_t>> settings = {{1, 65536}, {2, 0}, {4, 6291456}, {6, 262144}};
  const std::vector<std::string> pseudo = {":method", ":authority", ":scheme", ":path"};
  for (auto _ : state) {
    huginn::fp::AkamaiBuilder b;
    b.on_settings(settings, false);
    b.on_window_update(0, 15663105);
    b.on_headers(1, pseudo);
    std::string v = b.value();
    benchmark::DoNotOptimize(v);
  }
}

using namespace huginn::bench_data;  // NOLINT(build/namespaces)

BENCHMARK_CAPTURE(parse_only, curl, kCurlHello);
BENCHMARK_CAPTURE(parse_only, chrome_like, kChromeLikeHello);
BENCHMARK_CAPTURE(ja4_only, curl, kCurlHello);
BENCHMARK_CAPTURE(ja4_only, chrome_like, kChromeLikeHello);
BENCHMARK_CAPTURE(parse_and_ja4, curl, kCurlHello);
BENCHMARK_CAPTURE(parse_and_ja4, chrome_like, kChromeLikeHello);
BENCHMARK_CAPTURE(parse_and_ja4_two_records, curl, kCurlHello);
BENCHMARK_CAPTURE(akamai_from_frames, curl_h2c, kCurlH2c);
BENCHMARK_CAPTURE(akamai_from_frames, nghttp_h2c, kNghttpH2c);
BENCHMARK(akamai_builder_only);
BENCHMARK(sha256_hex12_bench)->Arg(80)->Arg(300);

}  // namespace

BENCHMARK_MAIN();
