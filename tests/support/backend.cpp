#include "tests/support/backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <json/json.h>

namespace huginn::testing {
namespace {

constexpr size_t kMaxHeader = 256 * 1024;
constexpr size_t kKeepBody = 64 * 1024;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Buffered reader over a blocking socket.
class Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}
  bool fill() {
    char tmp[65536];
    for (;;) {
      ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(r));
      return true;
    }
  }
  // Reads up to and including "\r\n\r\n"; false on EOF/oversize.
  bool read_head(std::string* head) {
    for (;;) {
      auto pos = buf_.find("\r\n\r\n");
      if (pos != std::string::npos) {
        *head = buf_.substr(0, pos + 4);
        buf_.erase(0, pos + 4);
        return true;
      }
      if (buf_.size() > kMaxHeader || !fill()) return false;
    }
  }
  bool read_line(std::string* line) {
    for (;;) {
      auto pos = buf_.find("\r\n");
      if (pos != std::string::npos) {
        *line = buf_.substr(0, pos);
        buf_.erase(0, pos + 2);
        return true;
      }
      if (buf_.size() > kMaxHeader || !fill()) return false;
    }
  }
  // Consumes exactly n bytes, handing them to `sink` in pieces.
  template <typename Sink>
  bool read_n(uint64_t n, Sink&& sink) {
    while (n > 0) {
      if (buf_.empty() && !fill()) return false;
      size_t take = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
      sink(buf_.data(), take);
      buf_.erase(0, take);
      n -= take;
    }
    return true;
  }

 private:
  int fd_;
  std::string buf_;
};

}  // namespace

std::string Request::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

int Request::header_count(const std::string& name) const {
  return static_cast<int>(
      std::count_if(headers.begin(), headers.end(), [&](const auto& kv) { return kv.first == name; }));
}

void fnv_pattern(uint64_t offset, char* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(((offset + i) * 31 + 7) & 0xff);
}

uint64_t fnv1a(uint64_t h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string echo_json(const Request& r) {
  Json::Value v;
  v["method"] = r.method;
  v["path"] = r.target;
  v["version"] = r.version;
  Json::Value h(Json::objectValue);
  for (const auto& [k, val] : r.headers) {
    if (h.isMember(k))
      h[k] = h[k].asString() + ", " + val;
    else
      h[k] = val;
  }
  v["headers"] = h;
  v["body_bytes"] = static_cast<Json::UInt64>(r.body_bytes);
  v["body_fnv"] = std::to_string(r.body_fnv);
  v["connection"] = static_cast<Json::UInt64>(r.connection_id);
  Json::StreamWriterBuilder b;
  b["indentation"] = "  ";
  return Json::writeString(b, v) + "\n";
}

Backend::Backend(Handler handler, const std::string& address, uint16_t port)
    : handler_(std::move(handler)), host_(address) {
  const bool v6 = address.find(':') != std::string::npos;
  listen_fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    inet_pton(AF_INET6, address.c_str(), &s6->sin6_addr);
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    inet_pton(AF_INET, address.c_str(), &s4->sin_addr);
    len = sizeof *s4;
  }
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(listen_fd_, 512) != 0)
    throw std::runtime_error(std::string("backend bind/listen: ") + std::strerror(errno));
  len = sizeof ss;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

Backend::~Backend() { stop(); }

std::string Backend::address() const {
  return (host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

void Backend::reject_early_under(const std::string& prefix) {
  std::lock_guard lk(mu_);
  early_prefix_ = prefix;
}

std::vector<Request> Backend::received() const {
  std::lock_guard lk(mu_);
  return received_;
}

void Backend::stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard lk(mu_);
    for (int fd : conn_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void Backend::accept_loop() {
  while (!stopping_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const uint64_t id = ++connections_;
    std::lock_guard lk(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    conn_fds_.push_back(fd);
    threads_.emplace_back([this, fd, id] { serve(fd, id); });
  }
}

void Backend::serve(int fd, uint64_t id) {
  Conn c(fd);
  for (;;) {
    std::string head;
    if (!c.read_head(&head)) break;
    Request req;
    req.connection_id = id;
    size_t eol = head.find("\r\n");
    std::string line = head.substr(0, eol);
    size_t s1 = line.find(' '), s2 = line.rfind(' ');
    if (s1 == std::string::npos || s2 == s1) break;
    req.method = line.substr(0, s1);
    req.target = line.substr(s1 + 1, s2 - s1 - 1);
    req.version = line.substr(s2 + 1);
    size_t pos = eol + 2;
    while (pos < head.size() - 2) {
      size_t e = head.find("\r\n", pos);
      std::string h = head.substr(pos, e - pos);
      pos = e + 2;
      size_t colon = h.find(':');
      if (colon == std::string::npos) continue;
      std::string v = h.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      v.erase(v.find_last_not_of(" \t") + 1);
      req.headers.emplace_back(lower(h.substr(0, colon)), v);
    }
    bool early = false;
    {
      std::lock_guard lk(mu_);
      early = !early_prefix_.empty() && req.target.rfind(early_prefix_, 0) == 0;
    }
    uint64_t fnv = kFnvInit;
    auto sink = [&](const char* p, size_t n) {
      fnv = fnv1a(fnv, p, n);
      req.body_bytes += n;
      if (req.body.size() < kKeepBody) req.body.append(p, std::min(n, kKeepBody - req.body.size()));
    };
    bool ok = true;
    if (early) {
      // The body is not read: answered below, then dropped.
    } else if (lower(req.header("transfer-encoding")).find("chunked") != std::string::npos) {
      for (;;) {
        std::string sz;
        if (!c.read_line(&sz)) {
          ok = false;
          break;
        }
        uint64_t n = std::strtoull(sz.c_str(), nullptr, 16);
        if (n == 0) {
          std::string trailer;
          while ((ok = c.read_line(&trailer)) && !trailer.empty()) {
          }
          break;
        }
        std::string crlf;
        if (!c.read_n(n, sink) || !c.read_line(&crlf)) {
          ok = false;
          break;
        }
      }
    } else if (!req.header("content-length").empty()) {
      ok = c.read_n(std::strtoull(req.header("content-length").c_str(), nullptr, 10), sink);
    }
    if (!ok) break;
    req.body_fnv = fnv;
    ++requests_;
    {
      std::lock_guard lk(mu_);
      received_.push_back(req);
    }
    Response resp;
    if (early) {
      resp.status = 413;
      resp.body = "too large";
    } else if (handler_) {
      resp = handler_(req);
    } else {
      resp.body = echo_json(req);
      resp.headers.emplace_back("Content-Type", "application/json");
    }
    if (resp.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(resp.delay_ms));
    if (resp.drop_connection) break;
    const bool head_req = req.method == "HEAD";
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " X\r\n";
    for (const auto& [k, v] : resp.headers) out += k + ": " + v + "\r\n";
    const bool streamed = resp.stream_bytes > 0;
    if (streamed && resp.chunked)
      out += "Transfer-Encoding: chunked\r\n";
    else
      out += "Content-Length: " + std::to_string(streamed ? resp.stream_bytes : resp.body.size()) + "\r\n";
    const bool close_after = early || resp.close_after || lower(req.header("connection")) == "close";
    if (close_after) out += "Connection: close\r\n";
    out += "\r\n";
    if (!streamed && !head_req) out += resp.body;  // one write: no Nagle/delayed-ACK stall
    if (!send_all(fd, out.data(), out.size())) break;
    if (!head_req) {
      if (streamed) {
        char chunk[65536];
        uint64_t off = 0;
        while (off < resp.stream_bytes && ok) {
          size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof chunk, resp.stream_bytes - off));
          fnv_pattern(off, chunk, n);
          if (resp.chunked) {
            char hdr[32];
            int hl = std::snprintf(hdr, sizeof hdr, "%zx\r\n", n);
            ok = send_all(fd, hdr, static_cast<size_t>(hl)) && send_all(fd, chunk, n) &&
                 send_all(fd, "\r\n", 2);
          } else {
            ok = send_all(fd, chunk, n);
          }
          off += n;
        }
        if (ok && resp.chunked) ok = send_all(fd, "0\r\n\r\n", 5);
      }
    }
    if (ok && early) {
      // A lingering close: what the client still sends is read and dropped,
      // so that closing cannot reset the connection under the response.
      ::shutdown(fd, SHUT_WR);
      char sinkbuf[65536];
      while (::recv(fd, sinkbuf, sizeof sinkbuf, 0) > 0) {
      }
    }
    if (!ok || close_after) break;
  }
  std::lock_guard lk(mu_);
  conn_fds_.erase(std::remove(conn_fds_.begin(), conn_fds_.end(), fd), conn_fds_.end());
  ::close(fd);
}

}  // namespace huginn::testing
