#include "worker/net/access_log.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include <json/json.h>

#include "common/sys/log.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::net {
namespace {

constexpr std::string_view kCut = "...";

// The first `cap` bytes of `v` and whether it was cut.
std::string_view capped(std::string_view v, size_t cap, bool* cut) {
  *cut = v.size() > cap;
  return *cut ? v.substr(0, cap) : v;
}

void append_escaped(std::string& out, std::string_view v, size_t cap) {
  bool cut = false;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char ch : capped(v, cap, &cut)) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u >= 0x7f || ch == '"' || ch == '\\') {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += ch;
    }
  }
  if (cut) out += kCut;
}

// `key="value"` (or `key="-"` when empty), with a leading space.
void append_field(std::string& out, std::string_view key, std::string_view v, size_t cap) {
  out += ' ';
  out += key;
  out += "=\"";
  if (v.empty()) {
    out += '-';
  } else {
    append_escaped(out, v, cap);
  }
  out += '"';
}

void append_seconds(std::string& out, uint64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llu.%03llu", static_cast<unsigned long long>(us / 1000000),
                static_cast<unsigned long long>((us % 1000000) / 1000));
  out += buf;
}

std::string text_line(const AccessRecord& r) {
  std::string out;
  out.reserve(512 + r.path.size());
  append_escaped(out, r.client.empty() ? std::string_view("-") : r.client, kAccessCapField);
  out += " - - [";
  out += rfc3339_ms(r.time_ms);
  out += "] \"";
  append_escaped(out, r.method.empty() ? std::string_view("-") : r.method, kAccessCapMethod);
  out += ' ';
  append_escaped(out, r.path.empty() ? std::string_view("-") : r.path, kAccessCapPath);
  out += ' ';
  append_escaped(out, r.protocol.empty() ? std::string_view("-") : r.protocol, kAccessCapMethod);
  out += "\" ";
  out += std::to_string(r.status);
  out += ' ';
  out += std::to_string(r.body_bytes);
  append_field(out, "host", r.host, kAccessCapHost);
  out += " rt=";
  append_seconds(out, r.request_us);
  out += " urt=";
  if (r.upstream_us) {
    append_seconds(out, *r.upstream_us);
  } else {
    out += '-';
  }
  append_field(out, "backend", r.backend, kAccessCapField);
  append_field(out, "route", r.route, kAccessCapField);
  append_field(out, "tls", r.tls_version, kAccessCapField);
  append_field(out, "sni", r.sni, kAccessCapField);
  append_field(out, "ja4", r.ja4, kAccessCapField);
  append_field(out, "akamai", r.akamai, kAccessCapField);
  append_field(out, "tcp", r.tcp, kAccessCapField);
  return out;
}

Json::Value json_string(std::string_view v, size_t cap) {
  if (v.empty()) return Json::Value(Json::nullValue);
  bool cut = false;
  std::string s(capped(v, cap, &cut));
  if (cut) s += kCut;
  return Json::Value(s);
}

std::string json_line(const AccessRecord& r) {
  Json::Value v(Json::objectValue);
  v["type"] = "access";
  v["time"] = rfc3339_ms(r.time_ms);
  v["client"] = json_string(r.client, kAccessCapField);
  v["method"] = json_string(r.method, kAccessCapMethod);
  v["host"] = json_string(r.host, kAccessCapHost);
  v["path"] = json_string(r.path, kAccessCapPath);
  v["protocol"] = json_string(r.protocol, kAccessCapMethod);
  v["status"] = static_cast<Json::UInt>(r.status);
  v["bytes"] = static_cast<Json::UInt64>(r.body_bytes);
  v["request_us"] = static_cast<Json::UInt64>(r.request_us);
  v["upstream_us"] =
      r.upstream_us ? Json::Value(static_cast<Json::UInt64>(*r.upstream_us)) : Json::Value(Json::nullValue);
  v["backend"] = json_string(r.backend, kAccessCapField);
  v["route"] = json_string(r.route, kAccessCapField);
  v["tls_version"] = json_string(r.tls_version, kAccessCapField);
  v["sni"] = json_string(r.sni, kAccessCapField);
  v["ja4"] = json_string(r.ja4, kAccessCapField);
  v["akamai"] = json_string(r.akamai, kAccessCapField);
  v["tcp"] = json_string(r.tcp, kAccessCapField);
  Json::StreamWriterBuilder b;
  b["indentation"] = "";
  const std::string raw = Json::writeString(b, v);
  // jsoncpp escapes every other control character and (emitUTF8 off) every
  // non-ASCII one; DEL is the one it leaves raw. It can only occur inside a
  // string (every key is ours), where \u007f means the same.
  std::string out;
  out.reserve(raw.size());
  for (const char ch : raw) {
    if (ch == '\x7f') {
      out += "\\u007f";
    } else {
      out += ch;
    }
  }
  return out;
}

int64_t realtime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

std::string rfc3339_ms(int64_t unix_ms) {
  const int64_t ms = ((unix_ms % 1000) + 1000) % 1000;
  const time_t secs = static_cast<time_t>((unix_ms - ms) / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1,
                t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string format_access(const AccessRecord& r, AccessFormat f) {
  return f == AccessFormat::kJson ? json_line(r) : text_line(r);
}

// ------------------------------------------------------------ AccessEntry

void AccessEntry::begin(const WorkerContext& ctx, std::string_view method_, std::string_view path_,
                        const char* proto) {
  std::unique_ptr<Text> keep = std::move(text);
  *this = AccessEntry{};
  if (!ctx.cfg->logging.access_log) return;
  active = true;
  start_us = metrics_clock_us();
  text = keep ? std::move(keep) : std::make_unique<Text>();
  // Capped copies (one byte over the cap keeps the "cut" mark visible).
  text->method.assign(method_.substr(0, kAccessCapMethod + 1));
  text->host.clear();
  text->path.assign(path_.substr(0, kAccessCapPath + 1));
  protocol = proto;
}

// The upstream timing is kept with the access log off too: the metrics'
// backend duration uses it.
void AccessEntry::upstream_started() { upstream_start_us = metrics_clock_us(); }

void AccessEntry::upstream_head() {
  if (upstream_start_us == 0 || upstream_us) return;
  const uint64_t now = metrics_clock_us();
  upstream_us = now > upstream_start_us ? now - upstream_start_us : 0;
}

void AccessEntry::finish(WorkerContext& ctx, const ClientInfo& info) {
  if (!active) return;
  active = false;
  const uint64_t now = metrics_clock_us();
  if (!ctx.access_log) {
    const AccessFormat f = ctx.cfg->logging.format == "json" ? AccessFormat::kJson : AccessFormat::kText;
    ctx.access_log = std::make_shared<AccessLogWriter>(ctx.base, STDERR_FILENO, f);
  }
  AccessRecord r;
  r.time_ms = realtime_ms();
  r.client = info.peer_ip;
  r.method = text->method;
  r.host = text->host;
  r.path = text->path;
  r.protocol = protocol;
  r.status = status != 0 ? status : 499;
  r.body_bytes = bytes;
  r.request_us = now > start_us ? now - start_us : 0;
  r.upstream_us = upstream_us;
  if (backend) r.backend = backend->address;
  if (route) r.route = route->prefix;
  r.tls_version = info.tls_version;
  r.sni = info.sni;
  const auto& fp = info.fingerprints;
  if (const auto v = fp.get(proxy::ConnectionFingerprints::kJa4)) r.ja4 = *v;
  if (const auto v = fp.get(proxy::ConnectionFingerprints::kAkamai)) r.akamai = *v;
  if (const auto v = fp.get(proxy::ConnectionFingerprints::kTcp)) r.tcp = *v;
  ctx.access_log->write(format_access(r, ctx.access_log->format()));
}

// ------------------------------------------------------------ AccessLogWriter

AccessLogWriter::AccessLogWriter(event_base* base, int fd, AccessFormat format) : fd_(fd), format_(format) {
  struct stat st {};
  if (fstat(fd_, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) && base != nullptr) {
    ev_.reset(event_new(base, fd_, EV_WRITE, &AccessLogWriter::writable_cb, this));
    pollable_ = static_cast<bool>(ev_);
  }
}

AccessLogWriter::~AccessLogWriter() {
  // Worker exit: what is still queued is written now.
  if (ev_) event_del(ev_.get());
  flush_all_blocking();
}

void AccessLogWriter::write(std::string_view line) {
  std::string full;
  full.reserve(line.size() + 4);
  full += "<6>";
  full += line;
  full += '\n';
  if (!pollable_) {
    queue_.push_back(std::move(full));
    queued_bytes_ += queue_.back().size();
    flush_all_blocking();
    return;
  }
  if (queued_bytes_ + full.size() > kAccessQueueMax) {
    ++dropped_;
    ++dropped_total_;
    return;
  }
  queued_bytes_ += full.size();
  queue_.push_back(std::move(full));
  if (!event_pending(ev_.get(), EV_WRITE, nullptr)) event_add(ev_.get(), nullptr);
}

void AccessLogWriter::writable_cb(evutil_socket_t, short, void* arg) {
  static_cast<AccessLogWriter*>(arg)->flush_some();
}

void AccessLogWriter::flush_some() {
  // The descriptor is writable: a pipe has room for at least PIPE_BUF bytes,
  // a stream socket for a quarter of its send buffer. One writev of whole
  // lines up to kAccessWriteBatch bytes fits without blocking (unless another
  // process sharing stderr filled it in between: then this waits for the
  // reader, as every other log line does).
  iovec iov[64];
  int n = 0;
  size_t total = 0;
  for (size_t i = 0; i < queue_.size() && n < 64; ++i) {
    const std::string& s = queue_[i];
    const size_t off = i == 0 ? head_off_ : 0;
    const size_t len = s.size() - off;
    if (n > 0 && total + len > kAccessWriteBatch) break;
    iov[n].iov_base = const_cast<char*>(s.data() + off);
    iov[n].iov_len = len;
    ++n;
    total += len;
  }
  if (n > 0) {
    const ssize_t w = ::writev(fd_, iov, n);
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      // stderr is gone: nothing can be logged any more.
      dropped_total_ += queue_.size();
      queue_.clear();
      queued_bytes_ = 0;
      head_off_ = 0;
      return;
    }
    size_t left = w > 0 ? static_cast<size_t>(w) : 0;
    while (left > 0 && !queue_.empty()) {
      const size_t rest = queue_.front().size() - head_off_;
      if (left < rest) {
        head_off_ += left;
        break;
      }
      left -= rest;
      queued_bytes_ -= queue_.front().size();
      queue_.pop_front();
      head_off_ = 0;
    }
  }
  if (!queue_.empty()) {
    event_add(ev_.get(), nullptr);
  } else if (dropped_ > 0) {
    HLOG_WARN("access log: %llu lines dropped (stderr was full)", static_cast<unsigned long long>(dropped_));
    dropped_ = 0;
  }
}

void AccessLogWriter::flush_all_blocking() {
  while (!queue_.empty()) {
    const std::string& s = queue_.front();
    const ssize_t w = ::write(fd_, s.data() + head_off_, s.size() - head_off_);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    head_off_ += static_cast<size_t>(w);
    if (head_off_ < s.size()) continue;
    queued_bytes_ -= s.size();
    queue_.pop_front();
    head_off_ = 0;
  }
  dropped_total_ += queue_.size();
  queue_.clear();
  queued_bytes_ = 0;
  head_off_ = 0;
}

}  // namespace huginn::worker::net
