// main() of every unit and integration test binary: GoogleTest's, plus the
// one piece of process set-up the daemons all do first. The unit tests run
// worker code in process (connections, upstream exchanges, in-process test
// backends), and a write to a peer that just closed must report EPIPE, as it
// does in the worker (worker/main.cpp ignores SIGPIPE), instead of killing the
// whole test binary. Children the tests spawn reset what they need: the
// daemons set SIGPIPE themselves and the supervisor restores the defaults
// for what it spawns.
#include <gtest/gtest.h>

#include <csignal>

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
