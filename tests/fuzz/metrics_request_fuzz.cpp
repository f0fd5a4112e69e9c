// Fuzzes the telemetry endpoint's strict request reader (common/metrics/
// http_request.h): any bytes give a verdict without
// reading past the buffer; a complete request has a token method of at most
// kMaxMethod bytes and a path that starts with '/' and has no query; a
// request cut before its final CRLF CRLF is never complete.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/metrics/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huginn::metrics;
  const std::string buf(reinterpret_cast<const char*>(data), size);
  Request r;
  const RequestStatus st = parse_request(buf, &r);
  if (st == RequestStatus::kComplete) {
    if (r.method.empty() || r.method.size() > kMaxMethod) __builtin_trap();
    if (r.path.empty() || r.path[0] != '/' || r.path.find('?') != std::string::npos) __builtin_trap();
    if (buf.find("\r\n\r\n") + 4 > kMaxRequestBytes) __builtin_trap();
  }
  if (st == RequestStatus::kIncomplete && size >= kMaxRequestBytes) __builtin_trap();
  // A prefix of a request cut before its final CRLF CRLF is never complete.
  if (st == RequestStatus::kComplete && size > 0) {
    const size_t end = buf.find("\r\n\r\n");
    Request p;
    if (parse_request(std::string_view(buf).substr(0, end + 3), &p) == RequestStatus::kComplete)
      __builtin_trap();
  }
  return 0;
}
