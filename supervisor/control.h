// What the control plane (D-Bus service, SIGHUP) may ask of the supervisor.
// Implemented by Supervisor; the D-Bus adaptor (dbus_service.h) only
// translates between this interface and the bus.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace huginn::supervisor {

class Control {
 public:
  virtual ~Control() = default;

  using ReloadDone = std::function<void(bool ok, const std::string& message)>;
  // Starts a reload and returns at once; `done` runs on the event loop when the
  // reload finished or failed (or immediately, when refused because one is
  // already running). Never blocks the loop.
  virtual void reload(ReloadDone done) = 0;

  // Parses and validates `path` (empty = the running config's path) without
  // side effects. Returns every error; empty = OK.
  virtual std::vector<std::string> check_config(const std::string& path) = 0;

  // Status document (JSON object): generation, config path, uptime, workers
  // (pid, generation, state, connections), reload state.
  virtual std::string status_json() = 0;

  virtual uint32_t generation() const = 0;
};

}  // namespace huginn::supervisor
