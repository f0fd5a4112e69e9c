#include "h2c_backend.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/thread.h>
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <future>

#include "tests/support/worker_harness.h"

namespace huginn::worker::h2ctest {

std::string Recorded::header(const std::string& name) const {
  for (const auto& [n, v] : headers)
    if (n == name) return v;
  return {};
}

struct H2cBackend::Stream {
  Recorded req;
  std::string body;  // response body
  size_t off = 0;
};

struct H2cBackend::Conn {
  H2cBackend* b = nullptr;
  uint64_t id = 0;
  bufferevent* bev = nullptr;
  nghttp2_session* session = nullptr;
  std::map<int32_t, Stream> streams;
  bool dropped = false;

  ~Conn() {
    if (session) nghttp2_session_del(session);
    if (bev) bufferevent_free(bev);
  }

  void flush() {
    while (true) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session, &data);
      if (n <= 0) break;
      evbuffer_add(bufferevent_get_output(bev), data, static_cast<size_t>(n));
    }
  }

  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                           nghttp2_data_source* src, void* user) {
    auto* c = static_cast<Conn*>(user);
    auto* s = static_cast<Stream*>(src->ptr);
    const size_t n = std::min(len, s->body.size() - s->off);
    std::memcpy(buf, s->body.data() + s->off, n);
    s->off += n;
    c->b->produced_ += n;
    if (s->off == s->body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  void respond(int32_t id, Stream& s) {
    Behaviour bh;
    {
      std::lock_guard<std::mutex> lock(b->mu_);
      bh = b->behaviour_;
      b->requests_.push_back(s.req);
      if (b->behaviour_.hangups > 0) --b->behaviour_.hangups;
      if (bh.hangups == 0 && b->behaviour_.goaway_refusals > 0) --b->behaviour_.goaway_refusals;
    }
    if (bh.hangups == 0 && bh.goaway_refusals > 0) {
      nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, id - 2, NGHTTP2_NO_ERROR, nullptr, 0);
      return;
    }
    if (bh.hangups > 0) {
      b->drop(this);
      return;
    }
    if (bh.silent) return;
    if (bh.rst_error != 0) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, bh.rst_error);
      return;
    }
    s.body = bh.echo_body ? s.req.body : bh.body;
    Fields f;
    f.emplace_back(":status", std::to_string(bh.status));
    if (bh.content_length) f.emplace_back("content-length", std::to_string(s.body.size()));
    f.emplace_back("x-request-body-bytes", std::to_string(s.req.body.size()));
    for (const auto& h : bh.headers) f.push_back(h);
    if (bh.big_header != 0) f.emplace_back("x-big", std::string(bh.big_header, 'b'));
    if (bh.interim != 0) {
      std::string st = std::to_string(bh.interim);
      const nghttp2_nv nv{reinterpret_cast<uint8_t*>(const_cast<char*>(":status")),
                          reinterpret_cast<uint8_t*>(st.data()), 7, st.size(), NGHTTP2_NV_FLAG_NONE};
      nghttp2_submit_headers(session, NGHTTP2_FLAG_NONE, id, nullptr, &nv, 1, nullptr);
    }
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : f)
      nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                               n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    nghttp2_data_provider prd;
    prd.source.ptr = &s;
    prd.read_callback = &read_body;
    const bool with_body = s.req.method != "HEAD" && !s.body.empty();
    nghttp2_submit_response(session, id, nva.data(), nva.size(), with_body ? &prd : nullptr);
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* c = static_cast<Conn*>(user);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
      c->streams[frame->hd.stream_id].req.connection = c->id;
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* c = static_cast<Conn*>(user);
    auto it = c->streams.find(frame->hd.stream_id);
    if (it == c->streams.end()) return 0;
    Recorded& r = it->second.req;
    const std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":method") {
      r.method = v;
    } else if (n == ":scheme") {
      r.scheme = v;
    } else if (n == ":authority") {
      r.authority = v;
    } else if (n == ":path") {
      r.path = v;
    } else {
      r.headers.emplace_back(n, std::move(v));
    }
    return 0;
  }

  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
    auto* c = static_cast<Conn*>(user);
    auto it = c->streams.find(id);
    if (it != c->streams.end()) it->second.req.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* c = static_cast<Conn*>(user);
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      auto it = c->streams.find(frame->hd.stream_id);
      if (it != c->streams.end()) c->respond(frame->hd.stream_id, it->second);
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* user) {
    static_cast<Conn*>(user)->streams.erase(id);
    return 0;
  }

  static void read_cb(bufferevent* bev, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    const size_t len = evbuffer_get_length(in);
    const uint8_t* p = evbuffer_pullup(in, -1);
    const ssize_t rv = nghttp2_session_mem_recv(c->session, p, len);
    if (c->dropped) return;
    if (rv < 0) {
      c->b->drop(c);
      return;
    }
    evbuffer_drain(in, len);
    c->flush();
    c->maybe_close();
  }

  void maybe_close() {
    if (nghttp2_session_want_read(session) || nghttp2_session_want_write(session)) return;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) b->drop(this);
  }

  static void write_cb(bufferevent*, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    if (c->dropped) return;
    c->flush();
    c->maybe_close();
  }

  static void event_cb(bufferevent*, short what, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) c->b->drop(c);
  }
};

H2cBackend::H2cBackend() {
  // SIGPIPE is ignored by the test binaries' main() (tests/support/test_main.cpp):
  // libevent writes with writev(), and a cancelled exchange may close the
  // connection under a write.
  static const int threads_ok = evthread_use_pthreads();
  (void)threads_ok;
  base_ = event_base_new();
  const int fd = huginn::test::listen_loopback(&port_, 128, SOCK_NONBLOCK);
  EXPECT_GE(fd, 0);
  listener_ = evconnlistener_new(base_, &H2cBackend::accept_cb, this, LEV_OPT_CLOSE_ON_FREE, -1, fd);
  thread_ = std::thread([this] { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); });
}

H2cBackend::~H2cBackend() {
  run([this] {
    evconnlistener_free(listener_);
    conns_.clear();
  });
  event_base_loopbreak(base_);
  thread_.join();
  event_base_free(base_);
}

void H2cBackend::run(const std::function<void()>& fn) {
  std::promise<void> done;
  auto* task = new std::function<void()>([&] {
    fn();
    done.set_value();
  });
  const timeval zero{0, 0};
  event_base_once(
      base_, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) {
        std::unique_ptr<std::function<void()>> t(static_cast<std::function<void()>*>(arg));
        (*t)();
      },
      task, &zero);
  done.get_future().wait();
}

void H2cBackend::set(Behaviour b) {
  std::lock_guard<std::mutex> lock(mu_);
  behaviour_ = std::move(b);
}

std::vector<Recorded> H2cBackend::requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void H2cBackend::goaway_all() {
  run([this] {
    for (auto& [raw, c] : conns_) {
      nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR, nullptr,
                            0);
      c->flush();
    }
  });
}

void H2cBackend::accept_cb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  static_cast<H2cBackend*>(arg)->on_accept(fd);
}

void H2cBackend::on_accept(evutil_socket_t fd) {
  auto c = std::make_unique<Conn>();
  c->b = this;
  c->id = ++accepted_;
  c->bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Conn::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Conn::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Conn::on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Conn::on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Conn::on_stream_close);
  nghttp2_session_server_new(&c->session, cbs, c.get());
  nghttp2_session_callbacks_del(cbs);
  const nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 1);
  bufferevent_setcb(c->bev, &Conn::read_cb, &Conn::write_cb, &Conn::event_cb, c.get());
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
  c->flush();
  Conn* raw = c.get();
  conns_[raw] = std::move(c);
}

void H2cBackend::drop(Conn* c) {
  if (c->dropped) return;
  c->dropped = true;
  // Freed from the loop, not inside its own callback.
  bufferevent_disable(c->bev, EV_READ | EV_WRITE);
  bufferevent_setcb(c->bev, nullptr, nullptr, nullptr, nullptr);
  ++closed_;
  dropped_.push_back(c);
  const timeval zero{0, 0};
  event_base_once(
      base_, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* a) {
        auto* b = static_cast<H2cBackend*>(a);
        for (Conn* d : std::exchange(b->dropped_, {})) b->conns_.erase(d);
      },
      this, &zero);
}

}  // namespace huginn::worker::h2ctest
