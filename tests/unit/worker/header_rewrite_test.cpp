// Header rewrite (SPEC.md §4 steps 1-6) and response rewrite.
#include "worker/proxy/header_rewrite.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "worker/http1/writer.h"

namespace huginn::worker::proxy {
namespace {

using http1::Headers;

std::vector<std::string> values(const Headers& h, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& x : h)
    if (http1::iequals(x.name, name)) out.push_back(x.value);
  return out;
}

struct Fixture {
  config::Config cfg;
  config::Backend backend;
  config::Domain dom;
  config::Route rt;
  ConnectionFingerprints fps;
  RequestContext ctx;
  Fixture() {
    backend.address = "10.0.0.1:8080";
    dom.host = "example.com";
    rt.prefix = "/";
    rt.backend = backend.address;
    ctx.cfg = &cfg;
    ctx.domain = &dom;
    ctx.route = &rt;
    ctx.backend = &backend;
    ctx.fingerprints = &fps;
    ctx.peer_ip = "192.0.2.7";
    ctx.local_port = 8080;
    ctx.host = "example.com";
  }
};

TEST(HeaderRewrite, HopByHopRemoved) {
  Fixture f;
  Headers in = {{"Host", "example.com"},
                {"Connection", "keep-alive, X-Custom"},
                {"Keep-Alive", "300"},
                {"TE", "trailers"},
                {"Upgrade", "websocket"},
                {"Proxy-Connection", "keep-alive"},
                {"Proxy-Authorization", "x"},
                {"X-Custom", "gone"},
                {"Trailer", "x"},
                {"Content-Length", "5"},
                {"Transfer-Encoding", "chunked"},
                {"Accept", "*/*"}};
  Headers out = rewrite_request(in, f.ctx);
  for (const char* n : {"connection", "keep-alive", "te", "upgrade", "proxy-connection",
                        "proxy-authorization", "x-custom", "trailer", "content-length", "transfer-encoding"})
    EXPECT_TRUE(values(out, n).empty()) << n;
  EXPECT_EQ(values(out, "accept"), std::vector<std::string>{"*/*"});
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front().name, "Host");
}

TEST(HeaderRewrite, ConnectionTokensKeepOnlyNamesNotDroppedAnyway) {
  // The common `Connection: keep-alive` gives no token (and no allocation);
  // a name that would otherwise be forwarded is kept, lowercased, as are
  // tokens that name no field at all (`close`): a field named so is hop-by-hop.
  EXPECT_TRUE(connection_tokens({{"Connection", "keep-alive"}}).empty());
  EXPECT_TRUE(connection_tokens({{"connection", " Keep-Alive , TE,upgrade, Proxy-Foo"}}).empty());
  EXPECT_EQ(connection_tokens({{"Connection", "keep-alive, X-Custom"}, {"Connection", "close"}}),
            (std::vector<std::string>{"x-custom", "close"}));
  const auto tokens = connection_tokens({{"Connection", "Keep-Alive, X-Custom"}});
  EXPECT_TRUE(is_hop_by_hop("keep-alive", tokens));
  EXPECT_TRUE(is_hop_by_hop("X-CUSTOM", tokens));
  EXPECT_TRUE(is_hop_by_hop("Proxy-Anything", tokens));
  EXPECT_FALSE(is_hop_by_hop("Accept", tokens));
}

TEST(HeaderRewrite, HostPolicy) {
  Fixture f;
  Headers in = {{"Host", "Example.com:8080"}};
  EXPECT_EQ(values(rewrite_request(in, f.ctx), "host"), std::vector<std::string>{"10.0.0.1:8080"});
  f.cfg.preserve_host = true;
  EXPECT_EQ(values(rewrite_request(in, f.ctx), "host"), std::vector<std::string>{"Example.com:8080"});
  // Without a client Host (HTTP/1.0) the backend address is used.
  EXPECT_EQ(values(rewrite_request({}, f.ctx), "host"), std::vector<std::string>{"10.0.0.1:8080"});
}

TEST(HeaderRewrite, XForwardedFor) {
  struct Case {
    Headers in;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{}, "192.0.2.7"},
      {{{"X-Forwarded-For", "203.0.113.1"}}, "203.0.113.1, 192.0.2.7"},
      {{{"X-Forwarded-For", "203.0.113.1, 2001:db8::1"}}, "203.0.113.1, 2001:db8::1, 192.0.2.7"},
      {{{"X-Forwarded-For", "203.0.113.1"}, {"x-forwarded-for", "198.51.100.2"}},
       "203.0.113.1, 198.51.100.2, 192.0.2.7"},
      {{{"X-Forwarded-For", "not-an-ip"}}, "192.0.2.7"},
      {{{"X-Forwarded-For", "1.2.3.4, "}}, "192.0.2.7"},
      {{{"X-Forwarded-For", ""}}, "192.0.2.7"},
      {{{"X-Forwarded-For", "1.2.3.4,,5.6.7.8"}}, "192.0.2.7"},
      {{{"X-Forwarded-For", "[::1]"}}, "192.0.2.7"},
  };
  for (const auto& c : cases) {
    Fixture f;
    Headers out = rewrite_request(c.in, f.ctx);
    EXPECT_EQ(values(out, "x-forwarded-for"), std::vector<std::string>{c.want});
  }
}

TEST(HeaderRewrite, ForwardedProtoHostPortReplaced) {
  Fixture f;
  Headers in = {{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "evil"}, {"X-Forwarded-Port", "1"}};
  Headers out = rewrite_request(in, f.ctx);
  EXPECT_EQ(values(out, "x-forwarded-proto"), std::vector<std::string>{"http"});
  EXPECT_EQ(values(out, "x-forwarded-host"), std::vector<std::string>{"example.com"});
  EXPECT_EQ(values(out, "x-forwarded-port"), std::vector<std::string>{"8080"});
  f.ctx.host = "";
  EXPECT_TRUE(values(rewrite_request(in, f.ctx), "x-forwarded-host").empty());
}

TEST(HeaderRewrite, SpoofedFingerprintsStrippedAndReported) {
  Fixture f;
  Headers in = {{"X-Huginn-Net-Tcp", "fake"},
                {"x-huginn-net-ja4", "fake"},
                {"x-huginn-net-ja4", "again"},
                {"X-Fingerprint-Spoofing-Detected", "lie"},
                {"Accept", "x"}};
  Headers out = rewrite_request(in, f.ctx);
  EXPECT_TRUE(values(out, "x-huginn-net-tcp").empty());
  EXPECT_TRUE(values(out, "x-huginn-net-ja4").empty());
  EXPECT_EQ(values(out, "x-fingerprint-spoofing-detected"),
            std::vector<std::string>{"x-huginn-net-ja4,x-huginn-net-tcp,x-fingerprint-spoofing-detected"});
  // Nothing sent: no report.
  EXPECT_TRUE(values(rewrite_request({{"Accept", "x"}}, f.ctx), "x-fingerprint-spoofing-detected").empty());
}

TEST(ConnectionFingerprints, ValuesAreSetReplacedAndClearedIndependently) {
  using K = ConnectionFingerprints;
  K f;
  for (uint8_t k = 0; k < K::kKinds; ++k) EXPECT_FALSE(f.has(static_cast<K::Kind>(k)));
  f.set(K::kTcp, "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0");
  f.set(K::kJa4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
  f.set(K::kJa4Or, std::string(700, 'r'));
  f.set(K::kAkamai, "1:65536|15663105|0|m,a,s,p");
  EXPECT_EQ(f.get(K::kTcp), "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0");
  EXPECT_EQ(f.get(K::kJa4), "t13d1516h2_8daaf6152771_e5627efa2ab1");
  EXPECT_EQ(f.get(K::kJa4Or), std::string(700, 'r'));
  EXPECT_EQ(f.get(K::kAkamai), "1:65536|15663105|0|m,a,s,p");
  EXPECT_FALSE(f.get(K::kJa4R).has_value());
  // Replacing one value (shorter, then longer) leaves the others intact.
  f.set(K::kJa4, "x");
  f.set(K::kTcp, std::string(300, 't'));
  EXPECT_EQ(f.get(K::kJa4), "x");
  EXPECT_EQ(f.get(K::kTcp), std::string(300, 't'));
  EXPECT_EQ(f.get(K::kJa4Or), std::string(700, 'r'));
  EXPECT_EQ(f.get(K::kAkamai), "1:65536|15663105|0|m,a,s,p");
  // Empty clears; a value longer than 65,535 bytes is not stored.
  f.set(K::kAkamai, "");
  EXPECT_FALSE(f.has(K::kAkamai));
  f.set(K::kJa4O, std::string(70000, 'o'));
  EXPECT_FALSE(f.has(K::kJa4O));
  EXPECT_EQ(f.get(K::kJa4Or), std::string(700, 'r'));
  // The totals may not pass 65,535 bytes either: the old values stay.
  f.set(K::kJa4R, std::string(65000, 'a'));
  EXPECT_FALSE(f.has(K::kJa4R));
  EXPECT_EQ(f.get(K::kJa4), "x");
  const K copy = f;
  EXPECT_EQ(copy.get(K::kTcp), std::string(300, 't'));
}

TEST(ConnectionFingerprints, EqualValueSetsAreSharedAndFreedWithTheirLastConnection) {
  using K = ConnectionFingerprints;
  const size_t before = K::interned();
  const std::string ja4r(400, 'r');
  {
    std::vector<K> conns(100);
    for (auto& c : conns) {
      c.set(K::kTcp, "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0");
      c.set({{K::kJa4, "t13d1516h2_8daaf6152771_e5627efa2ab1"}, {K::kJa4R, ja4r}});
    }
    // One set for the 100 connections (the TCP-only step was shared, then freed).
    EXPECT_EQ(K::interned(), before + 1);
    for (const auto& c : conns) {
      EXPECT_EQ(c.get(K::kJa4R), ja4r);
      EXPECT_EQ(c.get(K::kJa4)->data(), conns[0].get(K::kJa4)->data());  // the same bytes
    }
    // A connection whose values change gets its own set; the others keep theirs.
    conns[7].set(K::kAkamai, "1:65536|15663105|0|m,a,s,p");
    EXPECT_EQ(K::interned(), before + 2);
    EXPECT_FALSE(conns[6].has(K::kAkamai));
    EXPECT_EQ(conns[7].get(K::kJa4R), ja4r);
    // Equal text split differently is not the same set.
    K a, b;
    a.set({{K::kJa4, "ab"}, {K::kJa4O, "c"}});
    b.set({{K::kJa4, "a"}, {K::kJa4O, "bc"}});
    EXPECT_EQ(a.get(K::kJa4), "ab");
    EXPECT_EQ(b.get(K::kJa4), "a");
    EXPECT_EQ(K::interned(), before + 4);
    // Copies and moves share; clearing every value drops the reference.
    K copy = conns[7];
    K moved = std::move(copy);
    EXPECT_EQ(moved.get(K::kAkamai), "1:65536|15663105|0|m,a,s,p");
    conns[7] = K();
    EXPECT_EQ(K::interned(), before + 4);
    moved.set({{K::kAkamai, ""}, {K::kJa4, ""}, {K::kJa4R, ""}, {K::kTcp, ""}});
    EXPECT_EQ(K::interned(), before + 3);
    // A value set from the connection's own set (a view into it).
    a.set(K::kJa4R, *a.get(K::kJa4));
    EXPECT_EQ(a.get(K::kJa4R), "ab");
  }
  EXPECT_EQ(K::interned(), before);
}

TEST(HeaderRewrite, RenamedFingerprintHeadersAndInjection) {
  Fixture f;
  f.cfg.fingerprint.headers.tcp = "x-p0f";
  const std::string tcp = "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0";
  f.fps.set(ConnectionFingerprints::kTcp, tcp);
  f.fps.set(ConnectionFingerprints::kJa4, "");  // an empty value is absent: never injected
  EXPECT_FALSE(f.fps.has(ConnectionFingerprints::kJa4));
  Headers out = rewrite_request({{"X-P0F", "fake"}}, f.ctx);
  EXPECT_EQ(values(out, "x-p0f"), std::vector<std::string>{tcp});
  EXPECT_EQ(values(out, "x-fingerprint-spoofing-detected"), std::vector<std::string>{"x-p0f"});
  EXPECT_TRUE(values(out, "x-huginn-net-ja4").empty());
  // fingerprinting = false on the route: stripped, not injected.
  f.rt.fingerprinting = false;
  out = rewrite_request({{"X-P0F", "fake"}}, f.ctx);
  EXPECT_TRUE(values(out, "x-p0f").empty());
  EXPECT_EQ(values(out, "x-fingerprint-spoofing-detected"), std::vector<std::string>{"x-p0f"});
  // Domain gate applies when the route does not say.
  f.rt.fingerprinting.reset();
  f.dom.fingerprinting = false;
  EXPECT_TRUE(values(rewrite_request({}, f.ctx), "x-p0f").empty());
  f.rt.fingerprinting = true;
  EXPECT_EQ(values(rewrite_request({}, f.ctx), "x-p0f").size(), 1u);
}

TEST(HeaderRewrite, ConfiguredOpsGlobalDomainRouteRemoveThenAdd) {
  Fixture f;
  f.cfg.headers.request.add = {{"x-scope", "global"}, {"x-global", "1"}};
  f.dom.headers.request.remove = {"x-global"};
  f.dom.headers.request.add = {{"x-scope", "domain"}};
  f.rt.headers.request.remove = {"x-scope", "x-forwarded-for"};
  f.rt.headers.request.add = {{"x-scope", "route"}, {"x-route", "yes"}};
  Headers out = rewrite_request({{"X-Scope", "client"}}, f.ctx);
  EXPECT_EQ(values(out, "x-scope"), std::vector<std::string>{"route"});
  EXPECT_TRUE(values(out, "x-global").empty());
  EXPECT_EQ(values(out, "x-route"), std::vector<std::string>{"yes"});
  EXPECT_TRUE(values(out, "x-forwarded-for").empty());  // config may remove injected headers
}

// The list and the references as one list of fields, in the order the
// HTTP/1.1 writer puts them on the wire.
Headers joined(const Headers& listed, const http1::HeaderRefs& refs) {
  Headers all = listed;
  for (const auto& r : refs) all.push_back({std::string(r.name), std::string(r.value)});
  return all;
}

// The same fields with the same values, whatever their order.
void expect_same_fields(Headers a, Headers b) {
  const auto by_name = [](const http1::Header& x, const http1::Header& y) {
    return std::tie(x.name, x.value) < std::tie(y.name, y.value);
  };
  std::sort(a.begin(), a.end(), by_name);
  std::sort(b.begin(), b.end(), by_name);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].value, b[i].value);
  }
}

const http1::HeaderRef* ref_named(const http1::HeaderRefs& refs, std::string_view name) {
  for (const auto& r : refs)
    if (http1::iequals(r.name, name)) return &r;
  return nullptr;
}

// With `refs` the injected fingerprint fields are referenced, not copied: the
// same fields and values as the copying path, the bytes those of the
// connection's set. A manipulation that names one keeps them in the list.
TEST(HeaderRewrite, FingerprintFieldsByReferenceUnlessTheManipulationNamesOne) {
  Fixture f;
  using K = ConnectionFingerprints;
  f.fps.set({{K::kJa4, "t13d1516h2_8daaf6152771_e5627efa2ab1"},
             {K::kAkamai, "1:65536|15663105|0|m,a,s,p"},
             {K::kTcp, "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0"}});
  const std::string_view fp_names[] = {"x-huginn-net-ja4", "x-huginn-net-akamai", "x-huginn-net-tcp"};
  const auto fp_refs = [&](const http1::HeaderRefs& refs) {
    size_t n = 0;
    for (auto name : fp_names) n += ref_named(refs, name) != nullptr;
    return n;
  };
  const Headers copied = rewrite_request({{"Accept", "*/*"}, {"X-Huginn-Net-Ja4", "fake"}}, f.ctx);
  http1::HeaderRefs refs;
  const Headers listed = rewrite_request({{"Accept", "*/*"}, {"X-Huginn-Net-Ja4", "fake"}}, f.ctx, &refs);
  ASSERT_EQ(fp_refs(refs), 3u);
  for (auto name : fp_names) EXPECT_TRUE(values(listed, name).empty()) << name;
  // The same fields as the copying path; the list keeps its order (Host first).
  expect_same_fields(copied, joined(listed, refs));
  EXPECT_EQ(listed.front().name, "Host");
  EXPECT_EQ(values(listed, "x-fingerprint-spoofing-detected"), std::vector<std::string>{"x-huginn-net-ja4"});
  for (auto name : fp_names) {
    // The value is the interned one (no copy); the name is the configured one.
    const auto* r = ref_named(refs, name);
    ASSERT_NE(r, nullptr) << name;
    const auto kind = name == fp_names[0] ? K::kJa4 : name == fp_names[1] ? K::kAkamai : K::kTcp;
    EXPECT_EQ(r->value.data(), f.fps.get(kind)->data()) << name;
  }
  // A remove or an add naming a fingerprint field (any scope, any case): the
  // fields are listed, and the manipulation applies to them.
  f.rt.headers.request.remove = {"x-huginn-net-ja4"};
  refs.clear();
  Headers out = rewrite_request({}, f.ctx, &refs);
  EXPECT_EQ(fp_refs(refs), 0u);
  EXPECT_TRUE(values(out, "x-huginn-net-ja4").empty());
  EXPECT_EQ(values(out, "x-huginn-net-tcp").size(), 1u);
  f.rt.headers.request.remove.clear();
  f.cfg.headers.request.add = {{"x-huginn-net-akamai", "overridden"}};
  refs.clear();
  out = rewrite_request({}, f.ctx, &refs);
  EXPECT_EQ(fp_refs(refs), 0u);
  EXPECT_EQ(values(out, "x-huginn-net-akamai"), std::vector<std::string>{"overridden"});
  // Other names in the manipulation do not matter.
  f.cfg.headers.request.add = {{"x-other", "1"}};
  refs.clear();
  out = rewrite_request({}, f.ctx, &refs);
  EXPECT_EQ(fp_refs(refs), 3u);
  // No injection where the scope disables fingerprinting.
  refs.clear();
  f.rt.fingerprinting = false;
  out = rewrite_request({}, f.ctx, &refs);
  EXPECT_EQ(fp_refs(refs), 0u);
  EXPECT_TRUE(values(out, "x-huginn-net-tcp").empty());
}

// X-Forwarded-* with `refs`: referenced, the values those of the request
// context (the port number kept in `refs`), the same fields as the copying
// path. A client's X-Forwarded-For list makes a new value: listed. A
// manipulation naming any of the four keeps all four in the list.
TEST(HeaderRewrite, ForwardingFieldsByReferenceUnlessTheManipulationNamesOne) {
  Fixture f;
  f.ctx.tls = true;
  f.ctx.local_port = 8443;
  const std::string peer = "2001:db8::42";  // longer than a short string's buffer
  const std::string host = "a-rather-long-host-name.example.com";
  f.ctx.peer_ip = peer;
  f.ctx.host = host;
  const Headers in = {{"Host", "example.com"}, {"X-Forwarded-Proto", "gopher"}, {"Accept", "*/*"}};
  const Headers copied = rewrite_request(in, f.ctx);
  http1::HeaderRefs refs;
  const Headers listed = rewrite_request(in, f.ctx, &refs);
  expect_same_fields(copied, joined(listed, refs));
  for (auto name : {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port"})
    EXPECT_TRUE(values(listed, name).empty()) << name;
  ASSERT_EQ(refs.size(), 4u);
  EXPECT_EQ(ref_named(refs, "x-forwarded-for")->value.data(), peer.data());
  EXPECT_EQ(ref_named(refs, "x-forwarded-host")->value.data(), host.data());
  EXPECT_EQ(ref_named(refs, "x-forwarded-proto")->value, "https");
  EXPECT_EQ(ref_named(refs, "x-forwarded-port")->value, "8443");
  // The port's bytes are the holder's own, not the caller's stack.
  const char* port_bytes = ref_named(refs, "x-forwarded-port")->value.data();
  EXPECT_TRUE(port_bytes >= reinterpret_cast<const char*>(&refs) &&
              port_bytes < reinterpret_cast<const char*>(&refs) + sizeof refs);
  std::string head;
  http1::append_request_head(head, "GET", "/", listed, refs);
  EXPECT_NE(head.find("\r\nX-Forwarded-Port: 8443\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nX-Forwarded-For: 2001:db8::42\r\n"), std::string::npos) << head;

  // Without a routing host there is no X-Forwarded-Host.
  f.ctx.host = {};
  refs.clear();
  expect_same_fields(rewrite_request(in, f.ctx), joined(rewrite_request(in, f.ctx, &refs), refs));
  EXPECT_EQ(ref_named(refs, "x-forwarded-host"), nullptr);
  f.ctx.host = host;

  // A client's list: the peer is appended, in the list; the rest referenced.
  Headers with_xff = in;
  with_xff.push_back({"X-Forwarded-For", "198.51.100.1"});
  refs.clear();
  const Headers listed_xff = rewrite_request(with_xff, f.ctx, &refs);
  EXPECT_EQ(values(listed_xff, "x-forwarded-for"), std::vector<std::string>{"198.51.100.1, 2001:db8::42"});
  EXPECT_EQ(ref_named(refs, "x-forwarded-for"), nullptr);
  EXPECT_EQ(refs.size(), 3u);
  expect_same_fields(rewrite_request(with_xff, f.ctx), joined(listed_xff, refs));

  // The manipulation names one of them (any scope, any case): all four listed,
  // and the manipulation applies.
  f.dom.headers.request.add = {{"X-Forwarded-Proto", "http"}};
  refs.clear();
  Headers out = rewrite_request(in, f.ctx, &refs);
  EXPECT_TRUE(refs.empty());
  EXPECT_EQ(values(out, "x-forwarded-proto"), std::vector<std::string>{"http"});
  EXPECT_EQ(values(out, "x-forwarded-port"), std::vector<std::string>{"8443"});
  EXPECT_EQ(values(out, "x-forwarded-for"), std::vector<std::string>{peer});
  f.dom.headers.request.add.clear();
  f.cfg.headers.request.remove = {"x-forwarded-host"};
  refs.clear();
  out = rewrite_request(in, f.ctx, &refs);
  EXPECT_TRUE(refs.empty());
  EXPECT_TRUE(values(out, "x-forwarded-host").empty());
  EXPECT_EQ(values(out, "x-forwarded-port"), std::vector<std::string>{"8443"});
}

// Fingerprints and forwarding fields together fit the holder; when it is
// already full the fields are listed instead, none lost.
TEST(HeaderRewrite, ReferencedFieldsFallBackToTheListWhenTheHolderIsFull) {
  Fixture f;
  using K = ConnectionFingerprints;
  f.fps.set({{K::kJa4, "a"},
             {K::kJa4R, "b"},
             {K::kJa4O, "c"},
             {K::kJa4Or, "d"},
             {K::kAkamai, "e"},
             {K::kTcp, "f"}});
  http1::HeaderRefs refs;
  const Headers all_refs = rewrite_request({}, f.ctx, &refs);
  EXPECT_EQ(refs.size(), 10u);
  EXPECT_EQ(all_refs.size(), 1u);  // Host
  // A holder with two free places: the first two fields referenced, the rest listed.
  refs.clear();
  for (size_t i = 0; i + 2 < http1::HeaderRefs::kCapacity; ++i) ASSERT_TRUE(refs.push("x-pre", "v"));
  const Headers listed = rewrite_request({}, f.ctx, &refs);
  EXPECT_EQ(refs.size(), http1::HeaderRefs::kCapacity);
  Headers rest;
  for (const auto& r : refs)
    if (r.name != "x-pre") rest.push_back({std::string(r.name), std::string(r.value)});
  EXPECT_EQ(rest.size(), 2u);
  rest.insert(rest.end(), listed.begin(), listed.end());
  expect_same_fields(rewrite_request({}, f.ctx), rest);
}

TEST(HeaderRewrite, RequestHeadWritesReferencedFieldsAfterTheList) {
  http1::HeaderRefs refs;
  EXPECT_TRUE(refs.push("x-a", "1"));
  EXPECT_TRUE(refs.push("x-b", std::string_view("two")));
  std::string head;
  http1::append_request_head(head, "GET", "/p", Headers{{"Host", "h"}}, refs);
  EXPECT_EQ(head, "GET /p HTTP/1.1\r\nHost: h\r\nx-a: 1\r\nx-b: two\r\n\r\n");
  // Full: the caller lists the rest.
  for (size_t i = refs.size(); i < http1::HeaderRefs::kCapacity; ++i) EXPECT_TRUE(refs.push("x", "y"));
  EXPECT_FALSE(refs.push("x-over", "z"));
  EXPECT_EQ(refs.size(), http1::HeaderRefs::kCapacity);
}

// push_owned copies the value into the holder, while its few bytes last.
TEST(HeaderRewrite, HeaderRefsKeepShortValuesOfTheirOwn) {
  http1::HeaderRefs refs;
  std::string value = "8443";
  ASSERT_TRUE(refs.push_owned("x-port", value));
  value = "9999";  // the caller's bytes change; the kept copy does not
  EXPECT_EQ(refs.begin()->value, "8443");
  const std::string too_long(http1::HeaderRefs::kOwnedBytes, 'x');
  EXPECT_FALSE(refs.push_owned("x-long", too_long));  // 4 bytes left
  EXPECT_EQ(refs.size(), 1u);
  EXPECT_TRUE(refs.push_owned("x-rest", too_long.substr(4)));
  EXPECT_FALSE(refs.push_owned("x-empty-room", "1"));
  EXPECT_TRUE(refs.push_owned("x-empty", ""));
  refs.clear();
  EXPECT_TRUE(refs.empty());
  EXPECT_TRUE(refs.push_owned("x-again", too_long));
  EXPECT_EQ(refs.begin()->value, too_long);
}

TEST(HeaderRewrite, ResponseRewriteAndSecurityHeaders) {
  Fixture f;
  f.cfg.security.headers.custom = {{"x-frame-options", "DENY"}};
  f.cfg.security.headers.csp.enabled = true;
  f.cfg.security.headers.hsts.enabled = true;  // TLS only: absent here
  f.cfg.headers.response.remove = {"server"};
  f.rt.headers.response.add = {{"x-route", "r"}};
  Headers in = {{"Server", "backend"},
                {"Connection", "close, X-Hop"},
                {"X-Hop", "1"},
                {"Content-Length", "3"},
                {"Transfer-Encoding", "chunked"},
                {"X-Keep", "k"},
                {"X-Frame-Options", "SAMEORIGIN"}};
  Headers out = rewrite_response(in, f.ctx);
  EXPECT_TRUE(values(out, "server").empty());
  EXPECT_TRUE(values(out, "connection").empty());
  EXPECT_TRUE(values(out, "x-hop").empty());
  EXPECT_TRUE(values(out, "content-length").empty());
  EXPECT_TRUE(values(out, "transfer-encoding").empty());
  EXPECT_EQ(values(out, "x-keep"), std::vector<std::string>{"k"});
  EXPECT_EQ(values(out, "x-frame-options"), std::vector<std::string>{"DENY"});
  EXPECT_EQ(values(out, "content-security-policy"), std::vector<std::string>{"default-src 'self'"});
  EXPECT_TRUE(values(out, "strict-transport-security").empty());
  EXPECT_EQ(values(out, "x-route"), std::vector<std::string>{"r"});
  f.ctx.tls = true;
  EXPECT_EQ(values(rewrite_response({}, f.ctx), "strict-transport-security"),
            std::vector<std::string>{"max-age=31536000"});
  // A route-level security block replaces the global one as a whole.
  f.rt.security.headers = config::SecurityHeaders{};
  EXPECT_TRUE(values(rewrite_response({}, f.ctx), "x-frame-options").empty());
}

TEST(HeaderRewrite, WellFormedXff) {
  EXPECT_TRUE(is_well_formed_xff("1.2.3.4"));
  EXPECT_TRUE(is_well_formed_xff(" 1.2.3.4 ,\t::1"));
  EXPECT_FALSE(is_well_formed_xff("1.2.3"));
  EXPECT_FALSE(is_well_formed_xff("unknown"));
  EXPECT_FALSE(is_well_formed_xff(" "));
  EXPECT_FALSE(is_well_formed_xff(std::string(100, '1')));
}

}  // namespace
}  // namespace huginn::worker::proxy
