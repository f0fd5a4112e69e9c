// The access log ([logging] access_log = true): one line per finished request
// (HTTP/1.1 and HTTP/2; backend answers and the proxy's own 4xx/5xx; 499 for a
// request whose client went away before a response head was sent).
//
// format_access() is pure: an AccessRecord in, one line out (no newline, no
// priority prefix). Every value that comes from the client or the network is
// length-capped (kAccessCap*; a cut value ends in "...") and escaped: in the
// text format `"`, `\`, control bytes and bytes >= 0x7f become \xHH (as
// nginx's access log does), in the JSON format jsoncpp's string escaping (the
// writer of the normal JSON log lines) applies, plus DEL as \u007f. A line
// therefore never carries a raw control character (no log injection).
//
// Text: `client - - [time] "METHOD path PROTO" status bytes host="..."
// rt=S.mmm urt=S.mmm backend="..." route="..." tls="..." sni="..." ja4="..."
// akamai="..." tcp="..."`; an absent value is "-" (urt=- without a backend).
// JSON: {"type":"access","time":...,"client":...,...}; absent values are null,
// durations are integer microseconds (request_us, upstream_us).
//
// AccessLogWriter puts finished lines on stderr (priority <6>, info) without
// ever blocking the event loop on a full pipe or journal stream: lines queue
// in memory (at most kAccessQueueMax bytes) and are written from an EV_WRITE
// event on fd 2, at most kAccessWriteBatch bytes (whole lines) per write(2), so
// a line written to a pipe is never split (PIPE_BUF). When the queue is full,
// new lines are dropped and counted; a warning with the count is queued once
// the queue drained. A descriptor that cannot be polled (a regular file,
// /dev/null) is written synchronously: such writes do not wait for a reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/config/model.h"
#include "worker/net/connection.h"
#include "worker/net/event_handles.h"

namespace huginn::worker::net {

struct WorkerContext;

inline constexpr size_t kAccessCapPath = 1024;
inline constexpr size_t kAccessCapHost = 256;
inline constexpr size_t kAccessCapMethod = 32;
inline constexpr size_t kAccessCapField = 256;  // backend, route, TLS version, SNI, fingerprints

inline constexpr size_t kAccessQueueMax = 1024 * 1024;
inline constexpr size_t kAccessWriteBatch = 4096;  // PIPE_BUF on Linux

enum class AccessFormat : uint8_t { kText, kJson };

struct AccessRecord {
  int64_t time_ms = 0;                  // end of the request, Unix time in milliseconds (UTC)
  std::string_view client;              // ClientInfo::peer_ip
  std::string_view method;              // empty = unknown
  std::string_view host;                // normalised routing host; empty = unknown
  std::string_view path;                // the client's request target; empty = unknown
  std::string_view protocol;            // "HTTP/1.1", "HTTP/1.0", "HTTP/2.0"
  uint16_t status = 0;                  // 499: client gone before a response head
  uint64_t body_bytes = 0;              // response body bytes handed to the client connection
  uint64_t request_us = 0;              // request head → response end
  std::optional<uint64_t> upstream_us;  // backend request started → response head; none = no backend answer
  std::string_view backend;             // backend address; empty = none
  std::string_view route;               // route prefix; empty = none
  std::string_view tls_version;         // empty = cleartext
  std::string_view sni;                 // empty = none
  std::string_view ja4;                 // fingerprints; empty = absent
  std::string_view akamai;
  std::string_view tcp;
};

// "2026-11-28T12:27:26.123Z".
std::string rfc3339_ms(int64_t unix_ms);
std::string format_access(const AccessRecord& r, AccessFormat f);

// State of one request for the access log, kept by the HTTP connections.
struct AccessEntry {
  bool active = false;
  uint64_t start_us = 0;           // metrics_clock_us() at the request head
  uint64_t upstream_start_us = 0;  // backend exchange started; 0 = none (kept with the log off: metrics)
  std::optional<uint64_t> upstream_us;
  // Capped copies of the request line's fields and the routing host. Only
  // while the access log is on: allocated by the first begin() that logs and
  // reused by the connection's later requests (an idle connection with the
  // log off carries one pointer, not three strings).
  struct Text {
    std::string method;
    std::string host;
    std::string path;
  };
  std::unique_ptr<Text> text;
  const char* protocol = "HTTP/1.1";
  const config::Route* route = nullptr;
  const config::Backend* backend = nullptr;
  uint16_t status = 0;  // response head sent; 0 = none yet
  uint64_t bytes = 0;

  // Starts a request (no-op when the access log is off).
  void begin(const WorkerContext& ctx, std::string_view method_, std::string_view path_, const char* proto);
  void set_host(std::string_view h) {
    if (active) text->host.assign(h.substr(0, kAccessCapHost + 1));
  }
  void upstream_started();
  void upstream_head();
  // Writes the line (status 499 when no response head was sent) and ends the entry.
  void finish(WorkerContext& ctx, const ClientInfo& info);
};

class AccessLogWriter {
 public:
  AccessLogWriter(event_base* base, int fd, AccessFormat format);
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  AccessFormat format() const { return format_; }
  // Queues one line (without newline); drops it when the queue is full.
  void write(std::string_view line);
  uint64_t dropped() const { return dropped_total_; }

 private:
  static void writable_cb(evutil_socket_t, short, void* arg);
  void flush_some();
  void flush_all_blocking();

  int fd_;
  AccessFormat format_;
  bool pollable_ = false;
  EventPtr ev_;
  std::deque<std::string> queue_;  // complete lines, "<6>...\n"
  size_t queued_bytes_ = 0;
  size_t head_off_ = 0;   // bytes of queue_.front() already written
  uint64_t dropped_ = 0;  // since the last warning
  uint64_t dropped_total_ = 0;
};

}  // namespace huginn::worker::net
