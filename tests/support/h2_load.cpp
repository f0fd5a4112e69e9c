#include "tests/support/h2_load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>

#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"

namespace huginn::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Session = sys::CHandle<nghttp2_session, nghttp2_session_del>;
using Callbacks = sys::CHandle<nghttp2_session_callbacks, nghttp2_session_callbacks_del>;
using SslCtx = sys::CHandle<SSL_CTX, SSL_CTX_free>;
using Ssl = sys::CHandle<SSL, SSL_free>;

constexpr size_t kMaxErrors = 10;
constexpr size_t kMaxOut = 64 * 1024;

void add_error(H2LoadResult& r, std::string what) {
  if (r.errors.size() < kMaxErrors) r.errors.push_back(std::move(what));
}

nghttp2_nv nv(const std::string& name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

// What every client thread shares.
struct Shared {
  const H2LoadOptions& opts;
  Clock::time_point end;       // no new request is started after this ...
  Clock::time_point deadline;  // ... and none is retried after this
  SSL_CTX* tls = nullptr;
  std::mutex mu;
  H2LoadResult total;
};

// One client: one connection at a time, up to opts.streams streams on it.
class Client {
 public:
  explicit Client(Shared& sh)
      : sh_(sh), o_(sh.opts), authority_(o_.authority.empty() ? "localhost" : o_.authority) {}

  void run() {
    while (want_request()) {
      if (!connect()) {
        ++r_.connection_errors;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      ++r_.connects;
      serve();
      session_.reset();
      ssl_.reset();
      fd_.reset();
    }
    if (to_retry_ > 0) {
      r_.lost += to_retry_;
      add_error(r_, std::to_string(to_retry_) + " requests could not be retried before the deadline");
    }
    std::lock_guard lk(sh_.mu);
    H2LoadResult& t = sh_.total;
    t.ok_2xx += r_.ok_2xx;
    t.other_status += r_.other_status;
    t.stream_resets += r_.stream_resets;
    t.connection_errors += r_.connection_errors;
    t.lost += r_.lost;
    t.retried += r_.retried;
    t.goaways += r_.goaways;
    t.connects += r_.connects;
    for (auto& e : r_.errors) add_error(t, std::move(e));
    t.samples.insert(t.samples.end(), r_.samples.begin(), r_.samples.end());
  }

 private:
  struct Stream {
    Clock::time_point submitted;
    int status = 0;
    std::string header;
  };
  enum class Io { kOk, kEof, kError };

  bool want_request() const {
    const auto now = Clock::now();
    const bool stopped = now >= sh_.end || (o_.stop && o_.stop->load());
    return !stopped || (to_retry_ > 0 && now < sh_.deadline);
  }

  bool connect() {
    open_.clear();
    out_.clear();
    goaway_ = false;
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (o_.host.find(':') != std::string::npos) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(o_.port);
      inet_pton(AF_INET6, o_.host.c_str(), &s6->sin6_addr);
      len = sizeof *s6;
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      s4->sin_port = htons(o_.port);
      inet_pton(AF_INET, o_.host.c_str(), &s4->sin_addr);
      len = sizeof *s4;
    }
    fd_.reset(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd_) return fail_connect("socket");
    int one = 1;
    setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Bounds a blocking connect and TLS handshake.
    const timeval tv{o_.stream_timeout_ms / 1000, (o_.stream_timeout_ms % 1000) * 1000};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return fail_connect("connect");
    if (sh_.tls) {
      ssl_.reset(SSL_new(sh_.tls));
      if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) return fail_connect("SSL_new");
      if (!o_.sni.empty()) SSL_set_tlsext_host_name(ssl_.get(), o_.sni.c_str());
      if (SSL_connect(ssl_.get()) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
        add_error(r_, std::string("TLS handshake: ") + buf);
        return false;
      }
      const unsigned char* alpn = nullptr;
      unsigned alpn_len = 0;
      SSL_get0_alpn_selected(ssl_.get(), &alpn, &alpn_len);
      if (std::string(reinterpret_cast<const char*>(alpn), alpn_len) != "h2") {
        add_error(r_, "TLS: the server did not select ALPN h2");
        return false;
      }
    }
    fcntl(fd_.get(), F_SETFL, fcntl(fd_.get(), F_GETFL) | O_NONBLOCK);

    nghttp2_session_callbacks* raw_cbs = nullptr;
    if (nghttp2_session_callbacks_new(&raw_cbs) != 0) return false;
    Callbacks cbs(raw_cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs.get(), &Client::on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs.get(), &Client::on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs.get(), &Client::on_frame_not_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs.get(), &Client::on_stream_close);
    nghttp2_session* raw = nullptr;
    if (nghttp2_session_client_new(&raw, cbs.get(), this) != 0) return false;
    session_.reset(raw);
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    nghttp2_submit_settings(session_.get(), NGHTTP2_FLAG_NONE, settings, 1);
    return true;
  }

  bool fail_connect(const char* what) {
    add_error(r_, std::string(what) + ": " + std::strerror(errno));
    return false;
  }

  // Runs one connection until the server ends it (after a GOAWAY, once every
  // stream it still processes is done), it fails, or the load is over.
  void serve() {
    auto last_progress = Clock::now();
    for (;;) {
      const size_t limit = std::min<size_t>(
          static_cast<size_t>(o_.streams),
          nghttp2_session_get_remote_settings(session_.get(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
      while (!goaway_ && open_.size() < limit && want_request() &&
             nghttp2_session_check_request_allowed(session_.get())) {
        if (!submit()) return fail_connection("nghttp2_submit_request failed");
      }
      if (!flush()) return;
      if (open_.empty() && (goaway_ || !want_request())) return;  // done with this connection
      if (!nghttp2_session_want_read(session_.get()) && !nghttp2_session_want_write(session_.get()))
        return fail_connection("the session ended with streams open");

      pollfd p{fd_.get(), static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0};
      const int n = poll(&p, 1, 50);
      if (n < 0 && errno != EINTR) return fail_connection(std::string("poll: ") + std::strerror(errno));
      if (n <= 0) {
        if (!open_.empty() && Clock::now() - last_progress > std::chrono::milliseconds(o_.stream_timeout_ms))
          return fail_connection("no response for " + std::to_string(o_.stream_timeout_ms) + " ms");
        continue;
      }
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        switch (read_input()) {
          case Io::kOk:
            break;
          case Io::kEof:
            if (!open_.empty())
              return fail_connection("closed by the server with " + std::to_string(open_.size()) +
                                     " streams open" + (goaway_ ? " after a GOAWAY" : ""));
            return;
          case Io::kError:
            return;  // counted by read_input
        }
        last_progress = Clock::now();
      }
    }
  }

  bool submit() {
    const std::string method = ":method", get = "GET", scheme = ":scheme", auth = ":authority",
                      path = ":path";
    const std::string scheme_value = sh_.tls ? "https" : "http";
    const nghttp2_nv nva[] = {nv(method, get), nv(scheme, scheme_value), nv(auth, authority_),
                              nv(path, o_.path)};
    const int32_t id = nghttp2_submit_request(session_.get(), nullptr, nva, 4, nullptr, nullptr);
    if (id < 0) return false;
    open_[id] = Stream{Clock::now(), 0, {}};
    if (to_retry_ > 0) --to_retry_;
    return true;
  }

  // Serializes what the session has to send and writes as much as the socket takes.
  bool flush() {
    for (;;) {
      while (out_.size() < kMaxOut) {
        const uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(session_.get(), &data);
        if (n < 0) {
          fail_connection(std::string("nghttp2 send: ") + nghttp2_strerror(static_cast<int>(n)));
          return false;
        }
        if (n == 0) break;
        out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      }
      if (out_.empty()) return true;
      const ssize_t w = write_some(out_.data(), out_.size());
      if (w < 0) {
        fail_connection(std::string("write: ") + std::strerror(errno));
        return false;
      }
      if (w == 0) return true;  // would block: poll for POLLOUT
      out_.erase(0, static_cast<size_t>(w));
    }
  }

  // > 0 written, 0 would block, < 0 error.
  ssize_t write_some(const char* p, size_t n) {
    if (!ssl_) {
      const ssize_t w = send(fd_.get(), p, n, MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
      return w;
    }
    const int w = SSL_write(ssl_.get(), p, static_cast<int>(n));
    if (w > 0) return w;
    const int e = SSL_get_error(ssl_.get(), w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return 0;
    if (e != SSL_ERROR_SYSCALL || errno == 0) errno = EPROTO;
    return -1;
  }

  // Reads until the socket would block and feeds the session.
  Io read_input() {
    char buf[16384];
    for (;;) {
      ssize_t n = 0;
      if (!ssl_) {
        n = recv(fd_.get(), buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Io::kOk;
      } else {
        const int r = SSL_read(ssl_.get(), buf, sizeof buf);
        n = r;
        if (r <= 0) {
          const int e = SSL_get_error(ssl_.get(), r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Io::kOk;
          n = e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
          if (n < 0 && (e != SSL_ERROR_SYSCALL || errno == 0)) errno = EPROTO;
        }
      }
      if (n == 0) return Io::kEof;
      if (n < 0) {
        fail_connection(std::string("read: ") + std::strerror(errno));
        return Io::kError;
      }
      const ssize_t rv = nghttp2_session_mem_recv(session_.get(), reinterpret_cast<const uint8_t*>(buf),
                                                  static_cast<size_t>(n));
      if (rv < 0) {
        fail_connection(std::string("HTTP/2 protocol error: ") + nghttp2_strerror(static_cast<int>(rv)));
        return Io::kError;
      }
    }
  }

  // The connection is unusable: every request still open on it is lost.
  void fail_connection(const std::string& why) {
    ++r_.connection_errors;
    r_.lost += open_.size();
    add_error(r_, why + " (" + std::to_string(open_.size()) + " requests lost)");
    open_.clear();
  }

  // ------------------------------------------------------------ nghttp2 callbacks

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* c = static_cast<Client*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto it = c->open_.find(frame->hd.stream_id);
    if (it == c->open_.end()) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      it->second.status = std::atoi(std::string(v).c_str());
    } else if (!c->o_.record_header.empty() && n == c->o_.record_header) {
      it->second.header = v;
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* c = static_cast<Client*>(user);
    if (frame->hd.type != NGHTTP2_GOAWAY) return 0;
    // Streams above last_stream_id are closed by nghttp2 right after this
    // with REFUSED_STREAM (on_stream_close retries them).
    ++c->r_.goaways;
    c->goaway_ = true;
    if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      ++c->r_.connection_errors;
      add_error(c->r_, std::string("GOAWAY ") + nghttp2_http2_strerror(frame->goaway.error_code));
    }
    return 0;
  }

  // A request whose HEADERS were not sent (a GOAWAY came first) was never seen
  // by the server: issue it again.
  static int on_frame_not_send(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* user) {
    auto* c = static_cast<Client*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto it = c->open_.find(frame->hd.stream_id);
    if (it == c->open_.end()) return 0;
    c->open_.erase(it);
    if (lib_error == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED) {
      ++c->r_.retried;
      ++c->to_retry_;
    } else {
      ++c->r_.lost;
      add_error(c->r_, std::string("request not sent: ") + nghttp2_strerror(lib_error));
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
    auto* c = static_cast<Client*>(user);
    auto it = c->open_.find(stream_id);
    if (it == c->open_.end()) return 0;
    Stream s = std::move(it->second);
    c->open_.erase(it);
    H2LoadResult& r = c->r_;
    if (error_code == NGHTTP2_REFUSED_STREAM) {
      // RST_STREAM REFUSED_STREAM, or above a GOAWAY's last stream id: not processed.
      ++r.retried;
      ++c->to_retry_;
    } else if (error_code != NGHTTP2_NO_ERROR) {
      ++r.stream_resets;
      add_error(r, "stream " + std::to_string(stream_id) + " reset: " + nghttp2_http2_strerror(error_code));
    } else if (s.status == 0) {
      ++r.lost;
      add_error(r, "stream " + std::to_string(stream_id) + " closed without a response");
    } else {
      ++(s.status >= 200 && s.status < 300 ? r.ok_2xx : r.other_status);
      if (s.status < 200 || s.status >= 300)
        add_error(r, "stream " + std::to_string(stream_id) + ": status " + std::to_string(s.status));
      r.samples.push_back({s.submitted, Clock::now(), s.status, std::move(s.header)});
    }
    return 0;
  }

  Shared& sh_;
  const H2LoadOptions& o_;
  const std::string authority_;
  H2LoadResult r_;
  uint64_t to_retry_ = 0;  // requests the server did not process, to issue again
  sys::UniqueFd fd_;
  Ssl ssl_;
  Session session_;
  std::map<int32_t, Stream> open_;  // submitted, not yet closed
  std::string out_;                 // serialized, not yet written
  bool goaway_ = false;             // no new stream on this connection
};

}  // namespace

std::string H2LoadResult::summary() const {
  std::string s = "completed " + std::to_string(completed()) + " (2xx " + std::to_string(ok_2xx) +
                  ", other " + std::to_string(other_status) + "), resets " + std::to_string(stream_resets) +
                  ", lost " + std::to_string(lost) + ", connection errors " +
                  std::to_string(connection_errors) + ", retried " + std::to_string(retried) + ", GOAWAYs " +
                  std::to_string(goaways) + ", connections " + std::to_string(connects);
  for (const auto& e : errors) s += "\n  " + e;
  return s;
}

H2LoadResult run_h2_load(const H2LoadOptions& opts) {
  Shared sh{opts, {}, {}, nullptr, {}, {}};
  SslCtx ctx;
  if (opts.tls) {
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof kAlpn);
    sh.tls = ctx.get();
  }
  sh.end = Clock::now() + opts.duration;
  sh.deadline = sh.end + std::chrono::milliseconds(opts.stream_timeout_ms);
  std::vector<std::thread> threads;
  for (int i = 0; i < opts.connections; ++i) threads.emplace_back([&sh] { Client(sh).run(); });
  for (auto& t : threads) t.join();
  return std::move(sh.total);
}

}  // namespace huginn::testing
