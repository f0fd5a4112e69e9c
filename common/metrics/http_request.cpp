#include "common/metrics/http_request.h"

#include "common/net/http_token.h"

namespace huginn::metrics {

namespace {

bool is_tchar(char c) { return huginn::net::is_tchar(static_cast<unsigned char>(c)); }

bool is_vchar(char c) { return c >= 0x21 && c <= 0x7e; }

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool parse_request_line(std::string_view line, Request* out) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0 || sp1 > kMaxMethod) return false;
  const std::string_view method = line.substr(0, sp1);
  for (char c : method)
    if (!is_tchar(c)) return false;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
  if (target.empty() || target.front() != '/') return false;
  for (char c : target)
    if (!is_vchar(c)) return false;
  out->method = std::string(method);
  out->path = std::string(target.substr(0, target.find('?')));
  return true;
}

bool parse_header_line(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view name = line.substr(0, colon);
  for (char c : name)
    if (!is_tchar(c)) return false;
  const std::string_view value = trim_ows(line.substr(colon + 1));
  for (char c : value)
    if (!is_vchar(c) && c != ' ' && c != '\t' && static_cast<unsigned char>(c) < 0x80) return false;
  if (huginn::net::ascii_iequals(name, "transfer-encoding")) return false;
  if (huginn::net::ascii_iequals(name, "content-length") && value != "0") return false;
  return true;
}

}  // namespace

RequestStatus parse_request(std::string_view buf, Request* out) {
  const size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > kMaxRequestBytes)
    return buf.size() >= kMaxRequestBytes || end != std::string_view::npos ? RequestStatus::kTooLarge
                                                                           : RequestStatus::kIncomplete;
  const std::string_view head = buf.substr(0, end + 2);  // every line ends with CRLF
  size_t pos = 0;
  size_t lines = 0;
  Request r;
  while (pos < head.size()) {
    const size_t eol = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, eol - pos);
    for (char c : line)
      if (c == '\r' || c == '\n' || c == '\0') return RequestStatus::kBad;
    if (lines == 0) {
      if (!parse_request_line(line, &r)) return RequestStatus::kBad;
    } else {
      if (lines > kMaxHeaders) return RequestStatus::kBad;
      if (!parse_header_line(line)) return RequestStatus::kBad;  // also rejects folding (leading SP)
    }
    ++lines;
    pos = eol + 2;
  }
  *out = std::move(r);
  return RequestStatus::kComplete;
}

}  // namespace huginn::metrics
