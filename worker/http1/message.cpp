#include "worker/http1/message.h"

#include "common/net/http_token.h"

namespace huginn::worker::http1 {

bool iequals(std::string_view a, std::string_view b) { return huginn::net::ascii_iequals(a, b); }

bool is_tchar(unsigned char c) { return huginn::net::is_tchar(c); }

bool parse_content_length(std::string_view v, uint64_t* out) {
  if (v.empty() || v.size() > 19) return false;
  uint64_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  lower_in_place(out);
  return out;
}

void lower_in_place(std::string& s) { huginn::net::ascii_lower_in_place(s); }

const Header* find_header(const Headers& headers, std::string_view name) {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return &h;
  return nullptr;
}

size_t count_headers(const Headers& headers, std::string_view name) {
  size_t n = 0;
  for (const auto& h : headers)
    if (iequals(h.name, name)) ++n;
  return n;
}

}  // namespace huginn::worker::http1
