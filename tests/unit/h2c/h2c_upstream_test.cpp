// H2cUpstream against a real nghttp2 h2c origin on loopback, driven by a
// libevent loop on the test thread.
#include "worker/net/h2c_upstream.h"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "common/sys/log.h"
#include "h2c_backend.h"
#include "tests/support/worker_harness.h"
#include "worker/http1/writer.h"
#include "worker/proxy/upstream_pool.h"

namespace huginn::worker::net {
namespace {

using h2ctest::Behaviour;
using h2ctest::H2cBackend;

struct TestSink : UpstreamExchange::Sink {
  H2cUpstream* x = nullptr;
  std::optional<http1::ResponseHead> head;
  std::string body;
  int interims = 0;
  bool complete = false;
  bool error = false;
  uint16_t error_status = 0;
  std::string error_reason;
  bool error_started = false;
  // Request body upload.
  std::string upload;
  size_t sent = 0;
  bool upload_done = false;
  int drained = 0;
  // Pause once this much body arrived.
  size_t pause_at = std::numeric_limits<size_t>::max();
  bool paused = false;
  size_t body_at_pause = 0;
  // Cancel once this much body arrived (from inside the callback).
  size_t cancel_at = std::numeric_limits<size_t>::max();
  bool cancelled = false;

  bool done() const { return complete || error; }

  void pump() {
    while (x != nullptr && !upload_done && x->writable()) {
      if (sent == upload.size()) {
        upload_done = true;
        x->end_body();
        break;
      }
      const size_t n = std::min<size_t>(16384, upload.size() - sent);
      x->send_body(std::string_view(upload).substr(sent, n));
      sent += n;
    }
  }

  void on_exchange_interim(const http1::ResponseHead&) override { ++interims; }
  void on_exchange_head(http1::ResponseHead&& h) override {
    EXPECT_FALSE(head.has_value());
    head = std::move(h);
  }
  void on_exchange_body(std::string_view data) override {
    EXPECT_TRUE(head.has_value());
    EXPECT_FALSE(done());
    body.append(data);
    if (!cancelled && body.size() >= cancel_at) {
      cancelled = true;
      x->cancel();
      return;
    }
    if (!paused && body.size() >= pause_at) {
      paused = true;
      body_at_pause = body.size();
      x->pause_reading();
    }
  }
  void on_exchange_complete() override {
    EXPECT_FALSE(done());
    complete = true;
  }
  void on_exchange_error(uint16_t status, std::string_view reason, bool started) override {
    EXPECT_FALSE(done());
    error = true;
    error_status = status;
    error_reason = std::string(reason);
    error_started = started;
  }
  void on_exchange_drained() override {
    ++drained;
    pump();
  }
};

std::string header_of(const http1::ResponseHead& h, std::string_view name) {
  const http1::Header* f = http1::find_header(h.headers, name);
  return f ? f->value : std::string();
}

class H2cUpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // HUGINN_TEST_LOG=debug shows the exchange's decisions.
    if (const char* lvl = std::getenv("HUGINN_TEST_LOG")) {
      log::Options o;
      if (log::parse_level(lvl, &o.level)) log::configure(o);
    }
    base_ = event_base_new();
  }

  void TearDown() override {
    pool_.reset();
    ctx_.reset();
    event_base_free(base_);
  }

  // A worker context whose only backend is 127.0.0.1:port, spoken to over h2c.
  void init(uint16_t port, const std::string& extra = {}) {
    const std::string addr = "127.0.0.1:" + std::to_string(port);
    cfg_ = huginn::test::load_config(
        "[listen]\naddrs = [\"127.0.0.1:0\"]\n"
        "[[backends]]\naddress = \"" +
        addr +
        "\"\nhttp_version = \"http2\"\n"
        "[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" +
        addr + "\"\n" + extra);
    ASSERT_NE(cfg_, nullptr);
    ctx_ = std::make_unique<WorkerContext>();
    ctx_->base = base_;
    ctx_->cfg = cfg_;
    ctx_->limits.max_header_bytes = cfg_->limits.max_header_bytes;
    ctx_->limits.max_headers = cfg_->limits.max_headers;
    ctx_->endpoints = proxy::resolve_backends(*cfg_);
    pool_ = std::make_unique<H2cPool>(base_, cfg_->backend_pool, cfg_->backends.size());
  }

  // Runs the loop until `pred` holds or `timeout_ms` passed.
  bool run_until(const std::function<bool()>& pred, int timeout_ms = 10000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      const timeval tick{0, 5000};
      event_base_loopexit(base_, &tick);
      event_base_dispatch(base_);
    }
    return true;
  }
  void run_for(int ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    run_until([&] { return std::chrono::steady_clock::now() >= until; }, ms + 1000);
  }

  static H2cRequest get(const std::string& path, bool reusable = true) {
    H2cRequest r;
    r.method = "GET";
    r.path = path;
    r.authority = "app.test";
    r.reusable = reusable;
    return r;
  }

  // One exchange to completion (or error); the sink holds the outcome.
  void exchange(TestSink& sink, H2cRequest req, bool* reused = nullptr) {
    H2cUpstream x(*ctx_, *pool_, sink);
    sink.x = &x;
    const bool has_body = req.has_body;
    ASSERT_TRUE(x.start(std::move(req)));
    if (has_body) sink.pump();
    ASSERT_TRUE(run_until([&] { return sink.done(); }));
    EXPECT_TRUE(x.finished());
    if (reused) *reused = x.reused();
    sink.x = nullptr;
  }

  event_base* base_ = nullptr;
  std::shared_ptr<const config::Config> cfg_;
  std::unique_ptr<WorkerContext> ctx_;
  std::unique_ptr<H2cPool> pool_;
};

TEST_F(H2cUpstreamTest, Get) {
  H2cBackend backend;
  Behaviour b;
  b.body = "hello world";
  b.headers = {{"x-origin", "yes"}};
  backend.set(b);
  init(backend.port());

  TestSink sink;
  H2cRequest req = get("/hello?q=1");
  req.headers = {{"X-Test", "1"}, {"Accept", "*/*"}, {"Connection", "keep-alive"}, {"te", "gzip"}};
  exchange(sink, std::move(req));
  ASSERT_TRUE(sink.complete) << sink.error_status;
  ASSERT_TRUE(sink.head);
  EXPECT_EQ(sink.head->status, 200);
  EXPECT_EQ(sink.head->version_major, 2);
  EXPECT_EQ(sink.head->framing, http1::BodyFraming::kLength);
  EXPECT_EQ(sink.head->content_length, 11u);
  EXPECT_EQ(header_of(*sink.head, "content-length"), "11");
  EXPECT_EQ(header_of(*sink.head, "x-origin"), "yes");
  EXPECT_EQ(header_of(*sink.head, "x-request-body-bytes"), "0");
  EXPECT_EQ(sink.body, "hello world");

  const auto reqs = backend.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].scheme, "http");
  EXPECT_EQ(reqs[0].authority, "app.test");
  EXPECT_EQ(reqs[0].path, "/hello?q=1");
  EXPECT_EQ(reqs[0].header("x-test"), "1");
  EXPECT_EQ(reqs[0].header("accept"), "*/*");
  EXPECT_EQ(reqs[0].header("connection"), "");  // connection-specific: dropped
  EXPECT_EQ(reqs[0].header("te"), "");
  EXPECT_EQ(pool_->idle_count(0), 1u);
}

TEST_F(H2cUpstreamTest, NoContentLengthIsChunkedFraming) {
  H2cBackend backend;
  Behaviour b;
  b.body = std::string(70000, 'z');
  b.content_length = false;
  backend.set(b);
  init(backend.port());
  TestSink sink;
  exchange(sink, get("/"));
  ASSERT_TRUE(sink.complete);
  EXPECT_EQ(sink.head->framing, http1::BodyFraming::kChunked);
  EXPECT_EQ(sink.body, b.body);
}

TEST_F(H2cUpstreamTest, PostOneMebibyteBothWays) {
  H2cBackend backend;
  Behaviour b;
  b.echo_body = true;
  backend.set(b);
  init(backend.port());

  TestSink sink;
  sink.upload = huginn::test::make_body(1 << 20, 7);
  H2cRequest req = get("/upload");
  req.method = "POST";
  req.has_body = true;
  req.headers = {{"Content-Length", std::to_string(sink.upload.size())}, {"content-type", "application/x"}};
  exchange(sink, std::move(req));
  ASSERT_TRUE(sink.complete) << sink.error_status;
  EXPECT_EQ(sink.head->status, 200);
  EXPECT_EQ(header_of(*sink.head, "x-request-body-bytes"), std::to_string(1 << 20));
  EXPECT_EQ(sink.head->content_length, uint64_t{1} << 20);
  EXPECT_TRUE(sink.body == sink.upload) << "response body differs (" << sink.body.size() << " bytes)";
  const auto reqs = backend.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].header("content-length"), std::to_string(1 << 20));
  EXPECT_TRUE(reqs[0].body == sink.upload) << "request body differs (" << reqs[0].body.size() << " bytes)";
  EXPECT_GT(sink.drained, 0);  // the upload was paced by the queue bound
  EXPECT_EQ(pool_->idle_count(0), 1u);
}

TEST_F(H2cUpstreamTest, Head) {
  H2cBackend backend;
  Behaviour b;
  b.body = "abcdef";
  backend.set(b);
  init(backend.port());
  TestSink sink;
  H2cRequest req = get("/h");
  req.method = "HEAD";
  req.head_request = true;
  exchange(sink, std::move(req));
  ASSERT_TRUE(sink.complete);
  EXPECT_EQ(sink.head->framing, http1::BodyFraming::kNone);
  EXPECT_EQ(header_of(*sink.head, "content-length"), "6");
  EXPECT_TRUE(sink.body.empty());
  EXPECT_EQ(backend.requests().at(0).method, "HEAD");
}

TEST_F(H2cUpstreamTest, NotFoundPassesThrough) {
  H2cBackend backend;
  Behaviour b;
  b.status = 404;
  b.body = "nope";
  b.headers = {{"x-why", "missing"}};
  backend.set(b);
  init(backend.port());
  TestSink sink;
  exchange(sink, get("/missing"));
  ASSERT_TRUE(sink.complete);
  EXPECT_EQ(sink.head->status, 404);
  EXPECT_EQ(header_of(*sink.head, "x-why"), "missing");
  EXPECT_EQ(sink.body, "nope");
  // The head is usable by the HTTP/1.1 writer (standard reason phrase).
  std::string out;
  http1::append_response_head(out, sink.head->status, sink.head->reason, {});
  EXPECT_EQ(out.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << out;
}

TEST_F(H2cUpstreamTest, SequentialExchangesReuseOneConnection) {
  H2cBackend backend;
  Behaviour b;
  b.body = "x";
  backend.set(b);
  init(backend.port());
  for (int i = 0; i < 3; ++i) {
    TestSink sink;
    bool reused = false;
    exchange(sink, get("/r" + std::to_string(i)), &reused);
    ASSERT_TRUE(sink.complete) << i;
    EXPECT_EQ(reused, i > 0) << i;
  }
  EXPECT_EQ(backend.accepted(), 1u);
  EXPECT_EQ(backend.requests().size(), 3u);
  EXPECT_EQ(backend.requests().back().connection, 1u);
  EXPECT_EQ(pool_->idle_count(0), 1u);
}

TEST_F(H2cUpstreamTest, NotReusableClosesTheConnection) {
  H2cBackend backend;
  Behaviour b;
  b.body = "x";
  backend.set(b);
  init(backend.port());
  TestSink first;
  exchange(first, get("/a", false));
  ASSERT_TRUE(first.complete);
  EXPECT_EQ(pool_->idle_count(0), 0u);
  EXPECT_TRUE(run_until([&] { return backend.closed() == 1 && pool_->closing_count() == 0; }));
  TestSink second;
  bool reused = true;
  exchange(second, get("/b"), &reused);
  ASSERT_TRUE(second.complete);
  EXPECT_FALSE(reused);
  EXPECT_EQ(backend.accepted(), 2u);
}

TEST_F(H2cUpstreamTest, InterimResponseComesFirst) {
  H2cBackend backend;
  Behaviour b;
  b.interim = 103;
  b.body = "final";
  b.headers = {{"link", "</a.css>; rel=preload"}};
  backend.set(b);
  init(backend.port());
  TestSink sink;
  exchange(sink, get("/early-hints"));
  ASSERT_TRUE(sink.complete);
  EXPECT_EQ(sink.interims, 1);
  EXPECT_EQ(sink.head->status, 200);
  EXPECT_EQ(sink.body, "final");
}

TEST_F(H2cUpstreamTest, PooledConnectionLostBeforeTheResponseIsRetried) {
  H2cBackend backend;
  Behaviour b;
  b.body = "ok";
  backend.set(b);
  init(backend.port());
  TestSink first;
  exchange(first, get("/1"));
  ASSERT_TRUE(first.complete);
  b.hangups = 1;  // the next request: the backend closes the connection instead
  backend.set(b);
  TestSink second;
  bool reused = false;
  exchange(second, get("/2"), &reused);
  ASSERT_TRUE(second.complete) << second.error_status;
  EXPECT_FALSE(reused);  // the retry ran on a new connection
  EXPECT_EQ(second.body, "ok");
  EXPECT_EQ(backend.accepted(), 2u);
  EXPECT_EQ(backend.requests().size(), 3u);
}

TEST_F(H2cUpstreamTest, RequestWithBodyIsNotRetried) {
  H2cBackend backend;
  Behaviour b;
  b.body = "ok";
  backend.set(b);
  init(backend.port());
  TestSink first;
  exchange(first, get("/1"));
  ASSERT_TRUE(first.complete);
  b.hangups = 1;
  backend.set(b);
  TestSink second;
  second.upload = "payload";
  H2cRequest req = get("/2");
  req.method = "PUT";
  req.has_body = true;
  exchange(second, std::move(req));
  ASSERT_TRUE(second.error);
  EXPECT_EQ(second.error_status, 502);
  EXPECT_FALSE(second.error_started);
  EXPECT_EQ(backend.accepted(), 1u);
}

TEST_F(H2cUpstreamTest, DrainingWorkerDoesNotPool) {
  H2cBackend backend;
  Behaviour b;
  b.body = "ok";
  backend.set(b);
  init(backend.port());
  ctx_->draining = true;
  TestSink sink;
  exchange(sink, get("/"));
  ASSERT_TRUE(sink.complete);
  EXPECT_EQ(pool_->idle_count(0), 0u);
  EXPECT_TRUE(run_until([&] { return backend.closed() == 1; }));
}

TEST_F(H2cUpstreamTest, ConnectRefusedIs502) {
  uint16_t port = 0;
  const int fd = huginn::test::listen_loopback(&port);
  ASSERT_GE(fd, 0);
  ::close(fd);  // nothing listens there any more
  init(port);
  TestSink sink;
  H2cUpstream x(*ctx_, *pool_, sink);
  sink.x = &x;
  if (x.start(get("/"))) {
    ASSERT_TRUE(run_until([&] { return sink.done(); }));
    EXPECT_TRUE(sink.error);
    EXPECT_EQ(sink.error_status, 502);
    EXPECT_EQ(sink.error_reason, http1::reason::kBackendError);
    EXPECT_FALSE(sink.error_started);
  }
  EXPECT_TRUE(x.finished());
}

TEST_F(H2cUpstreamTest, SilentBackendIs504) {
  H2cBackend backend;
  Behaviour b;
  b.silent = true;
  backend.set(b);
  init(backend.port(), "[timeout]\nupstream_response_secs = 1\n");
  TestSink sink;
  const auto t0 = std::chrono::steady_clock::now();
  exchange(sink, get("/slow"));
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(sink.error);
  EXPECT_EQ(sink.error_status, 504);
  EXPECT_EQ(sink.error_reason, http1::reason::kGatewayTimeout);
  EXPECT_FALSE(sink.error_started);
  EXPECT_GE(ms, 900);
  EXPECT_LT(ms, 5000);
  EXPECT_EQ(pool_->idle_count(0), 0u);
}

TEST_F(H2cUpstreamTest, ResetStreamIs502) {
  H2cBackend backend;
  Behaviour b;
  b.rst_error = NGHTTP2_INTERNAL_ERROR;
  backend.set(b);
  init(backend.port());
  TestSink sink;
  exchange(sink, get("/reset"));
  ASSERT_TRUE(sink.error);
  EXPECT_EQ(sink.error_status, 502);
  EXPECT_FALSE(sink.error_started);
  EXPECT_EQ(backend.accepted(), 1u);  // no retry for a plain reset
}

TEST_F(H2cUpstreamTest, RefusedStreamIsRetriedOnceOnANewConnection) {
  H2cBackend backend;
  Behaviour b;
  b.rst_error = NGHTTP2_REFUSED_STREAM;
  backend.set(b);
  init(backend.port());
  TestSink sink;
  exchange(sink, get("/refused"));
  ASSERT_TRUE(sink.error);
  EXPECT_EQ(sink.error_status, 502);
  EXPECT_EQ(backend.requests().size(), 2u);
  EXPECT_EQ(backend.accepted(), 2u);
}

TEST_F(H2cUpstreamTest, StreamAboveGoawayLastIdIsRetried) {
  H2cBackend backend;
  Behaviour b;
  b.body = "ok";
  backend.set(b);
  init(backend.port());
  TestSink first;
  exchange(first, get("/1"));
  ASSERT_TRUE(first.complete);
  b.goaway_refusals = 1;  // GOAWAY(last = the previous stream) instead of an answer
  backend.set(b);
  TestSink second;
  exchange(second, get("/2"));
  ASSERT_TRUE(second.complete) << second.error_status;
  EXPECT_EQ(second.body, "ok");
  EXPECT_EQ(backend.accepted(), 2u);
  EXPECT_EQ(backend.requests().back().connection, 2u);
  EXPECT_EQ(pool_->idle_count(0), 1u);
}

TEST_F(H2cUpstreamTest, GoawayOnIdlePooledConnection) {
  H2cBackend backend;
  Behaviour b;
  b.body = "x";
  backend.set(b);
  init(backend.port());
  TestSink first;
  exchange(first, get("/1"));
  ASSERT_TRUE(first.complete);
  ASSERT_EQ(pool_->idle_count(0), 1u);
  backend.goaway_all();
  ASSERT_TRUE(run_until([&] { return pool_->idle_count(0) == 0; }));
  TestSink second;
  bool reused = true;
  exchange(second, get("/2"), &reused);
  ASSERT_TRUE(second.complete);
  EXPECT_FALSE(reused);
  EXPECT_EQ(backend.accepted(), 2u);
  EXPECT_EQ(backend.requests().back().connection, 2u);
}

TEST_F(H2cUpstreamTest, PauseAndResumeFourMebibytes) {
  H2cBackend backend;
  Behaviour b;
  b.body = huginn::test::make_body(4 << 20, 3);
  backend.set(b);
  init(backend.port());
  TestSink sink;
  sink.pause_at = 512 * 1024;
  H2cUpstream x(*ctx_, *pool_, sink);
  sink.x = &x;
  ASSERT_TRUE(x.start(get("/big")));
  ASSERT_TRUE(run_until([&] { return sink.paused || sink.done(); }));
  ASSERT_TRUE(sink.paused);
  run_for(300);
  // Paused: at most the rest of one input slice arrived after the pause, and
  // the backend could not run further ahead than the stream window.
  EXPECT_LE(sink.body.size(), sink.body_at_pause + kH2cRecvSlice);
  EXPECT_LE(backend.body_bytes_produced(), sink.body.size() + kH2cStreamWindow + kH2cRecvSlice);
  EXPECT_FALSE(sink.done());
  const size_t before = sink.body.size();
  run_for(200);
  EXPECT_EQ(sink.body.size(), before);
  x.resume_reading();
  ASSERT_TRUE(run_until([&] { return sink.done(); }));
  ASSERT_TRUE(sink.complete);
  EXPECT_EQ(sink.body.size(), b.body.size());
  EXPECT_TRUE(sink.body == b.body);
  sink.x = nullptr;
}

TEST_F(H2cUpstreamTest, PausedExchangeDoesNotTimeOut) {
  H2cBackend backend;
  Behaviour b;
  b.body = huginn::test::make_body(1 << 20, 5);
  backend.set(b);
  init(backend.port(), "[timeout]\nupstream_response_secs = 1\n");
  TestSink sink;
  sink.pause_at = 100 * 1024;
  H2cUpstream x(*ctx_, *pool_, sink);
  sink.x = &x;
  ASSERT_TRUE(x.start(get("/big")));
  ASSERT_TRUE(run_until([&] { return sink.paused || sink.done(); }));
  run_for(1500);  // longer than the response timeout
  EXPECT_FALSE(sink.done());
  x.resume_reading();
  ASSERT_TRUE(run_until([&] { return sink.done(); }));
  ASSERT_TRUE(sink.complete) << sink.error_status;
  EXPECT_TRUE(sink.body == b.body);
  sink.x = nullptr;
}

TEST_F(H2cUpstreamTest, SinkCancelsInsideBodyCallback) {
  H2cBackend backend;
  Behaviour b;
  b.body = huginn::test::make_body(1 << 20, 9);
  backend.set(b);
  init(backend.port());
  TestSink sink;
  sink.cancel_at = 1;
  {
    H2cUpstream x(*ctx_, *pool_, sink);
    sink.x = &x;
    ASSERT_TRUE(x.start(get("/big")));
    ASSERT_TRUE(run_until([&] { return sink.cancelled; }));
    EXPECT_TRUE(x.finished());
    run_for(100);  // nothing else reaches the sink
    EXPECT_FALSE(sink.done());
    sink.x = nullptr;
  }
  EXPECT_TRUE(run_until([&] { return backend.closed() == 1; }));
  EXPECT_EQ(pool_->idle_count(0), 0u);
}

TEST_F(H2cUpstreamTest, OversizedResponseHeaderListIs502) {
  H2cBackend backend;
  Behaviour b;
  b.body = "x";
  b.big_header = 8000;
  backend.set(b);
  init(backend.port(), "[limits]\nmax_header_bytes = 4096\n");
  TestSink sink;
  exchange(sink, get("/big-head"));
  ASSERT_TRUE(sink.error);
  EXPECT_EQ(sink.error_status, 502);
  EXPECT_FALSE(sink.error_started);
  EXPECT_FALSE(sink.head.has_value());
  EXPECT_EQ(pool_->idle_count(0), 0u);
}

TEST_F(H2cUpstreamTest, CancelDropsTheConnection) {
  H2cBackend backend;
  Behaviour b;
  b.silent = true;
  backend.set(b);
  init(backend.port());
  TestSink sink;
  {
    H2cUpstream x(*ctx_, *pool_, sink);
    sink.x = &x;
    ASSERT_TRUE(x.start(get("/")));
    ASSERT_TRUE(run_until([&] { return backend.requests().size() == 1; }));
    x.cancel();
    EXPECT_TRUE(x.finished());
    sink.x = nullptr;
  }
  EXPECT_TRUE(run_until([&] { return backend.closed() == 1; }));
  EXPECT_FALSE(sink.done());
  EXPECT_EQ(pool_->idle_count(0), 0u);
}

}  // namespace
}  // namespace huginn::worker::net
