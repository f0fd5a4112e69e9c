// A header block for nghttp2_submit_response / nghttp2_submit_request: views
// of bytes the caller keeps until the submit call returns (nghttp2 copies
// them then). A typical block fits inline, without a heap allocation; a
// longer one spills into a vector.
#pragma once

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstddef>
#include <string_view>
#include <vector>

namespace huginn::worker::net {

class NvList {
 public:
  static constexpr size_t kInline = 24;

  NvList() = default;
  NvList(const NvList&) = delete;
  NvList& operator=(const NvList&) = delete;

  void add(std::string_view name, std::string_view value) {
    const nghttp2_nv nv{bytes(name), bytes(value), name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
    if (count_ < kInline) {
      inline_[count_++] = nv;
      return;
    }
    if (more_.empty()) more_.assign(inline_.begin(), inline_.end());
    more_.push_back(nv);
    ++count_;
  }
  const nghttp2_nv* data() const { return more_.empty() ? inline_.data() : more_.data(); }
  size_t size() const { return count_; }

 private:
  static uint8_t* bytes(std::string_view s) {
    // nghttp2's API is not const-correct; it only reads the bytes.
    return reinterpret_cast<uint8_t*>(const_cast<char*>(s.data()));
  }

  std::array<nghttp2_nv, kInline> inline_;
  std::vector<nghttp2_nv> more_;
  size_t count_ = 0;
};

}  // namespace huginn::worker::net
