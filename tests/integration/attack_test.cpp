// Attack tests (issue #9), against the real supervisor with 2 workers. Each
// test runs one attack while a normal client keeps sending requests, then
// checks that the normal client was served, that the attacker got the
// documented treatment (close, GOAWAY ENHANCE_YOUR_CALM, 431, ...), that the
// workers' memory stayed bounded and that no worker was replaced.
// docs/ROBUSTNESS.md "Attack tests" lists what each sends and the figures.
//
//   ctest -R Attack                                  (or -L attack)
//   integration_tests --gtest_filter='Attack*'
//   HUGINN_ATTACK_UPLOAD_BYTES=10000000000 integration_tests --gtest_filter='*SlowBackend*'
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_data_segs_out (not in <netinet/tcp.h>)
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/sys/c_handle.h"
#include "common/sys/sanitizer.h"
#include "common/sys/unique_fd.h"
#include "tests/support/backend.h"
#include "tests/support/h2_load.h"
#include "tests/support/harness.h"
#include "tests/support/raw_h2.h"
#include "tests/support/test_certs.h"

namespace huginn::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using sys::UniqueFd;
using SslCtxPtr = sys::CHandle<SSL_CTX, SSL_CTX_free>;
using SslPtr = sys::CHandle<SSL, SSL_free>;
using InflaterPtr = sys::CHandle<nghttp2_hd_inflater, nghttp2_hd_inflate_del>;

constexpr uint64_t kMiB = 1024 * 1024;

// Memory bounds hold for normal builds. Under AddressSanitizer (scripts/asan.sh)
// freed memory sits in ASan's quarantine (256 MiB by default) and every block
// has redzones, so the workers' RSS says nothing about the proxy's buffering:
// there the attacks run for what ASan and UBSan see, and the figures are
// printed but not asserted.
constexpr bool kRssIsMeaningful = !huginn::sys::kAddressSanitizer;

// Expects `kib` below `bound_kib` (worker RSS) where that is meaningful.
void expect_rss_below(uint64_t kib, uint64_t bound_kib, const char* what) {
  if (!kRssIsMeaningful) {
    std::printf("[ attack ] %s: RSS %llu KiB (bound %llu KiB not asserted in a sanitized build)\n", what,
                static_cast<unsigned long long>(kib), static_cast<unsigned long long>(bound_kib));
    return;
  }
  EXPECT_LT(kib, bound_kib) << what;
}

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// ---------------------------------------------------------------- sockets

// A blocking loopback TCP connection with TCP_NODELAY; invalid on failure.
UniqueFd dial(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return UniqueFd();
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Writes as much of `bytes` as the socket takes without waiting more than
// `stall_ms` for progress; returns the number of bytes written.
size_t send_until_stalled(int fd, std::string_view bytes, int stall_ms) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, stall_ms) <= 0 || (p.revents & (POLLERR | POLLHUP))) break;
  }
  return off;
}

struct Drained {
  std::string data;  // the first `keep` bytes received
  uint64_t bytes = 0;
  bool closed = false;  // EOF or reset seen
  int64_t closed_after_ms = -1;
};

// Reads until the peer closes or `timeout_ms` passes.
Drained drain(int fd, int timeout_ms, size_t keep = 64 * 1024) {
  Drained d;
  const auto start = Clock::now();
  char buf[16384];
  for (;;) {
    const int64_t left = timeout_ms - ms_since(start);
    if (left <= 0) return d;
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      d.bytes += static_cast<uint64_t>(n);
      if (d.data.size() < keep) d.data.append(buf, std::min(static_cast<size_t>(n), keep - d.data.size()));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    d.closed = true;
    d.closed_after_ms = ms_since(start);
    return d;
  }
}

// "HTTP/1.1 431 ..." → 431; 0 if the bytes do not start with a status line.
int status_of(std::string_view data) {
  if (data.size() < 12 || data.substr(0, 9) != "HTTP/1.1 ") return 0;
  return std::atoi(std::string(data.substr(9, 3)).c_str());
}

// ---------------------------------------------------------------- HTTP/2 frames

using namespace raw_h2;  // NOLINT(google-build-using-namespace): the frame vocabulary of this file

struct H2Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;
  std::string payload;
};

// What a server sent on one HTTP/2 connection, read until it closed.
struct H2Seen {
  std::vector<H2Frame> frames;  // payloads are capped
  bool closed = false;
  std::optional<uint32_t> goaway_code;
  std::optional<uint32_t> rst_code;  // the first RST_STREAM's code
  int status = 0;                    // :status of the first response HEADERS
};

uint32_t be32(std::string_view p) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(p[0])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(p[3]));
}

// :status of a complete response header block (no padding or priority: the proxy sends none).
int decode_status(std::string_view block) {
  nghttp2_hd_inflater* raw = nullptr;
  if (nghttp2_hd_inflate_new(&raw) != 0) return 0;
  InflaterPtr inflater(raw);
  auto* in = reinterpret_cast<const uint8_t*>(block.data());
  size_t left = block.size();
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    const ssize_t used = nghttp2_hd_inflate_hd2(inflater.get(), &nv, &flags, in, left, 1);
    if (used < 0) return 0;
    in += used;
    left -= static_cast<size_t>(used);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      const std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
      if (name == ":status")
        return std::atoi(std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen).c_str());
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) return 0;
    if (used == 0 && left == 0) return 0;
  }
}

// Reads frames until the server closes or `timeout_ms` passes.
H2Seen read_h2(int fd, int timeout_ms) {
  H2Seen seen;
  std::string buf;
  const auto start = Clock::now();
  char tmp[16384];
  for (;;) {
    size_t off = 0;
    while (buf.size() - off >= 9) {
      const size_t len = (static_cast<size_t>(static_cast<uint8_t>(buf[off])) << 16) |
                         (static_cast<size_t>(static_cast<uint8_t>(buf[off + 1])) << 8) |
                         static_cast<uint8_t>(buf[off + 2]);
      if (buf.size() - off < 9 + len) break;
      H2Frame f;
      f.type = static_cast<uint8_t>(buf[off + 3]);
      f.flags = static_cast<uint8_t>(buf[off + 4]);
      f.stream = be32(std::string_view(buf).substr(off + 5, 4)) & 0x7fffffff;
      f.payload = buf.substr(off + 9, std::min<size_t>(len, 16384));
      if (f.type == kGoaway && len >= 8 && !seen.goaway_code) seen.goaway_code = be32(f.payload.substr(4, 4));
      if (f.type == kRstStream && len >= 4 && !seen.rst_code) seen.rst_code = be32(f.payload);
      if (f.type == kHeaders && seen.status == 0) seen.status = decode_status(f.payload);
      if (seen.frames.size() < 1000) seen.frames.push_back(std::move(f));
      off += 9 + len;
    }
    buf.erase(0, off);
    const int64_t left = timeout_ms - ms_since(start);
    if (left <= 0) return seen;
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0) {
      if (buf.size() < 4 * kMiB) buf.append(tmp, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    seen.closed = true;
    return seen;
  }
}

// ---------------------------------------------------------------- the normal client

// Sequential requests on new connections from its own thread while an attack
// runs; `one(i)` makes request i and returns its status (-1: no response).
class NormalClient {
 public:
  explicit NormalClient(std::function<int(int)> one) : one_(std::move(one)) {
    thread_ = std::thread([this] {
      for (int i = 0; !stop_.load(); ++i) {
        const int status = one_(i);
        {
          std::lock_guard<std::mutex> lock(mu_);
          statuses_.push_back(status);
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  ~NormalClient() { stop(); }
  NormalClient(const NormalClient&) = delete;
  NormalClient& operator=(const NormalClient&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<int> statuses() const {
    std::lock_guard<std::mutex> lock(mu_);
    return statuses_;
  }
  // Every request got a 200 and there were at least `min` of them.
  void expect_all_ok(size_t min = 3) const {
    const auto s = statuses();
    EXPECT_GE(s.size(), min) << "the normal client made too few requests during the attack";
    for (size_t i = 0; i < s.size(); ++i)
      EXPECT_EQ(s[i], 200) << "normal request " << i << " of " << s.size();
  }

 private:
  std::function<int(int)> one_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<int> statuses_;
  std::thread thread_;
};

// A normal HTTP/2 client (h2c, one connection, 2 concurrent streams) from
// its own thread while an attack runs, through the test support's nghttp2
// load generator.
class NormalH2Client {
 public:
  explicit NormalH2Client(uint16_t port) {
    thread_ = std::thread([this, port] {
      H2LoadOptions o;
      o.port = port;
      o.path = "/normal/h2";
      o.connections = 1;
      o.streams = 2;
      o.duration = std::chrono::milliseconds(60000);
      o.stop = &stop_;
      result_ = run_h2_load(o);
    });
  }
  ~NormalH2Client() { stop(); }
  NormalH2Client(const NormalH2Client&) = delete;
  NormalH2Client& operator=(const NormalH2Client&) = delete;
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Every request answered with a 2xx, no connection error, at least `min` of them.
  void expect_all_ok(uint64_t min = 5) {
    stop();
    std::printf("[ attack ] normal h2c client: %llu responses\n",
                static_cast<unsigned long long>(result_.ok_2xx));
    EXPECT_GE(result_.ok_2xx, min) << result_.summary();
    EXPECT_EQ(result_.failed(), 0u) << result_.summary();
    EXPECT_EQ(result_.connection_errors, 0u) << result_.summary();
  }

 private:
  std::atomic<bool> stop_{false};
  H2LoadResult result_;
  std::thread thread_;
};

// Samples a set of processes' total VmRSS from its own thread; keeps the maximum.
class RssSampler {
 public:
  explicit RssSampler(std::vector<pid_t> pids) : pids_(std::move(pids)) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        max_ = std::max(max_.load(), total(pids_));
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  ~RssSampler() { stop(); }
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t max_kib() const { return max_.load(); }
  // The processes' VmRSS added up, in KiB.
  static uint64_t total(const std::vector<pid_t>& pids) {
    uint64_t sum = 0;
    for (pid_t p : pids) sum += std::strtoull(proc_status_field(p, "VmRSS").c_str(), nullptr, 10);
    return sum;
  }

 private:
  std::vector<pid_t> pids_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> max_{0};
  std::thread thread_;
};

// Runs `one` in a loop on each of `threads` threads until `min_ms` have
// passed (each thread at least once); every result, in no particular order.
template <typename R>
std::vector<R> attack_for(int threads, int min_ms, const std::function<R(int)>& one) {
  std::mutex mu;
  std::vector<R> out;
  std::vector<std::thread> pool;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      do {
        R r = one(t);
        std::lock_guard<std::mutex> lock(mu);
        out.push_back(std::move(r));
      } while (ms_since(start) < min_ms);
    });
  }
  for (auto& th : pool) th.join();
  return out;
}

// huginn_connections_active from /metrics; -1 if unavailable.
int64_t active_connections(uint16_t metrics_port) {
  const HttpResponse r = http_request(metrics_port, "GET", "/metrics");
  if (!r.ok) return -1;
  const std::string key = "\nhuginn_connections_active ";
  const size_t at = r.body.find(key);
  if (at == std::string::npos) return -1;
  return std::strtoll(r.body.c_str() + at + key.size(), nullptr, 10);
}

// A slow-body attacker: a POST head announcing 1,000,000 bytes and the first
// body byte, then one byte every `trickle_ms` while the connection is open.
struct SlowBody {
  UniqueFd fd;
  Clock::time_point last_send;
  int64_t lived_after_last = -1;  // ms from its last byte to the proxy's close
  std::string got;                // what the proxy sent (expected: nothing)
  bool closed = false;
  int sent = 0;  // body bytes the proxy accepted
};

void open_slow_bodies(uint16_t port, std::vector<SlowBody>& conns) {
  const std::string head = "POST /slow-body HTTP/1.1\r\nHost: slow.test\r\nContent-Length: 1000000\r\n\r\nx";
  for (auto& c : conns) {
    c.fd = dial(port);
    ASSERT_TRUE(c.fd);
    ASSERT_EQ(send_until_stalled(c.fd.get(), head, 1000), head.size());
    c.last_send = Clock::now();
    c.sent = 1;
  }
}

// Trickles to the open ones and watches for the proxy's close, until all are
// closed or `watch_ms` passed since `start`. Returns how many are still open.
size_t trickle_slow_bodies(std::vector<SlowBody>& conns, int trickle_ms, int watch_ms,
                           Clock::time_point start) {
  size_t open = conns.size();
  while (open > 0 && ms_since(start) < watch_ms) {
    std::vector<pollfd> pfds;
    std::vector<SlowBody*> who;
    for (auto& c : conns) {
      if (c.closed) continue;
      if (ms_since(c.last_send) >= trickle_ms &&
          ::send(c.fd.get(), "y", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
        c.last_send = Clock::now();
        ++c.sent;
      }
      pfds.push_back(pollfd{c.fd.get(), POLLIN | POLLRDHUP, 0});
      who.push_back(&c);
    }
    if (::poll(pfds.data(), pfds.size(), 50) <= 0) continue;
    for (size_t i = 0; i < pfds.size(); ++i) {
      if (pfds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(pfds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        who[i]->got.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) continue;
      who[i]->closed = true;
      who[i]->lived_after_last = ms_since(who[i]->last_send);
      --open;
    }
  }
  return open;
}

// ---------------------------------------------------------------- the fixture

class AttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const uint64_t nofile = raise_nofile_limit(4096);  // inherited by the supervisor and its workers
    if (nofile < 1024) GTEST_SKIP() << "RLIMIT_NOFILE " << nofile << " is too low for the attacks";
    port_ = free_port();
  }

  void TearDown() override {
    if (proxy_) {
      proxy_->signal(SIGINT);
      proxy_->wait_exit(10000);
    }
  }

  // A 2-worker config: cleartext HTTP/1.1 + h2c on port_ (or TLS on port_ and
  // cleartext on clear_port_ when `tls`), one route to `backend`, plus `sections`.
  // `normal_backend`: when set, the route "/normal/" goes there.
  void start(const std::string& sections, const std::string& backend, bool tls = false,
             const std::string& normal_backend = "") {
    std::string listen = "[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port_) + "\"]\n";
    std::string tls_table;
    if (tls) {
      pki_ = std::make_unique<test::TestPki>(dir_.path());
      const test::PemFiles srv = pki_->server("localhost", {"localhost", "127.0.0.1"});
      clear_port_ = free_port();
      listen += "cleartext_addrs = [\"127.0.0.1:" + std::to_string(clear_port_) + "\"]\n";
      tls_table = "[tls]\ncert_path = \"" + srv.cert_path + "\"\nkey_path = \"" + srv.key_path + "\"\n\n";
    }
    const std::string toml =
        "workers = 2\nuser = \"nobody\"\n\n" + listen + "\n" + tls_table + sections +
        "\n[dbus]\nbus = \"none\"\n\n[[backends]]\naddress = \"" + backend + "\"\n" +
        (normal_backend.empty() ? "" : "\n[[backends]]\naddress = \"" + normal_backend + "\"\n") +
        "\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + backend + "\"\n" +
        (normal_backend.empty()
             ? ""
             : "\n[[domains.routes]]\nprefix = \"/normal\"\nbackend = \"" + normal_backend + "\"\n");
    proxy_ = spawn_proxy(dir_, dir_.write("config.toml", toml));
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
    workers_ = workers();
    ASSERT_EQ(workers_.size(), 2u) << proxy_->log();
  }

  std::vector<pid_t> workers() const {
    std::vector<pid_t> out;
    for (pid_t p : children_of(proxy_->pid())) {
      std::ifstream comm("/proc/" + std::to_string(p) + "/comm");
      std::string name;
      comm >> name;
      if (name == "huginn-worker") out.push_back(p);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Cleartext GET on a new connection; the status or -1.
  int get(uint16_t port, const std::string& path) const {
    const HttpResponse r = http_request(port, "GET", path, "normal.test");
    return r.ok ? r.status : -1;
  }
  std::function<int(int)> normal_get() const {
    return [this](int i) { return get(port_, "/normal/" + std::to_string(i)); };
  }

  // After an attack: the same workers, and a request is served.
  void expect_survived() {
    EXPECT_TRUE(proxy_->running()) << proxy_->log();
    EXPECT_EQ(workers(), workers_) << "a worker died and was replaced:\n" << proxy_->log();
    EXPECT_EQ(get(clear_port_ != 0 ? clear_port_ : port_, "/after"), 200);
  }

  // The slow-body attack: the proxy started with `timeouts` (lines of its
  // [timeout] section) in front of `be`, the attackers trickling every
  // `trickle_ms` until all were closed or `watch_ms` passed, while a normal
  // client is served (checked here). Returns how many are still open.
  size_t slow_body_attack(const Backend& be, const std::string& timeouts, std::vector<SlowBody>& conns,
                          int trickle_ms, int watch_ms, int64_t* took_ms) {
    start("[security]\nmax_connections = 4096\n\n[timeout]\n" + timeouts, be.address());
    NormalClient normal(normal_get());
    const auto start_t = Clock::now();
    open_slow_bodies(port_, conns);
    if (::testing::Test::HasFatalFailure()) return conns.size();
    const size_t open = trickle_slow_bodies(conns, trickle_ms, watch_ms, start_t);
    *took_ms = ms_since(start_t);
    normal.stop();
    normal.expect_all_ok();
    return open;
  }

  uint64_t workers_rss_kib() const { return RssSampler::total(workers_); }

  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t clear_port_ = 0;
  std::unique_ptr<test::TestPki> pki_;
  std::unique_ptr<Process> proxy_;
  std::vector<pid_t> workers_;
};

// ---------------------------------------------------------------- 1. slowloris body

// 120 connections send a complete head with Content-Length: 1000000 and then
// trickle the body one byte every 2500 ms, slower than proxy_idle_ms (1000),
// which is the inactivity limit while a body arrives: each is closed, without
// a response, about 1 s after its last byte (its first gap).
TEST_F(AttackTest, SlowlorisBodyIsClosedAtTheIdleTimeoutAndOthersAreServed) {
  constexpr int kConns = 120;
  std::vector<SlowBody> conns(kConns);
  int64_t took = 0;
  Backend be;
  const size_t open =
      slow_body_attack(be, "request_header_ms = 2000\nproxy_idle_ms = 1000\nshutdown_secs = 1\n", conns,
                       /*trickle_ms=*/2500, /*watch_ms=*/20000, &took);
  if (HasFatalFailure()) return;
  ASSERT_EQ(open, 0u) << "slow-body connections still open after " << took << " ms";
  for (size_t i = 0; i < conns.size(); ++i) {
    SCOPED_TRACE("connection " + std::to_string(i));
    EXPECT_EQ(conns[i].sent, 1) << "closed at the first gap, not later";
    EXPECT_GE(conns[i].lived_after_last, 900) << "not before proxy_idle_ms";
    // Closed without a response (the request can never be completed; as nginx).
    EXPECT_TRUE(conns[i].got.empty()) << conns[i].got;
  }
  std::printf("[ attack ] slow body: %d connections closed after %lld ms\n", kConns,
              static_cast<long long>(took));
  expect_survived();
}

// FINDING (documented, not fixed here): the same attack at a byte every
// 300 ms, faster than proxy_idle_ms, is never cut off. proxy_idle_ms is an
// inactivity limit, request_header_ms ends with the head, and
// upstream_response_secs only starts once the request was sent; no deadline
// covers a whole request body (as nginx's client_body_timeout, which is also
// an inactivity limit). The bound on such clients is max_connections. This
// test pins the present behaviour: after 5 s every connection is still open
// and its bytes were accepted, and normal clients are served meanwhile.
TEST_F(AttackTest, SlowlorisBodyFasterThanTheIdleTimeoutIsNotCutOff) {
  constexpr int kConns = 40;
  constexpr int kTrickleMs = 300;
  constexpr int kWatchMs = 5000;
  std::vector<SlowBody> conns(kConns);
  int64_t took = 0;
  Backend be;
  slow_body_attack(
      be, "request_header_ms = 2000\nproxy_idle_ms = 1000\nupstream_response_secs = 1\nshutdown_secs = 1\n",
      conns, kTrickleMs, kWatchMs, &took);
  if (HasFatalFailure()) return;
  for (size_t i = 0; i < conns.size(); ++i) {
    SCOPED_TRACE("connection " + std::to_string(i));
    EXPECT_FALSE(conns[i].closed) << conns[i].got;
    EXPECT_TRUE(conns[i].got.empty()) << conns[i].got;
    EXPECT_GE(conns[i].sent, kWatchMs / kTrickleMs / 2);
  }
  std::printf("[ attack ] fast slow body: %d connections still open after %d ms (no body deadline)\n", kConns,
              kWatchMs);
  expect_survived();
}

// ---------------------------------------------------------------- 2. CONTINUATION flood

// 20 connections: HEADERS without END_HEADERS, then 2000 CONTINUATION frames
// (none ends the block), written without reading. Past kMaxContinuations (7)
// the proxy sends GOAWAY ENHANCE_YOUR_CALM and closes.
TEST_F(AttackTest, ContinuationFloodGetsGoawayEnhanceYourCalm) {
  Backend be;
  start("[timeout]\nrequest_header_ms = 5000\nshutdown_secs = 1\n", be.address());
  const uint64_t rss_before = workers_rss_kib();
  std::string attack =
      kPreface + frame(kSettings, 0, 0, "") + frame(kHeaders, kEndStream, 1, hpack_get_root());
  const std::string cont = frame(kContinuation, 0, 1, hpack_literal("x-c", "v", false));
  for (int i = 0; i < 2000; ++i) attack += cont;
  NormalClient normal(normal_get());
  NormalH2Client normal_h2(port_);
  const std::vector<H2Seen> seen = attack_for<H2Seen>(8, 1500, [&](int) {
    UniqueFd fd = dial(port_);
    if (!fd) return H2Seen{};
    send_until_stalled(fd.get(), attack, 2000);
    return read_h2(fd.get(), 5000);
  });
  normal.stop();
  normal.expect_all_ok();
  normal_h2.expect_all_ok();
  for (size_t i = 0; i < seen.size(); ++i) {
    SCOPED_TRACE("attack connection " + std::to_string(i));
    EXPECT_TRUE(seen[i].closed);
    ASSERT_TRUE(seen[i].goaway_code.has_value());
    EXPECT_EQ(*seen[i].goaway_code, kEnhanceYourCalm);
  }
  EXPECT_EQ(static_cast<size_t>(proxy_->log_count("CONTINUATION flood")), seen.size());
  std::printf("[ attack ] continuation flood: %zu connections\n", seen.size());
  for (const auto& r : be.received()) EXPECT_EQ(r.target.rfind("/normal/", 0), 0u) << r.target;
  const uint64_t rss_after = workers_rss_kib();
  std::printf("[ attack ] continuation flood: workers RSS %llu -> %llu KiB\n",
              static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss_after));
  expect_rss_below(rss_after, rss_before + 64 * 1024, "worker RSS");
  expect_survived();
}

// ---------------------------------------------------------------- 3. HPACK bomb

// (a) One 4000-byte literal inserted into the dynamic table and referenced by
// index ~12 000 times in one 16 KiB HEADERS frame: it would decode to ~48 MB.
// (b) A plain list of 2000 small literal fields over HEADERS + 6 CONTINUATIONs.
// Both are over the limits (max_header_bytes 65536, max_headers 100): the
// stream gets 431, then GOAWAY ENHANCE_YOUR_CALM; 30 connections of each.
TEST_F(AttackTest, HpackBombIsRejectedWith431AndMemoryStaysBounded) {
  Backend be;
  start("[timeout]\nrequest_header_ms = 5000\nshutdown_secs = 1\n", be.address());
  const uint64_t rss_before = workers_rss_kib();

  std::string bomb_block = hpack_get_root() + hpack_literal("x-bomb", std::string(4000, 'a'), true);
  while (bomb_block.size() < 16384) bomb_block += static_cast<char>(0x80 | 62);  // dynamic index 62
  const std::string bomb =
      kPreface + frame(kSettings, 0, 0, "") + frame(kHeaders, kEndStream | kEndHeaders, 1, bomb_block);

  std::string list_block = hpack_get_root();
  for (int i = 0; i < 2000; ++i) list_block += hpack_literal("x-f" + std::to_string(i), "v", false);
  std::string list = kPreface + frame(kSettings, 0, 0, "");
  for (size_t off = 0, n = 0; off < list_block.size(); off += 16384, ++n) {
    const bool last = off + 16384 >= list_block.size();
    list += frame(n == 0 ? kHeaders : kContinuation,
                  static_cast<uint8_t>((n == 0 ? kEndStream : 0) | (last ? kEndHeaders : 0)), 1,
                  std::string_view(list_block).substr(off, 16384));
  }
  ASSERT_LE(list_block.size(), 7u * 16384) << "more CONTINUATIONs than the flood limit";

  NormalClient normal(normal_get());
  NormalH2Client normal_h2(port_);
  RssSampler rss(workers_);
  // Even threads send the bomb, odd ones the list.
  const std::vector<std::pair<int, H2Seen>> seen = attack_for<std::pair<int, H2Seen>>(6, 1500, [&](int t) {
    UniqueFd fd = dial(port_);
    if (!fd) return std::pair<int, H2Seen>{t % 2, H2Seen{}};
    send_until_stalled(fd.get(), t % 2 == 0 ? bomb : list, 2000);
    return std::pair<int, H2Seen>{t % 2, read_h2(fd.get(), 5000)};
  });
  rss.stop();
  normal.stop();
  normal.expect_all_ok();
  normal_h2.expect_all_ok();
  for (size_t i = 0; i < seen.size(); ++i) {
    SCOPED_TRACE(std::string(seen[i].first == 0 ? "bomb " : "list ") + std::to_string(i));
    EXPECT_EQ(seen[i].second.status, 431);
    ASSERT_TRUE(seen[i].second.goaway_code.has_value());
    EXPECT_EQ(*seen[i].second.goaway_code, kEnhanceYourCalm);
    EXPECT_TRUE(seen[i].second.closed);
  }
  for (const auto& r : be.received()) EXPECT_EQ(r.target.rfind("/normal/", 0), 0u) << r.target;
  std::printf("[ attack ] hpack bomb: %zu connections\n", seen.size());
  std::printf("[ attack ] hpack bomb: workers RSS %llu KiB before, max %llu KiB during\n",
              static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss.max_kib()));
  expect_rss_below(rss.max_kib(), rss_before + 64 * 1024, "worker RSS");
  expect_survived();
}

// ---------------------------------------------------------------- 4. SETTINGS and PING floods

// 10 connections send 5000 SETTINGS frames each and 10 send 10 000 PINGs, all
// without reading the ACKs: each gets GOAWAY ENHANCE_YOUR_CALM and is closed
// (kMaxSettingsPerSecond 20, kMaxPingsPerSecond 50).
TEST_F(AttackTest, SettingsAndPingFloodsGetGoawayEnhanceYourCalm) {
  Backend be;
  start("[timeout]\nrequest_header_ms = 5000\nshutdown_secs = 1\n", be.address());
  const uint64_t rss_before = workers_rss_kib();
  std::string settings_flood = kPreface + frame(kSettings, 0, 0, "");
  const std::string one_setting = frame(kSettings, 0, 0, std::string("\x00\x04\x00\x01\x00\x00", 6));
  for (int i = 0; i < 5000; ++i) settings_flood += one_setting;
  std::string ping_flood = kPreface + frame(kSettings, 0, 0, "");
  for (int i = 0; i < 10000; ++i) ping_flood += frame(kPing, 0, 0, std::string(8, static_cast<char>(i)));

  NormalClient normal(normal_get());
  NormalH2Client normal_h2(port_);
  RssSampler rss(workers_);
  // Even threads flood SETTINGS, odd ones PING.
  const std::vector<std::pair<int, H2Seen>> seen = attack_for<std::pair<int, H2Seen>>(6, 1500, [&](int t) {
    UniqueFd fd = dial(port_);
    if (!fd) return std::pair<int, H2Seen>{t % 2, H2Seen{}};
    int small = 4096;  // the ACKs are not read: keep our receive buffer small
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_until_stalled(fd.get(), t % 2 == 0 ? settings_flood : ping_flood, 2000);
    return std::pair<int, H2Seen>{t % 2, read_h2(fd.get(), 5000)};
  });
  rss.stop();
  normal.stop();
  normal.expect_all_ok();
  normal_h2.expect_all_ok();
  for (size_t i = 0; i < seen.size(); ++i) {
    SCOPED_TRACE(std::string(seen[i].first == 0 ? "SETTINGS " : "PING ") + std::to_string(i));
    ASSERT_TRUE(seen[i].second.goaway_code.has_value());
    EXPECT_EQ(*seen[i].second.goaway_code, kEnhanceYourCalm);
    EXPECT_TRUE(seen[i].second.closed);
  }
  // Every attack connection was logged as one of the floods.
  const int logged = proxy_->log_count("SETTINGS flood") + proxy_->log_count("PING flood") +
                     proxy_->log_count("flood of frames needing an ACK");
  EXPECT_EQ(static_cast<size_t>(logged), seen.size());
  std::printf("[ attack ] settings/ping floods: %zu connections; log: %d SETTINGS, %d PING, %d ACK queue\n",
              seen.size(), proxy_->log_count("SETTINGS flood"), proxy_->log_count("PING flood"),
              proxy_->log_count("flood of frames needing an ACK"));
  std::printf("[ attack ] settings/ping floods: workers RSS %llu KiB before, max %llu KiB during\n",
              static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss.max_kib()));
  expect_rss_below(rss.max_kib(), rss_before + 64 * 1024, "worker RSS");
  expect_survived();
}

// ---------------------------------------------------------------- 5. pipelining

// Counts complete HTTP/1.1 responses (Content-Length bodies) in a stream and
// checks that response i carries body "/p/i".
class ResponseCounter {
 public:
  // Returns false at the first response that is not the expected one.
  bool feed(const char* p, size_t n) {
    buf_.append(p, n);
    size_t off = 0;
    for (;;) {
      const size_t end = buf_.find("\r\n\r\n", off);
      if (end == std::string::npos) break;
      const std::string_view head(buf_.data() + off, end - off);
      const size_t cl = head.find("\r\ncontent-length: ") != std::string_view::npos
                            ? head.find("\r\ncontent-length: ")
                            : head.find("\r\nContent-Length: ");
      if (cl == std::string_view::npos) return fail("no Content-Length");
      const size_t len = std::strtoull(std::string(head.substr(cl + 18, 12)).c_str(), nullptr, 10);
      if (buf_.size() < end + 4 + len) break;
      if (status_of(head) != 200) return fail(std::string(head.substr(0, 40)));
      const std::string_view body(buf_.data() + end + 4, len);
      if (body != "/p/" + std::to_string(count_)) return fail("out of order: " + std::string(body));
      ++count_;
      off = end + 4 + len;
    }
    buf_.erase(0, off);
    return true;
  }
  uint64_t count() const { return count_; }
  const std::string& error() const { return error_; }

 private:
  bool fail(const std::string& why) {
    error_ = why;
    return false;
  }
  std::string buf_;
  uint64_t count_ = 0;
  std::string error_;
};

std::string pipeline_requests(uint64_t from, uint64_t to) {
  std::string out;
  for (uint64_t i = from; i < to; ++i)
    out += "GET /p/" + std::to_string(i) + " HTTP/1.1\r\nHost: p.test\r\n\r\n";
  return out;
}

// Pipelined GETs (10 000 in CI; HUGINN_ATTACK_PIPELINE_REQUESTS=100000 for
// the full attack, ~35 s) written as fast as the socket takes them while a
// second thread reads: every one is answered, in order (one at a time, as
// nginx does), and the workers do not buffer what the client already read.
TEST_F(AttackTest, PipelinedRequestsAreAnsweredInOrderWithBoundedMemory) {
  Backend be([](const Request& r) {
    Response resp;
    resp.body = r.target;
    return resp;
  });
  start("[timeout]\nrequest_header_ms = 5000\nproxy_idle_ms = 5000\nshutdown_secs = 1\n", be.address());
  const uint64_t n = env_u64("HUGINN_ATTACK_PIPELINE_REQUESTS", 10000);
  const uint64_t rss_before = workers_rss_kib();
  UniqueFd fd = dial(port_);
  ASSERT_TRUE(fd);
  NormalClient normal(normal_get());
  RssSampler rss(workers_);
  const auto t0 = Clock::now();
  std::atomic<bool> write_ok{true};
  std::thread writer([&] {
    constexpr uint64_t kBatch = 1000;
    for (uint64_t i = 0; i < n && write_ok; i += kBatch) {
      const std::string batch = pipeline_requests(i, std::min(n, i + kBatch));
      if (send_until_stalled(fd.get(), batch, 20000) != batch.size()) write_ok = false;
    }
  });
  ResponseCounter counter;
  bool in_order = true;
  char buf[65536];
  while (counter.count() < n && ms_since(t0) < 90000) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    const ssize_t r = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) break;
    if (r > 0 && !counter.feed(buf, static_cast<size_t>(r))) {
      in_order = false;
      break;
    }
  }
  const int64_t took = ms_since(t0);
  write_ok = false;
  ::shutdown(fd.get(), SHUT_RDWR);
  writer.join();
  rss.stop();
  normal.stop();
  normal.expect_all_ok();
  EXPECT_TRUE(in_order) << counter.error();
  EXPECT_EQ(counter.count(), n);
  std::printf(
      "[ attack ] %llu pipelined requests answered in %lld ms; workers RSS %llu KiB before, max %llu\n",
      static_cast<unsigned long long>(counter.count()), static_cast<long long>(took),
      static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss.max_kib()));
  expect_rss_below(rss.max_kib(), rss_before + 32 * 1024, "worker RSS");
  expect_survived();
}

// The same client that never reads: the proxy stops reading its requests once
// its responses back up (the kernel buffers fill and our send stalls), memory
// stays bounded, and the connection is closed after proxy_idle_ms without the
// client reading.
TEST_F(AttackTest, PipelinedRequestsFromAClientThatDoesNotReadAreNotBuffered) {
  Backend be([](const Request& r) {
    Response resp;
    resp.body = r.target + std::string(64 * 1024, '.');  // fills the kernel buffers quickly
    return resp;
  });
  const uint16_t metrics_port = free_port();
  start(
      "[timeout]\nrequest_header_ms = 5000\nproxy_idle_ms = 2000\nshutdown_secs = "
      "1\n\n[telemetry]\nmetrics_port = " +
          std::to_string(metrics_port) + "\n",
      be.address());
  const uint64_t rss_before = workers_rss_kib();
  UniqueFd fd = dial(port_);
  ASSERT_TRUE(fd);
  int small = 4096;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  NormalClient normal(normal_get());
  RssSampler rss(workers_);
  // Up to 2 million requests (~70 MB); stop when the proxy has not taken a
  // byte for 1.5 s.
  constexpr uint64_t kMax = 2000000, kBatch = 10000;
  uint64_t written = 0;
  bool stalled = false;
  for (uint64_t i = 0; i < kMax && !stalled; i += kBatch) {
    const std::string batch = pipeline_requests(i, i + kBatch);
    const size_t w = send_until_stalled(fd.get(), batch, 1500);
    written += w;
    stalled = w != batch.size();
  }
  const uint64_t answered = be.requests();
  normal.stop();
  normal.expect_all_ok();
  // Still not reading: the proxy gives up on the connection at proxy_idle_ms
  // (its FIN waits behind the unread responses, so it is seen in the proxy's
  // connection gauge rather than on our socket).
  const auto stall_t = Clock::now();
  bool closed = false;
  while (!closed && ms_since(stall_t) < 15000) {
    closed = active_connections(metrics_port) == 0;
    if (!closed) std::this_thread::sleep_for(milliseconds(50));
  }
  const int64_t closed_after = ms_since(stall_t);
  rss.stop();
  std::printf(
      "[ attack ] non-reading pipeliner: %llu bytes written before the stall, backend saw %llu "
      "requests; workers RSS %llu KiB before, max %llu\n",
      static_cast<unsigned long long>(written), static_cast<unsigned long long>(answered),
      static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss.max_kib()));
  EXPECT_TRUE(stalled) << "the proxy read all " << written << " bytes";
  EXPECT_LT(written, 32 * kMiB);
  expect_rss_below(rss.max_kib(), rss_before + 32 * 1024, "worker RSS");
  EXPECT_TRUE(closed) << "not closed after proxy_idle_ms";
  std::printf("[ attack ] non-reading pipeliner closed %lld ms after the stall\n",
              static_cast<long long>(closed_after));
  expect_survived();
}

// ---------------------------------------------------------------- 6. oversized headers

struct Exchange {
  int status = 0;
  bool closed = false;
  std::string head;
};

// Sends `bytes` from one thread while reading from another: the proxy may
// answer and close before it has read all of it.
Exchange attack_exchange(uint16_t port, const std::string& bytes) {
  Exchange e;
  UniqueFd fd = dial(port);
  if (!fd) return e;
  timeval tv{10, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::thread sender([&] {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  });
  const Drained d = drain(fd.get(), 15000, 4096);
  sender.join();
  e.status = status_of(d.data);
  e.closed = d.closed;
  e.head = d.data.substr(0, d.data.find("\r\n\r\n"));
  return e;
}

// A 1 MiB header line, 10 000 header fields and a 100 KiB request line, from
// 6 threads for 1.5 s: 431 (max_header_bytes / max_headers), then close.
TEST_F(AttackTest, OversizedHeadersGet431AndAreClosed) {
  Backend be;
  start("[timeout]\nrequest_header_ms = 5000\nshutdown_secs = 1\n", be.address());
  const uint64_t rss_before = workers_rss_kib();
  const std::string big_line =
      "GET / HTTP/1.1\r\nHost: big.test\r\nX-Big: " + std::string(kMiB, 'a') + "\r\n\r\n";
  std::string many = "GET / HTTP/1.1\r\nHost: many.test\r\n";
  for (int i = 0; i < 10000; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  const std::string long_target =
      "GET /" + std::string(100 * 1024, 'u') + " HTTP/1.1\r\nHost: uri.test\r\n\r\n";
  const std::vector<std::pair<std::string, const std::string*>> kinds = {
      {"1 MiB header line", &big_line}, {"10000 fields", &many}, {"100 KiB request line", &long_target}};
  NormalClient normal(normal_get());
  RssSampler rss(workers_);
  // Thread t sends kind t % 3.
  const std::vector<std::pair<size_t, Exchange>> got =
      attack_for<std::pair<size_t, Exchange>>(6, 1500, [&](int t) {
        const size_t k = static_cast<size_t>(t) % kinds.size();
        return std::pair<size_t, Exchange>{k, attack_exchange(port_, *kinds[k].second)};
      });
  rss.stop();
  normal.stop();
  normal.expect_all_ok();
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(kinds[got[i].first].first + " #" + std::to_string(i));
    EXPECT_EQ(got[i].second.status, 431) << got[i].second.head;
    EXPECT_TRUE(got[i].second.closed);
  }
  std::printf("[ attack ] oversized headers: %zu requests\n", got.size());
  for (const auto& r : be.received()) EXPECT_EQ(r.target.rfind("/normal/", 0), 0u) << r.target;
  std::printf("[ attack ] oversized headers: workers RSS %llu KiB before, max %llu KiB during\n",
              static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss.max_kib()));
  expect_rss_below(rss.max_kib(), rss_before + 64 * 1024, "worker RSS");
  expect_survived();
}

// ---------------------------------------------------------------- 7. large upload to a slow backend

// An origin that reads request bodies at a bounded rate (1 MiB, then a 10 ms
// pause: at most ~100 MiB/s), decodes Content-Length or chunked bodies, and
// answers "<bytes> <fnv1a>" with Connection: close.
class SlowReader {
 public:
  SlowReader() {
    listen_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(listen_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(listen_.get(), 16) != 0)
      return;
    socklen_t len = sizeof sa;
    getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~SlowReader() {
    stop_ = true;
    ::shutdown(listen_.get(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }
  SlowReader(const SlowReader&) = delete;
  SlowReader& operator=(const SlowReader&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint64_t bytes() const { return bytes_.load(); }
  uint64_t fnv() const { return fnv_.load(); }
  bool complete() const { return complete_.load(); }

 private:
  void run() {
    while (!stop_) {
      UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) return;
      serve(c.get());
    }
  }
  // Reads into buf_ until it holds `want` bytes beyond `pos`; false on EOF.
  bool need(int fd, size_t want) {
    char tmp[65536];
    while (buf_.size() - pos_ < want) {
      if (pos_ > 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
      }
      const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(n));
      throttle(static_cast<size_t>(n));
    }
    return true;
  }
  void throttle(size_t n) {
    since_pause_ += n;
    if (since_pause_ >= kMiB) {
      since_pause_ = 0;
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  std::string line(int fd) {
    for (;;) {
      const size_t e = buf_.find("\r\n", pos_);
      if (e != std::string::npos) {
        std::string l = buf_.substr(pos_, e - pos_);
        pos_ = e + 2;
        return l;
      }
      if (buf_.size() - pos_ > 8192 || !need(fd, buf_.size() - pos_ + 1)) return {};
    }
  }
  bool body_bytes(int fd, uint64_t n, uint64_t* total, uint64_t* h) {
    while (n > 0) {
      if (buf_.size() == pos_ && !need(fd, 1)) return false;
      const size_t take = static_cast<size_t>(std::min<uint64_t>(n, buf_.size() - pos_));
      *h = fnv1a(*h, buf_.data() + pos_, take);
      *total += take;
      pos_ += take;
      n -= take;
      bytes_ = *total;
    }
    return true;
  }
  void serve(int fd) {
    buf_.clear();
    pos_ = 0;
    bool chunked = false;
    uint64_t content_length = 0;
    for (std::string l = line(fd); !l.empty(); l = line(fd)) {
      std::string lower = l;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos)
        chunked = true;
      if (lower.rfind("content-length:", 0) == 0) content_length = std::strtoull(l.c_str() + 15, nullptr, 10);
    }
    uint64_t total = 0, h = kFnvInit;
    bool ok = true;
    if (chunked) {
      for (;;) {
        const std::string size_line = line(fd);
        if (size_line.empty()) {
          ok = false;
          break;
        }
        const uint64_t size = std::strtoull(size_line.c_str(), nullptr, 16);
        if (size == 0) {
          while (!line(fd).empty()) {
          }
          break;
        }
        if (!body_bytes(fd, size, &total, &h) || !line(fd).empty()) {
          ok = false;
          break;
        }
      }
    } else {
      ok = body_bytes(fd, content_length, &total, &h);
    }
    fnv_ = h;
    complete_ = ok;
    const std::string body = std::to_string(total) + " " + std::to_string(h);
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\nConnection: close\r\n\r\n" + body;
    (void)::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
  }

  UniqueFd listen_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> fnv_{0};
  std::atomic<bool> complete_{false};
  std::string buf_;
  size_t pos_ = 0;
  size_t since_pause_ = 0;
  std::thread thread_;
};

// A chunked upload (default 256 MiB, HUGINN_ATTACK_UPLOAD_BYTES) to a route
// whose backend reads at most ~100 MiB/s: the workers' memory stays bounded
// (< +32 MiB) and the backend receives every byte (length and FNV-1a).
TEST_F(AttackTest, LargeChunkedUploadToASlowBackendHasBoundedMemoryAndArrivesExact) {
  const uint64_t n = env_u64("HUGINN_ATTACK_UPLOAD_BYTES", 256 * kMiB);
  SlowReader be;
  Backend normal_be;
  start(
      "[timeout]\nrequest_header_ms = 5000\nproxy_idle_ms = 30000\nupstream_response_secs = 86400\n"
      "shutdown_secs = 1\n",
      be.address(), false, normal_be.address());
  const uint64_t rss_before = workers_rss_kib();
  // The expected checksum of the pattern body.
  uint64_t want_fnv = kFnvInit;
  {
    std::string chunk(kMiB, '\0');
    for (uint64_t off = 0; off < n; off += chunk.size()) {
      const size_t len = static_cast<size_t>(std::min<uint64_t>(chunk.size(), n - off));
      fnv_pattern(off, chunk.data(), len);
      want_fnv = fnv1a(want_fnv, chunk.data(), len);
    }
  }
  NormalClient normal(normal_get());  // another route, another backend
  RssSampler rss(workers_);
  const auto t0 = Clock::now();
  HttpClient client("127.0.0.1", port_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.send("POST /upload HTTP/1.1\r\nHost: upload.test\r\nTransfer-Encoding: chunked\r\n\r\n"));
  ASSERT_TRUE(client.send_pattern_body(n, true));
  ASSERT_TRUE(client.send("0\r\n\r\n"));
  const HttpResponse r = client.read_response(600000);
  const int64_t took = ms_since(t0);
  rss.stop();
  normal.stop();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::to_string(n) + " " + std::to_string(want_fnv));
  EXPECT_EQ(be.bytes(), n);
  EXPECT_EQ(be.fnv(), want_fnv);
  normal.expect_all_ok(1);
  std::printf(
      "[ attack ] upload of %llu bytes in %lld ms (%.0f MiB/s); workers RSS %llu KiB before, max %llu\n",
      static_cast<unsigned long long>(n), static_cast<long long>(took),
      static_cast<double>(n) / kMiB / (static_cast<double>(std::max<int64_t>(took, 1)) / 1000.0),
      static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss.max_kib()));
  expect_rss_below(rss.max_kib(), rss_before + 32 * 1024, "worker RSS");
  expect_survived();
}

// ---------------------------------------------------------------- 8. fragmented ClientHello

struct TlsGet {
  bool ok = false;
  std::string error;
  int status = 0;
  std::string ja4;
  size_t hello_bytes = 0;       // size of the first flight
  uint32_t hello_segments = 0;  // data segments the kernel sent for it
};

// One HTTPS GET through memory BIOs: the first flight (the ClientHello) goes
// out one byte per send() with TCP_NODELAY and `pause_us` between bytes when
// `fragment`, everything else as it comes. The JA4 is the one the backend saw.
TlsGet tls_get(uint16_t port, bool fragment, int pause_us) {
  TlsGet out;
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SslPtr ssl(ctx ? SSL_new(ctx.get()) : nullptr);
  if (!ssl) {
    out.error = "SSL_new";
    return out;
  }
  static const unsigned char kAlpn[] = "\x08http/1.1";
  SSL_set_alpn_protos(ssl.get(), kAlpn, sizeof kAlpn - 1);
  SSL_set_tlsext_host_name(ssl.get(), "localhost");
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), rbio, wbio);  // owned by ssl from here
  SSL_set_connect_state(ssl.get());
  UniqueFd fd = dial(port);
  if (!fd) {
    out.error = "connect";
    return out;
  }
  bool first_flight = true;
  size_t hello_sent = 0;
  auto flush = [&]() -> bool {
    char buf[16384];
    for (;;) {
      const int n = BIO_read(wbio, buf, sizeof buf);
      if (n <= 0) return true;
      if (first_flight && fragment) {
        for (int i = 0; i < n; ++i) {
          if (::send(fd.get(), buf + i, 1, MSG_NOSIGNAL) != 1) return false;
          ++hello_sent;
          std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
        }
      } else if (send_until_stalled(fd.get(), std::string_view(buf, static_cast<size_t>(n)), 5000) !=
                 static_cast<size_t>(n)) {
        return false;
      }
    }
  };
  auto fill = [&]() -> bool {
    char buf[16384];
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return false;
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return false;
    BIO_write(rbio, buf, static_cast<int>(n));
    return true;
  };
  for (;;) {
    const int rc = SSL_do_handshake(ssl.get());
    if (!flush()) {
      out.error = "send during the handshake";
      return out;
    }
    if (first_flight) {
      out.hello_bytes = hello_sent;
      tcp_info ti{};
      socklen_t len = sizeof ti;
      if (getsockopt(fd.get(), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
        out.hello_segments = ti.tcpi_data_segs_out;
    }
    first_flight = false;
    if (rc == 1) break;
    if (SSL_get_error(ssl.get(), rc) != SSL_ERROR_WANT_READ || !fill()) {
      out.error = "handshake failed";
      ERR_clear_error();
      return out;
    }
  }
  const std::string req = "GET /fragmented HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  SSL_write(ssl.get(), req.data(), static_cast<int>(req.size()));
  if (!flush()) {
    out.error = "send request";
    return out;
  }
  std::string resp;
  char buf[16384];
  for (;;) {
    const int n = SSL_read(ssl.get(), buf, sizeof buf);
    if (n > 0) {
      resp.append(buf, static_cast<size_t>(n));
      continue;
    }
    const int err = SSL_get_error(ssl.get(), n);
    if (err == SSL_ERROR_WANT_READ) {
      flush();
      if (fill()) continue;
    }
    break;
  }
  ERR_clear_error();
  out.status = status_of(resp);
  const size_t body = resp.find("\r\n\r\n");
  if (body != std::string::npos) {
    const Json::Value v = parse_json(resp.substr(body + 4));
    out.ja4 = v["headers"]["x-huginn-net-ja4"].asString();
  }
  out.ok = out.status != 0;
  if (!out.ok) out.error = "no response: " + resp.substr(0, 80);
  return out;
}

// The ClientHello one byte per TCP segment: the handshake completes and the
// backend sees the same JA4 as for the same hello sent whole; 16 such slow
// handshakes in parallel do not stop a normal TLS client.
TEST_F(AttackTest, ClientHelloOneBytePerSegmentIsServedWithTheSameJa4) {
  Backend be;
  start("[timeout]\ntls_handshake_secs = 15\nshutdown_secs = 1\n", be.address(), /*tls=*/true);
  const TlsGet whole = tls_get(port_, false, 0);
  ASSERT_TRUE(whole.ok) << whole.error;
  ASSERT_EQ(whole.status, 200);
  ASSERT_FALSE(whole.ja4.empty());

  const TlsGet single = tls_get(port_, true, 1000);
  ASSERT_TRUE(single.ok) << single.error;
  EXPECT_EQ(single.status, 200);
  EXPECT_EQ(single.ja4, whole.ja4);
  // One TCP segment per byte of the ClientHello, as the kernel counts them.
  EXPECT_GT(single.hello_bytes, 200u);
  EXPECT_GE(single.hello_segments, single.hello_bytes);

  TlsOptions opts;
  opts.sni = "localhost";
  NormalClient normal([&](int i) {
    HttpClient c("127.0.0.1", port_, opts);
    if (!c.connected()) return -1;
    if (!c.send("GET /normal/" + std::to_string(i) +
                " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
      return -1;
    const HttpResponse r = c.read_response();
    return r.ok ? r.status : -1;
  });
  constexpr int kParallel = 16;
  std::vector<TlsGet> slow(kParallel);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int i = 0; i < kParallel; ++i) threads.emplace_back([&, i] { slow[i] = tls_get(port_, true, 2000); });
  for (auto& t : threads) t.join();
  const int64_t took = ms_since(t0);
  normal.stop();
  normal.expect_all_ok();
  for (int i = 0; i < kParallel; ++i) {
    SCOPED_TRACE("slow handshake " + std::to_string(i));
    EXPECT_TRUE(slow[i].ok) << slow[i].error;
    EXPECT_EQ(slow[i].status, 200);
    EXPECT_EQ(slow[i].ja4, whole.ja4);
  }
  std::printf("[ attack ] %d one-byte-per-segment handshakes in parallel took %lld ms; JA4 %s\n", kParallel,
              static_cast<long long>(took), whole.ja4.c_str());
  expect_survived();
}

// ---------------------------------------------------------------- 9. half-open connections

// max_connections = 64: 48 cleartext connections that send nothing and 16 TLS
// connections that send a partial TLS record fill the host. While they are
// held, a further connection is accepted and closed at once without a response
// (the documented treatment). At request_header_ms (cleartext) and
// tls_handshake_secs (TLS), 3 s, all 64 are closed and normal clients are
// served again.
TEST_F(AttackTest, HalfOpenConnectionsUpToMaxConnectionsAreReleasedAtTheirTimeouts) {
  Backend be;
  const uint16_t metrics_port = free_port();
  start(
      "[security]\nmax_connections = 64\n\n[timeout]\nrequest_header_ms = 3000\ntls_handshake_secs = 3\n"
      "shutdown_secs = 1\n\n[telemetry]\nmetrics_port = " +
          std::to_string(metrics_port) + "\n",
      be.address(), /*tls=*/true);
  ASSERT_EQ(get(clear_port_, "/before"), 200);
  // Wait until that connection is given back.
  for (int i = 0; i < 100 && active_connections(metrics_port) != 0; ++i)
    std::this_thread::sleep_for(milliseconds(20));
  ASSERT_EQ(active_connections(metrics_port), 0);

  constexpr int kSilent = 48, kPartialTls = 16;
  // A TLS handshake record header announcing 512 bytes, and 3 of them.
  const std::string partial_record("\x16\x03\x01\x02\x00\x01\x00\x01", 8);
  std::vector<UniqueFd> held;
  std::vector<Clock::time_point> opened;
  const auto t0 = Clock::now();
  for (int i = 0; i < kSilent + kPartialTls; ++i) {
    UniqueFd fd = dial(i < kSilent ? clear_port_ : port_);
    ASSERT_TRUE(fd) << i;
    if (i >= kSilent) {
      ASSERT_EQ(send_until_stalled(fd.get(), partial_record, 1000), partial_record.size());
    }
    held.push_back(std::move(fd));
    opened.push_back(Clock::now());
  }
  int64_t active = -1;
  for (int i = 0; i < 100 && (active = active_connections(metrics_port)) != 64; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  ASSERT_EQ(active, 64) << "the held connections were not all accepted";
  ASSERT_LT(ms_since(t0), 2500) << "too slow to probe before the timeouts";

  // Full: a new connection (cleartext or TLS) is closed without a response.
  for (uint16_t p : {clear_port_, port_, clear_port_}) {
    UniqueFd fd = dial(p);
    ASSERT_TRUE(fd);
    const std::string req = "GET /refused HTTP/1.1\r\nHost: normal.test\r\n\r\n";
    (void)::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL);
    const Drained d = drain(fd.get(), 2000);
    EXPECT_TRUE(d.closed) << "port " << p;
    EXPECT_EQ(d.bytes, 0u) << d.data;
  }

  // Every held connection is closed by its timeout, not before.
  for (size_t i = 0; i < held.size(); ++i) {
    SCOPED_TRACE("held connection " + std::to_string(i));
    const Drained d = drain(held[i].get(), 15000);
    const auto lived = std::chrono::duration_cast<milliseconds>(Clock::now() - opened[i]).count();
    EXPECT_TRUE(d.closed);
    EXPECT_GE(lived, 2900);
    EXPECT_LT(lived, 15000);
  }
  const int64_t released = ms_since(t0);
  for (int i = 0; i < 100 && active_connections(metrics_port) != 0; ++i)
    std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(active_connections(metrics_port), 0);
  // Served again: cleartext and TLS.
  EXPECT_EQ(get(clear_port_, "/again"), 200);
  TlsOptions opts;
  opts.sni = "localhost";
  HttpClient c("127.0.0.1", port_, opts);
  ASSERT_TRUE(c.connected()) << c.tls_error();
  ASSERT_TRUE(c.send("GET /again HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_EQ(c.read_response().status, 200);
  std::printf("[ attack ] 64 half-open connections released after %lld ms\n",
              static_cast<long long>(released));
  expect_survived();
}

}  // namespace
}  // namespace huginn::testing
