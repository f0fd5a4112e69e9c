#include "common/sys/log.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <mutex>

#include <json/json.h>

namespace huginn::log {
namespace {
Options g_opts;
std::mutex g_mu;
constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error"};
// sd-daemon priorities: debug=7, info=6, warning=4, err=3.
constexpr int kPrio[] = {7, 7, 6, 4, 3};
}  // namespace

void configure(const Options& opts) {
  std::lock_guard lk(g_mu);
  g_opts = opts;
}
const Options& options() { return g_opts; }
bool enabled(Level l) { return static_cast<int>(l) >= static_cast<int>(g_opts.level); }

bool parse_level(std::string_view name, Level* out) {
  for (int i = 0; i < 5; ++i)
    if (name == kNames[i]) {
      *out = static_cast<Level>(i);
      return true;
    }
  if (name == "warning") {
    *out = Level::kWarn;
    return true;
  }
  return false;
}

void vwrite(Level l, const char* fmt, va_list ap) {
  if (!enabled(l)) return;
  char msg[2048];
  int n = std::vsnprintf(msg, sizeof msg, fmt, ap);
  if (n < 0) return;
  std::string line;
  const int li = static_cast<int>(l);
  if (g_opts.json) {
    Json::Value v;
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    v["ts"] = static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
    v["level"] = kNames[li];
    v["component"] = g_opts.component;
    v["pid"] = static_cast<int>(getpid());
    v["msg"] = msg;
    Json::StreamWriterBuilder b;
    b["indentation"] = "";
    line.append(1, '<').append(std::to_string(kPrio[li])).append(1, '>');
    line.append(Json::writeString(b, v)).append(1, '\n');
  } else {
    line.append(1, '<').append(std::to_string(kPrio[li])).append(1, '>').append(g_opts.component);
    line.append(1, '[').append(std::to_string(getpid())).append("]: ").append(kNames[li]).append(": ");
    line.append(msg).append(1, '\n');
  }
  std::lock_guard lk(g_mu);
  // One write(2) per line so that lines of several processes never interleave.
  ssize_t off = 0;
  while (off < static_cast<ssize_t>(line.size())) {
    ssize_t w = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (w <= 0) break;
    off += w;
  }
}

void write(Level l, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vwrite(l, fmt, ap);
  va_end(ap);
}

}  // namespace huginn::log
