// Server side of one TLS handshake on an accepted, non-blocking TCP socket:
//   1. reads the raw ClientHello (it may span TCP segments and TLS records)
//      until fp::parse_client_hello says it is complete, and computes the JA4
//      family from it when asked; a hello our parser rejects is still handed
//      to OpenSSL, which decides;
//   2. gives exactly those bytes to OpenSSL through a BIO that first returns
//      the buffered prefix and then reads and writes the socket directly (no
//      re-reading), and drives SSL_do_handshake on readiness events;
//   3. on success wraps the socket in bufferevent_openssl (state OPEN, close
//      on free, deferred callbacks, dirty shutdown allowed) and reports it.
// One deadline covers ClientHello and handshake.
//
// Callbacks run from the event loop only (never from start()), at most one of
// them, at most once; the callee may destroy the Acceptor inside either.
// Destroying an unfinished Acceptor closes the socket without a callback.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics/table.h"
#include "common/sys/unique_fd.h"
#include "worker/net/connection.h"
#include "worker/net/event_handles.h"
#include "worker/tls/context.h"

namespace huginn::worker::tls {

struct AcceptOptions {
  // [timeout] tls_handshake_secs * 1000, minus time already spent (PROXY header).
  uint64_t deadline_ms = 15000;
  bool compute_ja4 = true;           // [fingerprint] tls_enabled
  metrics::Slot* metrics = nullptr;  // counts the JA4 memo's hits and misses; null: not counted
  // Bytes of the client's TLS stream already read from the socket by the
  // caller (e.g. read past a PROXY protocol header); they come first.
  std::vector<uint8_t> initial_bytes;
};

// Most bytes read while waiting for a complete ClientHello: the parser
// reassembles at most fp::kMaxClientHelloSize bytes of handshake message, and
// every TLS record carries at least one of them after a 5-byte header.
inline constexpr size_t kMaxClientHelloBytes = 6 * 16 * 1024 + 16;

class Acceptor {
 public:
  // `info`: the TLS fields (tls, sni, sni_domain, cert_path, alpn,
  // tls_version, cipher, client_subject, fingerprints.ja4*) are filled in;
  // the rest is passed through as given to start().
  using DoneFn = std::function<void(net::BufferEventPtr bev, net::ClientInfo info)>;
  // For logging/metrics; the socket is already closed.
  using FailFn = std::function<void(const std::string& reason)>;

  // Takes ownership of `fd` (accepted TCP socket, non-blocking). Returns
  // nullptr (fd closed) only when libevent cannot register the events or
  // opts.initial_bytes exceeds kMaxClientHelloBytes.
  static std::unique_ptr<Acceptor> start(event_base* base, sys::UniqueFd fd,
                                         std::shared_ptr<const ContextSet> contexts,
                                         const AcceptOptions& opts, net::ClientInfo info, DoneFn on_done,
                                         FailFn on_failed);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  bool finished() const { return finished_; }
  int fd() const { return fd_.get(); }

 private:
  Acceptor() = default;
  static void on_hello_event(evutil_socket_t, short, void* arg);
  static void on_io_event(evutil_socket_t, short, void* arg);
  static void on_deadline(evutil_socket_t, short, void* arg);

  void read_hello();
  bool process_hello();  // true when the hello phase is over
  void start_handshake();
  void drive();
  void succeed();
  void fail(std::string reason);
  void release_resources();

  event_base* base_ = nullptr;
  sys::UniqueFd fd_;
  std::shared_ptr<const ContextSet> contexts_;
  AcceptOptions opts_;
  net::ClientInfo info_;
  DoneFn on_done_;
  FailFn on_failed_;

  net::EventPtr hello_ev_;
  net::EventPtr read_ev_;
  net::EventPtr write_ev_;
  net::EventPtr deadline_ev_;
  std::vector<uint8_t> hello_;
  std::string hello_error_;  // why our parser did not produce a JA4 (diagnostics)
  Selection selection_;
  SslPtr ssl_;
  bool initial_pending_ = false;
  bool hello_drained_ = false;  // the last recv of the ClientHello came back short
  bool finished_ = false;
};

}  // namespace huginn::worker::tls
