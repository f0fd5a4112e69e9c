#include "tests/unit/tls/tls_test_util.h"

#include "worker/net/bulk_io.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

namespace huginn::worker::tls::test {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::shared_ptr<config::Config> tls_config() {
  auto cfg = std::make_shared<config::Config>();
  cfg->tls.emplace();
  cfg->tls->alpn = {"h2", "http/1.1"};
  return cfg;
}

config::Domain& add_domain(config::Config& cfg, std::optional<std::string> host,
                           const huginn::test::PemFiles& pem, const std::string& client_ca_path) {
  config::Domain d;
  d.host = std::move(host);
  d.cert_path = pem.cert_path;
  d.key_path = pem.key_path;
  d.client_ca_path = client_ca_path;
  cfg.domains.push_back(std::move(d));
  return cfg.domains.back();
}

huginn::tls::TicketKey random_ticket_key() {
  huginn::tls::TicketKey k;
  RAND_bytes(k.name.data(), static_cast<int>(k.name.size()));
  RAND_bytes(k.aes_key.data(), static_cast<int>(k.aes_key.size()));
  RAND_bytes(k.hmac_key.data(), static_cast<int>(k.hmac_key.size()));
  return k;
}

std::shared_ptr<const huginn::tls::Bundle> bundle_for(const config::Config& cfg,
                                                      std::vector<huginn::tls::TicketKey> keys,
                                                      uint64_t serial) {
  auto b = std::make_shared<huginn::tls::Bundle>();
  b->serial = serial;
  b->ticket_lifetime_secs = 3600;
  b->ticket_keys = std::move(keys);
  std::set<std::string> paths;
  if (cfg.tls) {
    if (!cfg.tls->cert_path.empty()) paths.insert({cfg.tls->cert_path, cfg.tls->key_path});
  }
  for (const auto& d : cfg.domains)
    for (const auto* p : {&d.cert_path, &d.key_path, &d.client_ca_path})
      if (!p->empty()) paths.insert(*p);
  for (const auto& p : paths) b->files.push_back({p, read_file(p)});
  return b;
}

std::shared_ptr<const ContextSet> build_or_die(std::shared_ptr<const config::Config> cfg,
                                               std::shared_ptr<const huginn::tls::Bundle> b) {
  std::string err;
  auto set = ContextSet::build(std::move(cfg), std::move(b), &err);
  EXPECT_TRUE(set) << err;
  return set;
}

// ------------------------------------------------------------ server

TestServer::TestServer(std::shared_ptr<const ContextSet> set, AcceptOptions opts)
    : set_(std::move(set)), opts_(opts) {
  base_ = event_base_new();
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  listener_ = evconnlistener_new_bind(base_, on_accept, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
                                      reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  if (listener_ != nullptr) {
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.sin_port);
  }
  tick_ = event_new(base_, -1, EV_PERSIST, on_tick, nullptr);
  const timeval tv{0, 2000};
  event_add(tick_, &tv);
}

TestServer::~TestServer() {
  conns_.clear();
  if (listener_ != nullptr) evconnlistener_free(listener_);
  if (tick_ != nullptr) event_free(tick_);
  event_base_free(base_);
}

void TestServer::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* self = static_cast<TestServer*>(arg);
  evutil_make_socket_nonblocking(fd);
  auto conn = std::make_unique<ServerConn>();
  ServerConn* c = conn.get();
  net::ClientInfo info;
  info.peer_ip = "127.0.0.1";
  info.local_port = self->port_;
  AcceptOptions opts = self->opts_;
  while (opts.initial_bytes.size() < self->pre_read) {  // like a PROXY header reader that read too much
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 300) != 1) break;
    uint8_t b[64];
    const ssize_t r = ::recv(fd, b, std::min(sizeof(b), self->pre_read - opts.initial_bytes.size()), 0);
    if (r <= 0) break;
    opts.initial_bytes.insert(opts.initial_bytes.end(), b, b + r);
  }
  c->acceptor = Acceptor::start(
      self->base_, sys::UniqueFd(fd), self->set_, opts, info,
      [self, c](net::BufferEventPtr bev, net::ClientInfo info) {
        c->done = true;
        c->info = std::move(info);
        c->bev = std::move(bev);
        c->acceptor.reset();  // destroying the acceptor inside its callback is allowed
        c->take_at = self->take_at;
        if (c->take_at > 0) net::raise_io_limits(c->bev.get());
        bufferevent_setcb(
            c->bev.get(),
            [](bufferevent* b, void* arg) {
              auto* conn = static_cast<ServerConn*>(arg);
              if (evbuffer_get_length(bufferevent_get_input(b)) < conn->take_at) return;
              char buf[4096];
              size_t n;
              while ((n = bufferevent_read(b, buf, sizeof(buf))) > 0) conn->received.append(buf, n);
            },
            nullptr,
            [](bufferevent*, short what, void* arg) {
              if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) static_cast<ServerConn*>(arg)->eof = true;
            },
            c);
        bufferevent_enable(c->bev.get(), EV_READ | EV_WRITE);
        bufferevent_write(c->bev.get(), self->greeting.data(), self->greeting.size());
      },
      [c](const std::string& reason) {
        c->failed = true;
        c->reason = reason;
        c->acceptor.reset();
      });
  ASSERT_TRUE(c->acceptor != nullptr);
  self->conns_.push_back(std::move(conn));
}

bool TestServer::run_until(const std::function<bool()>& pred, int timeout_ms) {
  const int64_t end = now_ms() + timeout_ms;
  while (!pred()) {
    if (now_ms() > end) return false;
    event_base_loop(base_, EVLOOP_ONCE);
  }
  return true;
}

// ------------------------------------------------------------ client

namespace {

struct Client {
  const ClientOptions& o;
  ClientResult& res;
  int fd = -1;
  SSL* ssl = nullptr;
  BIO* rbio = nullptr;
  BIO* wbio = nullptr;
  bool received_any = false;

  bool flush() {
    char buf[16384];
    int n;
    while ((n = BIO_read(wbio, buf, sizeof(buf))) > 0) {
      if (!received_any) res.first_flight.insert(res.first_flight.end(), buf, buf + n);
      if (!send_bytes(buf, static_cast<size_t>(n))) return false;
    }
    return true;
  }
  bool send_bytes(const char* p, size_t n) {
    const size_t step = o.chunk == 0 ? n : o.chunk;
    for (size_t off = 0; off < n;) {
      const size_t len = std::min(step, n - off);
      const ssize_t w = ::send(fd, p + off, len, MSG_NOSIGNAL);
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
      if (o.chunk != 0) usleep(200);
    }
    return true;
  }
  // One recv into the read BIO; false on EOF/error.
  bool pump_in() {
    char buf[16384];
    const ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
    if (r <= 0) return false;
    received_any = true;
    BIO_write(rbio, buf, static_cast<int>(r));
    return true;
  }
  void record_error(const char* what) {
    const unsigned long e = ERR_peek_last_error();
    res.ssl_reason = ERR_GET_REASON(e);
    char buf[256] = "";
    if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
    res.error = std::string(what) + ": " + buf;
    ERR_clear_error();
  }
};

}  // namespace

ClientResult run_client(uint16_t port, const ClientOptions& o) {
  ClientResult res;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    res.error = "connect failed";
    ::close(fd);
    return res;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

  if (o.send_nothing || !o.raw.empty()) {
    const int64_t start = now_ms();
    if (!o.raw.empty()) ::send(fd, o.raw.data(), o.raw.size(), MSG_NOSIGNAL);
    char buf[256];
    ssize_t r;
    while ((r = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
    }
    res.server_closed = r == 0 || (r < 0 && errno == ECONNRESET);
    res.closed_after_ms = now_ms() - start;
    ::close(fd);
    return res;
  }

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (o.min_version) SSL_CTX_set_min_proto_version(ctx, o.min_version);
  if (o.max_version) SSL_CTX_set_max_proto_version(ctx, o.max_version);
  if (!o.cipher_list.empty()) SSL_CTX_set_cipher_list(ctx, o.cipher_list.c_str());
  if (!o.ciphersuites.empty()) SSL_CTX_set_ciphersuites(ctx, o.ciphersuites.c_str());
  if (!o.groups.empty()) SSL_CTX_set1_groups_list(ctx, o.groups.c_str());
  if (!o.ca_path.empty()) {
    SSL_CTX_load_verify_locations(ctx, o.ca_path.c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!o.cert_path.empty()) {
    SSL_CTX_use_certificate_chain_file(ctx, o.cert_path.c_str());
    SSL_CTX_use_PrivateKey_file(ctx, o.key_path.c_str(), SSL_FILETYPE_PEM);
  }
  if (o.no_ticket) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL* ssl = SSL_new(ctx);
  Client c{o, res, fd, ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem())};
  BIO_set_mem_eof_return(c.rbio, -1);
  SSL_set_bio(ssl, c.rbio, c.wbio);
  SSL_set_connect_state(ssl);
  if (!o.sni.empty()) SSL_set_tlsext_host_name(ssl, o.sni.c_str());
  if (!o.alpn.empty()) {
    std::string wire;
    for (const auto& p : o.alpn) wire += static_cast<char>(p.size()) + p;
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  }
  if (o.session) SSL_set_session(ssl, o.session.get());

  for (;;) {
    const int r = SSL_do_handshake(ssl);
    if (r == 1) {
      res.handshake_ok = true;
      break;
    }
    const int err = SSL_get_error(ssl, r);
    if (err == SSL_ERROR_WANT_READ) {
      if (!c.flush()) {
        res.error = "send failed";
        break;
      }
      if (!c.pump_in()) {
        c.record_error("connection closed during handshake");
        break;
      }
      continue;
    }
    c.flush();
    c.record_error("handshake");
    break;
  }
  if (res.handshake_ok) {
    if (!o.with_finished.empty())
      SSL_write(ssl, o.with_finished.data(), static_cast<int>(o.with_finished.size()));
    c.flush();
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    res.alpn.assign(reinterpret_cast<const char*>(alpn), alpn != nullptr ? alpn_len : 0);
    res.version = SSL_get_version(ssl);
    res.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
    res.group_nid = SSL_get_negotiated_group(ssl);
    res.reused = SSL_session_reused(ssl) == 1;
    if (X509* peer = SSL_get0_peer_certificate(ssl)) {
      char cn[256] = "";
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
      res.peer_cn = cn;
    }
    if (const STACK_OF(X509_NAME)* names = SSL_get0_peer_CA_list(ssl)) {
      for (int i = 0; i < sk_X509_NAME_num(names); ++i) {
        char buf[256];
        X509_NAME_oneline(sk_X509_NAME_value(names, i), buf, sizeof(buf));
        res.ca_names.push_back(buf);
      }
    }
    if (o.read_greeting) {
      std::string got;
      for (;;) {
        char buf[4096];
        const int n = SSL_read(ssl, buf, sizeof(buf));
        if (n > 0) {
          got.append(buf, static_cast<size_t>(n));
          if (got.find('\n') != std::string::npos) {
            res.greeting_ok = true;
            break;
          }
          continue;
        }
        const int err = SSL_get_error(ssl, n);
        if (err == SSL_ERROR_WANT_READ) {
          c.flush();
          if (!c.pump_in()) {
            c.record_error("closed before greeting");
            break;
          }
          continue;
        }
        c.record_error("read greeting");
        break;
      }
      if (res.greeting_ok) res.data_segments_in = data_segments_in(fd);
      if (res.greeting_ok && !o.after_greeting.empty()) {
        const size_t step = o.record_size > 0 ? o.record_size : o.after_greeting.size();
        for (size_t off = 0; off < o.after_greeting.size(); off += step) {
          const size_t n = std::min(step, o.after_greeting.size() - off);
          SSL_write(ssl, o.after_greeting.data() + off, static_cast<int>(n));
        }
        c.flush();
        if (o.hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.hold_ms));
      }
    }
    if (SSL_SESSION* s = SSL_get1_session(ssl)) res.session = SessionPtr(s, SSL_SESSION_free);
    SSL_shutdown(ssl);
    c.flush();
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return res;
}

ClientResult connect_and_run(TestServer& srv, const ClientOptions& o, int timeout_ms) {
  std::atomic<bool> finished{false};
  ClientResult res;
  const size_t before = srv.conns().size();
  std::thread t([&] {
    res = run_client(srv.port(), o);
    finished = true;
  });
  const bool ok = srv.run_until(
      [&] {
        if (!finished) return false;
        if (srv.conns().size() <= before) return true;  // never reached the server
        ServerConn* c = srv.last();
        if (!c->done && !c->failed) return false;
        return !o.after_greeting.empty()
                   ? c->received.find(o.after_greeting) != std::string::npos || c->eof
                   : (!o.with_finished.empty() ? c->received.size() >= o.with_finished.size() : true);
      },
      timeout_ms);
  if (!ok) {
    // Unblock the client so that the thread can be joined.
    for (auto& c : srv.conns())
      if (c->bev) c->bev.reset();
    for (auto& c : srv.conns()) c->acceptor.reset();
  }
  t.join();
  EXPECT_TRUE(ok) << "timeout";
  return res;
}

}  // namespace huginn::worker::tls::test
