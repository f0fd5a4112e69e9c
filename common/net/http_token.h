// RFC 9110 §5.6.2 token characters, shared by every HTTP reader in the
// project (the worker's HTTP/1 and HTTP/2 code, the supervisor's metrics
// endpoint). Pure.
#pragma once

namespace huginn::net {

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
