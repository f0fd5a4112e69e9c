// sd_notify(3) without libsystemd: a datagram to $NOTIFY_SOCKET. A no-op when
// the variable is unset (not started by systemd).
#pragma once

#include <string>

namespace huginn::supervisor {

bool sd_notify(const std::string& state);

}  // namespace huginn::supervisor
