// Raw-frame front end for the Akamai fingerprint: consumes the client->server
// byte stream of a cleartext HTTP/2 connection (24-byte connection preface,
// then frames), HPACK-decodes the first request's HEADERS (+CONTINUATION) with
// nghttp2's inflater and drives an AkamaiBuilder. Done at the first HEADERS.
// Bounded buffering: a frame's length is checked before anything is buffered.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/fingerprint/akamai.h"
#include "common/sys/c_handle.h"

namespace huginn::fp {

// Default SETTINGS_MAX_FRAME_SIZE (RFC 9113 4.2): the largest frame payload
// a client may send before it has seen the server's SETTINGS.
inline constexpr uint32_t kH2DefaultMaxFrameSize = 16 * 1024;
// Cap on the joined HEADERS + CONTINUATION header block.
inline constexpr size_t kH2MaxHeaderBlock = 64 * 1024;

class H2PrefaceScanner {
 public:
  enum class Status { kNeedMore, kDone, kError };

  H2PrefaceScanner();
  H2PrefaceScanner(const H2PrefaceScanner&) = delete;
  H2PrefaceScanner& operator=(const H2PrefaceScanner&) = delete;
  H2PrefaceScanner(H2PrefaceScanner&&) noexcept = default;
  H2PrefaceScanner& operator=(H2PrefaceScanner&&) noexcept = default;
  ~H2PrefaceScanner();

  // Feeds the next bytes of the stream (any segmentation). After kDone or
  // kError further calls return the same status and ignore the input.
  Status feed(const uint8_t* data, size_t len);
  Status status() const { return status_; }
  const std::string& error() const { return error_; }
  // The Akamai string (final once status() == kDone).
  std::string akamai() const { return builder_.value(); }
  const AkamaiBuilder& builder() const { return builder_; }

 private:
  Status fail(std::string msg);
  Status process_frame(uint8_t type, uint8_t flags, uint32_t stream_id, const uint8_t* payload, size_t len);
  Status finish_headers();

  using Inflater = sys::CHandle<nghttp2_hd_inflater, nghttp2_hd_inflate_del>;

  Status status_ = Status::kNeedMore;
  std::string error_;
  AkamaiBuilder builder_;
  Inflater inflater_;
  size_t preface_seen_ = 0;
  std::vector<uint8_t> buf_;           // partial frame (header + payload), bounded
  std::vector<uint8_t> header_block_;  // HEADERS + CONTINUATION fragments, bounded
  bool in_headers_ = false;
  uint32_t headers_stream_ = 0;
  std::optional<H2Priority> headers_priority_;
};

}  // namespace huginn::fp
