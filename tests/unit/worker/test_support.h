// Test helpers for the worker: a Server on its own event loop thread, simple
// blocking HTTP/1.1 backends, and a raw-socket client.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/config/model.h"
#include "tests/support/worker_harness.h"
#include "worker/server.h"

namespace huginn::worker::test {

using huginn::test::listen_loopback;
using huginn::test::load_config;
using huginn::test::make_body;
using huginn::test::simple_config;

// ------------------------------------------------------------ backend

struct BackendRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  bool chunked = false;
  uint64_t connection = 0;                                  // which accepted connection carried it (1-based)
  std::string header(const std::string& lower_name) const;  // first value or ""
  size_t header_count(const std::string& lower_name) const;
};

struct BackendResponse {
  enum class Framing { kLength, kChunked, kClose };
  int status = 200;
  std::string body;
  Framing framing = Framing::kLength;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;         // "Connection: close" and close after
  int delay_ms = 0;           // before answering
  bool drop = false;          // close the connection without answering
  bool reset = false;         // RST instead of answering
  bool hangup = false;        // close right after answering, without saying so
  size_t chunk_size = 16384;  // for kChunked
};

class Backend {
 public:
  using Handler = std::function<BackendResponse(const BackendRequest&)>;
  // Default handler: 200 with body "ok <target>".
  explicit Backend(Handler h = {});
  ~Backend();
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint64_t connections() const { return connections_.load(); }
  std::vector<BackendRequest> requests() const;
  size_t request_count() const;
  // While held, a request's body is not read (the head is).
  void hold_bodies(bool hold) { hold_ = hold; }
  // Small socket buffers for connections accepted from now on (no autotuning).
  void shrink_buffers();
  size_t heads_seen() const { return heads_.load(); }

 private:
  void accept_loop();
  void serve(int fd, uint64_t conn_id);
  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> connections_{0};
  std::atomic<bool> hold_{false};
  std::atomic<size_t> heads_{0};
  mutable std::mutex mu_;
  std::vector<BackendRequest> requests_;
  std::vector<int> conn_fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// ------------------------------------------------------------ proxy

class ProxyThread {
 public:
  // `small_buffers`: accepted client sockets get small kernel buffers.
  explicit ProxyThread(std::shared_ptr<const config::Config> cfg, bool small_buffers = false);
  // One of several workers on the same listening socket (`listen_fd` is
  // duplicated), counting its connections in `region`'s slot `slot`.
  ProxyThread(std::shared_ptr<const config::Config> cfg, int listen_fd, hoststate::Region* region,
              uint32_t slot);
  ~ProxyThread();
  uint16_t port() const { return port_; }
  // Runs `fn` on the loop thread and waits for it.
  void run(std::function<void()> fn);
  ServerStats stats();
  // drain(); returns once the drained callback ran (or after 10 s: false).
  void start_drain();
  bool wait_drained(int timeout_ms = 10000);

 private:
  huginn::test::EventLoopThread loop_;  // outlives server_
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool drained_ = false;
};

// ------------------------------------------------------------ client

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  bool chunked = false;
  std::string header(const std::string& lower_name) const;
  bool has_header(const std::string& lower_name) const;
};

class Client {
 public:
  explicit Client(uint16_t port);
  ~Client();
  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  // Reads one response; nullopt on EOF/error/timeout before a full response.
  std::optional<ClientResponse> read_response(bool head_request = false);
  // True when the server closed the connection (EOF within the timeout).
  bool wait_closed(int timeout_ms = 5000);
  void shutdown_write();
  int fd() const { return fd_; }

 private:
  bool fill();  // reads more into buf_
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// Sets 64 KiB SO_SNDBUF and SO_RCVBUF.
void shrink_socket_buffers(int fd);

// One request/response over a new connection.
std::optional<ClientResponse> roundtrip(uint16_t port, const std::string& request);

}  // namespace huginn::worker::test
