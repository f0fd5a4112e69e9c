// A test hook in the real worker binary: after the worker is sandboxed and
// has said READY, it attempts one forbidden system call, logs what the kernel
// did, and (if it survives) carries on serving. It proves on the running
// binary, not on a copy of the policy, that the allowlist holds.
//
//   HUGINN_WORKER_SANDBOX_PROBE=<worker id>:<probe>
//
// Only the worker with that id probes (so a killing probe takes down that
// worker alone; the supervisor restarts it, and it probes again). Probes are
// listed in worker/sandbox_probe.cpp. The variable is inherited from the
// supervisor's environment; with it unset this code does nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace huginn::worker {

// The probe named for worker `worker_id` by `env_value`, or nullopt.
std::optional<std::string> sandbox_probe_for(std::string_view env_value, uint32_t worker_id);

// Runs probe `name`: returns a line for the log ("refused: Permission denied"),
// or does not return when the kernel kills the process. Unknown names say so.
std::string run_sandbox_probe(const std::string& name);

}  // namespace huginn::worker
