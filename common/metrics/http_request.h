// The strict, bounded HTTP/1.x request reader of the supervisor's telemetry
// endpoint (/metrics, /health, /live, /ready). Pure: bytes in, verdict out.
//
// Accepted: `METHOD SP /target SP HTTP/1.0|HTTP/1.1 CRLF`, at most
// kMaxHeaders `name: value CRLF` lines, an empty line; all within
// kMaxRequestBytes. Rejected: bare LF, obsolete line folding, control bytes,
// header names that are not tokens, and any request body (Transfer-Encoding
// or a Content-Length other than 0). The target must be an origin-form path;
// the query string is dropped.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace huginn::metrics {

inline constexpr size_t kMaxRequestBytes = 8192;
inline constexpr size_t kMaxHeaders = 64;
inline constexpr size_t kMaxMethod = 16;

enum class RequestStatus { kIncomplete, kComplete, kBad, kTooLarge };

struct Request {
  std::string method;
  std::string path;  // without the query string
};

// `buf` holds every byte received so far. kComplete fills `out`; bytes after
// the head are ignored (the endpoint closes after one response).
RequestStatus parse_request(std::string_view buf, Request* out);

}  // namespace huginn::metrics
