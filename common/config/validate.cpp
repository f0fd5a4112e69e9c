#include "common/config/validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "common/net/http_token.h"

namespace huginn::config::valid {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool tchar(char c) { return is_alpha(c) || is_digit(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr; }

bool pton(int family, std::string_view s, void* out) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN || s.find('\0') != std::string_view::npos) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  return inet_pton(family, buf, out) == 1;
}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  huginn::net::ascii_lower_in_place(out);
  return out;
}

std::string escaped(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

// Built by appending: gcc 12 at -O3 reports a false -Wrestrict on "\"" + std::string.
std::string quoted(std::string_view s) {
  std::string out(1, '"');
  out.append(escaped(s));
  out.push_back('"');
  return out;
}

bool header_name(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s)
    if (c == '\0' || !tchar(c)) return false;
  return true;
}

bool header_value(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u == '\t') continue;
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

bool reserved_header(std::string_view n) {
  for (const char* r : {"host", "connection", "content-length", "transfer-encoding", "te", "upgrade",
                        "keep-alive", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                        "x-forwarded-port", "x-fingerprint-spoofing-detected"})
    if (n == r) return true;
  return n.rfind("proxy-", 0) == 0;
}

bool dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return false;
    if (++label > 63) return false;
  }
  return label != 0;
}

bool split_host_port(std::string_view s, std::string& host, uint16_t& port, std::string& err) {
  std::string_view h;
  std::string_view p;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      err = "expected \"[ipv6]:port\"";
      return false;
    }
    h = s.substr(1, close - 1);
    p = s.substr(close + 2);
    in6_addr a6;
    if (!pton(AF_INET6, h, &a6)) {
      err = "not a valid IPv6 address in brackets";
      return false;
    }
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      err = "expected \"host:port\"";
      return false;
    }
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) {
      err = "an IPv6 address must be written in brackets (\"[::1]:8080\")";
      return false;
    }
    if (!dns_name(h)) {
      err = "not a valid host name or IPv4 address";
      return false;
    }
  }
  if (p.empty() || p.size() > 5) {
    err = "port must be between 1 and 65535";
    return false;
  }
  uint32_t v = 0;
  for (char c : p) {
    if (!is_digit(c)) {
      err = "port must be between 1 and 65535";
      return false;
    }
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) {
    err = "port must be between 1 and 65535";
    return false;
  }
  host = std::string(h);
  port = static_cast<uint16_t>(v);
  return true;
}

bool domain_host(std::string_view s, std::string& out, std::string& err) {
  std::string h = lower(s);
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (h.empty()) {
    err = s.empty() ? "must not be empty (omit host for the catch-all domain)" : "not a host name";
    return false;
  }
  if (h.find(':') != std::string::npos) {
    in6_addr a6;
    if (pton(AF_INET6, h, &a6)) {
      out = h;
      return true;
    }
    err = "must not contain a port";
    return false;
  }
  if (h.find('*') != std::string::npos) {
    if (h.size() < 3 || h.compare(0, 2, "*.") != 0 || h.find('*', 1) != std::string::npos) {
      err = "a wildcard must be a single leading label (\"*.example.com\")";
      return false;
    }
    if (!dns_name(std::string_view(h).substr(2))) {
      err = "not a valid wildcard host name";
      return false;
    }
    out = h;
    return true;
  }
  if (!dns_name(h)) {
    err = "not a valid host name";
    return false;
  }
  out = h;
  return true;
}

bool path_prefix(std::string_view s) {
  if (s.empty() || s.front() != '/') return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '?' || c == '#') return false;
  }
  return true;
}

bool request_target(std::string_view s) {
  if (s.empty() || s.front() != '/') return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '#') return false;
  }
  return true;
}

bool tls_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ':' || c == ',') return false;
  }
  return true;
}

bool ip_literal(std::string_view s, int family) {
  unsigned char buf[16];
  if (family == AF_INET || family == AF_UNSPEC)
    if (pton(AF_INET, s, buf)) return true;
  if (family == AF_INET6 || family == AF_UNSPEC)
    if (pton(AF_INET6, s, buf)) return true;
  return false;
}

bool dbus_address(std::string_view s) {
  // transport:key=value,... (D-Bus specification, "Server Addresses"); ';' separates alternatives.
  const size_t colon = s.find(':');
  if (colon == 0 || colon == std::string_view::npos || s.size() > 4096) return false;
  for (size_t i = 0; i < colon; ++i)
    if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-' && s[i] != '_') return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  return true;
}

bool user_name(std::string_view s) {
  // useradd's portable set: [A-Za-z0-9_.-], optional trailing '$', not starting with '-',
  // not purely numeric (that would read as a uid).
  if (s.empty() || s.size() > 32 || s.front() == '-') return false;
  if (s.find_first_not_of("0123456789") == std::string_view::npos) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.') continue;
    if (c == '$' && i + 1 == s.size() && i > 0) continue;
    return false;
  }
  return true;
}

bool cpu_list(std::string_view s, std::vector<uint32_t>& out, std::string& err) {
  out.clear();
  if (s.empty()) {
    err = "empty CPU list";
    return false;
  }
  // One CPU number: digits only, below kCpuLimit (at most 4 digits read).
  auto number = [&](std::string_view t, uint32_t& n) {
    if (t.empty() || t.size() > 4 || t.find_first_not_of("0123456789") != std::string_view::npos) {
      err = "not a CPU number: " + quoted(t);
      return false;
    }
    n = 0;
    for (char c : t) n = n * 10 + static_cast<uint32_t>(c - '0');
    if (n >= kCpuLimit) {
      err = "CPU " + std::string(t) + " is not below " + std::to_string(kCpuLimit);
      return false;
    }
    return true;
  };
  std::vector<bool> seen(kCpuLimit, false);
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    const std::string_view item = s.substr(start, comma - start);
    const size_t dash = item.find('-');
    uint32_t lo = 0, hi = 0;
    if (dash == std::string_view::npos) {
      if (!number(item, lo)) return false;
      hi = lo;
    } else {
      if (!number(item.substr(0, dash), lo) || !number(item.substr(dash + 1), hi)) return false;
      if (hi < lo) {
        err = "range " + quoted(item) + " runs backwards";
        return false;
      }
    }
    for (uint32_t c = lo; c <= hi; ++c) seen[c] = true;
    start = comma + 1;
  }
  for (uint32_t c = 0; c < kCpuLimit; ++c)
    if (seen[c]) out.push_back(c);
  return true;
}

}  // namespace huginn::config::valid
