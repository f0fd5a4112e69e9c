// Active health checks of the backends ([backends.health_check]), run once
// for the host by the supervisor and published to the workers (HEALTH).
//
// One probe target per distinct (address, check settings) of every
// generation that is still around: a reload that keeps a backend's address
// and check keeps its state and counters, so a down backend stays down;
// generations that share a target share its probes. A target probes every
// interval_secs on the supervisor's event loop (non-blocking connect, the
// whole probe bounded by timeout_secs):
//   * tcp:  the connection is established;
//   * http: `GET <path> HTTP/1.1` with `Host: <address>` and
//           `Connection: close`; the status code of the response's status
//           line equals expected_status (the rest of the response is not read).
// unhealthy_threshold consecutive failures take a healthy backend out of
// rotation; healthy_threshold consecutive successes bring it back. Every
// backend starts healthy (upstream's "optimistic boot"); one without
// health_check is always healthy. The backend's host name is resolved once
// (blocking getaddrinfo, like the workers do) when its target is created; an
// unresolvable one fails every probe.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <json/json.h>

#include "common/config/model.h"

namespace huginn::supervisor {

// Longest status line an http probe reads before it fails.
inline constexpr size_t kMaxProbeStatusLine = 1024;

// The status code of the HTTP/1.x status line at the start of `bytes`
// ("HTTP/1.1 200 OK\r\n"). kNeedMore while no line end has arrived.
struct StatusLine {
  enum class Result : uint8_t { kNeedMore, kBad, kOk };
  Result result = Result::kNeedMore;
  uint16_t status = 0;
};
StatusLine parse_status_line(std::string_view bytes);

// Hysteresis of one backend: consecutive results against the thresholds.
struct HealthCounter {
  bool healthy = true;
  uint32_t consecutive_failures = 0;
  uint32_t consecutive_successes = 0;
  // Records one probe result; true when `healthy` changed.
  bool record(bool ok, uint32_t unhealthy_threshold, uint32_t healthy_threshold);
};

class HealthProber {
 public:
  // Called (from the event loop) with the id of every generation that has a
  // backend whose state just changed.
  using OnChange = std::function<void(uint32_t generation)>;

  HealthProber(event_base* base, OnChange on_change);
  ~HealthProber();
  HealthProber(const HealthProber&) = delete;
  HealthProber& operator=(const HealthProber&) = delete;

  // Registers generation `id` with its configuration (which must outlive the
  // registration). Probes of new targets start at once.
  void add_generation(uint32_t id, const config::Config& cfg);
  // Forgets generation `id`; targets no generation uses any more stop.
  void remove_generation(uint32_t id);

  // One byte per Config::backends entry of generation `id` (1 healthy, 0
  // down); empty for an unknown generation.
  std::vector<uint8_t> states(uint32_t id) const;

  // huginn_health_check_probes_total{backend,result} and
  // huginn_backend_healthy{backend} in the Prometheus text format.
  std::string render_metrics() const;

  // The backends of generation `id` with their check state, for `status`.
  Json::Value status_json(uint32_t id) const;

 private:
  struct Target;
  struct GenBackend {
    std::string address;
    Target* target = nullptr;  // null: no health_check, always healthy
  };
  struct ProbeCounts {
    uint64_t ok = 0;
    uint64_t fail = 0;
  };

  void start_probe(Target* t);
  void finish_probe(Target* t, bool ok, const std::string& error);
  void on_connected(Target* t);
  void on_readable(Target* t);
  static std::string key_of(const config::Backend& b);

  event_base* base_;
  OnChange on_change_;
  std::map<std::string, std::unique_ptr<Target>> targets_;  // by key_of()
  std::map<uint32_t, std::vector<GenBackend>> generations_;
  std::map<std::string, ProbeCounts> counts_;  // by address; while some generation has it
};

}  // namespace huginn::supervisor
