// huginn-echo-backend: the demo origin server. Answers every request with a
// JSON echo of the method, path and headers it received.
//   huginn-echo-backend [--listen ADDRESS] [--port PORT]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "tests/support/backend.h"

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  int port = 9000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--listen"))
      address = argv[i + 1];
    else if (!std::strcmp(argv[i], "--port"))
      port = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: huginn-echo-backend [--listen ADDRESS] [--port PORT]\n");
      return 2;
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  huginn::testing::Backend backend({}, address, static_cast<uint16_t>(port));
  std::printf("huginn-echo-backend: listening on %s\n", backend.address().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  backend.stop();
  return 0;
}
