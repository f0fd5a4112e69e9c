// A real HTTP/1.1 origin server for tests and for the README demo: blocking
// sockets, one thread per connection, keep-alive, Content-Length and chunked
// request bodies. By default it answers every request with a JSON echo of what
// it received (method, target, headers, body size and checksum), so a test or
// a person sees exactly what a backend behind the proxy sees.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace huginn::testing {

struct Request {
  std::string method;
  std::string target;
  std::string version;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in order
  uint64_t body_bytes = 0;
  uint64_t body_fnv = 0;  // FNV-1a 64 of the body
  std::string body;       // the first 64 KiB of the body
  uint64_t connection_id = 0;
  std::string header(const std::string& lower_name) const;  // "" if absent
  int header_count(const std::string& lower_name) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, `stream_bytes` bytes of fnv_pattern() are sent as the body
  // (chunked if `chunked`, else with Content-Length) instead of `body`.
  uint64_t stream_bytes = 0;
  bool chunked = false;
  int delay_ms = 0;              // wait before answering
  bool close_after = false;      // close the connection after this response
  bool drop_connection = false;  // close without answering
};

// Deterministic body pattern: byte i = (i * 31 + 7) & 0xff.
void fnv_pattern(uint64_t offset, char* out, size_t n);
uint64_t fnv1a(uint64_t h, const char* p, size_t n);
inline constexpr uint64_t kFnvInit = 1469598103934665603ULL;

std::string echo_json(const Request& r);

class Backend {
 public:
  using Handler = std::function<Response(const Request&)>;
  // Listens on `address` ("127.0.0.1" / "::1"), port 0 = any free port.
  explicit Backend(Handler handler = {}, const std::string& address = "127.0.0.1", uint16_t port = 0);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const;  // "127.0.0.1:PORT"
  uint64_t connections() const { return connections_.load(); }
  uint64_t requests() const { return requests_.load(); }
  std::vector<Request> received() const;
  void stop();
  // Requests whose target starts with `prefix` get `413` and "too large" as
  // soon as their head is in, before their body is read (as a backend that
  // refuses an upload early): the response says `Connection: close`, then the
  // rest of the connection is read and dropped until the peer closes it. The
  // handler is not called for them; their `body_bytes` stay 0.
  void reject_early_under(const std::string& prefix);

 private:
  void accept_loop();
  void serve(int fd, uint64_t id);

  Handler handler_;
  std::string host_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> requests_{0};
  mutable std::mutex mu_;
  std::string early_prefix_;  // guarded by mu_
  std::vector<Request> received_;
  std::vector<int> conn_fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace huginn::testing
