// worker/net/bulk_io: large reads into a socket bufferevent's input, and the
// output pump that writes without toggling libevent's write event. Real
// socketpairs, a real event base.
#include "worker/net/bulk_io.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <string>
#include <vector>

#include "common/sys/c_handle.h"
#include "tests/support/test_certs.h"
#include "worker/net/event_handles.h"
#include "worker/net/worker_context.h"

// Counts FIONREAD on one socket: libevent's socket reads ask it before every
// read, direct reads must not. This definition takes the place of libc's for
// libevent too (an executable's symbols come first); it forwards every call.
namespace {
std::atomic<int> fionread_fd{-1};
std::atomic<int> fionread_calls{0};
}  // namespace

extern "C" int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (request == FIONREAD && fd == fionread_fd.load()) ++fionread_calls;
  return static_cast<int>(syscall(SYS_ioctl, fd, request, arg));
}

namespace huginn::worker::net {
namespace {

using BasePtr = EventBasePtr;

struct Pair {
  int ours = -1;  // given to the bufferevent
  int peer = -1;  // the test's end
  Pair() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0) {
      ours = sv[0];
      peer = sv[1];
      int big = 4 << 20;
      setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
      setsockopt(ours, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
  }
  ~Pair() {
    if (peer >= 0) close(peer);
  }
};

// A socketpair with large buffers: `ours` is owned by the bufferevent under
// test, `peer` is the test's end. One event base per test.
class BulkIo : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(base_);
    ASSERT_GE(pair_.ours, 0);
    bev_.reset(bufferevent_socket_new(base_.get(), pair_.ours, BEV_OPT_CLOSE_ON_FREE));
    ASSERT_TRUE(bev_);
  }
  bufferevent* bev() const { return bev_.get(); }
  int peer() const { return pair_.peer; }
  int ours() const { return pair_.ours; }
  void loop_once() { event_base_loop(base_.get(), EVLOOP_NONBLOCK); }

  BasePtr base_{new_event_base()};  // configured like a worker's
  Pair pair_;
  BufferEventPtr bev_;
};

struct WriteProbe {
  int callbacks = 0;
  OutputPump* pump = nullptr;
};

void probe_write_cb(bufferevent*, void* arg) {
  auto* p = static_cast<WriteProbe*>(arg);
  ++p->callbacks;
  p->pump->done_writing();
}

size_t drain_peer(int fd) {
  char buf[65536];
  size_t n = 0;
  for (;;) {
    const ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  return n;
}

TEST_F(BulkIo, PumpWritesWithoutEnablingTheWriteEventAndCallsTheWriteCallback) {
  OutputPump pump;
  WriteProbe probe{0, &pump};
  bufferevent_setcb(bev(), nullptr, &probe_write_cb, nullptr, &probe);
  bufferevent_enable(bev(), EV_READ | EV_WRITE);
  ASSERT_TRUE(pump.attach(base_.get(), bev(), &probe_write_cb, &probe));
  EXPECT_EQ(bufferevent_get_enabled(bev()) & EV_WRITE, 0);
  for (int round = 0; round < 3; ++round) {
    evbuffer_add(bufferevent_get_output(bev()), "response", 8);
    EXPECT_EQ(bufferevent_get_enabled(bev()) & EV_WRITE, 0);  // no write interest armed
    loop_once();
    EXPECT_EQ(out_len(bev()), 0u);
    EXPECT_EQ(drain_peer(peer()), 8u);
    EXPECT_EQ(probe.callbacks, round + 1);
  }
  EXPECT_EQ(bufferevent_get_enabled(bev()) & EV_WRITE, 0);
}

TEST_F(BulkIo, PumpHandsAShortWriteToLibeventAndTakesOverAgainWhenEmpty) {
  int small = 16 * 1024;
  setsockopt(peer(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  setsockopt(ours(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  OutputPump pump;
  WriteProbe probe{0, &pump};
  bufferevent_setcb(bev(), nullptr, &probe_write_cb, nullptr, &probe);
  bufferevent_setwatermark(bev(), EV_WRITE, 0, 0);
  ASSERT_TRUE(pump.attach(base_.get(), bev(), &probe_write_cb, &probe));
  const std::string big(2 << 20, 'y');
  evbuffer_add(bufferevent_get_output(bev()), big.data(), big.size());
  loop_once();
  // The socket took part of it: libevent owns the rest, under its write event.
  EXPECT_GT(out_len(bev()), 0u);
  EXPECT_NE(bufferevent_get_enabled(bev()) & EV_WRITE, 0);
  EXPECT_EQ(probe.callbacks, 0);
  size_t got = 0;
  for (int i = 0; i < 10000 && got < big.size(); ++i) {
    got += drain_peer(peer());
    loop_once();
  }
  got += drain_peer(peer());
  EXPECT_EQ(got, big.size());
  EXPECT_EQ(out_len(bev()), 0u);
  EXPECT_GE(probe.callbacks, 1);
  EXPECT_EQ(bufferevent_get_enabled(bev()) & EV_WRITE, 0);  // back with the pump
  // And the next response goes straight out again.
  evbuffer_add(bufferevent_get_output(bev()), "next", 4);
  loop_once();
  EXPECT_EQ(drain_peer(peer()), 4u);
}

TEST_F(BulkIo, PumpDetachGivesQueuedBytesBackToLibevent) {
  OutputPump pump;
  WriteProbe probe{0, &pump};
  ASSERT_TRUE(pump.attach(base_.get(), bev(), &probe_write_cb, &probe));
  evbuffer_add(bufferevent_get_output(bev()), "queued", 6);
  pump.detach();  // before the deferred flush ran
  EXPECT_FALSE(pump.attached());
  EXPECT_NE(bufferevent_get_enabled(bev()) & EV_WRITE, 0);
  loop_once();
  EXPECT_EQ(drain_peer(peer()), 6u);
  EXPECT_EQ(probe.callbacks, 0);
}

// A small request over TLS must not make libevent's openssl bufferevent
// reserve the whole input window (kReadHigh) before its SSL_read: that was
// one 512 KiB allocation per read, i.e. a brk() and fresh pages per request.
// Real handshake over a socketpair, heap in use measured while the request
// sits in the input.
struct TlsReadProbe {
  size_t heap_at_read = 0;
  size_t bytes = 0;
};

void tls_probe_read_cb(bufferevent* bev, void* arg) {
  auto* p = static_cast<TlsReadProbe*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  p->heap_at_read = mallinfo2().uordblks;
  p->bytes += evbuffer_get_length(in);
  evbuffer_drain(in, evbuffer_get_length(in));
}

// A TLS 1.3 connection over a socketpair: the server side in an open
// bufferevent_openssl (as the acceptor hands it over), the client an SSL on
// the peer socket.
struct TlsPair {
  using CtxPtr = sys::CHandle<SSL_CTX, SSL_CTX_free>;
  using SslPtr = sys::CHandle<SSL, SSL_free>;
  huginn::test::TestPki pki;
  CtxPtr sctx{SSL_CTX_new(TLS_server_method())}, cctx{SSL_CTX_new(TLS_client_method())};
  Pair pair;
  SslPtr client;
  BasePtr base{new_event_base()};
  BufferEventPtr bev;

  // `peer_rcvbuf`: the client socket's receive buffer (0: the Pair's 4 MiB).
  bool open(int peer_rcvbuf = 0) {
    const auto pem = pki.server("srv", {"localhost"});
    if (!sctx || !cctx || pair.ours < 0 || !base) return false;
    if (SSL_CTX_use_certificate_chain_file(sctx.get(), pem.cert_path.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(sctx.get(), pem.key_path.c_str(), SSL_FILETYPE_PEM) != 1)
      return false;
    SSL_CTX_set_num_tickets(sctx.get(), 0);
    if (peer_rcvbuf > 0) {
      setsockopt(pair.peer, SOL_SOCKET, SO_RCVBUF, &peer_rcvbuf, sizeof peer_rcvbuf);
      setsockopt(pair.ours, SOL_SOCKET, SO_SNDBUF, &peer_rcvbuf, sizeof peer_rcvbuf);
    }
    SslPtr server(SSL_new(sctx.get()));
    client.reset(SSL_new(cctx.get()));
    if (!server || !client) return false;
    SSL_set_fd(server.get(), pair.ours);
    SSL_set_fd(client.get(), pair.peer);
    int s = 0, c = 0;
    for (int i = 0; i < 100 && (s != 1 || c != 1); ++i) {
      if (c != 1) c = SSL_connect(client.get());
      if (s != 1) s = SSL_accept(server.get());
    }
    if (s != 1 || c != 1) return false;
    bev.reset(bufferevent_openssl_socket_new(base.get(), pair.ours, server.get(), BUFFEREVENT_SSL_OPEN,
                                             BEV_OPT_CLOSE_ON_FREE));
    if (!bev) return false;
    server.release();  // the bufferevent frees it (and closes the socket)
    return true;
  }

  // What the client can read now (non-blocking socket: stops at WANT_READ).
  std::string client_read() {
    std::string got;
    char buf[16384];
    for (;;) {
      const int n = SSL_read(client.get(), buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
};

TEST(BulkIoTls, ASmallTlsReadDoesNotReserveTheWholeReadWindow) {
  TlsPair t;
  ASSERT_TRUE(t.open());
  bufferevent* bev = t.bev.get();
  raise_io_limits(bev);
  bufferevent_setwatermark(bev, EV_READ, 0, kReadHigh);  // as the connections set it
  TlsReadProbe probe;
  bufferevent_setcb(bev, &tls_probe_read_cb, nullptr, nullptr, &probe);
  bufferevent_enable(bev, EV_READ);
  const std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  for (int round = 0; round < 3; ++round) {
    const size_t before = mallinfo2().uordblks;
    ASSERT_EQ(SSL_write(t.client.get(), request.data(), static_cast<int>(request.size())),
              static_cast<int>(request.size()));
    const size_t want = probe.bytes + request.size();
    for (int i = 0; i < 100 && probe.bytes < want; ++i) event_base_loop(t.base.get(), EVLOOP_ONCE);
    ASSERT_EQ(probe.bytes, want);
    // Two records' worth at most (kTlsReadStep), not kReadHigh (256 KiB).
    EXPECT_LT(probe.heap_at_read - std::min(before, probe.heap_at_read), 64u * 1024) << "round " << round;
  }
}

TEST(BulkIoTls, PumpWritesTlsResponsesAtOnceAndTakesTheWriteEventBack) {
  TlsPair t;
  ASSERT_TRUE(t.open());
  bufferevent* bev = t.bev.get();
  OutputPump pump;
  WriteProbe probe{0, &pump};
  bufferevent_setcb(bev, nullptr, &probe_write_cb, nullptr, &probe);
  ASSERT_TRUE(pump.attach(t.base.get(), bev, &probe_write_cb, &probe));
  EXPECT_FALSE(event_pending(&bev->ev_write, EV_WRITE, nullptr));  // the creation's write event, taken back
  for (int round = 0; round < 3; ++round) {
    const std::string response = "response " + std::to_string(round);
    evbuffer_add(bufferevent_get_output(bev), response.data(), response.size());
    event_base_loop(t.base.get(), EVLOOP_NONBLOCK);
    EXPECT_EQ(out_len(bev), 0u);
    EXPECT_FALSE(event_pending(&bev->ev_write, EV_WRITE, nullptr));
    EXPECT_EQ(t.client_read(), response);
    EXPECT_EQ(probe.callbacks, round + 1);
  }
  EXPECT_NE(bufferevent_get_enabled(bev) & EV_WRITE, 0);  // EV_WRITE stays enabled for libevent
}

TEST(BulkIoTls, PumpLeavesABlockedTlsWriteToLibeventAndEveryByteArrives) {
  TlsPair t;
  ASSERT_TRUE(t.open(16 * 1024));
  bufferevent* bev = t.bev.get();
  raise_io_limits(bev);
  OutputPump pump;
  WriteProbe probe{0, &pump};
  bufferevent_setcb(bev, nullptr, &probe_write_cb, nullptr, &probe);
  bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
  ASSERT_TRUE(pump.attach(t.base.get(), bev, &probe_write_cb, &probe));
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  evbuffer_add(bufferevent_get_output(bev), big.data(), big.size());
  event_base_loop(t.base.get(), EVLOOP_NONBLOCK);
  // The socket took part of it; libevent's write event has the rest.
  EXPECT_GT(out_len(bev), 0u);
  EXPECT_TRUE(event_pending(&bev->ev_write, EV_WRITE, nullptr));
  EXPECT_EQ(probe.callbacks, 0);
  std::string got;
  for (int i = 0; i < 20000 && got.size() < big.size(); ++i) {
    got += t.client_read();
    event_base_loop(t.base.get(), EVLOOP_NONBLOCK);
  }
  got += t.client_read();
  ASSERT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big);
  EXPECT_EQ(out_len(bev), 0u);
  EXPECT_GE(probe.callbacks, 1);
  // Back with the pump: the next response goes out at once.
  evbuffer_add(bufferevent_get_output(bev), "next", 4);
  event_base_loop(t.base.get(), EVLOOP_NONBLOCK);
  EXPECT_FALSE(event_pending(&bev->ev_write, EV_WRITE, nullptr));
  EXPECT_EQ(t.client_read(), "next");
}

// ---- direct reads (read_directly) ----

// Keeps what arrives (byte-exact checks) and what the event callback saw.
struct DirectProbe {
  std::string got;
  int callbacks = 0;
  short events = 0;
  int error = 0;
  bool drain = true;  // false: leave the input alone (the high watermark test)
  bool free_in_read = false;
  BufferEventPtr* owner = nullptr;
};

void direct_read_cb(bufferevent* bev, void* arg) {
  auto* p = static_cast<DirectProbe*>(arg);
  ++p->callbacks;
  if (p->free_in_read) {
    p->owner->reset();  // freed inside its own read callback
    return;
  }
  if (!p->drain) return;
  evbuffer* in = bufferevent_get_input(bev);
  const size_t n = evbuffer_get_length(in);
  const size_t at = p->got.size();
  p->got.resize(at + n);
  evbuffer_remove(in, p->got.data() + at, n);
}

void direct_event_cb(bufferevent* bev, short what, void* arg) {
  auto* p = static_cast<DirectProbe*>(arg);
  p->events = what;
  p->error = EVUTIL_SOCKET_ERROR();
  if (what & BEV_EVENT_EOF) direct_read_cb(bev, arg);  // whatever was left
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
  return s;
}

size_t send_bytes(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t w = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (w <= 0) break;
    sent += static_cast<size_t>(w);
  }
  return sent;
}

TEST_F(BulkIo, DirectReadsNeverAskTheKernelHowMuchIsReadable) {
  DirectProbe probe;
  bufferevent_setcb(bev(), &direct_read_cb, nullptr, &direct_event_cb, &probe);
  bufferevent_enable(bev(), EV_READ);
  fionread_fd = ours();
  // libevent's own reads, first: the probe sees their FIONREAD.
  ASSERT_EQ(send(peer(), "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
  for (int i = 0; i < 100 && probe.got.size() < 18; ++i) loop_once();
  ASSERT_EQ(probe.got.size(), 18u);
  EXPECT_GE(fionread_calls.load(), 1);
  // Direct reads: a hundred request-sized messages, and messages around the
  // first read's reservation and its spill area; no FIONREAD.
  fionread_calls = 0;
  ASSERT_TRUE(read_directly(bev()));
  EXPECT_TRUE(reads_directly(bev()));
  std::string want;
  std::vector<size_t> sizes(100, 300);
  for (const size_t n : {kFirstRead - 1, kFirstRead, kFirstRead + 1, size_t{5000}, kFirstRead + 64 * 1024,
                         kFirstRead + 64 * 1024 + 1, size_t{200000}})
    sizes.push_back(n);
  for (const size_t n : sizes) {
    const std::string msg = pattern(n + want.size()).substr(want.size());
    ASSERT_EQ(send_bytes(peer(), msg), msg.size());
    want += msg;
    for (int i = 0; i < 100 && probe.got.size() < 18 + want.size(); ++i) loop_once();
  }
  EXPECT_TRUE(probe.got.substr(18) == want) << probe.got.size() - 18 << " of " << want.size();
  EXPECT_EQ(fionread_calls.load(), 0);
  EXPECT_EQ(probe.events, 0);
  fionread_fd = -1;
}

TEST_F(BulkIo, DirectReadsTakeALargeTransferInFewCallbacksAndReportEof) {
  DirectProbe probe;
  bufferevent_setcb(bev(), &direct_read_cb, nullptr, &direct_event_cb, &probe);
  raise_io_limits(bev());  // gives direct reads to a connected socket bufferevent
  ASSERT_TRUE(reads_directly(bev()));
  bufferevent_enable(bev(), EV_READ);
  const std::string body = pattern(1 << 20);
  ASSERT_EQ(send_bytes(peer(), body), body.size());
  shutdown(peer(), SHUT_WR);
  for (int i = 0; i < 1000 && probe.events == 0; ++i) event_base_loop(base_.get(), EVLOOP_ONCE);
  EXPECT_EQ(probe.events, BEV_EVENT_READING | BEV_EVENT_EOF);
  EXPECT_EQ(probe.got, body);
  // One callback per kReadHigh (the max single read) at most, plus the EOF's.
  EXPECT_LE(probe.callbacks, static_cast<int>(body.size() / kReadHigh) + 2) << probe.callbacks;
  EXPECT_EQ(bufferevent_get_enabled(bev()) & EV_READ, 0);  // as libevent leaves it after an EOF
}

TEST_F(BulkIo, DirectReadsKeepTheWatermarksAndResumeWhenTheInputDrains) {
  DirectProbe probe;
  probe.drain = false;
  bufferevent_setcb(bev(), &direct_read_cb, nullptr, &direct_event_cb, &probe);
  bufferevent_setwatermark(bev(), EV_READ, 10, 64 * 1024);
  ASSERT_TRUE(read_directly(bev()));
  bufferevent_enable(bev(), EV_READ);
  // Below the low watermark: read, but no callback.
  ASSERT_EQ(send(peer(), "12345", 5, 0), 5);
  for (int i = 0; i < 20; ++i) loop_once();
  EXPECT_EQ(probe.callbacks, 0);
  EXPECT_EQ(evbuffer_get_length(bufferevent_get_input(bev())), 5u);
  ASSERT_EQ(send(peer(), "67890", 5, 0), 5);
  for (int i = 0; i < 20 && probe.callbacks == 0; ++i) loop_once();
  EXPECT_EQ(probe.callbacks, 1);
  // A slow consumer: each callback takes 1000 bytes. The input never holds
  // more than the high watermark; reading resumes as it drains, and every
  // byte arrives in order.
  probe.drain = true;
  evbuffer* in = bufferevent_get_input(bev());
  std::string got;
  size_t most = 0;
  struct Slow {
    std::string* got;
    size_t* most;
  } slow{&got, &most};
  bufferevent_setcb(
      bev(),
      [](bufferevent* b, void* arg) {
        auto* s = static_cast<Slow*>(arg);
        evbuffer* input = bufferevent_get_input(b);
        *s->most = std::max(*s->most, evbuffer_get_length(input));
        const size_t n = std::min<size_t>(1000, evbuffer_get_length(input));
        const size_t at = s->got->size();
        s->got->resize(at + n);
        evbuffer_remove(input, s->got->data() + at, n);
      },
      nullptr, nullptr, &slow);
  const std::string body = pattern(512 * 1024);
  ASSERT_EQ(send_bytes(peer(), body), body.size());
  for (int i = 0; i < 100000 && got.size() + evbuffer_get_length(in) < 10 + body.size(); ++i) loop_once();
  got.resize(got.size() + evbuffer_get_length(in));
  evbuffer_remove(in, got.data() + got.size() - evbuffer_get_length(in), evbuffer_get_length(in));
  EXPECT_LE(most, 64u * 1024);
  EXPECT_GE(most, 60u * 1024);  // it did fill up to about the watermark
  EXPECT_TRUE(got == "1234567890" + body) << got.size();
}

TEST_F(BulkIo, DirectReadsFollowEnableAndDisableAndTakeOverAPendingEvent) {
  DirectProbe probe;
  bufferevent_setcb(bev(), &direct_read_cb, nullptr, &direct_event_cb, &probe);
  bufferevent_enable(bev(), EV_READ);  // pending before the take-over
  ASSERT_TRUE(read_directly(bev()));
  ASSERT_TRUE(read_directly(bev()));  // again: nothing changes
  ASSERT_EQ(send(peer(), "one", 3, 0), 3);
  for (int i = 0; i < 20 && probe.got.empty(); ++i) loop_once();
  EXPECT_EQ(probe.got, "one");
  bufferevent_disable(bev(), EV_READ);
  ASSERT_EQ(send(peer(), "two", 3, 0), 3);
  for (int i = 0; i < 20; ++i) loop_once();
  EXPECT_EQ(probe.got, "one");
  bufferevent_enable(bev(), EV_READ);
  for (int i = 0; i < 20 && probe.got.size() < 6; ++i) loop_once();
  EXPECT_EQ(probe.got, "onetwo");
}

TEST_F(BulkIo, DirectReadsKeepLibeventsReadTimeout) {
  DirectProbe probe;
  bufferevent_setcb(bev(), &direct_read_cb, nullptr, &direct_event_cb, &probe);
  const timeval tv{0, 50 * 1000};
  bufferevent_set_timeouts(bev(), &tv, nullptr);
  ASSERT_TRUE(read_directly(bev()));
  bufferevent_enable(bev(), EV_READ);
  for (int i = 0; i < 100 && probe.events == 0; ++i) event_base_loop(base_.get(), EVLOOP_ONCE);
  EXPECT_EQ(probe.events, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
}

TEST_F(BulkIo, DirectReadsSurviveTheOwnerFreeingTheBufferEventInItsReadCallback) {
  for (const int options : {0, static_cast<int>(BEV_OPT_DEFER_CALLBACKS)}) {
    Pair pair;
    ASSERT_GE(pair.ours, 0);
    BufferEventPtr bev(bufferevent_socket_new(base_.get(), pair.ours, BEV_OPT_CLOSE_ON_FREE | options));
    ASSERT_TRUE(bev);
    DirectProbe probe;
    probe.free_in_read = true;
    probe.owner = &bev;
    bufferevent_setcb(bev.get(), &direct_read_cb, nullptr, &direct_event_cb, &probe);
    ASSERT_TRUE(read_directly(bev.get()));
    bufferevent_enable(bev.get(), EV_READ);
    ASSERT_EQ(send(pair.peer, "x", 1, 0), 1);
    for (int i = 0; i < 20 && bev; ++i) loop_once();
    EXPECT_FALSE(bev);  // under ASan: no use after free
    EXPECT_EQ(probe.callbacks, 1);
  }
}

// A TCP connection over loopback whose peer resets it.
TEST(BulkIoTcp, DirectReadsReportAResetAsAnErrorWithItsErrno) {
  BasePtr base(new_event_base());
  const int lsn = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(lsn, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(lsn, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(lsn, 1), 0);
  ASSERT_EQ(getsockname(lsn, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const int cli = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(cli, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const int srv = accept4(lsn, nullptr, nullptr, SOCK_NONBLOCK);
  close(lsn);
  ASSERT_GE(srv, 0);
  BufferEventPtr bev(bufferevent_socket_new(base.get(), srv, BEV_OPT_CLOSE_ON_FREE));
  DirectProbe probe;
  bufferevent_setcb(bev.get(), &direct_read_cb, nullptr, &direct_event_cb, &probe);
  ASSERT_TRUE(read_directly(bev.get()));
  bufferevent_enable(bev.get(), EV_READ);
  const linger hard{1, 0};
  setsockopt(cli, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  close(cli);  // RST
  for (int i = 0; i < 100 && probe.events == 0; ++i) event_base_loop(base.get(), EVLOOP_ONCE);
  EXPECT_EQ(probe.events, BEV_EVENT_READING | BEV_EVENT_ERROR);
  EXPECT_EQ(probe.error, ECONNRESET);
}

TEST(BulkIoTls, DirectReadsLeaveTlsAndUnconnectedBufferEventsToLibevent) {
  TlsPair t;
  ASSERT_TRUE(t.open());
  EXPECT_FALSE(read_directly(t.bev.get()));
  raise_io_limits(t.bev.get());
  EXPECT_FALSE(reads_directly(t.bev.get()));
  BufferEventPtr connecting(bufferevent_socket_new(t.base.get(), -1, BEV_OPT_CLOSE_ON_FREE));
  EXPECT_FALSE(read_directly(connecting.get()));
  EXPECT_FALSE(read_directly(nullptr));
}

}  // namespace
}  // namespace huginn::worker::net
