// Private to common/config: value syntax checks used by the loader.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace huginn::config::valid {

std::string lower(std::string_view s);
// For messages: quotes, backslashes and control characters escaped (\", \\, \xNN),
// so that an error stays one printable line. quoted() adds the surrounding quotes.
std::string escaped(std::string_view s);
std::string quoted(std::string_view s);
// RFC 9110 token.
bool header_name(std::string_view s);
// Field value: no CR, LF, NUL or other control characters except HTAB.
bool header_value(std::string_view s);
// Headers the proxy sets or strips itself; a fingerprint header must not use them.
bool reserved_header(std::string_view lowercase_name);
// "host:port" or "[v6]:port"; port 1..65535; host a DNS name or an IP literal.
bool split_host_port(std::string_view s, std::string& host, uint16_t& port, std::string& err);
// A DNS host name (letters, digits, '-', '_', dot-separated labels).
bool dns_name(std::string_view s);
// Domain host: normalizes (lowercase, one trailing dot stripped) and validates exact or "*.x".
bool domain_host(std::string_view s, std::string& out, std::string& err);
// Starts with '/', no whitespace, '?', '#' or control characters.
bool path_prefix(std::string_view s);
// Health-check request target: starts with '/', may carry a query; no whitespace,
// '#' or control characters.
bool request_target(std::string_view s);
// A cipher/group name: non-empty, printable, no ':', ',' or whitespace.
bool tls_name(std::string_view s);
// family AF_INET, AF_INET6 or AF_UNSPEC (either).
bool ip_literal(std::string_view s, int family);
bool dbus_address(std::string_view s);
bool user_name(std::string_view s);
// Linux CPU list ("0", "0-3", "0,2,4-7"): comma-separated CPU numbers and
// inclusive ranges below kCpuLimit, no blanks. `out` gets the CPUs sorted,
// each once; `err` says what is wrong.
inline constexpr uint32_t kCpuLimit = 1024;  // glibc's CPU_SETSIZE
bool cpu_list(std::string_view s, std::vector<uint32_t>& out, std::string& err);

}  // namespace huginn::config::valid
