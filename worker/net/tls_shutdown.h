// Ending a TLS connection politely: a close_notify alert before the socket
// closes, as RFC 8446 §6.1 asks (OpenSSL 3 clients report a missing one as
// "unexpected eof"). One non-blocking attempt; the error queue is cleared so
// that a failure cannot leak into the next connection's SSL_get_error.
#pragma once

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace huginn::worker::net {

// No-op for a plain socket bufferevent.
inline void send_close_notify(bufferevent* bev) {
  if (bev == nullptr) return;
  if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) {
    if ((SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) == 0 && SSL_is_init_finished(ssl)) SSL_shutdown(ssl);
    ERR_clear_error();
  }
}

}  // namespace huginn::worker::net
