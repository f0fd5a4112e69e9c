#include "tests/support/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/sys/unique_fd.h"
#include "tests/support/backend.h"

#ifndef HUGINN_BINARY_DIR
#define HUGINN_BINARY_DIR "."
#endif

namespace huginn::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int ms_left(Clock::time_point deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return d > 0 ? static_cast<int>(d) : 0;
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "huginn-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
  chmod(path_.c_str(), 0755);  // workers (another uid) may need to traverse it
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

uint64_t raise_nofile_limit(uint64_t want) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < want) {
    rl.rlim_cur = std::min<rlim_t>(want, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  }
  return rl.rlim_cur;
}

namespace {

// Whether `port` can be bound on `ss` (with IPV6_V6ONLY off when `dual_stack`)
// right now; the socket is closed again.
bool bindable(sockaddr_storage ss, socklen_t len, bool dual_stack, uint16_t port) {
  sys::UniqueFd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error("free_port socket");
  int off = 0;
  if (dual_stack) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  if (ss.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
  }
  return bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0;
}

// The kernel's ephemeral range ("lo hi"), where connect() and port-0 binds take
// their ports from.
std::pair<int, int> ephemeral_range() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 32768, hi = 60999;
  if (!(in >> lo >> hi) || lo > hi) return {32768, 60999};
  return {lo, hi};
}

// Ports for listeners that a test starts later come from outside the kernel's
// ephemeral range: a port-0 pick lies inside it, and any outgoing connection
// made meanwhile (a client of another test running in parallel) may take it as
// its source port, so that the proxy's bind fails with EADDRINUSE (it did in an
// ASan CI run). Test processes running in parallel share the rest through one
// lock file: byte N held under an open-file-description lock, until the process
// exits, means port N is taken. Within the process, `handed` remembers every
// port given out, so a fixture's listeners never share one.
uint16_t unhanded_port(const sockaddr_storage& ss, socklen_t len, bool dual_stack) {
  static std::mutex mu;
  static std::set<uint16_t> handed;
  static sys::UniqueFd lock_fd;
  std::lock_guard<std::mutex> lock(mu);
  if (!lock_fd) {
    lock_fd.reset(open(free_port_lock_file().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock_fd) throw std::runtime_error("free_port: cannot open " + free_port_lock_file());
  }
  constexpr int kFirst = 10000, kPorts = 65536 - kFirst;
  const auto [lo, hi] = ephemeral_range();
  std::random_device rd;
  const int start = std::uniform_int_distribution<int>(0, kPorts - 1)(rd);
  for (int n = 0; n < kPorts; ++n) {
    const int p = kFirst + (start + n) % kPorts;
    const auto port = static_cast<uint16_t>(p);
    if ((p >= lo && p <= hi) || handed.count(port) != 0) continue;
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = port;
    fl.l_len = 1;
    if (fcntl(lock_fd.get(), F_OFD_SETLK, &fl) != 0) continue;  // another test process has it
    handed.insert(port);  // ours now, whether or not it binds: not offered again
    if (bindable(ss, len, dual_stack, port)) return port;
  }
  throw std::runtime_error("free_port: no free port outside the ephemeral range");
}

}  // namespace

std::string free_port_lock_file() {
  return (std::filesystem::temp_directory_path() /
          ("huginn-test-ports-" + std::to_string(getuid()) + ".lock"))
      .string();
}

uint16_t free_port(const char* host) {
  sockaddr_storage ss{};
  if (std::strchr(host, ':') != nullptr) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    inet_pton(AF_INET6, host, &s->sin6_addr);
    return unhanded_port(ss, sizeof *s, false);
  }
  auto* s = reinterpret_cast<sockaddr_in*>(&ss);
  s->sin_family = AF_INET;
  inet_pton(AF_INET, host, &s->sin_addr);
  return unhanded_port(ss, sizeof *s, false);
}

uint16_t free_dual_stack_port() {
  sockaddr_storage ss{};
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_addr = in6addr_any;
  return unhanded_port(ss, sizeof *s, true);
}

std::unique_ptr<Process> spawn_proxy(const TempDir& dir, const std::string& config_path) {
  return std::make_unique<Process>(
      std::vector<std::string>{binary_path("sbin/huginn-proxy"), "--config", config_path},
      dir.path() + "/proxy.log");
}

std::string binary_path(const std::string& rel) { return std::string(HUGINN_BINARY_DIR) + "/" + rel; }

Process::Process(const std::vector<std::string>& argv, const std::string& log_path,
                 const std::map<std::string, std::string>& env)
    : log_path_(log_path) {
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    if (env.count(std::string(entry.substr(0, entry.find('=')))) == 0) envs.emplace_back(entry);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : envs) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  int logfd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    // If the test binary dies (crash, ctest timeout), so does everything it started.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(logfd, 1);
    dup2(logfd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(logfd);
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Process::signal(int sig) const {
  if (!reaped_) kill(pid_, sig);
}

std::string Process::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Process::log_count(const std::string& needle) const {
  std::string l = log();
  int n = 0;
  for (size_t p = l.find(needle); p != std::string::npos; p = l.find(needle, p + 1)) ++n;
  return n;
}

bool Process::wait_log(const std::string& needle, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (log().find(needle) != std::string::npos) return true;
    if (!running()) return log().find(needle) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool Process::running() {
  if (reaped_) return false;
  int st;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    reaped_ = true;
    exit_status_cache_ = st;
    return false;
  }
  return true;
}

int Process::wait_exit(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (!running()) return exit_status_cache_;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

int run_command(const std::vector<std::string>& argv, std::string* output, int timeout_ms) {
  char tmpl[] = "/tmp/huginn-cmd-XXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  int rc = -1;
  {
    Process p(argv, tmpl);
    int st = p.wait_exit(timeout_ms);
    if (st != -1 && WIFEXITED(st)) rc = WEXITSTATUS(st);
    if (output) *output = p.log();
  }
  unlink(tmpl);
  return rc;
}

Json::Value parse_json(const std::string& text) {
  Json::Value v;
  Json::CharReaderBuilder b;
  std::string errs;
  std::unique_ptr<Json::CharReader> r(b.newCharReader());
  if (!r->parse(text.data(), text.data() + text.size(), &v, &errs)) return Json::Value();
  return v;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  pid_t c;
  while (in >> c) out.push_back(c);
  return out;
}

std::string proc_status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

std::vector<std::string> proc_strings(pid_t pid, const std::string& file) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> out;
  for (size_t b = 0, e; b < all.size(); b = e + 1) {
    e = all.find('\0', b);
    if (e == std::string::npos) e = all.size();
    out.push_back(all.substr(b, e - b));
  }
  return out;
}

std::string two_worker_config(uint16_t port, const std::string& backend) {
  return "workers = 2\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + std::to_string(port) +
         "\"]\n\n[dbus]\nbus = \"none\"\n\n[[backends]]\naddress = \"" + backend +
         "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + backend + "\"\n";
}

std::string HttpResponse::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

bool HttpResponse::has_header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return true;
  return false;
}

HttpClient::HttpClient(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    inet_pton(AF_INET6, host.c_str(), &s->sin6_addr);
    len = sizeof *s;
  } else {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    inet_pton(AF_INET, host.c_str(), &s->sin_addr);
    len = sizeof *s;
  }
  if (connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

HttpClient::HttpClient(const std::string& host, uint16_t port, const TlsOptions& tls)
    : HttpClient(host, port) {
  if (fd_ < 0) {
    tls_error_ = "connect failed";
    return;
  }
  auto fail = [&](const std::string& what) {
    unsigned long e = ERR_get_error();
    char buf[256] = {};
    if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
    tls_error_ = what + (e != 0 ? std::string(": ") + buf : "");
    ERR_clear_error();
    if (ssl_) SSL_free(ssl_);
    ssl_ = nullptr;
    close(fd_);
    fd_ = -1;
  };
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (tls.min_version) SSL_CTX_set_min_proto_version(ctx_, tls.min_version);
  if (tls.max_version) SSL_CTX_set_max_proto_version(ctx_, tls.max_version);
  if (!tls.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, tls.ca_file.c_str(), nullptr) != 1) {
      fail("CA file");
      return;
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  if (!tls.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx_, tls.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      fail("client certificate");
      return;
    }
  }
  if (!tls.alpn.empty()) {
    std::string wire;
    for (const auto& p : tls.alpn) wire += static_cast<char>(p.size()) + p;
    SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
  }
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  if (!tls.sni.empty()) SSL_set_tlsext_host_name(ssl_, tls.sni.c_str());
  if (tls.session) SSL_set_session(ssl_, tls.session);
  if (SSL_connect(ssl_) != 1) fail("handshake");
}

HttpClient::~HttpClient() {
  // Close like a real client: send close_notify. Freeing an SSL that never
  // sent it marks its session as not resumable (OpenSSL treats the
  // connection as broken), which would spoil any session taken from it.
  if (ssl_ && SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  if (ssl_) SSL_free(ssl_);
  if (ctx_) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

ssize_t HttpClient::raw_send(const char* data, size_t len) {
  if (!ssl_) return ::send(fd_, data, len, MSG_NOSIGNAL);
  const int n = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(len, 1 << 30)));
  return n > 0 ? n : -1;
}

ssize_t HttpClient::raw_recv(char* data, size_t len) {
  if (!ssl_) return ::recv(fd_, data, len, 0);
  const int n = SSL_read(ssl_, data, static_cast<int>(std::min<size_t>(len, 1 << 30)));
  if (n > 0) return n;
  return SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

bool HttpClient::session_reused() const { return ssl_ && SSL_session_reused(ssl_) == 1; }

std::string HttpClient::alpn() const {
  if (!ssl_) return "";
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::string HttpClient::tls_version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

std::string HttpClient::peer_subject() const {
  if (!ssl_) return "";
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (!cert) return "";
  char buf[512] = {};
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

std::string HttpClient::peer_serial() const {
  if (!ssl_) return "";
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (!cert) return "";
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

SSL_SESSION* HttpClient::get1_session() const { return ssl_ ? SSL_get1_session(ssl_) : nullptr; }

void HttpClient::pump(int timeout_ms) {
  if (!ssl_) return;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return;
  char tmp[4096];
  // Non-blocking peek-read: processes post-handshake messages (tickets).
  const int flags = fcntl(fd_, F_GETFL);
  fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  const int n = SSL_read(ssl_, tmp, sizeof tmp);
  if (n > 0) buf_.append(tmp, static_cast<size_t>(n));
  fcntl(fd_, F_SETFL, flags);
}

void HttpClient::set_receive_buffer(int bytes) {
  if (fd_ >= 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

bool HttpClient::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = raw_send(bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

bool HttpClient::send_pattern_body(uint64_t n, bool chunked) {
  std::string chunk(64 * 1024, '\0');
  uint64_t off = 0;
  while (off < n) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(chunk.size(), n - off));
    fnv_pattern(off, chunk.data(), len);
    std::string piece(chunk.data(), len);
    if (chunked) {
      char hdr[32];
      std::snprintf(hdr, sizeof hdr, "%zx\r\n", len);
      piece = hdr + piece + "\r\n";
    }
    if (!send(piece)) return false;
    off += len;
  }
  return chunked ? send("0\r\n\r\n") : true;
}

bool HttpClient::fill(int timeout_ms) {
  if (!(ssl_ && SSL_pending(ssl_) > 0)) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
  }
  char tmp[65536];
  ssize_t r = raw_recv(tmp, sizeof tmp);
  if (r <= 0) return false;
  buf_.append(tmp, static_cast<size_t>(r));
  return true;
}

HttpResponse HttpClient::read_response(int timeout_ms, bool head_request, size_t keep_body_limit) {
  HttpResponse r;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t pos;
  while ((pos = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(ms_left(deadline))) {
      r.error = buf_.empty() ? "no response (closed or timed out)" : "incomplete response head: " + buf_;
      return r;
    }
  }
  std::string head = buf_.substr(0, pos);
  buf_.erase(0, pos + 4);
  std::istringstream hs(head);
  std::string line;
  std::getline(hs, line);
  if (line.size() < 12 || line.rfind("HTTP/1.", 0) != 0) {
    r.error = "bad status line: " + line;
    return r;
  }
  r.status = std::atoi(line.substr(9, 3).c_str());
  r.reason = line.size() > 13 ? line.substr(13) : "";
  if (!r.reason.empty() && r.reason.back() == '\r') r.reason.pop_back();
  while (std::getline(hs, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto c = line.find(':');
    if (c == std::string::npos) continue;
    std::string v = line.substr(c + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    r.headers.emplace_back(lower(line.substr(0, c)), v);
  }
  r.body_fnv = kFnvInit;
  auto take = [&](size_t n) {
    r.body_fnv = fnv1a(r.body_fnv, buf_.data(), n);
    r.body_bytes += n;
    if (r.body.size() < keep_body_limit)
      r.body.append(buf_.data(), std::min(n, keep_body_limit - r.body.size()));
    buf_.erase(0, n);
  };
  const bool no_body =
      head_request || r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
  if (no_body) {
    r.ok = true;
    return r;
  }
  if (lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
    for (;;) {
      size_t e;
      while ((e = buf_.find("\r\n")) == std::string::npos)
        if (!fill(ms_left(deadline))) {
          r.error = "truncated chunked body";
          return r;
        }
      uint64_t n = std::strtoull(buf_.substr(0, e).c_str(), nullptr, 16);
      buf_.erase(0, e + 2);
      if (n == 0) {
        while ((e = buf_.find("\r\n")) == std::string::npos)
          if (!fill(ms_left(deadline))) {
            r.error = "truncated chunked trailer";
            return r;
          }
        buf_.erase(0, e + 2);  // no trailers expected
        break;
      }
      while (n > 0) {
        if (buf_.empty() && !fill(ms_left(deadline))) {
          r.error = "truncated chunk";
          return r;
        }
        size_t k = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
        take(k);
        n -= k;
      }
      while (buf_.size() < 2)
        if (!fill(ms_left(deadline))) {
          r.error = "truncated chunk end";
          return r;
        }
      buf_.erase(0, 2);
    }
  } else if (r.has_header("content-length")) {
    uint64_t n = std::strtoull(r.header("content-length").c_str(), nullptr, 10);
    while (n > 0) {
      if (buf_.empty() && !fill(ms_left(deadline))) {
        r.error = "truncated body (" + std::to_string(n) + " bytes missing)";
        return r;
      }
      size_t k = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
      take(k);
      n -= k;
    }
  } else {
    while (fill(ms_left(deadline))) take(buf_.size());
    take(buf_.size());
  }
  r.ok = true;
  return r;
}

bool HttpClient::wait_closed(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int n = poll(&p, 1, ms_left(deadline));
    if (n <= 0) return false;
    char tmp[4096];
    ssize_t r = raw_recv(tmp, sizeof tmp);
    if (r <= 0) return true;
  }
}

HttpClient::Drained HttpClient::close_notify_then_drain(bool fin, const std::string& first, int timeout_ms) {
  Drained d;
  if (fd_ < 0 || ssl_ == nullptr) return d;
  const int on = 1, off = 0;
  const bool cork = fin || !first.empty();
  if (cork) setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
  if (!first.empty() && SSL_write(ssl_, first.data(), static_cast<int>(first.size())) <= 0) return d;
  SSL_shutdown(ssl_);
  if (fin) ::shutdown(fd_, SHUT_WR);
  if (cork) setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
  // Reading goes on after our close_notify until the server's (or its EOF).
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    char tmp[4096];
    ERR_clear_error();
    const int n = SSL_read(ssl_, tmp, sizeof tmp);
    if (n > 0) {
      d.app_bytes += static_cast<size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err != SSL_ERROR_WANT_READ) {
      d.close_notify = err == SSL_ERROR_ZERO_RETURN;
      ERR_clear_error();
      return d;
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, ms_left(deadline)) <= 0) {
      d.timed_out = true;
      return d;
    }
  }
}

bool HttpClient::wait_received(const std::string& needle, int timeout_ms) {
  if (fd_ < 0 || ssl_ != nullptr) return false;
  if (buf_.find(needle) != std::string::npos) return true;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char tmp[8192];
  for (;;) {
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 && (buf_ + std::string(tmp, static_cast<size_t>(n))).find(needle) != std::string::npos)
      return true;
    if (n == 0 || ms_left(deadline) <= 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

HttpResponse http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& host, const std::string& extra, const std::string& body) {
  HttpClient c("127.0.0.1", port);
  if (!c.connected()) {
    HttpResponse r;
    r.error = "connect failed";
    return r;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra;
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  c.send(req);
  return c.read_response(15000, method == "HEAD");
}

}  // namespace huginn::testing
