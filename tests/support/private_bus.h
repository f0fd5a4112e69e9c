// A private dbus-daemon for tests: session-type (open to every uid) or
// system-type with the project's real bus policy (etc/dbus-1).
#pragma once

#include <sys/types.h>

#include <string>

namespace huginn::testing {

// A dbus-daemon of its own, listening on a path socket in a fresh temp dir
// (mode 0755 so an unprivileged client can reach it). Killed by pid in the
// destructor.
class PrivateBus {
 public:
  enum class Kind {
    kSessionOpen,       // session-type bus any uid may connect to and use
    kSystemWithPolicy,  // system-type, default-deny, includes HUGINN_SOURCE_DIR/etc/dbus-1
  };
  explicit PrivateBus(Kind kind);
  ~PrivateBus();
  PrivateBus(const PrivateBus&) = delete;
  PrivateBus& operator=(const PrivateBus&) = delete;

  bool ok() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string address_;
  std::string error_;
  pid_t pid_ = -1;
};

}  // namespace huginn::testing
