// Holding back the last bytes of a TLS client connection so that they leave
// with its close_notify and FIN in one TCP segment.
//
// Once a connection knows that its output ends it (a response with
// `Connection: close`), hold_output() makes the socket BIO of the acceptor
// (acceptor.cpp) write with MSG_MORE: the kernel keeps a partial segment back
// for more. release_output() ends that; the caller then shuts the socket's
// write side (net::send_close_notify does both), which sends the held bytes,
// the close_notify written in between and the FIN together. Without the
// release the kernel still sends them, when its probe timer fires (about
// 200 ms) or at close(2); close(2) with unread input sends a reset instead
// and drops them, which is why the shutdown comes first.
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>

namespace huginn::worker::tls {

// BIO_ctrl commands of the acceptor's socket BIO; any other BIO answers 0.
inline constexpr int kBioCtrlHoldOutput = 0x4875'6701;
inline constexpr int kBioCtrlReleaseOutput = 0x4875'6702;

// True when `ssl` writes through the acceptor's BIO, which holds from now on.
inline bool hold_output(SSL* ssl) {
  BIO* b = ssl != nullptr ? SSL_get_wbio(ssl) : nullptr;
  return b != nullptr && BIO_ctrl(b, kBioCtrlHoldOutput, 0, nullptr) == 1;
}

// True when output was held (it is not any more).
inline bool release_output(SSL* ssl) {
  BIO* b = ssl != nullptr ? SSL_get_wbio(ssl) : nullptr;
  return b != nullptr && BIO_ctrl(b, kBioCtrlReleaseOutput, 0, nullptr) == 1;
}

}  // namespace huginn::worker::tls
