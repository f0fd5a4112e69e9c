// Wire primitives shared by both control protocols (protocol.h: supervisor <->
// worker; helper_protocol.h: supervisor <-> privhelper <-> worker maps):
//   * Writer / Reader: little-endian fixed-width integers and u16
//     length-prefixed strings; every read is bounds-checked and every length
//     is capped before anything is allocated; after the first failure every
//     read fails.
//   * one datagram with SCM_RIGHTS descriptors over SOCK_SEQPACKET.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/sys/unique_fd.h"

namespace huginn::ipc {

enum class RecvStatus { kMessage, kClosed, kAgain, kError };

namespace wire {

// Every datagram starts with {u16 version, u16 type, u32 payload length}.
inline constexpr size_t kFrameHeaderSize = 8;

class Writer {
 public:
  // Starts a framed message; finish() fills in the payload length.
  void begin(uint16_t version, uint16_t type) {
    u16(version);
    u16(type);
    u32(0);
  }
  std::vector<uint8_t> finish() {
    const auto len = static_cast<uint32_t>(buf_.size() - kFrameHeaderSize);
    for (int i = 0; i < 4; ++i) buf_[4 + i] = static_cast<uint8_t>(len >> (8 * i));
    return std::move(buf_);
  }
  void u8(uint8_t v) { buf_.push_back(v); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void bytes(const uint8_t* p, size_t n) { buf_.insert(buf_.end(), p, p + n); }
  void str(const std::string& s, size_t cap) {
    const size_t n = std::min(s.size(), cap);
    u16(static_cast<uint16_t>(n));
    buf_.insert(buf_.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
  }
  void strs(const std::vector<std::string>& v, size_t max_count, size_t cap) {
    const size_t n = std::min(v.size(), max_count);
    u16(static_cast<uint16_t>(n));
    for (size_t i = 0; i < n; ++i) str(v[i], cap);
  }
  std::vector<uint8_t>& buf() { return buf_; }

 private:
  void put(uint64_t v, int size) {
    for (int i = 0; i < size; ++i) buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> buf_;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool u8(uint8_t* v) { return get(v, 1); }
  bool u16(uint16_t* v) { return get(v, 2); }
  bool u32(uint32_t* v) { return get(v, 4); }
  bool u64(uint64_t* v) { return get(v, 8); }
  bool bytes(uint8_t* out, size_t n) {
    if (!ok_ || n_ - off_ < n) return fail();
    std::memcpy(out, p_ + off_, n);
    off_ += n;
    return true;
  }
  bool boolean(bool* b) {
    uint8_t v = 0;
    if (!u8(&v)) return false;
    if (v > 1) return fail();
    *b = v == 1;
    return true;
  }
  bool str(std::string* s, size_t cap) {
    uint16_t n = 0;
    if (!u16(&n)) return false;
    if (n > cap || n > n_ - off_) return fail();
    s->assign(reinterpret_cast<const char*>(p_ + off_), n);
    off_ += n;
    return true;
  }
  // Each string takes at least its 2-byte length prefix: the count is capped
  // by the bytes left before anything is allocated.
  bool strs(std::vector<std::string>* v, size_t max_count, size_t cap) {
    uint16_t n = 0;
    if (!u16(&n)) return false;
    if (n > max_count || n > (n_ - off_) / 2) return fail();
    v->resize(n);
    for (auto& s : *v)
      if (!str(&s, cap)) return false;
    return true;
  }
  bool done() const { return ok_ && off_ == n_; }
  bool ok() const { return ok_; }
  size_t remaining() const { return n_ - off_; }
  bool fail() {
    ok_ = false;
    return false;
  }

 private:
  template <typename T>
  bool get(T* v, size_t size) {
    if (!ok_ || n_ - off_ < size) return fail();
    T x = 0;
    for (size_t i = 0; i < size; ++i) x |= static_cast<T>(static_cast<T>(p_[off_ + i]) << (8 * i));
    *v = x;
    off_ += size;
    return true;
  }
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
  bool ok_ = true;
};

struct Frame {
  uint16_t type = 0;
  const uint8_t* payload = nullptr;
  size_t payload_len = 0;
};

// Checks the frame header of one received datagram: size, `version`
// (`protocol` names it in the message), payload length <= `max_payload` and
// equal to what arrived. Returns "" and fills `*out`, or the reason.
std::string parse_frame(const uint8_t* data, size_t len, uint16_t version, const char* protocol,
                        size_t max_payload, Frame* out);

// Sends `bytes` as one datagram with `fds` (borrowed; at most `max_fds`).
// Retries EINTR; false with `*error` set otherwise (EAGAIN included).
bool send_datagram(int fd, const std::vector<uint8_t>& bytes, const std::vector<int>& fds, size_t max_fds,
                   std::string* error);

struct Datagram {
  RecvStatus status = RecvStatus::kError;  // kMessage: `bytes` holds one datagram
  std::vector<uint8_t> bytes;
  std::vector<sys::UniqueFd> fds;  // owned, close-on-exec
  std::string error;
};

// Receives one datagram of at most `max_bytes` with at most `max_fds`
// descriptors. Truncated datagrams or control data (MSG_TRUNC / MSG_CTRUNC)
// and non-SCM_RIGHTS control messages are errors; on any error every
// received descriptor is closed.
Datagram receive_datagram(int fd, size_t max_bytes, size_t max_fds);

// receive_datagram + `decode(bytes, len, nfds)` (a protocol's pure decoder,
// returning {ok, message, error}) into that protocol's Received type; the
// descriptors are kept only when the message decoded.
template <typename Received, typename Decode>
Received receive_decoded(int fd, size_t max_bytes, size_t max_fds, Decode decode) {
  Received r;
  Datagram d = receive_datagram(fd, max_bytes, max_fds);
  r.status = d.status;
  r.error = std::move(d.error);
  if (d.status != RecvStatus::kMessage) return r;
  auto m = decode(d.bytes.data(), d.bytes.size(), d.fds.size());
  if (!m.ok) {  // the descriptors in `d` are closed on return
    r.status = RecvStatus::kError;
    r.error = m.error;
    return r;
  }
  r.message = std::move(m.message);
  r.fds = std::move(d.fds);
  return r;
}

}  // namespace wire
}  // namespace huginn::ipc
