// HTTP/1 message heads as the codec hands them to the proxy: header fields in
// wire order with the client's spelling, and the body framing llhttp decided.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace huginn::worker::http1 {

struct Header {
  std::string name;   // as received
  std::string value;  // OWS trimmed by llhttp
};
using Headers = std::vector<Header>;

// A header field written by reference: its bytes live elsewhere, for as long
// as the holder says. A few of them fit without a heap allocation.
struct HeaderRef {
  std::string_view name;
  std::string_view value;
};
// Not copyable: a value kept by push_owned() lives in the holder itself.
class HeaderRefs {
 public:
  static constexpr size_t kCapacity = 12;
  static constexpr size_t kOwnedBytes = 8;

  HeaderRefs() = default;
  HeaderRefs(const HeaderRefs&) = delete;
  HeaderRefs& operator=(const HeaderRefs&) = delete;

  // False (and nothing kept) when full.
  bool push(std::string_view name, std::string_view value) {
    if (count_ == kCapacity) return false;
    items_[count_++] = HeaderRef{name, value};
    return true;
  }
  // A short value made for this request (a port number): copied into the
  // holder. False (and nothing kept) when full or out of room.
  bool push_owned(std::string_view name, std::string_view value) {
    if (count_ == kCapacity || value.size() > kOwnedBytes - owned_used_) return false;
    char* at = owned_.data() + owned_used_;
    value.copy(at, value.size());
    owned_used_ += value.size();
    return push(name, std::string_view(at, value.size()));
  }
  void clear() {
    count_ = 0;
    owned_used_ = 0;
  }
  const HeaderRef* begin() const { return items_.data(); }
  const HeaderRef* end() const { return items_.data() + count_; }
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }

 private:
  std::array<HeaderRef, kCapacity> items_{};
  size_t count_ = 0;
  std::array<char, kOwnedBytes> owned_{};
  size_t owned_used_ = 0;
};

enum class BodyFraming : uint8_t {
  kNone,        // no body
  kLength,      // Content-Length bytes
  kChunked,     // Transfer-Encoding: chunked
  kUntilClose,  // responses only: body ends when the backend closes
};

struct RequestHead {
  uint8_t method = 0;  // llhttp_method_t
  std::string target;  // request-target bytes as received
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  Headers headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;  // kLength only
  bool keep_alive = false;      // llhttp_should_keep_alive() at the end of the head
};

struct ResponseHead {
  uint16_t status = 0;
  std::string reason;
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  Headers headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = false;
};

// ASCII case-insensitive comparison for header names.
bool iequals(std::string_view a, std::string_view b);
// RFC 9110 tchar.
bool is_tchar(unsigned char c);
// Trims spaces and horizontal tabs at both ends.
std::string_view trim_ows(std::string_view s);
std::string to_lower(std::string_view s);
void lower_in_place(std::string& s);
// A Content-Length value: 1-19 decimal digits, nothing else.
bool parse_content_length(std::string_view v, uint64_t* out);

// First header named `name` (case-insensitive), or nullptr.
const Header* find_header(const Headers& headers, std::string_view name);
size_t count_headers(const Headers& headers, std::string_view name);

}  // namespace huginn::worker::http1
