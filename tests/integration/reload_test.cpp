// Reload: new generations of workers replace old ones without failing a
// request; invalid configurations change nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <json/json.h>

#include "common/config/cpu_affinity.h"
#include "common/sys/cpus.h"
#include "tests/support/backend.h"
#include "tests/support/h2_load.h"
#include "tests/support/harness.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string backend_name(const HttpResponse& r) {
  return parse_json(r.body)["headers"]["x-backend"].asString();
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    for (const char* name : {"A", "B"}) {
      std::string n = name;
      backends_.push_back(std::make_unique<Backend>([n](const Request& req) {
        Request copy = req;
        copy.headers.emplace_back("x-backend", n);  // echo which backend answered
        Response r;
        r.headers.emplace_back("x-backend", n);  // also as a response header (HTTP/2 clients)
        r.body = echo_json(copy);
        return r;
      }));
    }
  }

  std::string config(int workers, const char* backend, const std::string& extra_listen = "",
                     const std::string& extra = "") const {
    const Backend& be = *backends_[backend[0] == 'A' ? 0 : 1];
    std::string listen = "\"127.0.0.1:" + std::to_string(port_) + "\"" + extra_listen;
    return "workers = " + std::to_string(workers) + "\nuser = \"nobody\"\n" + extra +
           "\n[listen]\naddrs = [" + listen +
           "]\n\n[timeout]\nshutdown_secs = 5\n\n[dbus]\nbus = \"none\"\n\n[[backends]]\naddress = \"" +
           backends_[0]->address() + "\"\n[[backends]]\naddress = \"" + backends_[1]->address() +
           "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + be.address() + "\"\n";
  }

  void start(const std::string& toml) {
    path_ = dir_.write("config.toml", toml);
    proxy_ = spawn_proxy(dir_, path_);
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }

  // Rewrites the config and sends SIGHUP; waits for the outcome in the log.
  bool reload_with(const std::string& toml, const std::string& expect) {
    const int before = proxy_->log_count(expect);
    dir_.write("config.toml", toml);
    proxy_->signal(SIGHUP);
    for (int i = 0; i < 1500; ++i) {
      if (proxy_->log_count(expect) > before) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  // One generation's route and when it served: from just before the reload
  // that started it until its successor was reported ready (then it drains).
  struct Generation {
    std::string backend;
    Clock::time_point from;
    Clock::time_point until = Clock::time_point::max();
  };

  // A response from `backend` to a request submitted at `submitted` and
  // answered at `completed` is consistent when a generation routing to that
  // backend was live in that window. A connection of a draining generation
  // hears of the drain a moment after the reload returned: `grace`.
  static bool consistent(const std::vector<Generation>& gens, const std::string& backend,
                         Clock::time_point submitted, Clock::time_point completed, Clock::duration grace) {
    for (const auto& g : gens)
      if (g.backend == backend && g.from <= completed &&
          (g.until == Clock::time_point::max() || submitted <= g.until + grace))
        return true;
    return false;
  }

  TempDir dir_;
  uint16_t port_ = 0;
  std::string path_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::unique_ptr<Process> proxy_;
};

TEST_F(ReloadTest, SighupSwitchesRoutesAndWorkerCount) {
  start(config(2, "A"));
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "A");
  ASSERT_TRUE(reload_with(config(3, "B"), "reloaded: generation 2 with 3 workers")) << proxy_->log();
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "B");
  // The old generation drains and exits; three workers remain.
  bool three = false;
  for (int i = 0; i < 300 && !three; ++i) {
    three = children_of(proxy_->pid()).size() == 3;
    if (!three) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(three) << proxy_->log();
  EXPECT_TRUE(proxy_->wait_log("generation 1 finished", 10000)) << proxy_->log();
}

TEST_F(ReloadTest, InvalidConfigurationChangesNothing) {
  start(config(2, "A"));
  const auto workers_before = children_of(proxy_->pid());
  ASSERT_TRUE(reload_with("workers = 2\n[listen]\naddrs = [\"127.0.0.1:1\"]\nbogus_key = true\n",
                          "reload failed: 1 configuration error"))
      << proxy_->log();
  EXPECT_NE(proxy_->log().find("bogus_key"), std::string::npos);
  EXPECT_NE(proxy_->log().find("config.toml:4:"), std::string::npos) << proxy_->log();
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "A");
  EXPECT_EQ(children_of(proxy_->pid()), workers_before);
}

TEST_F(ReloadTest, ListenersAreAddedKeptAndRemoved) {
  start(config(1, "A"));
  const uint16_t extra = free_port();
  const std::string extra_listen = ", \"127.0.0.1:" + std::to_string(extra) + "\"";
  ASSERT_TRUE(reload_with(config(1, "A", extra_listen), "reloaded: generation 2")) << proxy_->log();
  EXPECT_EQ(http_request(extra, "GET", "/", "r.test").status, 200);
  EXPECT_EQ(http_request(port_, "GET", "/", "r.test").status, 200);
  ASSERT_TRUE(reload_with(config(1, "B"), "reloaded: generation 3")) << proxy_->log();
  EXPECT_TRUE(proxy_->wait_log("closing listener 127.0.0.1:" + std::to_string(extra)));
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "B");
  bool refused = false;
  for (int i = 0; i < 300 && !refused; ++i) {  // once generation 2 has drained
    refused = !HttpClient("127.0.0.1", extra).connected();
    if (!refused) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(refused) << "the removed listener must be closed";
}

// A response whose head went out before the reload promised keep-alive (no
// `Connection: close`): the draining worker must not close the connection
// under the client's next request. Like an idle connection at drain time, it
// gets a short grace and its next request is answered with `Connection:
// close` (found by scripts/soak: wrk saw a read error at a reload).
TEST_F(ReloadTest, KeepAlivePromisedBeforeTheReloadIsHonouredOnce) {
  Backend big([](const Request& req) {
    Response r;
    if (req.target == "/big")
      r.stream_bytes = 8 << 20;
    else
      r.body = echo_json(req);
    return r;
  });
  const std::string toml =
      "workers = 1\nuser = \"nobody\"\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port_) +
      "\"]\n[timeout]\nshutdown_secs = 10\n[dbus]\nbus = \"none\"\n[[backends]]\naddress = \"" +
      big.address() + "\"\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + big.address() +
      "\"\n";
  start(toml);
  HttpClient c("127.0.0.1", port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("GET /big HTTP/1.1\r\nHost: k.test\r\n\r\n"));
  // Not reading yet: the head went out (seen waiting in the socket, not
  // guessed from a sleep: a loaded machine may take longer), most of the body
  // waits in the proxy and the backend.
  ASSERT_TRUE(c.wait_received("\r\n\r\n", 10000)) << proxy_->log();
  ASSERT_TRUE(reload_with(toml, "reloaded: generation 2")) << proxy_->log();
  std::this_thread::sleep_for(300ms);  // the old worker is draining now
  HttpResponse first = c.read_response(20000);
  ASSERT_TRUE(first.ok) << first.error << "\n" << proxy_->log();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body_bytes, uint64_t{8} << 20);
  ASSERT_NE(first.header("connection"), "close") << "the head must have left before the drain";
  ASSERT_TRUE(c.send("GET /next HTTP/1.1\r\nHost: k.test\r\n\r\n"));
  HttpResponse second = c.read_response(10000);
  ASSERT_TRUE(second.ok) << second.error << "\n" << proxy_->log();
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.header("connection"), "close");
  EXPECT_TRUE(c.wait_closed(5000));
}

TEST_F(ReloadTest, ReloadUnderLoadFailsNoRequest) {
  start(config(2, "A"));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0}, failed{0};
  std::atomic<int> bad_generation{0};
  std::vector<std::thread> clients;
  std::string first_error;
  std::mutex mu;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      const bool keep_alive = t % 2 == 0;
      std::unique_ptr<HttpClient> c;
      while (!stop) {
        if (!c || !keep_alive) c = std::make_unique<HttpClient>("127.0.0.1", port_);
        if (!c->connected() || !c->send("GET /load HTTP/1.1\r\nHost: l.test\r\n\r\n")) {
          ++failed;
          c.reset();
          continue;
        }
        auto r = c->read_response(10000);
        if (!r.ok || r.status != 200) {
          ++failed;
          std::lock_guard lk(mu);
          if (first_error.empty()) first_error = r.ok ? "status " + std::to_string(r.status) : r.error;
          c.reset();
          continue;
        }
        const std::string b = backend_name(r);
        if (b != "A" && b != "B") ++bad_generation;
        ++ok;
        if (r.header("connection") == "close") c.reset();
      }
    });
  }
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(150ms);
    const std::string cfg = config(1 + i % 3, i % 2 ? "A" : "B");
    ASSERT_TRUE(reload_with(cfg, "reloaded: generation " + std::to_string(i + 2))) << proxy_->log();
  }
  std::this_thread::sleep_for(200ms);
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0u) << "first error: " << first_error;
  EXPECT_GT(ok.load(), 100u);
  EXPECT_EQ(bad_generation.load(), 0);
}

// wrk at full speed, keep-alive and a new connection per request, while the
// route table and the worker count change under it. wrk prints a "Socket
// errors" line for any connect/read/write error or timeout and a "Non-2xx"
// line for any other status; neither may appear.
TEST_F(ReloadTest, ReloadUnderWrkLoadKeepsEveryRequest) {
  if (access("/usr/bin/wrk", X_OK) != 0)
    GTEST_SKIP() << "wrk is not installed (scripts/install-deps.sh installs it)";
  start(config(2, "A"));
  for (const bool keep_alive : {true, false}) {
    std::vector<std::string> argv = {"/usr/bin/wrk", "-t2", "-c16", "-d4s", "--latency"};
    if (!keep_alive) argv.insert(argv.end(), {"-H", "Connection: close"});
    argv.push_back("http://127.0.0.1:" + std::to_string(port_) + "/wrk");
    std::string out;
    int rc = -1;
    std::thread load([&] { rc = run_command(argv, &out, 30000); });
    std::this_thread::sleep_for(300ms);
    static int generation = 1;
    for (int i = 0; i < 5; ++i) {
      ++generation;
      ASSERT_TRUE(reload_with(config(1 + (generation % 3), generation % 2 ? "A" : "B"),
                              "reloaded: generation " + std::to_string(generation)))
          << proxy_->log();
      std::this_thread::sleep_for(250ms);
    }
    load.join();
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("Requests/sec"), std::string::npos) << out;
    EXPECT_EQ(out.find("Socket errors"), std::string::npos) << (keep_alive ? "keep-alive" : "close") << "\n"
                                                            << out;
    EXPECT_EQ(out.find("Non-2xx"), std::string::npos) << out;
  }
}

// h2load (nghttp2 1.52, h2c prior knowledge, 8 connections × 10 streams)
// across one reload, asserting only what h2load can show. Seen with this
// proxy: on the drain's graceful GOAWAY h2load opens no new stream on that
// connection, lets the open ones finish and, with -D, never opens another
// connection, so after the first reload it sends nothing more (its request
// count stops there; later reloads would test nothing). Requests it had
// queued but not yet sent when the GOAWAY arrived are never sent (nghttp2
// starts no stream after a GOAWAY) and h2load counts each as "failed" and
// "errored", although the server never saw it; RFC 9113 §8.7 lets a client
// retry those (seen: 0 to 6 per run). Hence: no timeout, every response 2xx,
// failed == errored ≤ 8 × 10 (only the streams a connection had queued when
// its GOAWAY came), every started request done. Zero failures under repeated
// reloads is asserted with a retrying client in
// ReloadUnderHttp2LoadAnswersEveryRequestFromALiveGeneration.
TEST_F(ReloadTest, ReloadUnderH2loadFailsOnlyUnsentRequests) {
  if (access("/usr/bin/h2load", X_OK) != 0)
    GTEST_SKIP() << "h2load is not installed (scripts/install-deps.sh installs nghttp2-client)";
  start(config(2, "A"));
  constexpr unsigned long kConnections = 8, kStreams = 10;
  std::string out;
  int rc = -1;
  const auto t0 = Clock::now();
  std::thread load([&] {
    rc = run_command({"/usr/bin/h2load", "-D", "3", "-c", std::to_string(kConnections), "-m",
                      std::to_string(kStreams), "http://127.0.0.1:" + std::to_string(port_) + "/h2"},
                     &out, 30000);
  });
  std::this_thread::sleep_for(1s);
  const bool reloaded = reload_with(config(3, "B"), "reloaded: generation 2");
  const auto reload_done = Clock::now() - t0;
  load.join();
  ASSERT_TRUE(reloaded) << proxy_->log();
  ASSERT_EQ(rc, 0) << out;
  unsigned long total = 0, started = 0, done = 0, succeeded = 0, failed = 0, errored = 0, timeout = 0;
  unsigned long s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0;
  const auto req = out.find("requests: ");
  const auto codes = out.find("status codes: ");
  ASSERT_TRUE(req != std::string::npos && codes != std::string::npos) << out;
  ASSERT_EQ(std::sscanf(out.c_str() + req,
                        "requests: %lu total, %lu started, %lu done, %lu succeeded, %lu failed, %lu errored, "
                        "%lu timeout",
                        &total, &started, &done, &succeeded, &failed, &errored, &timeout),
            7)
      << out;
  ASSERT_EQ(std::sscanf(out.c_str() + codes, "status codes: %lu 2xx, %lu 3xx, %lu 4xx, %lu 5xx", &s2xx, &s3xx,
                        &s4xx, &s5xx),
            4)
      << out;
  std::printf(
      "h2load: %lu total, %lu started, %lu done, %lu succeeded, %lu failed, %lu errored, %lu timeout; "
      "%lu 2xx\n",
      total, started, done, succeeded, failed, errored, timeout, s2xx);
  EXPECT_EQ(timeout, 0u) << out;
  EXPECT_EQ(s3xx + s4xx + s5xx, 0u) << out;
  EXPECT_EQ(s2xx, succeeded) << out;
  EXPECT_EQ(failed, errored) << out;
  EXPECT_LE(failed, kConnections * kStreams) << out;
  EXPECT_EQ(succeeded + failed, done) << out;
  // Every connection got its GOAWAY and ended well before the 3 s were over:
  // nothing may still be open.
  if (reload_done < 2500ms) {
    EXPECT_EQ(started, done) << "a request h2load sent was not answered\n" << out;
  }
  EXPECT_GT(succeeded, 100u) << out;  // not vacuous
}

// HTTP/2 reload under load with a client that does what RFC 9113 §6.8/§8.7
// lets a client do with the requests a server did not process (refused, or
// above a GOAWAY's last stream id, or never sent after a GOAWAY): issue them
// again on a new connection (tests/support/h2_load.h). 8 connections × 10
// streams while 10 reloads run, every other one switching the route (backend
// A/B) and the worker count. Nothing may fail: no non-2xx, no stream reset, no
// connection error, no request lost; the retries are only counted. Every
// response, and every response of an HTTP/1.1 keep-alive client running
// beside it, comes from a generation that was live around it.
TEST_F(ReloadTest, ReloadUnderHttp2LoadAnswersEveryRequestFromALiveGeneration) {
  start(config(2, "A"));
  std::vector<Generation> gens = {{"A", Clock::time_point::min()}};
  std::atomic<bool> stop{false};

  H2LoadOptions opts;
  opts.port = port_;
  opts.authority = "h2.test";
  opts.path = "/h2";
  opts.connections = 8;
  opts.streams = 10;
  opts.duration = 12s;  // upper bound; `stop` ends it
  opts.stop = &stop;
  opts.record_header = "x-backend";
  H2LoadResult h2;
  std::thread h2_thread([&] { h2 = run_h2_load(opts); });

  struct H1Sample {
    Clock::time_point submitted, completed;
    std::string backend;
  };
  std::vector<H1Sample> h1;
  uint64_t h1_failed = 0;
  std::string h1_error;
  std::thread h1_thread([&] {
    std::unique_ptr<HttpClient> c;
    while (!stop) {
      if (!c) c = std::make_unique<HttpClient>("127.0.0.1", port_);
      const auto submitted = Clock::now();
      HttpResponse r;
      if (c->connected() && c->send("GET /h1 HTTP/1.1\r\nHost: h1.test\r\n\r\n"))
        r = c->read_response(10000);
      else
        r.error = "connect or send failed";
      if (!r.ok || r.status != 200) {
        if (h1_failed++ == 0) h1_error = r.ok ? "status " + std::to_string(r.status) : r.error;
        c.reset();
        continue;
      }
      h1.push_back({submitted, Clock::now(), r.header("x-backend")});
      if (r.header("connection") == "close") c.reset();
    }
  });

  std::this_thread::sleep_for(200ms);
  bool reloads_ok = true;
  std::string backend = "A";
  int workers = 2;
  for (int i = 0; i < 10 && reloads_ok; ++i) {
    if (i % 2 == 1) {
      backend = backend == "A" ? "B" : "A";
      workers = 1 + workers % 3;
    }
    const auto from = Clock::now();
    reloads_ok =
        reload_with(config(workers, backend.c_str()), "reloaded: generation " + std::to_string(i + 2));
    gens.back().until = Clock::now();
    gens.push_back({backend, from});
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(1500ms);  // the last generation alone
  stop = true;
  h2_thread.join();
  h1_thread.join();
  ASSERT_TRUE(reloads_ok) << proxy_->log();

  std::printf("HTTP/2 client: %s\n", h2.summary().c_str());
  EXPECT_EQ(h2.other_status, 0u) << h2.summary();
  EXPECT_EQ(h2.stream_resets, 0u) << h2.summary();
  EXPECT_EQ(h2.connection_errors, 0u) << h2.summary();
  EXPECT_EQ(h2.failed(), 0u) << h2.summary();
  EXPECT_GT(h2.ok_2xx, 500u) << h2.summary();
  EXPECT_GT(h2.goaways, 0u) << "the reloads drained no HTTP/2 connection: " << h2.summary();
  EXPECT_EQ(h1_failed, 0u) << "HTTP/1.1, first error: " << h1_error;
  EXPECT_GT(h1.size(), 50u);

  // Generations: only "A" or "B", each while it was live; after the last
  // reload (plus the grace) only its backend.
  const auto grace = 1s;
  const auto last_reload = gens[gens.size() - 2].until;
  size_t bad = 0, after_last = 0;
  std::string first_bad;
  auto check = [&](const char* proto, const std::string& b, Clock::time_point s, Clock::time_point c) {
    if (s > last_reload + grace) ++after_last;
    if (consistent(gens, b, s, c, grace)) return;
    if (bad++ == 0)
      first_bad =
          std::string(proto) + " response from backend \"" + b + "\" submitted " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(s - last_reload).count()) +
          " ms after the last reload";
  };
  for (const auto& s : h2.samples) check("HTTP/2", s.header, s.submitted, s.completed);
  for (const auto& s : h1) check("HTTP/1.1", s.backend, s.submitted, s.completed);
  EXPECT_EQ(bad, 0u) << first_bad;
  EXPECT_GT(after_last, 100u) << "too few requests after the last reload to check it";
}

// Live workers of `proxy` by their --worker-id: pid and Cpus_allowed_list.
std::map<uint32_t, std::pair<pid_t, std::string>> worker_cpus(pid_t proxy) {
  std::map<uint32_t, std::pair<pid_t, std::string>> out;
  for (pid_t pid : children_of(proxy)) {
    const std::vector<std::string> args = proc_strings(pid, "cmdline");
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--worker-id")
        out[static_cast<uint32_t>(std::stoul(args[i + 1]))] = {pid,
                                                               proc_status_field(pid, "Cpus_allowed_list")};
  }
  return out;
}

// Waits until exactly `n` workers are alive and each one's CPU list is `want(id)`.
template <class Want>
bool workers_pinned(pid_t proxy, size_t n, Want want, std::string* seen) {
  for (int i = 0; i < 500; ++i) {
    const auto ws = worker_cpus(proxy);
    bool good = ws.size() == n;
    seen->clear();
    for (const auto& [id, w] : ws) {
      *seen += "worker " + std::to_string(id) + " (pid " + std::to_string(w.first) + "): " + w.second + "; ";
      if (w.second != want(id)) good = false;
    }
    if (good) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST_F(ReloadTest, WorkerCpuAffinityPinsWorkersAcrossReloadsAndRestarts) {
  const std::vector<uint32_t> cpus = sys::allowed_cpus();  // the proxy inherits them
  ASSERT_FALSE(cpus.empty());
  const std::string all = config::cpu_list_text(cpus);
  auto one = [&](uint32_t i) { return std::to_string(cpus[i % cpus.size()]); };
  std::string seen;

  // auto: worker i on the i-th CPU this process may use, wrapping.
  start(config(3, "A", "", "worker_cpu_affinity = \"auto\""));
  EXPECT_TRUE(workers_pinned(proxy_->pid(), 3, one, &seen)) << seen << "\n" << proxy_->log();
  EXPECT_TRUE(proxy_->wait_log("worker 2 started: pid ")) << proxy_->log();
  EXPECT_NE(proxy_->log().find(", generation 1, CPUs " + one(2) + "\n"), std::string::npos) << proxy_->log();
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "A");

  // A worker restarted after a crash keeps its slot's CPU.
  const auto before = worker_cpus(proxy_->pid());
  ASSERT_EQ(before.count(1), 1u);
  ASSERT_EQ(kill(before.at(1).first, SIGKILL), 0);
  bool replaced = false;
  for (int i = 0; i < 500 && !replaced; ++i) {
    const auto now = worker_cpus(proxy_->pid());
    replaced = now.count(1) == 1 && now.at(1).first != before.at(1).first;
    if (!replaced) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(replaced) << proxy_->log();
  EXPECT_TRUE(workers_pinned(proxy_->pid(), 3, one, &seen)) << seen << "\n" << proxy_->log();

  // Explicit lists, taken in turn; a reload applies them to the new workers.
  const std::string last = std::to_string(cpus.back());
  const std::string lists = "worker_cpu_affinity = [\"" + last + "\", \"" + all + "\"]";
  ASSERT_TRUE(reload_with(config(3, "B", "", lists), "reloaded: generation 2 with 3 workers"))
      << proxy_->log();
  EXPECT_TRUE(workers_pinned(
      proxy_->pid(), 3, [&](uint32_t id) { return id % 2 == 0 ? last : all; }, &seen))
      << seen << "\n"
      << proxy_->log();
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "B");

  // A list naming no CPU this process may use leaves that worker unpinned, with a warning.
  const std::string none = "worker_cpu_affinity = [\"1023\"]";
  ASSERT_TRUE(reload_with(config(1, "A", "", none), "reloaded: generation 3 with 1 worker")) << proxy_->log();
  EXPECT_EQ(proxy_->log_count("with 1 workers"), 0) << proxy_->log();  // singular for one
  EXPECT_TRUE(workers_pinned(
      proxy_->pid(), 1, [&](uint32_t) { return all; }, &seen))
      << seen;
  EXPECT_NE(
      proxy_->log().find("worker 0: worker_cpu_affinity names no CPU the supervisor may use; not pinned"),
      std::string::npos)
      << proxy_->log();

  // off: back to every CPU.
  ASSERT_TRUE(reload_with(config(2, "A", "", "worker_cpu_affinity = \"off\""), "reloaded: generation 4"))
      << proxy_->log();
  EXPECT_TRUE(workers_pinned(
      proxy_->pid(), 2, [&](uint32_t) { return all; }, &seen))
      << seen;
  EXPECT_EQ(backend_name(http_request(port_, "GET", "/", "r.test")), "A");
}

TEST_F(ReloadTest, StopDuringNothingLeavesNoChildren) {
  start(config(2, "A"));
  ASSERT_TRUE(reload_with(config(2, "B"), "reloaded: generation 2")) << proxy_->log();
  proxy_->signal(SIGTERM);
  const int st = proxy_->wait_exit(15000);
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << proxy_->log();
}

}  // namespace
}  // namespace huginn::testing
