// Ending a client connection politely.
//
// send_close_notify: a TLS close_notify alert before the socket closes, as
// RFC 8446 §6.1 asks (OpenSSL 3 clients report a missing one as "unexpected
// eof"), unless the client left (see below).
// One non-blocking attempt; the error queue is cleared so that a failure
// cannot leak into the next connection's SSL_get_error. When the connection
// held its output back (tls/held_output.h), the socket's write side is shut
// down right after: the held bytes, the close_notify and the FIN leave in one
// segment.
//
// unread_input: whether closing now would leave client bytes unread, in the
// bufferevent, in OpenSSL's record buffer or in the kernel's receive queue.
// close(2) on a socket with unread bytes sends a reset instead of a FIN, and
// a reset can destroy response bytes the client has not read yet; such a
// transport gets a lingering close (WorkerContext::linger).
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "worker/tls/held_output.h"

namespace huginn::worker::net {

// Whether the client has closed its side for good: its close_notify was read
// and its FIN is in (recv sees the end of the stream).
inline bool client_closed(SSL* ssl, evutil_socket_t fd) {
  if ((SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) == 0 || fd < 0) return false;
  char byte = 0;
  return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

// No-op for a plain socket bufferevent. True when it shut the write side
// down (held output).
//
// `client_left`: the owner saw the client's end of stream while nothing was
// owed to it (no request in progress, no response bytes queued). If the
// client has then closed its side for good (client_closed), it has read what
// it wanted and, typically, closed its socket: a close_notify would come back
// as a reset, so it is marked sent instead (nginx sends none once the
// client's has arrived). A client that closes its side while it waits for a
// response (a half-close), or sent only the alert (a bidirectional shutdown
// waits for ours), gets one.
inline bool send_close_notify(bufferevent* bev, bool client_left = false) {
  if (bev == nullptr) return false;
  SSL* ssl = bufferevent_openssl_get_ssl(bev);
  if (ssl == nullptr) return false;
  const evutil_socket_t fd = bufferevent_getfd(bev);
  if ((SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) == 0 && SSL_is_init_finished(ssl)) {
    if (client_left && client_closed(ssl, fd)) {
      SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
    } else {
      SSL_shutdown(ssl);
    }
  }
  ERR_clear_error();
  if (!tls::release_output(ssl)) return false;
  return fd >= 0 && ::shutdown(fd, SHUT_WR) == 0;
}

// One recv(MSG_PEEK | MSG_DONTWAIT) of a byte; an error or EOF counts as
// nothing unread (a reset connection has nothing left to protect).
inline bool unread_input(bufferevent* bev) {
  if (bev == nullptr) return false;
  if (evbuffer_get_length(bufferevent_get_input(bev)) > 0) return true;
  if (SSL* ssl = bufferevent_openssl_get_ssl(bev); ssl != nullptr && SSL_has_pending(ssl) == 1) return true;
  const evutil_socket_t fd = bufferevent_getfd(bev);
  if (fd < 0) return false;
  char byte = 0;
  return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

}  // namespace huginn::worker::net
