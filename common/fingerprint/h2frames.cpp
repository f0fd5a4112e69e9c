#include "common/fingerprint/h2frames.h"

#include <sys/types.h>
#include <algorithm>

#include <cstring>

namespace huginn::fp {
namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kPrefaceLen = sizeof(kPreface) - 1;  // 24
constexpr size_t kFrameHeaderLen = 9;

constexpr uint8_t kTypeData = 0x0;
constexpr uint8_t kTypeHeaders = 0x1;
constexpr uint8_t kTypePriority = 0x2;
constexpr uint8_t kTypeSettings = 0x4;
constexpr uint8_t kTypePushPromise = 0x5;
constexpr uint8_t kTypeWindowUpdate = 0x8;
constexpr uint8_t kTypeContinuation = 0x9;

constexpr uint8_t kFlagAck = 0x1;
constexpr uint8_t kFlagEndHeaders = 0x4;
constexpr uint8_t kFlagPadded = 0x8;
constexpr uint8_t kFlagPriority = 0x20;

uint32_t be24(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 16) | (static_cast<uint32_t>(p[1]) << 8) | p[2];
}
uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

H2Priority read_priority(const uint8_t* p) {
  const uint32_t dep = be32(p);
  return H2Priority{(dep & 0x80000000u) != 0, dep & 0x7fffffffu, p[4]};
}

}  // namespace

H2PrefaceScanner::H2PrefaceScanner() {
  nghttp2_hd_inflater* raw = nullptr;
  if (nghttp2_hd_inflate_new(&raw) != 0 || raw == nullptr) {
    status_ = Status::kError;
    error_ = "cannot create HPACK inflater";
    return;
  }
  inflater_.reset(raw);
}

H2PrefaceScanner::~H2PrefaceScanner() = default;

H2PrefaceScanner::Status H2PrefaceScanner::fail(std::string msg) {
  status_ = Status::kError;
  error_ = std::move(msg);
  buf_.clear();
  buf_.shrink_to_fit();
  header_block_.clear();
  header_block_.shrink_to_fit();
  return status_;
}

H2PrefaceScanner::Status H2PrefaceScanner::feed(const uint8_t* data, size_t len) {
  if (status_ != Status::kNeedMore) return status_;
  if (data == nullptr) return len == 0 ? status_ : fail("null input");

  // Connection preface.
  while (preface_seen_ < kPrefaceLen && len > 0) {
    if (*data != static_cast<uint8_t>(kPreface[preface_seen_])) {
      return fail("invalid HTTP/2 connection preface");
    }
    ++preface_seen_;
    ++data;
    --len;
  }

  while (len > 0 && status_ == Status::kNeedMore) {
    // Complete the frame header (buffered across calls).
    if (buf_.size() < kFrameHeaderLen) {
      const size_t take = std::min(kFrameHeaderLen - buf_.size(), len);
      // Fast path: a whole frame in the input and nothing buffered.
      if (buf_.empty() && len >= kFrameHeaderLen) {
        const uint32_t flen = be24(data);
        if (flen > kH2DefaultMaxFrameSize) {
          return fail("frame of " + std::to_string(flen) + " bytes exceeds the maximum frame size 16384");
        }
        if (len >= kFrameHeaderLen + flen) {
          process_frame(data[3], data[4], be32(data + 5) & 0x7fffffffu, data + kFrameHeaderLen, flen);
          data += kFrameHeaderLen + flen;
          len -= kFrameHeaderLen + flen;
          continue;
        }
      }
      buf_.insert(buf_.end(), data, data + take);
      data += take;
      len -= take;
      if (buf_.size() < kFrameHeaderLen) break;
      const uint32_t flen = be24(buf_.data());
      if (flen > kH2DefaultMaxFrameSize) {
        return fail("frame of " + std::to_string(flen) + " bytes exceeds the maximum frame size 16384");
      }
      buf_.reserve(kFrameHeaderLen + flen);
    }
    // Buffer the payload (length already checked against the cap).
    const size_t flen = be24(buf_.data());
    const size_t take = std::min(kFrameHeaderLen + flen - buf_.size(), len);
    buf_.insert(buf_.end(), data, data + take);
    data += take;
    len -= take;
    if (buf_.size() < kFrameHeaderLen + flen) break;
    process_frame(buf_[3], buf_[4], be32(buf_.data() + 5) & 0x7fffffffu, buf_.data() + kFrameHeaderLen, flen);
    if (status_ == Status::kNeedMore) buf_.clear();
  }
  if (status_ == Status::kDone) {
    buf_.clear();
    buf_.shrink_to_fit();
    header_block_.clear();
    header_block_.shrink_to_fit();
  }
  return status_;
}

H2PrefaceScanner::Status H2PrefaceScanner::process_frame(uint8_t type, uint8_t flags, uint32_t stream_id,
                                                         const uint8_t* payload, size_t len) {
  if (in_headers_) {
    if (type != kTypeContinuation || stream_id != headers_stream_) {
      return fail("expected CONTINUATION of stream " + std::to_string(headers_stream_));
    }
    if (header_block_.size() + len > kH2MaxHeaderBlock) return fail("header block too large");
    header_block_.insert(header_block_.end(), payload, payload + len);
    if (flags & kFlagEndHeaders) return finish_headers();
    return status_;
  }

  switch (type) {
    case kTypeData:
      return fail("DATA frame before the first HEADERS");
    case kTypeHeaders: {
      if (stream_id == 0) return fail("HEADERS frame on stream 0");
      size_t off = 0;
      size_t end = len;
      if (flags & kFlagPadded) {
        if (len < 1) return fail("PADDED HEADERS frame without pad length");
        const size_t pad = payload[0];
        off = 1;
        if (pad > len - off) return fail("HEADERS padding exceeds the frame");
        end = len - pad;
      }
      headers_priority_.reset();
      if (flags & kFlagPriority) {
        if (end - off < 5) return fail("HEADERS frame too short for its priority fields");
        headers_priority_ = read_priority(payload + off);
        off += 5;
      }
      headers_stream_ = stream_id;
      header_block_.assign(payload + off, payload + end);
      if (flags & kFlagEndHeaders) return finish_headers();
      in_headers_ = true;
      return status_;
    }
    case kTypePriority: {
      if (stream_id == 0) return fail("PRIORITY frame on stream 0");
      if (len != 5) return fail("PRIORITY frame length " + std::to_string(len) + " (expected 5)");
      const H2Priority p = read_priority(payload);
      builder_.on_priority(stream_id, p.exclusive, p.depends_on, p.weight);
      return status_;
    }
    case kTypeSettings: {
      if (stream_id != 0) return fail("SETTINGS frame on stream " + std::to_string(stream_id));
      const bool ack = (flags & kFlagAck) != 0;
      if (ack && len != 0) return fail("SETTINGS ACK with a payload");
      if (len % 6 != 0)
        return fail("SETTINGS frame length " + std::to_string(len) + " is not a multiple of 6");
      std::vector<std::pair<uint16_t, uint32_t>> settings;
      settings.reserve(len / 6);
      for (size_t i = 0; i < len; i += 6) {
        settings.emplace_back(static_cast<uint16_t>((payload[i] << 8) | payload[i + 1]),
                              be32(payload + i + 2));
      }
      builder_.on_settings(settings, ack);
      return status_;
    }
    case kTypePushPromise:
      return fail("PUSH_PROMISE frame from a client");
    case kTypeWindowUpdate: {
      if (len != 4) return fail("WINDOW_UPDATE frame length " + std::to_string(len) + " (expected 4)");
      builder_.on_window_update(stream_id, be32(payload) & 0x7fffffffu);
      return status_;
    }
    case kTypeContinuation:
      return fail("CONTINUATION frame without a preceding HEADERS");
    default:
      // RST_STREAM, PING, GOAWAY and unknown/extension frames do not enter the
      // fingerprint (RFC 9113 5.5: unknown types are ignored).
      return status_;
  }
}

H2PrefaceScanner::Status H2PrefaceScanner::finish_headers() {
  in_headers_ = false;
  std::vector<std::string> pseudo;
  const uint8_t* in = header_block_.data();
  size_t in_len = header_block_.size();
  for (;;) {
    nghttp2_nv nv;
    int inflate_flags = 0;
    const ssize_t rv = nghttp2_hd_inflate_hd2(inflater_.get(), &nv, &inflate_flags, in, in_len, 1);
    if (rv < 0) {
      return fail(std::string("HPACK decoding failed: ") + nghttp2_strerror(static_cast<int>(rv)));
    }
    in += rv;
    in_len -= static_cast<size_t>(rv);
    if (inflate_flags & NGHTTP2_HD_INFLATE_EMIT) {
      if (nv.namelen > 0 && nv.name[0] == ':' && pseudo.size() < kAkamaiMaxEntries) {
        pseudo.emplace_back(reinterpret_cast<const char*>(nv.name), nv.namelen);
      }
    }
    if (inflate_flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_.get());
      break;
    }
    if ((inflate_flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && in_len == 0) {
      return fail("HPACK decoding stalled");
    }
  }
  builder_.on_headers(headers_stream_, pseudo, headers_priority_);
  status_ = Status::kDone;
  return status_;
}

}  // namespace huginn::fp
