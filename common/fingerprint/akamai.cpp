#include "common/fingerprint/akamai.h"

#include <algorithm>

namespace huginn::fp {

void AkamaiBuilder::on_settings(const std::vector<std::pair<uint16_t, uint32_t>>& settings, bool ack) {
  if (complete_ || ack || have_settings_) return;
  have_settings_ = true;
  settings_.reserve(std::min(settings.size(), kAkamaiMaxEntries) * 12);
  const size_t n = std::min(settings.size(), kAkamaiMaxEntries);
  for (size_t i = 0; i < n; ++i) {
    if (i) settings_.push_back(';');
    settings_.append(std::to_string(settings[i].first))
        .append(1, ':')
        .append(std::to_string(settings[i].second));
  }
}

void AkamaiBuilder::on_window_update(uint32_t stream_id, uint32_t increment) {
  if (complete_ || stream_id != 0 || have_window_update_) return;
  have_window_update_ = true;
  window_update_ = increment;
}

void AkamaiBuilder::on_priority(uint32_t stream_id, bool exclusive, uint32_t depends_on, uint8_t weight) {
  if (complete_ || priority_count_ >= kAkamaiMaxEntries) return;
  ++priority_count_;
  if (!priorities_.empty()) priorities_.push_back(',');
  priorities_.append(std::to_string(stream_id))
      .append(exclusive ? ":1:" : ":0:")
      .append(std::to_string(depends_on))
      .append(1, ':')
      .append(std::to_string(static_cast<unsigned>(weight) + 1));
}

void AkamaiBuilder::on_headers(uint32_t stream_id,
                               const std::vector<std::string>& pseudo_header_names_in_order,
                               std::optional<H2Priority> headers_priority) {
  if (complete_) return;
  complete_ = true;
  headers_stream_id_ = stream_id;
  headers_priority_ = headers_priority;
  size_t n = 0;
  for (const std::string& name : pseudo_header_names_in_order) {
    // ":method" -> 'm'; anything that is not ":x..." is not a pseudo-header.
    if (name.size() < 2 || name[0] != ':') continue;
    if (n++ == kAkamaiMaxEntries) break;
    if (!pseudo_.empty()) pseudo_.push_back(',');
    pseudo_.push_back(name[1]);
  }
}

std::string AkamaiBuilder::value() const {
  std::string s;
  s.reserve(settings_.size() + priorities_.size() + pseudo_.size() + 16);
  s.append(settings_).append(1, '|');
  if (have_window_update_) {
    s.append(std::to_string(window_update_));
  } else {
    s.append("00");
  }
  s.append(1, '|');
  if (priorities_.empty()) {
    s.append(1, '0');
  } else {
    s.append(priorities_);
  }
  s.append(1, '|').append(pseudo_);
  return s;
}

}  // namespace huginn::fp
