// huginnctl's side of org.huginn.Proxy1 (supervisor/dbus/org.huginn.Proxy1.xml):
// connecting to the bus chosen with --bus, the calls, and the mapping of bus
// failures to one clear line and a distinct exit status.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sdbus {
class IConnection;
class IProxy;
}  // namespace sdbus

namespace huginn::ctl {

// huginnctl exit statuses (documented in huginnctl(8)).
enum ExitCode : int {
  kExitOk = 0,            // success
  kExitFailed = 1,        // the operation ran and failed (reload failed, bad config)
  kExitUsage = 2,         // usage error
  kExitUnreachable = 3,   // cannot reach the daemon: no bus, daemon not running
  kExitAccessDenied = 4,  // refused by the bus policy or by the daemon's caller check
  kExitBusError = 5,      // any other D-Bus failure (timeout, malformed reply)
};

// A bus failure, already translated into a one-line message for stderr and
// the exit status to return.
class ClientError : public std::runtime_error {
 public:
  ClientError(int exit_code, const std::string& message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

class DbusClient {
 public:
  // `bus`: "system", "session" or a D-Bus address. Throws ClientError.
  explicit DbusClient(const std::string& bus);
  ~DbusClient();
  DbusClient(const DbusClient&) = delete;
  DbusClient& operator=(const DbusClient&) = delete;

  // All calls throw ClientError on bus failures.
  // Blocks until the reload finished or failed (or `timeout` passed).
  std::pair<bool, std::string> reload(std::chrono::seconds timeout = std::chrono::seconds(120));
  std::pair<bool, std::vector<std::string>> check_config(const std::string& path);
  std::string status_json();
  uint32_t generation();
  std::string version();

 private:
  [[noreturn]] void rethrow_bus_error(const char* what) const;

  std::string bus_;
  std::unique_ptr<sdbus::IConnection> conn_;
  std::unique_ptr<sdbus::IProxy> proxy_;
};

// Human-readable rendering of the GetStatus JSON for `huginnctl status`.
// Returns false (and writes nothing) when `json` is not a JSON object.
bool render_status(const std::string& json, std::string* out);

}  // namespace huginn::ctl
