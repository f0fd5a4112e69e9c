// Akamai HTTP/2 fingerprint (SPEC.md section 5):
//   SETTINGS|WINDOW_UPDATE|PRIORITY|PSEUDO_HEADERS
// built from the client's frames in order, fixed at the first HEADERS frame.
// Pure: no I/O, no logging.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace huginn::fp {

// Priority fields as carried in a PRIORITY frame or a HEADERS frame with the
// PRIORITY flag. `weight` is the wire byte (0-255); the fingerprint prints weight+1.
struct H2Priority {
  bool exclusive = false;
  uint32_t depends_on = 0;
  uint8_t weight = 0;
};

// Bounds on what the fingerprint records, so that its size does not depend on
// how many frames a client sends: SETTINGS pairs past the first
// kAkamaiMaxEntries of the frame, PRIORITY frames past the first
// kAkamaiMaxEntries and pseudo-headers past the first kAkamaiMaxEntries are
// dropped. Real clients stay far below (at most 7 settings, 6 PRIORITY frames).
inline constexpr size_t kAkamaiMaxEntries = 64;

class AkamaiBuilder {
 public:
  // SETTINGS frame: only the first non-ACK SETTINGS counts (an empty frame gives an
  // empty first field). ACK frames are ignored.
  void on_settings(const std::vector<std::pair<uint16_t, uint32_t>>& settings, bool ack);
  // WINDOW_UPDATE: the first one on stream 0 counts; stream-level ones are ignored.
  void on_window_update(uint32_t stream_id, uint32_t increment);
  // PRIORITY frame: every one before the first HEADERS, as
  // stream:exclusive:depends_on:weight+1.
  void on_priority(uint32_t stream_id, bool exclusive, uint32_t depends_on, uint8_t weight);
  // First HEADERS frame (after CONTINUATIONs are joined and HPACK-decoded):
  // fixes the fingerprint. Pseudo-header names in order, e.g. ":method".
  // The HEADERS frame's own priority (PRIORITY flag) is not part of the Akamai
  // string (reference/fingerprint-rules.md section 3); it is kept for inspection.
  void on_headers(uint32_t stream_id, const std::vector<std::string>& pseudo_header_names_in_order,
                  std::optional<H2Priority> headers_priority = std::nullopt);

  bool complete() const { return complete_; }
  // The fingerprint string. Before complete() it reflects the frames so far.
  std::string value() const;

  uint32_t headers_stream_id() const { return headers_stream_id_; }
  const std::optional<H2Priority>& headers_priority() const { return headers_priority_; }

 private:
  bool complete_ = false;
  bool have_settings_ = false;
  bool have_window_update_ = false;
  std::string settings_;
  uint32_t window_update_ = 0;
  std::string priorities_;
  size_t priority_count_ = 0;
  std::string pseudo_;
  uint32_t headers_stream_id_ = 0;
  std::optional<H2Priority> headers_priority_;
};

}  // namespace huginn::fp
