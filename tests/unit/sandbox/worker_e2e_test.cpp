// The real data path under the worker filter: a forked child builds the
// worker's Server (backend names resolved before the sandbox, as in
// worker/main.cpp), installs the worker sandbox, then serves a listener while
// the parent sends real traffic through it: keep-alive, 1 MiB bodies both ways
// (Content-Length and chunked), refused and dropped backend connections (502),
// a backend timeout (504), malformed requests (400), concurrent clients, and a
// graceful SIGTERM drain. A system call missing from the allowlist kills the
// child (SIGSYS) or, in debug mode, ends it with the call's name on stderr, and
// the test fails showing that.
#include <arpa/inet.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <json/json.h>

#include "common/config/loader.h"
#include "common/net/address.h"
#include "common/sys/seccomp.h"
#include "common/sys/unique_fd.h"
#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/unit/sandbox/child.h"
#include "worker/server.h"

namespace huginn::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

uint64_t pattern_fnv(uint64_t n) {
  uint64_t h = kFnvInit;
  char buf[65536];
  for (uint64_t off = 0; off < n; off += sizeof buf) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(sizeof buf, n - off));
    fnv_pattern(off, buf, k);
    h = fnv1a(h, buf, k);
  }
  return h;
}

Json::Value parse_json(const std::string& s) {
  Json::Value v;
  Json::CharReaderBuilder b;
  std::string errs;
  std::unique_ptr<Json::CharReader> r(b.newCharReader());
  r->parse(s.data(), s.data() + s.size(), &v, &errs);
  return v;
}

// A bound, listening loopback socket, as the supervisor hands it over.
sys::UniqueFd listen_loopback(uint16_t* port) {
  sys::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd.get(), 128) != 0)
    return {};
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// The child: the worker's start-up order, with the filter installed before the
// listener is even handed to the Server (stricter than worker/main.cpp, which
// installs it right before READY).
[[noreturn]] void serve_sandboxed(std::shared_ptr<const config::Config> cfg, sys::UniqueFd listener,
                                  uint16_t port, bool debug, int ready_fd) {
  signal(SIGPIPE, SIG_IGN);
  event_base* base = event_base_new();
  if (!base) _exit(kChildUnexpected);
  {
    struct Loop {
      event_base* base;
      std::unique_ptr<worker::Server> server;
    } loop{base, std::make_unique<worker::Server>(base, cfg)};
    std::string error;
    sys::SandboxOptions opts;
    opts.debug_log = debug;
    if (!sys::install_worker_sandbox(opts, &error)) {
      ssize_t rc = write(STDERR_FILENO, error.data(), error.size());
      (void)rc;
      _exit(kChildInstallFailed);
    }
    worker::ListenerSpec spec;
    spec.id = 1;
    spec.address = *net::SocketAddress::parse("127.0.0.1:" + std::to_string(port));
    if (!loop.server->add_listener(std::move(listener), spec)) _exit(kChildUnexpected);
    event* term = evsignal_new(
        base, SIGTERM,
        [](evutil_socket_t, short, void* p) {
          auto* l = static_cast<Loop*>(p);
          l->server->drain([l] { event_base_loopexit(l->base, nullptr); });
        },
        &loop);
    if (!term || event_add(term, nullptr) != 0) _exit(kChildUnexpected);
    if (write(ready_fd, "R", 1) != 1) _exit(kChildUnexpected);
    close(ready_fd);
    event_base_dispatch(base);
    event_free(term);
    loop.server.reset();
  }
  event_base_free(base);
  std::exit(0);  // atexit handlers run under the filter too, as when the worker returns from main()
}

class SandboxedWorker : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    backend_ = std::make_unique<Backend>([](const Request& req) {
      Response r;
      if (req.target == "/download") {
        r.stream_bytes = kMiB;
      } else if (req.target == "/download-chunked") {
        r.stream_bytes = kMiB;
        r.chunked = true;
      } else if (req.target == "/drop") {
        r.drop_connection = true;
      } else if (req.target == "/slow") {
        r.delay_ms = 1500;
        r.body = "late";
      } else {
        r.body = echo_json(req);
      }
      return r;
    });
    sys::UniqueFd listener = listen_loopback(&port_);
    ASSERT_TRUE(listener);
    const std::string be = backend_->address();
    const std::string dead = "127.0.0.1:" + std::to_string(free_port());  // nothing listens: refused
    auto q = [](const std::string& s) { return "\"" + s + "\""; };
    std::string toml = "workers = 1\n[listen]\naddrs = [" + q("127.0.0.1:" + std::to_string(port_)) + "]\n";
    toml += "[timeout]\nupstream_connect_ms = 1000\nupstream_response_secs = 1\n";
    toml += "[[backends]]\naddress = " + q(be) + "\n[[backends]]\naddress = " + q(dead) + "\n";
    toml += "[[domains]]\n";
    toml += "[[domains.routes]]\nprefix = \"/dead\"\nbackend = " + q(dead) + "\n";
    toml += "[[domains.routes]]\nprefix = \"/\"\nbackend = " + q(be) + "\n";
    auto loaded = config::load_text(toml, "sandbox-test", config::LoadOptions{1});
    auto* errs = std::get_if<std::vector<config::ConfigError>>(&loaded);
    ASSERT_EQ(errs, nullptr) << (errs && !errs->empty() ? errs->front().to_string() : "");
    auto cfg = std::get<std::shared_ptr<const config::Config>>(loaded);

    log_path_ = dir_.path() + "/worker.log";
    sys::UniqueFd log(open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(log);
    int ready[2];
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      close(ready[0]);
      dup2(log.get(), STDERR_FILENO);
      serve_sandboxed(cfg, std::move(listener), port_, GetParam(), ready[1]);
    }
    close(ready[1]);
    char b = 0;
    const bool up = read(ready[0], &b, 1) == 1;
    close(ready[0]);
    ASSERT_TRUE(up) << "the sandboxed worker did not start: " << end_now().describe() << "\n" << log_text();
  }

  void TearDown() override {
    if (pid_ <= 0) return;
    // Graceful stop through libevent's signal handling, still sandboxed.
    kill(pid_, SIGTERM);
    ChildEnd end = wait_child(pid_, std::chrono::seconds(15));
    pid_ = -1;
    EXPECT_TRUE(end.exited && end.code == 0) << end.describe() << "\nworker log:\n" << log_text();
  }

  ChildEnd end_now() {
    ChildEnd e = wait_child(pid_, std::chrono::seconds(5));
    pid_ = -1;
    return e;
  }

  std::string log_text() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // The child must still be running (a filter kill shows up here first).
  void expect_alive() { ASSERT_EQ(waitpid(pid_, nullptr, WNOHANG), 0) << "worker died:\n" << log_text(); }

  TempDir dir_;
  std::unique_ptr<Backend> backend_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string log_path_;
};

TEST_P(SandboxedWorker, RunsUnderTheFilter) {
  EXPECT_EQ(proc_status_field(pid_, "Seccomp"), "2");
  EXPECT_EQ(proc_status_field(pid_, "NoNewPrivs"), "1");
}

TEST_P(SandboxedWorker, ServesKeepAliveRequests) {
  HttpClient c("127.0.0.1", port_);
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.send("GET /ka/" + std::to_string(i) + " HTTP/1.1\r\nHost: ka.test\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r.ok) << r.error << "\n" << log_text();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(parse_json(r.body)["path"].asString(), "/ka/" + std::to_string(i));
  }
  EXPECT_EQ(backend_->requests(), 20u);
  EXPECT_LT(backend_->connections(), 5u) << "upstream keep-alive pool";
  expect_alive();
}

TEST_P(SandboxedWorker, StreamsOneMebibyteBodiesBothWays) {
  const uint64_t expect = pattern_fnv(kMiB);
  for (bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked upload" : "content-length upload");
    HttpClient c("127.0.0.1", port_);
    std::string h = "POST /upload HTTP/1.1\r\nHost: up.test\r\n";
    h += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                 : "Content-Length: " + std::to_string(kMiB) + "\r\n\r\n";
    ASSERT_TRUE(c.send(h));
    ASSERT_TRUE(c.send_pattern_body(kMiB, chunked));
    auto r = c.read_response(20000);
    ASSERT_TRUE(r.ok) << r.error << "\n" << log_text();
    auto j = parse_json(r.body);
    EXPECT_EQ(j["body_bytes"].asUInt64(), kMiB);
    EXPECT_EQ(j["body_fnv"].asString(), std::to_string(expect));
  }
  for (const char* path : {"/download", "/download-chunked"}) {
    SCOPED_TRACE(path);
    HttpClient c("127.0.0.1", port_);
    ASSERT_TRUE(c.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: down.test\r\n\r\n"));
    auto r = c.read_response(20000, false, 0);
    ASSERT_TRUE(r.ok) << r.error << "\n" << log_text();
    EXPECT_EQ(r.body_bytes, kMiB);
    EXPECT_EQ(r.body_fnv, expect);
  }
  expect_alive();
}

TEST_P(SandboxedWorker, AnswersBackendFailuresAndBadRequests) {
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET /dead HTTP/1.1\r\nHost: f.test\r\n\r\n", 502},  // connection refused
      {"GET /drop HTTP/1.1\r\nHost: f.test\r\n\r\n", 502},  // backend closes without answering
      {"GET /slow HTTP/1.1\r\nHost: f.test\r\n\r\n", 504},  // upstream_response_secs = 1
      {"GET / HTTP/1.1\r\nHost: f.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"NOT A REQUEST\r\n\r\n", 400},
      {"GET /after HTTP/1.1\r\nHost: f.test\r\n\r\n", 200},  // and the worker still serves
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.request.substr(0, c.request.find('\r')));
    HttpClient client("127.0.0.1", port_);
    ASSERT_TRUE(client.send(c.request));
    auto r = client.read_response(10000);
    ASSERT_TRUE(r.ok) << r.error << "\n" << log_text();
    EXPECT_EQ(r.status, c.status);
  }
  // A client that vanishes mid-request.
  {
    HttpClient gone("127.0.0.1", port_);
    ASSERT_TRUE(gone.send("POST /upload HTTP/1.1\r\nHost: g.test\r\nContent-Length: 100000\r\n\r\npartial"));
  }
  auto r = http_request(port_, "GET", "/still-up", "f.test");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  expect_alive();
}

TEST_P(SandboxedWorker, ServesConcurrentClients) {
  constexpr int kClients = 16, kRequests = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t)
    threads.emplace_back([&, t] {
      HttpClient c("127.0.0.1", port_);
      for (int i = 0; i < kRequests; ++i) {
        if (!c.send("POST /c/" + std::to_string(t) +
                    " HTTP/1.1\r\nHost: c.test\r\nContent-Length: 5\r\n\r\nhello"))
          return;
        auto r = c.read_response();
        if (r.ok && r.status == 200) ++ok;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kClients * kRequests) << log_text();
  expect_alive();
}

INSTANTIATE_TEST_SUITE_P(Modes, SandboxedWorker, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Debug" : "Production"; });

}  // namespace
}  // namespace huginn::testing
