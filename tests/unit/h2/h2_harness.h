// Test harness for Http2Connection: a loopback listener on its own libevent
// thread that serves every accepted socket with a real Http2Connection (h2c),
// a blocking nghttp2 client session, and a raw-frame client for abuse tests.
#pragma once

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/config/model.h"
#include "tests/support/raw_h2.h"
#include "tests/support/worker_harness.h"
#include "worker/net/http2_connection.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::h2test {

using huginn::test::load_config;

// One catch-all domain routing "/" to `backend`, plus `extra` TOML and an
// x-frame-options security header.
std::string simple_config(const std::string& backend, const std::string& extra = {});

using Fields = std::vector<std::pair<std::string, std::string>>;

class H2Server {
 public:
  // `prebuffer`: the accept path reads the 24-byte client preface itself and
  // leaves it in the transport's input buffer before start().
  explicit H2Server(std::shared_ptr<const config::Config> cfg, bool prebuffer = false);
  ~H2Server();
  H2Server(const H2Server&) = delete;
  H2Server& operator=(const H2Server&) = delete;

  uint16_t port() const { return port_; }
  // Runs `fn` on the loop thread and waits for it.
  void run(const std::function<void()>& fn);
  // Sets ctx.draining and drains every live connection.
  void drain();
  size_t live();
  uint64_t closed() const { return closed_.load(); }
  uint64_t total_requests();
  // Counters of every connection accepted so far (closed ones included).
  std::vector<net::Http2Connection::Counters> counters();

 private:
  static void accept_cb(evutil_socket_t fd, short, void* arg);
  static void reap_cb(evutil_socket_t, short, void* arg);
  void on_accept(int fd);

  huginn::test::EventLoopThread loop_;  // declared first: destroyed last
  std::shared_ptr<const config::Config> cfg_;
  bool prebuffer_;
  event_base* base_ = nullptr;
  net::WorkerContext ctx_;
  int listen_fd_ = -1;
  net::EventPtr listen_ev_;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<net::Http2Connection>> conns_;
  // Closed connections, destroyed by reap_cb on the next loop turn (never
  // inside their own callback). The one-shot event carries only `this`: if the
  // loop stops first, nothing is left allocated (conns_ still owns them).
  std::vector<net::Connection*> closed_conns_;
  std::vector<net::Http2Connection::Counters> finished_counters_;
  std::atomic<uint64_t> closed_{0};
};

struct H2Response {
  int status = 0;
  Fields headers;
  std::string body;
  bool done = false;   // END_STREAM received
  bool reset = false;  // RST_STREAM received
  uint32_t reset_error = 0;
  bool closed = false;  // stream closed (any reason)
  std::string header(const std::string& name) const;
};

class H2Client {
 public:
  // Connects to 127.0.0.1:port, sends the preface, `settings` and (when
  // nonzero) a connection WINDOW_UPDATE raising the window by `window_bump`.
  explicit H2Client(uint16_t port, const std::vector<nghttp2_settings_entry>& settings = {},
                    int32_t window_bump = 0);
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Submits a request; `body` nullopt = HEADERS with END_STREAM.
  int32_t request(const std::string& method, const std::string& path,
                  const std::string& authority = "app.test", const Fields& extra = {},
                  std::optional<std::string> body = std::nullopt);
  // Pumps I/O until `pred` holds, the connection ends or `timeout_ms` passes.
  bool wait(const std::function<bool()>& pred, int timeout_ms = 10000);
  bool wait_done(int32_t id, int timeout_ms = 10000);
  // Pumps until the server closed the connection.
  bool wait_eof(int timeout_ms = 10000);
  H2Response& response(int32_t id) { return responses_[id]; }
  nghttp2_session* session() { return session_; }
  // Sends what nghttp2 queued (no reading).
  bool flush();
  bool send_raw(const std::string& bytes);

  const std::string& sent() const { return sent_; }
  bool eof() const { return eof_; }
  int goaways() const { return goaways_; }
  uint32_t goaway_error() const { return goaway_error_; }
  int32_t goaway_last_stream() const { return goaway_last_; }
  void set_stop_reading(bool stop) { stop_reading_ = stop; }
  // Every GOAWAY in the received bytes as (last stream id, error code), found
  // by framing the raw stream (nghttp2 stops reporting frames once closing).
  std::vector<std::pair<int32_t, uint32_t>> raw_goaways() const;

 private:
  struct Upload {
    std::string data;
    size_t off = 0;
  };
  static ssize_t read_upload(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                             nghttp2_data_source* src, void* user);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user);
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t error, void* user);
  bool pump(int poll_ms);

  int fd_ = -1;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, H2Response> responses_;
  std::map<int32_t, std::unique_ptr<Upload>> uploads_;
  std::string sent_;
  std::string received_;
  bool eof_ = false;
  bool stop_reading_ = false;
  int goaways_ = 0;
  uint32_t goaway_error_ = 0;
  int32_t goaway_last_ = -1;
};

// Raw socket client: writes bytes as given and reads frames back.
class RawClient {
 public:
  explicit RawClient(uint16_t port);
  ~RawClient();
  bool send(const std::string& bytes);
  bool send(const std::vector<uint8_t>& bytes);
  // Reads frames until one of `type` arrives (true, its stream and payload).
  bool wait_frame(uint8_t type, uint32_t* stream, std::string* payload, int timeout_ms = 10000);
  // Reads frames until a GOAWAY arrives (true, error code in *error) or EOF /
  // timeout (false).
  bool wait_goaway(uint32_t* error, int timeout_ms = 10000);
  bool wait_eof(int timeout_ms = 10000);

 private:
  bool fill(int timeout_ms);
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// HPACK block of `headers` (fresh encoder).
std::string hpack(const Fields& headers);
using huginn::testing::raw_h2::frame;
using huginn::testing::raw_h2::kPreface;

}  // namespace huginn::worker::h2test
