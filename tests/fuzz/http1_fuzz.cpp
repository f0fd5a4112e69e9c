// libFuzzer target: arbitrary bytes as an HTTP/1 byte stream into the
// worker's parsing path — the strict head scanner and llhttp with limits
// (http1::Parser), then for each request head what the connection does with
// it: target split, host normalisation, routing, header rewrite and
// serialisation. The first input byte picks the mode:
//   bit 0: parse as backend responses instead of client requests
//   bits 1-3: how the stream is sliced into feed() calls
//   bit 4: small limits (1 KiB head, 8 fields) to reach the 431 paths
//   bit 5: responses answer a HEAD request
// Invariants checked (abort on violation): feed() never consumes more than
// it was given, a Content-Length body delivers exactly that many bytes, an
// error is sticky, and serialised heads contain no bare CR/LF injection.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/config/model.h"
#include "worker/http1/parser.h"
#include "worker/http1/writer.h"
#include "worker/proxy/header_rewrite.h"
#include "worker/proxy/router.h"

namespace {

using namespace huginn;
using namespace huginn::worker;

const config::Config& fuzz_config() {
  static const config::Config cfg = [] {
    config::Config c;
    for (const char* a : {"10.0.0.1:80", "10.0.0.2:80"}) {
      config::Backend b;
      b.address = a;
      c.backends.push_back(b);
    }
    auto route = [](const char* prefix, const char* backend, const char* replace) {
      config::Route r;
      r.prefix = prefix;
      r.backend = backend;
      if (replace) r.replace_path = replace;
      return r;
    };
    config::Domain exact;
    exact.host = "a.test";
    exact.routes = {route("/", "10.0.0.1:80", nullptr), route("/api", "10.0.0.2:80", ""),
                    route("/api", "10.0.0.1:80", "/v2/"), route("/x/", "10.0.0.2:80", "/y")};
    exact.headers.request.add = {{"x-added", "1"}};
    exact.headers.request.remove = {"cookie"};
    config::Domain wild;
    wild.host = "*.b.test";
    wild.routes = {route("/w", "10.0.0.2:80", nullptr)};
    config::Domain any;
    any.routes = {route("/", "10.0.0.1:80", "/r")};
    c.domains = {exact, wild, any};
    return c;
  }();
  return cfg;
}

bool has_ctl_break(const std::string& s) {
  // A serialised head may contain CR only as part of CRLF line ends.
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return true;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

struct Sink : http1::ParserSink {
  proxy::Router* router = nullptr;
  proxy::ConnectionFingerprints fps;  // injected into every routed request
  uint64_t expected_body = 0;

  Sink() {
    using K = proxy::ConnectionFingerprints;
    fps.set({{K::kJa4, "t13d1516h2_8daaf6152771_e5627efa2ab1"},
             {K::kAkamai, "1:65536;4:6291456|15663105|0|m,a,s,p"},
             {K::kTcp, "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0"}});
  }
  uint64_t body = 0;
  bool length_framed = false;

  void on_request_head(http1::RequestHead&& head) override {
    body = 0;
    length_framed = head.framing == http1::BodyFraming::kLength;
    expected_body = head.content_length;
    const auto parts = proxy::split_target(head.target);
    if (!parts) return;
    std::string_view authority = parts->absolute ? parts->authority : std::string_view();
    if (!parts->absolute)
      if (const auto* h = http1::find_header(head.headers, "host")) authority = h->value;
    const auto host = proxy::normalize_host(authority);
    if (!host) return;
    auto d = router->route(*host, head.target);
    if (d.outcome != proxy::Router::Outcome::kRouted) return;
    proxy::Router::forwarded(d);  // as the worker does: the next request takes the next route of a group
    proxy::RequestContext rc;
    rc.cfg = &fuzz_config();
    rc.domain = d.domain;
    rc.route = d.route;
    rc.backend = d.backend;
    rc.fingerprints = &fps;
    rc.peer_ip = "192.0.2.1";
    rc.local_port = 80;
    rc.host = *host;
    http1::HeaderRefs refs;  // the fingerprint fields by reference, as the worker sends them
    const http1::Headers out = proxy::rewrite_request(head.headers, rc, &refs);
    std::string wire;
    http1::append_request_head(wire, llhttp_method_name(static_cast<llhttp_method_t>(head.method)),
                               d.upstream_target, out, refs);
    if (has_ctl_break(wire.substr(0, wire.size() - 2))) abort();
    if (d.upstream_target.empty() || d.upstream_target.front() != '/') abort();
  }
  void on_response_head(http1::ResponseHead&& head) override {
    body = 0;
    length_framed = head.framing == http1::BodyFraming::kLength;
    expected_body = head.content_length;
    proxy::RequestContext rc;
    rc.cfg = &fuzz_config();
    const http1::Headers out = proxy::rewrite_response(head.headers, rc);
    std::string wire;
    http1::append_response_head(wire, head.status, {}, out);
    if (has_ctl_break(wire.substr(0, wire.size() - 2))) abort();
  }
  void on_body(std::string_view data) override { body += data.size(); }
  void on_message_complete() override {
    if (length_framed && body != expected_body) abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  static const size_t kSteps[] = {0, 1, 2, 3, 7, 16, 64, 1000};
  const size_t step = kSteps[(mode >> 1) & 7];
  http1::ParserLimits limits;
  if (mode & 0x10) {
    limits.max_header_bytes = 1024;
    limits.max_headers = 8;
  }
  proxy::Router router(fuzz_config());
  Sink sink;
  sink.router = &router;
  const bool response = mode & 1;
  http1::Parser parser(response ? http1::Parser::Kind::kResponse : http1::Parser::Kind::kRequest, limits,
                       &sink);
  parser.set_head_request(mode & 0x20);
  const char* p = reinterpret_cast<const char*>(data);
  size_t off = 0;
  size_t stalls = 0;
  while (off < size) {
    const size_t n = step ? std::min(step, size - off) : size - off;
    const auto r = parser.feed(p + off, n);
    if (r.consumed > n) abort();
    off += r.consumed;
    if (r.status == http1::Parser::Status::kError) {
      if (parser.feed(p + off, size - off).status != http1::Parser::Status::kError) abort();
      return 0;
    }
    // A message may end without consuming anything (pause right at a
    // boundary); two stalls in a row would be a livelock.
    stalls = r.consumed == 0 ? stalls + 1 : 0;
    if (stalls > 2) abort();
  }
  if (response) parser.finish();
  return 0;
}
