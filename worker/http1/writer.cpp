#include "worker/http1/writer.h"

#include <cstdio>

namespace huginn::worker::http1 {

namespace {
// Bytes append_headers() adds: each "name: value\r\n" and the final CRLF.
size_t headers_size(const Headers& headers, const HeaderRefs& refs) {
  size_t n = 2;
  for (const auto& h : headers) n += h.name.size() + h.value.size() + 4;
  for (const auto& h : refs) n += h.name.size() + h.value.size() + 4;
  return n;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_headers(std::string& out, const Headers& headers, const HeaderRefs& refs) {
  for (const auto& h : headers) append_field(out, h.name, h.value);
  for (const auto& h : refs) append_field(out, h.name, h.value);
  out.append("\r\n");
}
}  // namespace

void append_request_head(std::string& out, std::string_view method, std::string_view target,
                         const Headers& headers, const HeaderRefs& refs) {
  // One allocation for the whole head (it is built once per request).
  out.reserve(out.size() + method.size() + target.size() + 12 + headers_size(headers, refs));
  out.append(method);
  out.push_back(' ');
  out.append(target);
  out.append(" HTTP/1.1\r\n");
  append_headers(out, headers, refs);
}

void append_response_head(std::string& out, uint16_t status, std::string_view reason,
                          const Headers& headers) {
  const std::string_view phrase = reason.empty() ? status_phrase(status) : reason;
  out.reserve(out.size() + 15 + phrase.size() + headers_size(headers, {}));
  const unsigned code = status % 1000u;
  out.append("HTTP/1.1 ");
  out.push_back(static_cast<char>('0' + code / 100));
  out.push_back(static_cast<char>('0' + code / 10 % 10));
  out.push_back(static_cast<char>('0' + code % 10));
  out.push_back(' ');
  out.append(phrase);
  out.append("\r\n");
  append_headers(out, headers, {});
}

void append_chunk_size(std::string& out, size_t size) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%zx\r\n", size);
  out.append(buf, static_cast<size_t>(n));
}

std::string_view status_phrase(uint16_t status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 421:
      return "Misdirected Request";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

ErrorParts error_parts(std::string_view reason_code, const Headers& extra) {
  ErrorParts p;
  p.body = "{\"error\":\"";
  p.body.append(reason_code);
  p.body.append("\"}");
  p.headers.reserve(extra.size() + 3);
  p.headers.push_back({"Content-Type", "application/json"});
  p.headers.push_back({"Content-Length", std::to_string(p.body.size())});
  p.headers.insert(p.headers.end(), extra.begin(), extra.end());
  return p;
}

std::string error_response(uint16_t status, std::string_view reason_code, const Headers& extra, bool close) {
  ErrorParts p = error_parts(reason_code, extra);
  if (close) p.headers.insert(p.headers.begin() + 2, Header{"Connection", "close"});
  std::string out;
  append_response_head(out, status, {}, p.headers);
  out.append(p.body);
  return out;
}

}  // namespace huginn::worker::http1
