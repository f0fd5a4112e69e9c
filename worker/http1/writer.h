// HTTP/1.1 serialisation: message heads, chunk framing and the proxy's own
// JSON error responses. Values are written as given; callers pass headers
// that came through the parser or the configuration (both CR/LF-free).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "worker/http1/message.h"

namespace huginn::worker::http1 {

// "GET /x HTTP/1.1\r\n" + headers + refs + "\r\n"
void append_request_head(std::string& out, std::string_view method, std::string_view target,
                         const Headers& headers, const HeaderRefs& refs = {});
// "HTTP/1.1 200 OK\r\n" + headers + "\r\n"; an empty reason uses the standard phrase.
void append_response_head(std::string& out, uint16_t status, std::string_view reason, const Headers& headers);
// "<hex size>\r\n"
void append_chunk_size(std::string& out, size_t size);
inline constexpr std::string_view kChunkEnd = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

std::string_view status_phrase(uint16_t status);

// The reason codes of proxy-generated responses ({"error":"<reason>"}).
namespace reason {
inline constexpr std::string_view kBadRequest = "bad_request";
inline constexpr std::string_view kIpBlocked = "ip_blocked";
inline constexpr std::string_view kHeadersTooLarge = "request_header_fields_too_large";
inline constexpr std::string_view kNoRoute = "no_matching_route";
inline constexpr std::string_view kTooManyRequests = "too_many_requests";
inline constexpr std::string_view kMisdirected = "misdirected_request";
inline constexpr std::string_view kMtlsInconsistent = "mutual_tls_host_inconsistency";
inline constexpr std::string_view kBackendError = "backend_error";
inline constexpr std::string_view kNoBackend = "no_matching_backend";
inline constexpr std::string_view kUnhealthy = "upstream_unhealthy";  // every backend of the route is down
inline constexpr std::string_view kGatewayTimeout = "gateway_timeout";
}  // namespace reason

// The parts of a proxy-generated response, shared by HTTP/1.1 and HTTP/2:
// the JSON body {"error":"<reason>"} and the header fields Content-Type,
// Content-Length, then `extra` (security headers).
struct ErrorParts {
  std::string body;
  Headers headers;
};
ErrorParts error_parts(std::string_view reason_code, const Headers& extra);

// A complete HTTP/1.1 proxy-generated response (error_parts() serialised),
// with Connection: close after Content-Length when `close` is set.
std::string error_response(uint16_t status, std::string_view reason_code, const Headers& extra, bool close);

}  // namespace huginn::worker::http1
