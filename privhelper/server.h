// The helper's request loop: reads only the supervisor's control channel,
// checks every message against the permit table (ipc::helper::HelperSession)
// and answers it. Never reads from a worker's maps channel.
#pragma once

#include <string>

#include "common/ipc/helper_protocol.h"
#include "privhelper/xdp_loader.h"

namespace huginn::privhelper {

class Server {
 public:
  explicit Server(int ctl_fd) : ctl_(ctl_fd) {}
  // Sends HELLO, then serves until SHUTDOWN (returns 0), the supervisor
  // closing the channel (returns 0; XDP stays attached) or a protocol
  // violation (returns 1).
  int run();

 private:
  // Returns false when the channel must be closed.
  bool handle(ipc::helper::Received& r);
  // After the first successful attach: the seccomp allowlist of
  // common/sys/seccomp.cpp (privhelper_policy). False = cannot sandbox.
  bool enter_sandbox();

  int ctl_;
  ipc::helper::HelperSession session_;
  XdpLoader loader_;
  bool done_ = false;
  bool sandboxed_ = false;
};

}  // namespace huginn::privhelper
