#include "test_support.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace huginn::worker::test {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  size_t b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

using huginn::test::connect_loopback;
using huginn::test::write_all;

void set_timeouts(int fd, int secs) {
  timeval tv{secs, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Blocking line/byte reader over a socket.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  bool fill() {
    char tmp[65536];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  bool read_head(std::string* head) {
    while (true) {
      const size_t pos = buf_.find("\r\n\r\n");
      if (pos != std::string::npos) {
        *head = buf_.substr(0, pos + 2);
        buf_.erase(0, pos + 4);
        return true;
      }
      if (buf_.size() > (1u << 20) || !fill()) return false;
    }
  }
  bool read_line(std::string* line) {
    while (true) {
      const size_t pos = buf_.find("\r\n");
      if (pos != std::string::npos) {
        *line = buf_.substr(0, pos);
        buf_.erase(0, pos + 2);
        return true;
      }
      if (!fill()) return false;
    }
  }
  bool read_n(size_t n, std::string* out) {
    while (buf_.size() < n)
      if (!fill()) return false;
    out->append(buf_, 0, n);
    buf_.erase(0, n);
    return true;
  }
  bool read_chunked(std::string* out) {
    while (true) {
      std::string line;
      if (!read_line(&line)) return false;
      const size_t size = std::stoul(line.substr(0, line.find(';')), nullptr, 16);
      if (size == 0) {
        while (true) {  // trailers
          if (!read_line(&line)) return false;
          if (line.empty()) return true;
        }
      }
      if (!read_n(size, out)) return false;
      if (!read_line(&line) || !line.empty()) return false;
    }
  }
  void read_to_eof(std::string* out) {
    while (fill()) {
    }
    out->append(buf_);
    buf_.clear();
  }
  bool buffered() const { return !buf_.empty(); }

 private:
  int fd_;
  std::string buf_;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

void parse_headers(const std::string& head, std::string* first_line, HeaderList* headers) {
  size_t pos = head.find("\r\n");
  *first_line = head.substr(0, pos);
  pos += 2;
  while (pos < head.size()) {
    const size_t end = head.find("\r\n", pos);
    const std::string line = head.substr(pos, end - pos);
    pos = end + 2;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    headers->emplace_back(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
}

std::string find(const HeaderList& h, const std::string& name) {
  for (const auto& [k, v] : h)
    if (k == name) return v;
  return {};
}

}  // namespace

void shrink_socket_buffers(int fd) {
  int size = 64 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

// ------------------------------------------------------------ Backend

std::string BackendRequest::header(const std::string& name) const { return find(headers, name); }

size_t BackendRequest::header_count(const std::string& name) const {
  size_t n = 0;
  for (const auto& [k, v] : headers)
    if (k == name) ++n;
  return n;
}

Backend::Backend(Handler h) : handler_(std::move(h)) {
  if (!handler_) {
    handler_ = [](const BackendRequest& r) {
      BackendResponse resp;
      resp.body = "ok " + r.target;
      return resp;
    };
  }
  listen_fd_ = listen_loopback(&port_);
  acceptor_ = std::thread([this] { accept_loop(); });
}

Backend::~Backend() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (int fd : conn_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
  ::close(listen_fd_);
}

std::vector<BackendRequest> Backend::requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return requests_;
}

size_t Backend::request_count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return requests_.size();
}

void Backend::shrink_buffers() { shrink_socket_buffers(listen_fd_); }

void Backend::accept_loop() {
  while (!stop_) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stop_) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    const uint64_t id = ++connections_;
    std::lock_guard<std::mutex> lk(mu_);
    conn_fds_.push_back(fd);
    threads_.emplace_back([this, fd, id] { serve(fd, id); });
  }
}

void Backend::serve(int fd, uint64_t conn_id) {
  set_timeouts(fd, 20);
  Reader rd(fd);
  while (!stop_) {
    std::string head;
    if (!rd.read_head(&head)) break;
    BackendRequest req;
    req.connection = conn_id;
    std::string line;
    parse_headers(head, &line, &req.headers);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.rfind(' ');
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string te = lower(req.header("transfer-encoding"));
    const std::string cl = req.header("content-length");
    ++heads_;
    while (hold_ && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    bool ok = true;
    if (te == "chunked") {
      req.chunked = true;
      ok = rd.read_chunked(&req.body);
    } else if (!cl.empty()) {
      ok = rd.read_n(std::stoull(cl), &req.body);
    }
    if (!ok) break;
    BackendResponse resp = handler_(req);
    const bool client_close = lower(req.header("connection")) == "close";
    {
      std::lock_guard<std::mutex> lk(mu_);
      requests_.push_back(req);
    }
    if (resp.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(resp.delay_ms));
    if (resp.reset) {
      linger lg{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      break;
    }
    if (resp.drop) break;
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " X\r\n";
    for (const auto& [k, v] : resp.headers) out += k + ": " + v + "\r\n";
    if (resp.close) out += "Connection: close\r\n";
    const bool no_body = req.method == "HEAD" || resp.status == 204 || resp.status == 304;
    switch (resp.framing) {
      case BackendResponse::Framing::kLength:
        out += "Content-Length: " + std::to_string(resp.body.size()) + "\r\n\r\n";
        if (!no_body) out += resp.body;
        ok = write_all(fd, out.data(), out.size());
        break;
      case BackendResponse::Framing::kChunked: {
        out += "Transfer-Encoding: chunked\r\n\r\n";
        ok = write_all(fd, out.data(), out.size());
        for (size_t off = 0; ok && off < resp.body.size(); off += resp.chunk_size) {
          const size_t n = std::min(resp.chunk_size, resp.body.size() - off);
          char hdr[32];
          snprintf(hdr, sizeof hdr, "%zx\r\n", n);
          std::string piece = hdr + resp.body.substr(off, n) + "\r\n";
          ok = write_all(fd, piece.data(), piece.size());
        }
        if (ok) ok = write_all(fd, "0\r\n\r\n", 5);
        break;
      }
      case BackendResponse::Framing::kClose:
        out += "\r\n";
        out += resp.body;
        write_all(fd, out.data(), out.size());
        ok = false;
        break;
    }
    if (!ok || resp.close || resp.hangup || client_close) break;
  }
  ::shutdown(fd, SHUT_RDWR);
  std::lock_guard<std::mutex> lk(mu_);
  // fds are closed here only; the destructor shuts down those still open.
  for (auto& f : conn_fds_)
    if (f == fd) f = -1;
  ::close(fd);
}

// ------------------------------------------------------------ ProxyThread

ProxyThread::ProxyThread(std::shared_ptr<const config::Config> cfg, bool small_buffers) {
  server_ = std::make_unique<Server>(loop_.base(), std::move(cfg));
  const int fd = listen_loopback(&port_);
  if (small_buffers) shrink_socket_buffers(fd);
  ListenerSpec spec;
  spec.id = 1;
  EXPECT_TRUE(server_->add_listener(sys::UniqueFd(fd), spec));
  loop_.start();
}

ProxyThread::ProxyThread(std::shared_ptr<const config::Config> cfg, int listen_fd, hoststate::Region* region,
                         uint32_t slot) {
  server_ = std::make_unique<Server>(loop_.base(), std::move(cfg));
  server_->set_host_state(region, slot);
  port_ = 0;
  ListenerSpec spec;
  spec.id = 1;
  EXPECT_TRUE(server_->add_listener(sys::UniqueFd(dup(listen_fd)), spec));
  loop_.start();
}

ProxyThread::~ProxyThread() {
  run([this] { server_.reset(); });
  loop_.stop();
}

void ProxyThread::run(std::function<void()> fn) { loop_.run(fn); }

ServerStats ProxyThread::stats() {
  ServerStats s;
  run([&] { s = server_->stats(); });
  return s;
}

void ProxyThread::start_drain() {
  run([this] {
    server_->drain([this] {
      std::lock_guard<std::mutex> lk(mu_);
      drained_ = true;
      cv_.notify_all();
    });
  });
}

bool ProxyThread::wait_drained(int timeout_ms) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [this] { return drained_; });
}

// ------------------------------------------------------------ Client

std::string ClientResponse::header(const std::string& name) const { return find(headers, name); }

bool ClientResponse::has_header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return true;
  return false;
}

Client::Client(uint16_t port) {
  fd_ = connect_loopback(port);
  if (fd_ >= 0) set_timeouts(fd_, 10);
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

bool Client::send(const std::string& bytes) { return fd_ >= 0 && write_all(fd_, bytes.data(), bytes.size()); }

void Client::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool Client::fill() {
  char tmp[65536];
  const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) {
    eof_ = n == 0;
    return false;
  }
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

std::optional<ClientResponse> Client::read_response(bool head_request) {
  while (true) {
    size_t pos;
    while ((pos = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return std::nullopt;
    const std::string head = buf_.substr(0, pos + 2);
    buf_.erase(0, pos + 4);
    ClientResponse r;
    std::string line;
    parse_headers(head, &line, &r.headers);
    if (line.size() < 12 || line.compare(0, 9, "HTTP/1.1 ") != 0) return std::nullopt;
    r.status = std::stoi(line.substr(9, 3));
    if (r.status < 200) continue;  // interim
    const std::string te = lower(r.header("transfer-encoding"));
    const std::string cl = r.header("content-length");
    if (head_request || r.status == 204 || r.status == 304) return r;
    if (te == "chunked") {
      r.chunked = true;
      while (true) {
        while ((pos = buf_.find("\r\n")) == std::string::npos)
          if (!fill()) return std::nullopt;
        const size_t size = std::stoul(buf_.substr(0, pos), nullptr, 16);
        buf_.erase(0, pos + 2);
        while (buf_.size() < size + 2)
          if (!fill()) return std::nullopt;
        if (size == 0) {
          buf_.erase(0, 2);
          return r;
        }
        r.body.append(buf_, 0, size);
        buf_.erase(0, size + 2);
      }
    }
    if (!cl.empty()) {
      const size_t n = std::stoull(cl);
      while (buf_.size() < n)
        if (!fill()) return std::nullopt;
      r.body = buf_.substr(0, n);
      buf_.erase(0, n);
      return r;
    }
    while (fill()) {
    }
    if (!eof_) return std::nullopt;
    r.body = buf_;
    buf_.clear();
    return r;
  }
}

bool Client::wait_closed(int timeout_ms) {
  if (eof_) return true;
  pollfd p{fd_, POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    const int rc = ::poll(&p, 1, 100);
    if (rc > 0) {
      char tmp[4096];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  return false;
}

std::optional<ClientResponse> roundtrip(uint16_t port, const std::string& request) {
  Client c(port);
  if (!c.connected() || !c.send(request)) return std::nullopt;
  return c.read_response();
}

}  // namespace huginn::worker::test
