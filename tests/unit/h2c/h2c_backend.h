// A small h2c (prior knowledge) origin for the H2cUpstream tests: an nghttp2
// server session per accepted loopback connection, on its own libevent
// thread. Every request is recorded; the answer follows the current
// Behaviour (status, fields, body or an echo of the request body, silence,
// RST_STREAM, an oversized header field).
#pragma once

#include <event2/event.h>
#include <event2/listener.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace huginn::worker::h2ctest {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Behaviour {
  int status = 200;
  Fields headers;              // extra response fields
  std::string body;            // response body (HEAD: only its content-length)
  bool echo_body = false;      // answer with the request body instead
  bool content_length = true;  // send content-length
  bool silent = false;         // never answer
  uint32_t rst_error = 0;      // nonzero: RST_STREAM with this code instead of answering
  size_t big_header = 0;       // nonzero: an "x-big" field of this many bytes
  int interim = 0;             // nonzero: an interim (1xx) response with this status first
  int hangups = 0;             // this many coming requests are answered by closing the connection
  int goaway_refusals = 0;     // this many coming requests get GOAWAY below their stream id, unanswered
};

struct Recorded {
  uint64_t connection = 0;  // 1-based accept order
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  Fields headers;  // regular fields in received order
  std::string body;
  std::string header(const std::string& name) const;
};

class H2cBackend {
 public:
  H2cBackend();
  ~H2cBackend();
  H2cBackend(const H2cBackend&) = delete;
  H2cBackend& operator=(const H2cBackend&) = delete;

  uint16_t port() const { return port_; }
  void set(Behaviour b);
  std::vector<Recorded> requests();
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t closed() const { return closed_.load(); }
  // Response body bytes handed to nghttp2 so far.
  uint64_t body_bytes_produced() const { return produced_.load(); }
  // GOAWAY NO_ERROR (last processed stream) on every open connection.
  void goaway_all();

 private:
  struct Conn;
  struct Stream;
  void run(const std::function<void()>& fn);
  static void accept_cb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  void on_accept(evutil_socket_t fd);
  void drop(Conn* c);

  event_base* base_ = nullptr;
  evconnlistener* listener_ = nullptr;
  uint16_t port_ = 0;
  std::mutex mu_;
  Behaviour behaviour_;
  std::vector<Recorded> requests_;
  std::map<Conn*, std::unique_ptr<Conn>> conns_;
  // Dropped connections, erased from conns_ on the next loop turn. The
  // one-shot event carries only `this`: if the loop stops first, nothing is
  // left allocated (conns_ still owns them).
  std::vector<Conn*> dropped_;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> closed_{0};
  std::atomic<uint64_t> produced_{0};
  std::thread thread_;
};

}  // namespace huginn::worker::h2ctest
