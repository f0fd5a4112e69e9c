// Bulk transfer tuning of the worker's socket bufferevents.
//
// libevent 2.1 (Debian 12) moves data in small steps: a socket bufferevent
// reads at most 4 KiB per readiness event (EVBUFFER_MAX_READ, after a FIONREAD
// ioctl) and any bufferevent writes at most 16 KiB per event (the default
// max_single_write). A 1 MiB response therefore cost about 256 turns of the
// loop on the backend side and 64 on the client side, each with its
// epoll_wait and write-interest changes. These two helpers lift both limits
// without replacing the bufferevents.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include <cstddef>

struct ssl_st;

namespace huginn::worker::net {

// Lets one read or write event move up to the data path's buffer bounds
// (kReadHigh, kHighWater) instead of libevent's 16 KiB defaults, and gives a
// connected socket bufferevent direct reads (read_directly). For a TLS
// bufferevent the read step is kTlsReadStep instead: libevent's openssl
// bufferevent reserves its whole read step in the input before each
// SSL_read, and SSL_read returns at most one record (16 KiB) per call, two per
// event. A 256 KiB step made every small request allocate (and free) a
// 512 KiB buffer: a brk() and fresh zeroed pages several times per request.
// A TLS bufferevent's input also gets a callback that calls read_tls_pending
// after each drain or add (once per call: call it once per bufferevent).
void raise_io_limits(bufferevent* bev);

// Two TLS records, less libevent's chain header, so that the reservation is
// one 32 KiB allocation (libevent rounds chains up to a power of two).
inline constexpr size_t kTlsReadStep = 32 * 1024 - 256;

// libevent 2.1's openssl bufferevent reads only when epoll reports the socket
// readable, and it stops (input at its high read watermark, reading disabled)
// where its read step ends, which may be inside a TLS record: the rest of that
// record stays decrypted in OpenSSL (SSL_pending), and no readiness
// reports it again. It also stops after each record when OpenSSL holds
// nothing decrypted, while the acceptor's socket BIO may hold the next
// records, read ahead with the last one (BIO_pending). A client that sent its
// last pipelined requests and now waits for the answers would wait for ever.
// So, for a TLS bufferevent, this activates the read event when OpenSSL or
// the BIO holds client bytes and reading may go on (EV_READ enabled, input
// below the high watermark). raise_io_limits makes every change of a TLS
// bufferevent's input call it; whoever enables EV_READ again calls it after
// bufferevent_enable. A no-op otherwise.
void read_tls_pending(bufferevent* bev);

// Reads of a connected socket bufferevent without libevent's FIONREAD.
// libevent 2.1's socket bufferevent asks the kernel how many bytes are
// readable (an ioctl) before every read: one system call per request on each
// side of a keep-alive exchange. This re-points the bufferevent's read event
// at our own callback, which reads into the input buffer without asking:
// the first read into up to kFirstRead bytes of the input (a small message
// fits one 1 KiB chain, which malloc serves from its per-thread cache) and a
// per-thread 64 KiB spill area whose bytes are then copied into the input,
// and, while the reads come back full, on in pieces of up to 64 KiB until the
// socket would block, the bufferevent's high read watermark or its max single
// read is reached. Everything else stays libevent's: enabling and disabling EV_READ,
// the read timeout (reported by libevent's own callback), suspension at the
// high watermark, the low watermark and deferred callbacks. An EOF or an
// error on the first read is reported like libevent does (EV_READ disabled,
// BEV_EVENT_READING with BEV_EVENT_EOF or BEV_EVENT_ERROR and errno); after
// bytes were read it is left for the next read, since the socket stays
// readable. Bytes read but not stored (out of memory) are reported as an
// error (ENOMEM). TLS, filter and unconnected bufferevents are left alone (false);
// bufferevent_socket_connect() re-points the event at libevent's callback, so
// a connecting bufferevent is given direct reads once it is connected. Calling
// it again is cheap and changes nothing.
bool read_directly(bufferevent* bev);
inline constexpr size_t kFirstRead = 1024 - 64;  // one 1 KiB chain with libevent's header
bool reads_directly(const bufferevent* bev);

}  // namespace huginn::worker::net

namespace huginn::worker::net {

// Write interest for a connected socket bufferevent, without the epoll_ctl
// pair libevent spends per response. libevent arms the write event when bytes
// are added to the output and disarms it once a write emptied the buffer: two
// epoll_ctl calls per response and per request to a backend. The pump keeps
// EV_WRITE disabled while the output is empty; bytes added to the output are
// written straight to the socket at the end of the current callback (one
// deferred event, no system call to schedule it). Only when the socket does
// not take everything (or fails) is EV_WRITE enabled, and libevent goes on as
// usual: its write timeout and error reporting apply, and the owner's write
// callback calls done_writing() when the output is empty again. After a
// direct write that emptied the output, the pump calls the bufferevent's
// write callback itself, as libevent would have.
//
// A TLS bufferevent (bufferevent_openssl, connection open) is pumped too,
// differently: libevent 2.1's openssl bufferevent arms its write event when
// bytes are added to an empty output and writes them only once epoll reports
// the socket writable (an epoll_ctl pair and an extra turn of the loop per
// response). The pump SSL_writes them at the end of the current callback
// instead and, once the output is empty, takes the write event back. On
// SSL_ERROR_WANT_WRITE/WANT_READ or an error it leaves the rest to libevent,
// whose armed write event retries the same bytes (OpenSSL's retry rule holds:
// libevent writes from the same start, at least as many bytes, and sets
// SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), reports errors and applies its write
// timeout; the pump takes over again once the owner's write callback calls
// done_writing() with the output empty. EV_WRITE stays enabled throughout.
class OutputPump {
 public:
  OutputPump() = default;
  ~OutputPump() { detach(); }
  OutputPump(const OutputPump&) = delete;
  OutputPump& operator=(const OutputPump&) = delete;

  // Takes over write interest of `bev` (a connected socket bufferevent, or an
  // open TLS one). Returns false, and leaves the bufferevent as it was, when
  // it has no socket.
  bool attach(event_base* base, bufferevent* bev, bufferevent_data_cb write_cb, void* arg);
  // Gives write interest back to libevent (EV_WRITE enabled); before the
  // bufferevent is freed, pooled or handed over.
  void detach();
  bool attached() const { return bev_ != nullptr; }
  // From the owner's write callback: the output is empty again.
  void done_writing();

 private:
  static void on_change(evbuffer*, const evbuffer_cb_info* info, void* arg);
  static void on_flush(evutil_socket_t, short, void* arg);
  void flush();
  void flush_tls();
  // True while libevent writes (EV_WRITE enabled on a socket bufferevent; a
  // TLS bufferevent's write was handed back after a blocked SSL_write).
  bool libevent_writing() const;

  bufferevent* bev_ = nullptr;
  ssl_st* ssl_ = nullptr;         // TLS bufferevents: their SSL
  bool tls_handed_back_ = false;  // TLS: libevent finishes the current output
  // The flush event lives in the pump (event_assign): no allocation per
  // attach, which is once per backend exchange.
  event flush_ev_{};
  evbuffer_cb_entry* cb_ = nullptr;
  bufferevent_data_cb write_cb_ = nullptr;
  void* arg_ = nullptr;
  bool scheduled_ = false;
};

}  // namespace huginn::worker::net
