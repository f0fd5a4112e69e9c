// SOCK_SEQPACKET transport for ipc::Message, with SCM_RIGHTS descriptors.
#pragma once

#include <string>
#include <vector>

#include "common/ipc/protocol.h"
#include "common/ipc/wire.h"
#include "common/sys/unique_fd.h"

namespace huginn::ipc {

// Creates a SEQPACKET socketpair (close-on-exec). Returns false with errno set.
bool make_channel(sys::UniqueFd* a, sys::UniqueFd* b);

// Sends `m` (with `fds`, borrowed) as one datagram. Retries EINTR. Returns
// false with `*error` set on failure (including EAGAIN on a non-blocking fd).
bool send_message(int fd, const Message& m, const std::vector<int>& fds, std::string* error);

struct Received {
  RecvStatus status = RecvStatus::kError;
  Message message;
  std::vector<sys::UniqueFd> fds;  // owned; closed if the message is rejected
  std::string error;
};

// Receives one datagram. Rejects truncated datagrams or control data
// (MSG_TRUNC / MSG_CTRUNC), non-SCM_RIGHTS control messages and more than
// kMaxFds descriptors; received fds are close-on-exec.
Received receive_message(int fd);

// Checks that `fd` is a listening TCP socket of `family`.
bool is_listening_tcp_socket(int fd, int family, std::string* error);

}  // namespace huginn::ipc
