// Leveled logging to stderr. Each line starts with an sd-daemon priority
// prefix ("<6>") so journald assigns the right priority; `[logging] format =
// "json"` switches to one JSON object per line. Safe to call from any thread;
// never call it from a raw signal handler.
#pragma once

#include <cstdarg>
#include <string>
#include <string_view>

namespace huginn::log {

enum class Level { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4 };

struct Options {
  Level level = Level::kInfo;
  bool json = false;
  std::string component = "huginn";  // "supervisor", "worker[3]", ...
};

void configure(const Options& opts);
const Options& options();
bool enabled(Level l);
// Parses "trace".."error"; returns false for an unknown name.
bool parse_level(std::string_view name, Level* out);

void write(Level l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void vwrite(Level l, const char* fmt, va_list ap);

}  // namespace huginn::log

#define HLOG_TRACE(...) ::huginn::log::write(::huginn::log::Level::kTrace, __VA_ARGS__)
#define HLOG_DEBUG(...) ::huginn::log::write(::huginn::log::Level::kDebug, __VA_ARGS__)
#define HLOG_INFO(...) ::huginn::log::write(::huginn::log::Level::kInfo, __VA_ARGS__)
#define HLOG_WARN(...) ::huginn::log::write(::huginn::log::Level::kWarn, __VA_ARGS__)
#define HLOG_ERROR(...) ::huginn::log::write(::huginn::log::Level::kError, __VA_ARGS__)
