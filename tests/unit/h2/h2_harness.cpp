#include "h2_harness.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "common/sys/c_handle.h"
#include "worker/proxy/router.h"
#include "worker/proxy/upstream_pool.h"

namespace huginn::worker::h2test {

using huginn::test::connect_loopback;
using huginn::test::write_all;

std::string simple_config(const std::string& backend, const std::string& extra) {
  return huginn::test::simple_config(
      backend, extra + "\n[security.headers]\ncustom = [{name = \"x-frame-options\", value = \"DENY\"}]\n");
}

// ------------------------------------------------------------ H2Server

H2Server::H2Server(std::shared_ptr<const config::Config> cfg, bool prebuffer)
    : cfg_(std::move(cfg)), prebuffer_(prebuffer) {
  base_ = loop_.base();
  ctx_.base = base_;
  ctx_.cfg = cfg_;
  ctx_.router = std::make_unique<proxy::Router>(*cfg_);
  ctx_.limits.max_header_bytes = cfg_->limits.max_header_bytes;
  ctx_.limits.max_headers = cfg_->limits.max_headers;
  ctx_.endpoints = proxy::resolve_backends(*cfg_);
  ctx_.pool = std::make_unique<proxy::UpstreamPool>(cfg_->backend_pool, cfg_->backends.size());
  ctx_.on_closed = [this](net::Connection* c) {
    ++closed_;
    // Destroyed later from the loop, never inside the call.
    closed_conns_.push_back(c);
    const timeval zero{0, 0};
    event_base_once(base_, -1, EV_TIMEOUT, &H2Server::reap_cb, this, &zero);
  };
  listen_fd_ = huginn::test::listen_loopback(&port_, 128, SOCK_NONBLOCK);
  EXPECT_GE(listen_fd_, 0);
  listen_ev_.reset(event_new(base_, listen_fd_, EV_READ | EV_PERSIST, &H2Server::accept_cb, this));
  event_add(listen_ev_.get(), nullptr);
  loop_.start();
}

H2Server::~H2Server() {
  run([this] {
    listen_ev_.reset();
    conns_.clear();
    closed_conns_.clear();
    ctx_.pool->clear();
  });
  loop_.stop();
  ctx_.pool.reset();
  ::close(listen_fd_);
}

void H2Server::run(const std::function<void()>& fn) { loop_.run(fn); }

void H2Server::drain() {
  run([this] {
    ctx_.draining = true;
    for (auto& c : conns_) c->drain();
  });
}

size_t H2Server::live() {
  size_t n = 0;
  run([&] {
    for (auto& c : conns_)
      if (!c->closed()) ++n;
  });
  return n;
}

uint64_t H2Server::total_requests() {
  uint64_t n = 0;
  run([&] { n = ctx_.total_requests; });
  return n;
}

std::vector<net::Http2Connection::Counters> H2Server::counters() {
  std::vector<net::Http2Connection::Counters> out;
  run([&] {
    out = finished_counters_;
    for (auto& c : conns_) out.push_back(c->counters());
  });
  return out;
}

void H2Server::reap_cb(evutil_socket_t, short, void* arg) {
  auto* s = static_cast<H2Server*>(arg);
  for (net::Connection* c : std::exchange(s->closed_conns_, {})) {
    for (size_t i = 0; i < s->conns_.size(); ++i) {
      if (s->conns_[i].get() != c) continue;
      s->finished_counters_.push_back(s->conns_[i]->counters());
      s->conns_.erase(s->conns_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
}

void H2Server::accept_cb(evutil_socket_t fd, short, void* arg) {
  auto* s = static_cast<H2Server*>(arg);
  while (true) {
    const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;
    s->on_accept(c);
  }
}

void H2Server::on_accept(int fd) {
  int one = 1;  // as the worker's Server does for every accepted socket
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bufferevent* bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
  ASSERT_NE(bev, nullptr);
  net::BufferEventPtr transport(bev);
  if (prebuffer_) {
    // What a protocol sniffer does: the preface is read before the
    // connection object exists and handed over in the input buffer.
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < kPreface.size() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 50);
      char tmp[24];
      const ssize_t n = ::recv(fd, tmp, kPreface.size() - got.size(), MSG_DONTWAIT);
      if (n > 0) got.append(tmp, static_cast<size_t>(n));
      if (n == 0) break;
    }
    EXPECT_EQ(got, kPreface);
    // The end of a socket bufferevent's input buffer is frozen (only the
    // bufferevent appends there): handed-over bytes are prepended.
    ASSERT_EQ(evbuffer_prepend(bufferevent_get_input(bev), got.data(), got.size()), 0);
  }
  net::ClientInfo info;
  info.peer_ip = "127.0.0.1";
  info.local_port = port_;
  auto conn = std::make_unique<net::Http2Connection>(ctx_, std::move(transport), std::move(info));
  net::Http2Connection* raw = conn.get();
  conns_.push_back(std::move(conn));
  raw->start();
}

// ------------------------------------------------------------ H2Client

std::string H2Response::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

H2Client::H2Client(uint16_t port, const std::vector<nghttp2_settings_entry>& settings, int32_t window_bump) {
  fd_ = connect_loopback(port);
  if (fd_ < 0) return;
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_stream_close);
  nghttp2_session_client_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  if (window_bump > 0) nghttp2_submit_window_update(session_, NGHTTP2_FLAG_NONE, 0, window_bump);
  flush();
}

H2Client::~H2Client() {
  if (session_) nghttp2_session_del(session_);
  if (fd_ >= 0) ::close(fd_);
}

ssize_t H2Client::read_upload(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                              nghttp2_data_source* src, void*) {
  auto* u = static_cast<Upload*>(src->ptr);
  const size_t n = std::min(len, u->data.size() - u->off);
  std::memcpy(buf, u->data.data() + u->off, n);
  u->off += n;
  if (u->off == u->data.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

int32_t H2Client::request(const std::string& method, const std::string& path, const std::string& authority,
                          const Fields& extra, std::optional<std::string> body) {
  Fields f = {{":method", method}, {":scheme", "http"}, {":authority", authority}, {":path", path}};
  f.insert(f.end(), extra.begin(), extra.end());
  std::vector<nghttp2_nv> nva;
  for (auto& [k, v] : f)
    nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(k.data()), reinterpret_cast<uint8_t*>(v.data()),
                             k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  int32_t id;
  if (body) {
    auto up = std::make_unique<Upload>();
    up->data = std::move(*body);
    nghttp2_data_provider prd;
    prd.source.ptr = up.get();
    prd.read_callback = &read_upload;
    id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &prd, nullptr);
    if (id > 0) uploads_[id] = std::move(up);
  } else {
    id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), nullptr, nullptr);
  }
  if (id > 0) responses_[id];
  flush();
  return id;
}

bool H2Client::flush() {
  if (fd_ < 0) return false;
  while (true) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return false;
    if (n == 0) return true;
    sent_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    if (!write_all(fd_, reinterpret_cast<const char*>(data), static_cast<size_t>(n))) return false;
  }
}

bool H2Client::send_raw(const std::string& bytes) {
  sent_.append(bytes);
  return write_all(fd_, bytes.data(), bytes.size());
}

bool H2Client::pump(int poll_ms) {
  flush();
  if (eof_) return false;
  if (stop_reading_) {
    ::usleep(static_cast<useconds_t>(poll_ms) * 1000);
    return true;
  }
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, poll_ms) <= 0) return true;
  char tmp[65536];
  const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  received_.append(tmp, static_cast<size_t>(n));
  const ssize_t r =
      nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(tmp), static_cast<size_t>(n));
  if (r < 0) ADD_FAILURE() << "client mem_recv: " << nghttp2_strerror(static_cast<int>(r));
  flush();
  return true;
}

bool H2Client::wait(const std::function<bool()>& pred, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (!pump(20) && !pred()) return false;
  }
  return true;
}

bool H2Client::wait_done(int32_t id, int timeout_ms) {
  return wait([&] { return responses_[id].closed; }, timeout_ms);
}

bool H2Client::wait_eof(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!eof_ && std::chrono::steady_clock::now() < deadline) pump(20);
  return eof_;
}

std::vector<std::pair<int32_t, uint32_t>> H2Client::raw_goaways() const {
  std::vector<std::pair<int32_t, uint32_t>> out;
  size_t off = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(received_.data());
  auto u32 = [&](size_t at) {
    return (uint32_t{p[at]} << 24) | (uint32_t{p[at + 1]} << 16) | (uint32_t{p[at + 2]} << 8) | p[at + 3];
  };
  while (off + 9 <= received_.size()) {
    const size_t len = (size_t{p[off]} << 16) | (size_t{p[off + 1]} << 8) | p[off + 2];
    if (off + 9 + len > received_.size()) break;
    if (p[off + 3] == NGHTTP2_GOAWAY && len >= 8)
      out.emplace_back(static_cast<int32_t>(u32(off + 9) & 0x7fffffffu), u32(off + 13));
    off += 9 + len;
  }
  return out;
}

int H2Client::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                        const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  auto* c = static_cast<H2Client*>(user);
  auto& r = c->responses_[frame->hd.stream_id];
  const std::string n(reinterpret_cast<const char*>(name), namelen);
  const std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") r.status = std::stoi(v);
  r.headers.emplace_back(n, v);
  return 0;
}

int H2Client::on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
  static_cast<H2Client*>(user)->responses_[id].body.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int H2Client::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<H2Client*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    ++c->goaways_;
    c->goaway_error_ = frame->goaway.error_code;
    c->goaway_last_ = frame->goaway.last_stream_id;
  } else if (frame->hd.type == NGHTTP2_RST_STREAM) {
    auto& r = c->responses_[frame->hd.stream_id];
    r.reset = true;
    r.reset_error = frame->rst_stream.error_code;
  } else if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
             (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    c->responses_[frame->hd.stream_id].done = true;
  }
  return 0;
}

int H2Client::on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* user) {
  static_cast<H2Client*>(user)->responses_[id].closed = true;
  return 0;
}

// ------------------------------------------------------------ RawClient

RawClient::RawClient(uint16_t port) { fd_ = connect_loopback(port); }

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::send(const std::string& bytes) { return write_all(fd_, bytes.data(), bytes.size()); }

bool RawClient::send(const std::vector<uint8_t>& bytes) {
  return write_all(fd_, reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

bool RawClient::fill(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char tmp[65536];
  const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

bool RawClient::wait_frame(uint8_t type, uint32_t* stream, std::string* payload, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    while (buf_.size() >= 9) {
      const auto* p = reinterpret_cast<const uint8_t*>(buf_.data());
      const size_t len = (size_t{p[0]} << 16) | (size_t{p[1]} << 8) | p[2];
      if (buf_.size() < 9 + len) break;
      if (p[3] == type) {
        *stream =
            ((uint32_t{p[5]} << 24) | (uint32_t{p[6]} << 16) | (uint32_t{p[7]} << 8) | p[8]) & 0x7fffffffu;
        payload->assign(buf_, 9, len);
        buf_.erase(0, 9 + len);
        return true;
      }
      buf_.erase(0, 9 + len);
    }
    if (eof_ || std::chrono::steady_clock::now() >= deadline) return false;
    fill(50);
  }
}

bool RawClient::wait_goaway(uint32_t* error, int timeout_ms) {
  uint32_t stream = 0;
  std::string payload;
  if (!wait_frame(NGHTTP2_GOAWAY, &stream, &payload, timeout_ms) || payload.size() < 8) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
  *error = (uint32_t{p[4]} << 24) | (uint32_t{p[5]} << 16) | (uint32_t{p[6]} << 8) | p[7];
  return true;
}

bool RawClient::wait_eof(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!eof_ && std::chrono::steady_clock::now() < deadline) {
    fill(50);
    buf_.clear();
  }
  return eof_;
}

// ------------------------------------------------------------ frames

std::string hpack(const Fields& headers) {
  nghttp2_hd_deflater* d = nullptr;
  nghttp2_hd_deflate_new(&d, 4096);
  std::vector<nghttp2_nv> nva;
  Fields copy = headers;
  for (auto& [k, v] : copy)
    nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(k.data()), reinterpret_cast<uint8_t*>(v.data()),
                             k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  std::string out(nghttp2_hd_deflate_bound(d, nva.data(), nva.size()), '\0');
  const ssize_t n =
      nghttp2_hd_deflate_hd(d, reinterpret_cast<uint8_t*>(out.data()), out.size(), nva.data(), nva.size());
  nghttp2_hd_deflate_del(d);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace huginn::worker::h2test
