#include "worker/tls/acceptor.h"

#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "common/fingerprint/clienthello.h"
#include "common/sys/log.h"
#include "worker/proxy/fingerprint_memo.h"
#include "worker/tls/held_output.h"

namespace huginn::worker::tls {

namespace {

using BioPtr = sys::CHandle<BIO, BIO_free>;

// ------------------------------------------------------------ fd BIO with a prefix
//
// Returns the bytes read before OpenSSL took over (the ClientHello), then
// reads and writes the socket. Never closes the socket: the Acceptor owns it
// until bufferevent_openssl takes it (BEV_OPT_CLOSE_ON_FREE finds it through
// BIO_C_GET_FD).
//
// The BIO reads ahead: OpenSSL asks for each record's 5-byte header and then
// its body, so the client's second flight (ChangeCipherSpec, Finished, often
// the first request) would cost four or more recv calls, and every later
// request two; one recv of up to kReadAhead bytes takes all of it, and the
// rest is returned from `prefix` like the ClientHello. A read that asks for
// kReadAhead bytes or more (the body of a large record) goes straight to the
// socket, and so do the reads after it until a small record comes (`bulk`):
// during an upload, reading ahead would only copy each record's first 4 KiB
// twice more, for the same two recv calls per record (1 MiB uploads over
// HTTPS/1.1 cost 3 % more worker CPU that way). libevent reads only on socket
// readiness, so bytes held here would wait for the next packet:
// Acceptor::succeed hands over what is left by activating the read, and after
// the handshake net::read_tls_pending (bulk_io.h) does the same whenever the
// BIO still holds bytes (BIO_pending) and reading may go on.
//
// Two system calls per handshake are saved here:
// - When the last recv came back short, the socket was empty. The next read
//   asks for the client's answer to the flight just written, which cannot be
//   there yet, so it reports "retry" without a recv. That happens once: the
//   read after the socket is readable again goes to the socket. If the client
//   was faster after all, epoll (level-triggered) reports the socket at once.
//   Only during the handshake: afterwards the next read may come from the
//   next readiness, and skipping its recv would cost an event loop round.
// - TLS 1.3 session tickets, written after the client's Finished, go out with
//   MSG_MORE: the kernel sends them in one segment with the next write (the
//   HTTP/1.1 response, or the HTTP/2 server preface and SETTINGS) instead of a
//   segment of their own. (TLS 1.2 tickets are part of the server's last
//   flight, written with its Finished, so they go at once.) The client does
//   not wait for a ticket. If nothing follows, the kernel sends them when its
//   probe timer fires (about 200 ms), or at close.
//
// A connection whose output ends it holds that output back the same way
// (held_output.h): its last response, close_notify and FIN share a segment.

constexpr size_t kReadAhead = 4096;
constexpr size_t kRecordHeader = 5;  // what OpenSSL asks for before each record's body

struct FdBio {
  int fd = -1;
  std::vector<uint8_t> prefix;
  size_t off = 0;
  bool handshake = true;     // the `drained` shortcut applies
  bool drained = false;      // the last recv (read-ahead) came back short
  bool bulk = false;         // the last record was large: no reading ahead
  bool held = false;         // hold_output(): every write with MSG_MORE
  const SSL* ssl = nullptr;  // during the handshake, for its state in bio_write; then null
  size_t remaining() const { return prefix.size() - off; }
};

FdBio* state(BIO* b) { return static_cast<FdBio*>(BIO_get_data(b)); }

int bio_read(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  FdBio* st = state(b);
  if (st == nullptr || out == nullptr || len <= 0) return 0;
  const auto asked = static_cast<size_t>(len);
  if (asked >= kReadAhead) {
    st->bulk = true;
  } else if (asked > kRecordHeader) {
    st->bulk = false;
  }
  if (st->remaining() > 0) {
    const size_t n = std::min(static_cast<size_t>(len), st->remaining());
    std::memcpy(out, st->prefix.data() + st->off, n);
    st->off += n;
    if (st->remaining() == 0) {
      std::vector<uint8_t>().swap(st->prefix);  // release the memory for the connection's lifetime
      st->off = 0;
    }
    return static_cast<int>(n);
  }
  if (st->handshake && st->drained) {
    st->drained = false;
    BIO_set_retry_read(b);
    return -1;
  }
  const bool ahead = !st->bulk && asked < kReadAhead;
  uint8_t buf[kReadAhead];
  char* into = ahead ? reinterpret_cast<char*>(buf) : out;
  const size_t want = ahead ? sizeof buf : asked;
  ssize_t r;
  do {
    r = ::recv(st->fd, into, want, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
    return -1;
  }
  if (!ahead) return static_cast<int>(r);
  st->drained = static_cast<size_t>(r) < want;
  const size_t n = std::min(static_cast<size_t>(r), asked);
  std::memcpy(out, buf, n);
  st->prefix.assign(buf + n, buf + r);  // empty when OpenSSL took it all
  st->off = 0;
  return static_cast<int>(n);
}

int bio_write(BIO* b, const char* in, int len) {
  BIO_clear_retry_flags(b);
  FdBio* st = state(b);
  if (st == nullptr || in == nullptr || len <= 0) return 0;
  const int more = st->held || (st->ssl != nullptr && SSL_get_state(st->ssl) == TLS_ST_SW_SESSION_TICKET &&
                                SSL_version(st->ssl) == TLS1_3_VERSION)
                       ? MSG_MORE
                       : 0;
  ssize_t r;
  do {
    r = ::send(st->fd, in, static_cast<size_t>(len), MSG_NOSIGNAL | more);
  } while (r < 0 && errno == EINTR);
  if (r >= 0) return static_cast<int>(r);
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
  return -1;
}

int bio_puts(BIO* b, const char* s) { return bio_write(b, s, static_cast<int>(std::strlen(s))); }

long bio_ctrl(BIO* b, int cmd, long num, void* ptr) {
  FdBio* st = state(b);
  switch (cmd) {
    case BIO_C_GET_FD:
      if (st == nullptr) return -1;
      if (ptr != nullptr) *static_cast<int*>(ptr) = st->fd;
      return st->fd;
    case BIO_CTRL_GET_CLOSE:
      return BIO_get_shutdown(b);
    case BIO_CTRL_SET_CLOSE:
      BIO_set_shutdown(b, static_cast<int>(num));
      return 1;
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
      return 1;
    case BIO_CTRL_PENDING:
      return st != nullptr ? static_cast<long>(st->remaining()) : 0;
    case kBioCtrlHoldOutput:
      if (st == nullptr) return 0;
      st->held = true;
      return 1;
    case kBioCtrlReleaseOutput:
      return st != nullptr && std::exchange(st->held, false) ? 1 : 0;
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_EOF:
    default:
      return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_data(b, nullptr);
  BIO_set_init(b, 0);
  return 1;
}

int bio_destroy(BIO* b) {
  delete state(b);
  BIO_set_data(b, nullptr);
  BIO_set_init(b, 0);
  return 1;
}

const BIO_METHOD* fd_prefix_method() {
  static const sys::CHandle<BIO_METHOD, BIO_meth_free> method = [] {
    sys::CHandle<BIO_METHOD, BIO_meth_free> m(
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "huginn fd+prefix"));
    if (m) {
      BIO_meth_set_write(m.get(), bio_write);
      BIO_meth_set_read(m.get(), bio_read);
      BIO_meth_set_puts(m.get(), bio_puts);
      BIO_meth_set_ctrl(m.get(), bio_ctrl);
      BIO_meth_set_create(m.get(), bio_create);
      BIO_meth_set_destroy(m.get(), bio_destroy);
    }
    return m;
  }();
  return method.get();
}

BioPtr new_fd_bio(int fd, std::vector<uint8_t> prefix, bool drained, const SSL* ssl) {
  const BIO_METHOD* m = fd_prefix_method();
  if (m == nullptr) return nullptr;
  BioPtr b(BIO_new(m));
  if (!b) return nullptr;
  auto* st = new FdBio;
  st->fd = fd;
  st->prefix = std::move(prefix);
  st->drained = drained;
  st->ssl = ssl;
  BIO_set_data(b.get(), st);
  BIO_set_init(b.get(), 1);
  BIO_set_shutdown(b.get(), 0);
  return b;
}

std::string ssl_error_text(SSL* ssl, int ret, int err, const Selection& sel) {
  if (!sel.reject_reason.empty()) return sel.reject_reason;
  switch (err) {
    case SSL_ERROR_ZERO_RETURN:
      return "client closed during the handshake";
    case SSL_ERROR_SYSCALL: {
      if (ERR_peek_error() == 0) {
        if (ret == 0 || errno == 0) return "client closed during the handshake";
        return std::string("handshake I/O error: ") + std::strerror(errno);
      }
      break;
    }
    default:
      break;
  }
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  (void)ssl;
  return out.empty() ? "handshake failed (SSL error " + std::to_string(err) + ")"
                     : "handshake failed: " + out;
}

std::string subject_rfc2253(X509* cert) {
  BioPtr mem(BIO_new(BIO_s_mem()));
  if (!mem) return {};
  if (X509_NAME_print_ex(mem.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(mem.get(), &data);
  return n > 0 && data != nullptr ? std::string(data, static_cast<size_t>(n)) : std::string();
}

}  // namespace

std::unique_ptr<Acceptor> Acceptor::start(event_base* base, sys::UniqueFd fd,
                                          std::shared_ptr<const ContextSet> contexts,
                                          const AcceptOptions& opts, net::ClientInfo info, DoneFn on_done,
                                          FailFn on_failed) {
  if (base == nullptr || !fd || !contexts) return nullptr;
  std::unique_ptr<Acceptor> a(new Acceptor());
  a->base_ = base;
  a->fd_ = std::move(fd);
  a->contexts_ = std::move(contexts);
  a->opts_ = opts;
  a->info_ = std::move(info);
  a->on_done_ = std::move(on_done);
  a->on_failed_ = std::move(on_failed);
  a->hello_ev_.reset(event_new(base, a->fd_.get(), EV_READ | EV_PERSIST, on_hello_event, a.get()));
  a->deadline_ev_.reset(evtimer_new(base, on_deadline, a.get()));
  if (!a->hello_ev_ || !a->deadline_ev_) return nullptr;
  const timeval tv = net::to_timeval(opts.deadline_ms);
  if (event_add(a->hello_ev_.get(), nullptr) != 0 || event_add(a->deadline_ev_.get(), &tv) != 0)
    return nullptr;
  if (!opts.initial_bytes.empty()) {
    if (opts.initial_bytes.size() > kMaxClientHelloBytes) return nullptr;
    a->hello_ = opts.initial_bytes;
    a->opts_.initial_bytes.clear();
    a->initial_pending_ = true;  // parsed from the loop: callbacks never run inside start()
    event_active(a->hello_ev_.get(), EV_READ, 1);
  }
  return a;
}

Acceptor::~Acceptor() {
  if (!finished_) release_resources();
}

void Acceptor::release_resources() {
  hello_ev_.reset();
  read_ev_.reset();
  write_ev_.reset();
  deadline_ev_.reset();
  if (ssl_) ContextSet::release_ssl(ssl_.get());
  ssl_.reset();  // frees the BIO (which never closes the socket)
  fd_.reset();
  std::vector<uint8_t>().swap(hello_);
}

void Acceptor::on_hello_event(evutil_socket_t, short, void* arg) {
  static_cast<Acceptor*>(arg)->read_hello();
}

void Acceptor::on_io_event(evutil_socket_t, short, void* arg) { static_cast<Acceptor*>(arg)->drive(); }

void Acceptor::on_deadline(evutil_socket_t, short, void* arg) {
  auto* a = static_cast<Acceptor*>(arg);
  a->fail(a->ssl_ ? "TLS handshake timeout"
                  : (a->hello_.empty() ? "no ClientHello before the handshake deadline"
                                       : "incomplete ClientHello at the handshake deadline"));
}

void Acceptor::read_hello() {
  if (initial_pending_) {
    initial_pending_ = false;
    if (process_hello()) return;
  }
  uint8_t buf[16 * 1024];
  const size_t room = kMaxClientHelloBytes - hello_.size();
  ssize_t r;
  const size_t want = std::min(sizeof(buf), room);
  do {
    r = ::recv(fd_.get(), buf, want, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    fail(std::string("recv: ") + std::strerror(errno));
    return;
  }
  if (r == 0) {
    fail(hello_.empty() ? "client closed before sending a ClientHello"
                        : "client closed during the ClientHello");
    return;
  }
  hello_.insert(hello_.end(), buf, buf + r);
  hello_drained_ = static_cast<size_t>(r) < want;
  process_hello();
}

bool Acceptor::process_hello() {
  const fp::ClientHelloParse p = fp::parse_client_hello(hello_.data(), hello_.size());
  switch (p.status) {
    case fp::ClientHelloParse::Status::kNeedMore:
      if (hello_.size() < kMaxClientHelloBytes) return false;
      hello_error_ = "ClientHello larger than " + std::to_string(kMaxClientHelloBytes) + " bytes";
      break;
    case fp::ClientHelloParse::Status::kOk:
      if (opts_.compute_ja4)
        info_.fingerprints =
            proxy::FingerprintMemo::for_this_thread().with_ja4(info_.fingerprints, p.hello, opts_.metrics);
      break;
    case fp::ClientHelloParse::Status::kError:
    case fp::ClientHelloParse::Status::kUnsupported:
      hello_error_ = p.error;  // no JA4; OpenSSL decides about the connection
      break;
  }
  start_handshake();
  return true;
}

void Acceptor::start_handshake() {
  // read_ev_ is registered before the hello event goes: libevent counts read
  // interest per descriptor, so the socket stays in epoll instead of an
  // EPOLL_CTL_DEL here and an ADD in drive() (which expects to read next).
  read_ev_.reset(event_new(base_, fd_.get(), EV_READ | EV_PERSIST, on_io_event, this));
  write_ev_.reset(event_new(base_, fd_.get(), EV_WRITE | EV_PERSIST, on_io_event, this));
  if (!read_ev_ || !write_ev_ || event_add(read_ev_.get(), nullptr) != 0) {
    fail("event_new/event_add failed");
    return;
  }
  hello_ev_.reset();
  if (!hello_error_.empty()) HLOG_DEBUG("tls: no JA4 for fd %d: %s", fd_.get(), hello_error_.c_str());
  ssl_ = contexts_->new_ssl(&selection_);
  if (!ssl_) {
    fail("SSL_new failed");
    return;
  }
  std::vector<uint8_t> prefix;
  prefix.swap(hello_);
  BioPtr bio = new_fd_bio(fd_.get(), std::move(prefix), hello_drained_, ssl_.get());
  if (!bio) {
    fail("BIO_new failed");
    return;
  }
  SSL_set_bio(ssl_.get(), bio.get(), bio.get());  // one reference, owned by the SSL
  bio.release();
  SSL_set_accept_state(ssl_.get());
  drive();
}

void Acceptor::drive() {
  ERR_clear_error();
  errno = 0;
  const int r = SSL_do_handshake(ssl_.get());
  if (r == 1) {
    succeed();
    return;
  }
  const int err = SSL_get_error(ssl_.get(), r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    event* on = err == SSL_ERROR_WANT_READ ? read_ev_.get() : write_ev_.get();
    event* off = err == SSL_ERROR_WANT_READ ? write_ev_.get() : read_ev_.get();
    event_del(off);
    if (!event_pending(on, EV_READ | EV_WRITE, nullptr) && event_add(on, nullptr) != 0)
      fail("event_add failed");
    return;
  }
  fail(ssl_error_text(ssl_.get(), r, err, selection_));
}

void Acceptor::succeed() {
  SSL* ssl = ssl_.get();
  ContextSet::release_ssl(ssl);
  net::ClientInfo info = std::move(info_);
  info.tls = true;
  info.sni = selection_.sni;
  info.sni_domain = selection_.domain;
  info.cert_path = selection_.cert_path != nullptr ? *selection_.cert_path : std::string();
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  info.alpn = alpn != nullptr ? std::string(reinterpret_cast<const char*>(alpn), alpn_len) : std::string();
  info.tls_version = SSL_get_version(ssl);
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  info.cipher = cipher != nullptr ? std::string_view(SSL_CIPHER_get_name(cipher)) : std::string_view();
  if (selection_.mtls) {
    X509* peer = SSL_get0_peer_certificate(ssl);
    if (peer == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) {
      fail("client certificate missing or not verified");  // cannot happen with FAIL_IF_NO_PEER_CERT
      return;
    }
    info.client_subject = subject_rfc2253(peer);
  }

  hello_ev_.reset();
  // Kept registered until the bufferevent below has registered its own read
  // interest: libevent counts interest per descriptor, so the hand-over costs
  // one EPOLL_CTL_MOD (the bufferevent's write event) instead of a DEL, an
  // ADD and a MOD per connection.
  net::EventPtr keep_read = std::move(read_ev_);
  write_ev_.reset();
  deadline_ev_.reset();
  ERR_clear_error();  // nothing stale may reach libevent's SSL_get_error
  // Bytes the client sent after its Finished that OpenSSL or our prefix
  // already hold would never make the socket readable again: libevent reads
  // only on socket readiness, so its read event is activated by hand.
  BIO* rbio = SSL_get_rbio(ssl);
  if (FdBio* st = rbio != nullptr ? state(rbio) : nullptr) {
    st->handshake = false;
    st->ssl = nullptr;  // the tickets are written: no state check per write from here on
  }
  const bool pending = SSL_has_pending(ssl) == 1 || (rbio != nullptr && BIO_pending(rbio) > 0);
  bufferevent* bev = bufferevent_openssl_socket_new(base_, fd_.get(), ssl, BUFFEREVENT_SSL_OPEN,
                                                    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (bev == nullptr) {
    fail("bufferevent_openssl_socket_new failed");
    return;
  }
  ssl_.release();  // owned (and freed, with the socket) by the bufferevent
  fd_.release();
  bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  // Reading is on from the start (every owner reads the connection at once;
  // no event is dispatched before the callback below has set the owner's
  // callbacks), then the handshake's read event goes.
  bufferevent_enable(bev, EV_READ);
  keep_read.reset();
  if (pending) event_active(&bev->ev_read, EV_READ, 1);

  finished_ = true;
  DoneFn cb = std::move(on_done_);
  on_failed_ = nullptr;
  contexts_.reset();
  if (cb)
    cb(net::BufferEventPtr(bev), std::move(info));  // may destroy *this
  else
    bufferevent_free(bev);
}

void Acceptor::fail(std::string reason) {
  if (finished_) return;
  release_resources();
  ERR_clear_error();
  finished_ = true;
  FailFn cb = std::move(on_failed_);
  on_done_ = nullptr;
  contexts_.reset();
  if (cb) cb(reason);  // may destroy *this
}

}  // namespace huginn::worker::tls
