// End to end through a real Server on its own event loop thread, real
// (blocking) backends and raw-socket clients.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "test_support.h"

namespace huginn::worker::test {
namespace {

std::string get(const std::string& target, const std::string& extra_headers = {}) {
  return "GET " + target + " HTTP/1.1\r\nHost: app.test\r\n" + extra_headers + "\r\n";
}

BackendResponse body_response(std::string body) {
  BackendResponse r;
  r.body = std::move(body);
  return r;
}

void expect_json_error(const ClientResponse& r, int status, const std::string& reason) {
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.body, "{\"error\":\"" + reason + "\"}");
}

TEST(ProxyE2E, GetIsForwardedWithForwardingHeaders) {
  Backend be;
  ProxyThread px(load_config(simple_config(be.address())));
  auto r = roundtrip(px.port(), get("/hello?x=1",
                                    "X-Forwarded-Proto: https\r\nConnection: keep-alive, X-Hop\r\n"
                                    "X-Hop: 1\r\nX-Forwarded-Port: 1\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok /hello?x=1");
  ASSERT_EQ(be.request_count(), 1u);
  const auto req = be.requests()[0];
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/hello?x=1");
  EXPECT_EQ(req.header("host"), be.address());  // preserve_host = false
  EXPECT_EQ(req.header("x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(req.header("x-forwarded-proto"), "http");
  EXPECT_EQ(req.header("x-forwarded-host"), "app.test");
  EXPECT_EQ(req.header("x-forwarded-port"), std::to_string(px.port()));
  EXPECT_EQ(req.header_count("x-forwarded-port"), 1u);
  EXPECT_EQ(req.header_count("x-hop"), 0u);
  EXPECT_EQ(req.header_count("connection"), 0u);
}

// The Server sets TCP_NODELAY on its listeners, not per connection: accepted
// sockets inherit it (supervisor ListenersTest checks the inheritance).
TEST(ProxyE2E, ListenersGetTcpNodelayForTheirAcceptedSockets) {
  Backend be;
  uint16_t port = 0;
  const int lfd = listen_loopback(&port);
  ASSERT_GE(lfd, 0);
  sys::UniqueFd listener(lfd);
  auto nodelay = [&] {
    int v = -1;
    socklen_t len = sizeof v;
    EXPECT_EQ(getsockopt(listener.get(), IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    return v;
  };
  ASSERT_EQ(nodelay(), 0) << "a fresh listener has Nagle on";
  ProxyThread px(load_config(simple_config(be.address())), listener.get(), nullptr, 0);
  EXPECT_EQ(nodelay(), 1);
  auto r = roundtrip(port, get("/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(ProxyE2E, XForwardedForAppendsOrReplaces) {
  Backend be;
  ProxyThread px(load_config(simple_config(be.address())));
  ASSERT_TRUE(roundtrip(px.port(), get("/", "X-Forwarded-For: 203.0.113.9\r\n")));
  ASSERT_TRUE(roundtrip(px.port(), get("/", "X-Forwarded-For: <script>\r\n")));
  ASSERT_TRUE(
      roundtrip(px.port(), get("/", "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 2001:db8::2\r\n")));
  const auto reqs = be.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].header("x-forwarded-for"), "203.0.113.9, 127.0.0.1");
  EXPECT_EQ(reqs[1].header("x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(reqs[2].header("x-forwarded-for"), "203.0.113.9, 2001:db8::2, 127.0.0.1");
  EXPECT_EQ(reqs[2].header_count("x-forwarded-for"), 1u);
}

TEST(ProxyE2E, PreserveHostAndSpoofedFingerprints) {
  Backend be;
  ProxyThread px(load_config("preserve_host = true\n" + simple_config(be.address())));
  auto r = roundtrip(px.port(), "GET / HTTP/1.1\r\nHost: App.Test:8080\r\nx-huginn-net-tcp: fake\r\n\r\n");
  ASSERT_TRUE(r);
  const auto req = be.requests().at(0);
  EXPECT_EQ(req.header("host"), "App.Test:8080");
  EXPECT_EQ(req.header("x-forwarded-host"), "app.test");
  EXPECT_EQ(req.header_count("x-huginn-net-tcp"), 0u);
  EXPECT_EQ(req.header("x-fingerprint-spoofing-detected"), "x-huginn-net-tcp");
}

TEST(ProxyE2E, ConfiguredHeaderManipulation) {
  Backend be([](const BackendRequest&) {
    BackendResponse r;
    r.headers = {{"Server", "backend"}, {"X-Backend", "1"}};
    r.body = "b";
    return r;
  });
  const std::string extra =
      "[headers.request]\nadd = [{name = \"x-global\", value = \"g\"}]\nremove = [\"user-agent\"]\n"
      "[headers.response]\nremove = [\"server\"]\nadd = [{name = \"x-proxy\", value = \"huginn\"}]\n"
      "[security.headers]\ncustom = [{name = \"x-frame-options\", value = \"DENY\"}]\n";
  ProxyThread px(load_config(simple_config(be.address(), extra)));
  auto r = roundtrip(px.port(), get("/", "User-Agent: test\r\n"));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_header("server"));
  EXPECT_EQ(r->header("x-backend"), "1");
  EXPECT_EQ(r->header("x-proxy"), "huginn");
  EXPECT_EQ(r->header("x-frame-options"), "DENY");
  const auto req = be.requests().at(0);
  EXPECT_EQ(req.header("x-global"), "g");
  EXPECT_EQ(req.header_count("user-agent"), 0u);
  // Proxy-generated responses carry the security headers too.
  auto nf = roundtrip(px.port(), "GET / HTTP/1.1\r\nHost: [bad\r\n\r\n");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 400);
  EXPECT_EQ(nf->header("x-frame-options"), "DENY");
}

TEST(ProxyE2E, LargeContentLengthBodiesStreamBothWays) {
  Backend be([](const BackendRequest& req) {
    BackendResponse r;
    r.body = req.body;  // echo
    return r;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  const std::string body = make_body(10 << 20, 7);
  Client c(px.port());
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-length"), std::to_string(body.size()));
  EXPECT_TRUE(r->body == body) << "response body differs";
  const auto reqs = be.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_FALSE(reqs[0].chunked);
  EXPECT_TRUE(reqs[0].body == body) << "request body differs";
}

TEST(ProxyE2E, LargeChunkedBodiesStreamBothWays) {
  Backend be([](const BackendRequest& req) {
    BackendResponse r;
    r.body = req.body;
    r.framing = BackendResponse::Framing::kChunked;
    r.chunk_size = 10000;
    return r;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  const std::string body = make_body(10 << 20, 11);
  std::string req = "POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t off = 0; off < body.size(); off += 65000) {
    const size_t n = std::min<size_t>(65000, body.size() - off);
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%zx\r\n", n);
    req += hdr;
    req.append(body, off, n);
    req += "\r\n";
  }
  req += "0\r\n\r\n";
  Client c(px.port());
  std::thread writer([&] { c.send(req); });
  auto r = c.read_response();
  writer.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->chunked);
  EXPECT_TRUE(r->body == body) << "response body differs";
  const auto reqs = be.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(reqs[0].chunked);
  EXPECT_TRUE(reqs[0].body == body) << "request body differs";
}

// The proxy holds a bounded amount of a body the backend is not reading:
// with small kernel buffers on the client and backend sides, a client cannot
// push a whole 10 MiB body into the proxy while the backend waits.
TEST(ProxyE2E, UploadIsBoundedWhileTheBackendDoesNotRead) {
  Backend be([](const BackendRequest& req) {
    BackendResponse r;
    r.body = std::to_string(req.body.size());
    return r;
  });
  be.shrink_buffers();
  be.hold_bodies(true);
  ProxyThread px(load_config(simple_config(be.address())), true);
  const std::string body = make_body(10 << 20, 3);
  const std::string req =
      "POST /hold HTTP/1.1\r\nHost: app.test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
      body;
  Client c(px.port());
  shrink_socket_buffers(c.fd());
  const int fl = fcntl(c.fd(), F_GETFL);
  fcntl(c.fd(), F_SETFL, fl | O_NONBLOCK);
  size_t sent = 0;
  int idle_polls = 0;
  while (sent < req.size() && idle_polls < 10) {  // stop after ~0.5 s without progress
    const ssize_t n = ::send(c.fd(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      idle_polls = 0;
      continue;
    }
    pollfd p{c.fd(), POLLOUT, 0};
    if (::poll(&p, 1, 50) == 0) ++idle_polls;
  }
  RecordProperty("accepted_while_held", std::to_string(sent));
  EXPECT_EQ(be.heads_seen(), 1u);
  // Kernel buffers (the proxy-to-backend send buffer autotunes up to a few
  // MiB) plus the proxy's own bounded buffers stay well below the body size.
  EXPECT_LT(sent, body.size() * 3 / 4) << "the proxy accepted most of a body nobody was reading";
  be.hold_bodies(false);
  fcntl(c.fd(), F_SETFL, fl);
  ASSERT_TRUE(c.send(req.substr(sent)));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, std::to_string(body.size()));
  EXPECT_TRUE(be.requests().at(0).body == body);
}

TEST(ProxyE2E, CloseDelimitedBackendResponseIsChunkedToHttp11Clients) {
  Backend be([](const BackendRequest&) {
    BackendResponse r;
    r.body = make_body(300000, 5);
    r.framing = BackendResponse::Framing::kClose;
    return r;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  Client c(px.port());
  ASSERT_TRUE(c.send(get("/a")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->chunked);
  EXPECT_TRUE(r->body == make_body(300000, 5));
  // The client connection stays usable; the backend connection was not pooled.
  ASSERT_TRUE(c.send(get("/b")));
  ASSERT_TRUE(c.read_response());
  EXPECT_EQ(be.connections(), 2u);
}

TEST(ProxyE2E, KeepAliveReusesBackendConnections) {
  Backend be;
  ProxyThread px(load_config(simple_config(be.address())));
  Client c(px.port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.send(get("/k" + std::to_string(i))));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "ok /k" + std::to_string(i));
  }
  // Separate client connections share the pool as well.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(roundtrip(px.port(), get("/n")));
  EXPECT_EQ(be.request_count(), 8u);
  EXPECT_LT(be.connections(), 8u);
  EXPECT_EQ(be.connections(), 1u);
}

// The backend closes each keep-alive connection right after answering: a
// pooled connection may be dead when reused, and the proxy must still answer.
TEST(ProxyE2E, BackendClosingPooledConnectionsIsNotAnError) {
  Backend be([](const BackendRequest& r) {
    BackendResponse resp;
    resp.body = "h" + r.target;
    resp.hangup = true;
    return resp;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  Client c(px.port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.send(get("/" + std::to_string(i))));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200) << i;
    EXPECT_EQ(r->body, "h/" + std::to_string(i));
  }
  EXPECT_EQ(be.connections(), 5u);
}

TEST(ProxyE2E, HalfClosedClientStillGetsItsResponse) {
  Backend be([](const BackendRequest&) {
    BackendResponse r;
    r.body = "late";
    r.delay_ms = 50;
    return r;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  Client c(px.port());
  ASSERT_TRUE(c.send(get("/")));
  c.shutdown_write();
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "late");
  EXPECT_TRUE(c.wait_closed());
}

TEST(ProxyE2E, ForceNewConnectionPerRequest) {
  Backend be;
  ProxyThread px(load_config(simple_config(be.address(), {}, "force_new_connection = true\n")));
  Client c(px.port());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.send(get("/f")));
    ASSERT_TRUE(c.read_response());
  }
  EXPECT_EQ(be.request_count(), 4u);
  EXPECT_EQ(be.connections(), 4u);
  EXPECT_EQ(be.requests()[0].header("connection"), "close");
}

TEST(ProxyE2E, BackendPoolDisabled) {
  Backend be;
  ProxyThread px(load_config(simple_config(be.address(), "[backend_pool]\nenabled = false\n")));
  Client c(px.port());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.send(get("/p")));
    ASSERT_TRUE(c.read_response());
  }
  EXPECT_EQ(be.connections(), 4u);
}

TEST(ProxyE2E, RoundRobinAndReplacePath) {
  Backend a([](const BackendRequest& r) { return body_response("A" + r.target); });
  Backend b([](const BackendRequest& r) { return body_response("B" + r.target); });
  const std::string cfg =
      "[listen]\naddrs = [\"127.0.0.1:0\"]\n"
      "[[backends]]\naddress = \"" +
      a.address() +
      "\"\n"
      "[[backends]]\naddress = \"" +
      b.address() +
      "\"\n"
      "[[domains]]\nhost = \"app.test\"\n"
      "[[domains.routes]]\nprefix = \"/rr\"\nbackend = \"" +
      a.address() +
      "\"\n"
      "[[domains.routes]]\nprefix = \"/rr\"\nbackend = \"" +
      b.address() +
      "\"\n"
      "[[domains.routes]]\nprefix = \"/strip\"\nbackend = \"" +
      a.address() +
      "\"\n"
      "replace_path = \"\"\n";
  ProxyThread px(load_config(cfg));
  std::vector<std::string> bodies;
  for (int i = 0; i < 4; ++i) bodies.push_back(roundtrip(px.port(), get("/rr/x"))->body);
  EXPECT_EQ(bodies, (std::vector<std::string>{"A/rr/x", "B/rr/x", "A/rr/x", "B/rr/x"}));
  EXPECT_EQ(roundtrip(px.port(), get("/strip/users/1?q=2"))->body, "A/users/1?q=2");
  EXPECT_EQ(roundtrip(px.port(), get("//strip/../strip/a"))->body, "A/a");
  auto nf = roundtrip(px.port(), get("/other"));
  ASSERT_TRUE(nf);
  expect_json_error(*nf, 404, "no_matching_route");
  auto mis = roundtrip(px.port(), "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
  ASSERT_TRUE(mis);
  expect_json_error(*mis, 421, "misdirected_request");
  // Absolute-form authority wins over Host.
  EXPECT_EQ(
      roundtrip(px.port(), "GET http://APP.test./rr/y HTTP/1.1\r\nHost: other.test\r\n\r\n")->body.substr(1),
      "/rr/y");
}

TEST(ProxyE2E, LocalErrorsKeepTheConnectionForBodylessRequests) {
  Backend be;
  const std::string cfg = "[listen]\naddrs = [\"127.0.0.1:0\"]\n[[backends]]\naddress = \"" + be.address() +
                          "\"\n[[domains]]\nhost = \"app.test\"\n[[domains.routes]]\nprefix = \"/api\"\n"
                          "backend = \"" +
                          be.address() + "\"\n";
  ProxyThread px(load_config(cfg));
  Client c(px.port());
  ASSERT_TRUE(c.send(get("/nope")));
  auto r1 = c.read_response();
  ASSERT_TRUE(r1);
  expect_json_error(*r1, 404, "no_matching_route");
  EXPECT_FALSE(r1->has_header("connection"));
  ASSERT_TRUE(c.send(get("/api/x")));
  auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->body, "ok /api/x");
  // With a body that was not read, the connection closes after the error.
  ASSERT_TRUE(c.send("POST /nope HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n"));
  auto r3 = c.read_response();
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->status, 404);
  EXPECT_EQ(r3->header("connection"), "close");
  EXPECT_TRUE(c.wait_closed());
}

TEST(ProxyE2E, BackendDownIs502) {
  uint16_t port = 0;
  const int fd = listen_loopback(&port);
  ::close(fd);  // nothing listens there now
  ProxyThread px(load_config(simple_config("127.0.0.1:" + std::to_string(port))));
  Client c(px.port());
  ASSERT_TRUE(c.send(get("/")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  expect_json_error(*r, 502, "backend_error");
  // The client connection survives a backend failure.
  ASSERT_TRUE(c.send(get("/")));
  auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 502);
}

TEST(ProxyE2E, BackendResetOrDropBeforeResponseIs502) {
  Backend be([](const BackendRequest& r) {
    BackendResponse resp;
    resp.reset = r.target == "/reset";
    resp.drop = r.target == "/drop";
    return resp;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  for (const char* t : {"/reset", "/drop"}) {
    auto r = roundtrip(px.port(), get(t));
    ASSERT_TRUE(r) << t;
    expect_json_error(*r, 502, "backend_error");
  }
}

TEST(ProxyE2E, UpstreamResponseTimeoutIs504) {
  Backend be([](const BackendRequest&) {
    BackendResponse r;
    r.delay_ms = 2000;
    return r;
  });
  ProxyThread px(load_config(simple_config(be.address(), "[timeout]\nupstream_response_secs = 1\n")));
  auto r = roundtrip(px.port(), get("/slow"));
  ASSERT_TRUE(r);
  expect_json_error(*r, 504, "gateway_timeout");
}

TEST(ProxyE2E, UpstreamConnectTimeoutIs504) {
  // A listener whose accept queue is full: further SYNs go unanswered.
  uint16_t port = 0;
  const int lfd = listen_loopback(&port, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  std::vector<int> fillers;  // non-blocking connects that fill the queue
  for (int i = 0; i < 4; ++i) {
    const int f = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ::connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a);
    fillers.push_back(f);
  }
  ProxyThread px(load_config(
      simple_config("127.0.0.1:" + std::to_string(port), "[timeout]\nupstream_connect_ms = 300\n")));
  auto r = roundtrip(px.port(), get("/"));
  ASSERT_TRUE(r);
  expect_json_error(*r, 504, "gateway_timeout");
  for (int f : fillers) ::close(f);
  ::close(lfd);
}

TEST(ProxyE2E, PipelinedRequestsAnsweredInOrder) {
  Backend be([](const BackendRequest& r) {
    BackendResponse resp;
    resp.body = "r" + r.target;
    if (r.target == "/1") resp.delay_ms = 100;  // the first is the slowest
    return resp;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  Client c(px.port());
  ASSERT_TRUE(c.send(get("/1") + "POST /2 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc" +
                     get("/3") + get("/4")));
  for (const char* want : {"r/1", "r/2", "r/3", "r/4"}) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << want;
    EXPECT_EQ(r->body, want);
  }
  const auto reqs = be.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[1].body, "abc");
}

TEST(ProxyE2E, HeadAndHttp10) {
  Backend be([](const BackendRequest& r) {
    BackendResponse resp;
    resp.body = "0123456789";
    if (r.target == "/chunked") resp.framing = BackendResponse::Framing::kChunked;
    return resp;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  Client c(px.port());
  ASSERT_TRUE(c.send("HEAD / HTTP/1.1\r\nHost: app.test\r\n\r\n"));
  auto h = c.read_response(true);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->header("content-length"), "10");
  ASSERT_TRUE(c.send(get("/after-head")));
  auto g = c.read_response();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->body, "0123456789");
  // HTTP/1.0: a chunked backend response is delimited by closing.
  Client c10(px.port());
  ASSERT_TRUE(c10.send("GET /chunked HTTP/1.0\r\n\r\n"));
  auto r = c10.read_response();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->chunked);
  EXPECT_EQ(r->body, "0123456789");
  EXPECT_EQ(r->header("connection"), "close");
}

struct SmugglingCase {
  const char* name;
  std::string bytes;
};

TEST(ProxyE2E, SmugglingShapesGet400AndClose) {
  Backend be;
  ProxyThread px(load_config(simple_config(be.address())));
  const std::vector<SmugglingCase> cases = {
      {"cl+te",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"dup-cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"},
      {"bad-chunk",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nabcde\r\n0\r\n\r\n"},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"},
      {"bare-lf", "GET / HTTP/1.1\nHost: a\n\n"},
      {"bad-name", "GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n"},
      {"space-colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nabcde"},
      {"te-not-chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc"},
      {"te-chunked-not-last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"},
      {"no-host", "GET / HTTP/1.1\r\n\r\n"},
      {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
  };
  for (const auto& c : cases) {
    Client cl(px.port());
    ASSERT_TRUE(cl.send(c.bytes)) << c.name;
    auto r = cl.read_response();
    ASSERT_TRUE(r) << c.name;
    expect_json_error(*r, 400, "bad_request");
    EXPECT_EQ(r->header("connection"), "close") << c.name;
    EXPECT_TRUE(cl.wait_closed()) << c.name;
  }
  EXPECT_EQ(be.request_count(), 0u);
  // After a valid request on the same connection, a bad chunk still gets 400.
  Client cl(px.port());
  ASSERT_TRUE(cl.send(get("/ok")));
  ASSERT_TRUE(cl.read_response());
  ASSERT_TRUE(cl.send("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"));
  auto r = cl.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(cl.wait_closed());
}

TEST(ProxyE2E, HeaderLimitsGet431) {
  Backend be;
  ProxyThread px(
      load_config(simple_config(be.address(), "[limits]\nmax_header_bytes = 4096\nmax_headers = 10\n")));
  std::string many;
  for (int i = 0; i < 10; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  {
    Client c(px.port());
    ASSERT_TRUE(c.send(get("/", many)));  // Host + 10 = 11 fields
    auto r = c.read_response();
    ASSERT_TRUE(r);
    expect_json_error(*r, 431, "request_header_fields_too_large");
    EXPECT_TRUE(c.wait_closed());
  }
  {
    Client c(px.port());
    ASSERT_TRUE(c.send(get("/", "X-Big: " + std::string(5000, 'b') + "\r\n")));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    expect_json_error(*r, 431, "request_header_fields_too_large");
    EXPECT_TRUE(c.wait_closed());
  }
  {
    Client c(px.port());
    ASSERT_TRUE(c.send(get("/" + std::string(5000, 'p'))));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
  }
  // Nine extra fields (ten in all) are fine.
  std::string nine;
  for (int i = 0; i < 9; ++i) nine += "X-" + std::to_string(i) + ": v\r\n";
  auto ok = roundtrip(px.port(), get("/", nine));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(ProxyE2E, SlowHeaderAndIdleConnectionsAreClosed) {
  Backend be;
  ProxyThread px(
      load_config(simple_config(be.address(), "[timeout]\nrequest_header_ms = 200\nproxy_idle_ms = 200\n")));
  Client slow(px.port());
  ASSERT_TRUE(slow.send("GET / HTTP/1.1\r\nHost: a"));
  EXPECT_TRUE(slow.wait_closed());
  Client idle(px.port());
  ASSERT_TRUE(idle.send(get("/")));
  ASSERT_TRUE(idle.read_response());
  EXPECT_TRUE(idle.wait_closed());
  EXPECT_EQ(px.stats().active_connections, 0u);
}

TEST(ProxyE2E, MaxConnectionsRefusesBeyondTheLimit) {
  Backend be;
  ProxyThread px(load_config(simple_config(be.address(), "[security]\nmax_connections = 2\n")));
  Client a(px.port()), b(px.port());
  ASSERT_TRUE(a.send(get("/")) && a.read_response());
  ASSERT_TRUE(b.send(get("/")) && b.read_response());
  Client c(px.port());
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(px.stats().active_connections, 2u);
}

TEST(ProxyE2E, DrainFinishesInFlightAndClosesIdle) {
  Backend be([](const BackendRequest& r) {
    BackendResponse resp;
    resp.body = "done";
    if (r.target == "/slow") resp.delay_ms = 400;
    return resp;
  });
  ProxyThread px(load_config(simple_config(be.address())));
  Client idle(px.port());
  ASSERT_TRUE(idle.send(get("/")) && idle.read_response());
  Client busy(px.port());
  ASSERT_TRUE(busy.send(get("/slow")));
  while (be.request_count() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  px.start_drain();
  EXPECT_TRUE(idle.wait_closed());
  auto r = busy.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "done");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(busy.wait_closed());
  EXPECT_TRUE(px.wait_drained());
  Client late(px.port());
  EXPECT_FALSE(late.connected() && late.send(get("/")) && late.read_response());
}

TEST(ProxyE2E, DrainWithNoConnectionsReportsAtOnce) {
  Backend be;
  ProxyThread px(load_config(simple_config(be.address())));
  px.start_drain();
  EXPECT_TRUE(px.wait_drained());
}

// The listening socket of the test's listener (SO_ACCEPTCONN, bound to `port`).
int find_listener_fd(uint16_t port) {
  for (int fd = 3; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_in a{};
    socklen_t alen = sizeof a;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen) == 0 && a.sin_family == AF_INET &&
        ntohs(a.sin_port) == port)
      return fd;
  }
  return -1;
}

// CPU time (user + system) of one thread of this process, in milliseconds.
long thread_cpu_ms(pid_t tid) {
  FILE* f = std::fopen(("/proc/self/task/" + std::to_string(tid) + "/stat").c_str(), "r");
  if (f == nullptr) return -1;
  char buf[1024] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
  if (n == 0 || p == nullptr) return -1;
  unsigned long utime = 0, stime = 0;
  // Fields after ") ": state(3) ... utime(14) stime(15).
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
    return -1;
  return static_cast<long>((utime + stime) * 1000 / static_cast<unsigned long>(sysconf(_SC_CLK_TCK)));
}

TEST(ProxyE2E, DrainingWorkerDoesNotSpinOnAListeningSocketOthersStillHold) {
  // The worker's listening sockets are shared with the supervisor and the
  // other workers. With epoll's change list a listener closed in the turn its
  // event is deleted stays in the epoll set; a connection then waiting in the
  // shared backlog would wake the draining worker's loop without end.
  Backend be;
  ProxyThread px(load_config(simple_config(be.address())));
  const int listener = find_listener_fd(px.port());
  ASSERT_GE(listener, 0);
  const int shared = dup(listener);  // what the supervisor holds
  ASSERT_GE(shared, 0);
  pid_t loop_tid = 0;
  px.run([&] { loop_tid = static_cast<pid_t>(syscall(SYS_gettid)); });
  px.start_drain();
  EXPECT_TRUE(px.wait_drained());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the listener's close
  Client waiting(px.port());                                   // queued in the backlog nobody accepts from
  ASSERT_TRUE(waiting.connected());
  const long before = thread_cpu_ms(loop_tid);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long used = thread_cpu_ms(loop_tid) - before;
  EXPECT_LT(used, 100) << "the draining loop used " << used << " ms of CPU in 500 ms";
  close(shared);
}

TEST(ProxyE2E, ExpectIsForwardedAndInterimResponsesRelayed) {
  Backend be([](const BackendRequest& r) { return body_response("got " + r.body); });
  ProxyThread px(load_config(simple_config(be.address())));
  Client c(px.port());
  ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "got body");
  EXPECT_EQ(be.requests().at(0).header("expect"), "100-continue");
}

}  // namespace
}  // namespace huginn::worker::test
