// The org.huginn.Proxy1 D-Bus service (see supervisor/dbus/org.huginn.Proxy1.xml).
//
// Driven from the supervisor's libevent loop: the bus fd and timeout from
// sdbus-c++'s poll data are registered as events and pending messages are
// processed until idle; there is no extra thread. Mutating methods (Reload)
// check the caller: uid 0 or a member of the `huginn-admin` group, else the
// error org.huginn.Proxy1.Error.AccessDenied.
#pragma once

#include <event2/event.h>

#include <memory>
#include <string>

#include "supervisor/control.h"

namespace huginn::supervisor {

class DbusService {
 public:
  // `bus`: "system", "session" or a D-Bus address ("unix:path=/run/x.sock").
  // Connects, registers the object and requests the name org.huginn.Proxy1.
  // Returns nullptr with `*error` set when the bus is unavailable or the name
  // is taken.
  static std::unique_ptr<DbusService> create(event_base* base, const std::string& bus, Control& control,
                                             std::string* error);
  virtual ~DbusService() = default;

  // Emits the Reloaded(u generation, b ok, s message) signal and
  // PropertiesChanged for Generation.
  virtual void emit_reloaded(uint32_t generation, bool ok, const std::string& message) = 0;
};

}  // namespace huginn::supervisor
