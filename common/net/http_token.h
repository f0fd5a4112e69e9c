// RFC 9110 §5.6.2 token characters and ASCII case folding (header names,
// host names), shared by every HTTP reader in the project (the worker's
// HTTP/1 and HTTP/2 code, the TLS server name, the configuration, the
// supervisor's metrics endpoint). No locale. Pure.
#pragma once

#include <string>
#include <string_view>

namespace huginn::net {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline void ascii_lower_in_place(std::string& s) {
  for (char& c : s) c = ascii_lower(c);
}

constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

constexpr bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

}  // namespace huginn::net
