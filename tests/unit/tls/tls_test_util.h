// Test harness for worker/tls: a server (listener + tls::Acceptor) on an
// event loop in the test thread, and a real OpenSSL client in its own thread
// that pumps memory BIOs to a blocking socket, so that every byte it sends is
// recorded and write boundaries are under the test's control.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/config/model.h"
#include "common/tls/bundle.h"
#include "tests/support/test_certs.h"
#include "worker/tls/acceptor.h"
#include "worker/tls/context.h"

namespace huginn::worker::tls::test {

using SessionPtr = std::shared_ptr<SSL_SESSION>;

// ------------------------------------------------------------ config + bundle

std::shared_ptr<config::Config> tls_config();
config::Domain& add_domain(config::Config& cfg, std::optional<std::string> host,
                           const huginn::test::PemFiles& pem, const std::string& client_ca_path = {});
huginn::tls::TicketKey random_ticket_key();
// Reads every file the config names into a bundle.
std::shared_ptr<const huginn::tls::Bundle> bundle_for(const config::Config& cfg,
                                                      std::vector<huginn::tls::TicketKey> keys,
                                                      uint64_t serial = 1);
std::shared_ptr<const ContextSet> build_or_die(std::shared_ptr<const config::Config> cfg,
                                               std::shared_ptr<const huginn::tls::Bundle> b);

// ------------------------------------------------------------ server

struct ServerConn {
  bool done = false;
  bool failed = false;
  std::string reason;
  net::ClientInfo info;
  std::string received;  // application bytes read through the bufferevent
  bool eof = false;
  size_t take_at = 0;  // TestServer::take_at
  net::BufferEventPtr bev;
  std::unique_ptr<Acceptor> acceptor;
};

class TestServer {
 public:
  TestServer(std::shared_ptr<const ContextSet> set, AcceptOptions opts = {});
  ~TestServer();
  uint16_t port() const { return port_; }
  event_base* base() const { return base_; }
  void set_contexts(std::shared_ptr<const ContextSet> set) { set_ = std::move(set); }
  // Runs the loop until pred() or timeout; false on timeout.
  bool run_until(const std::function<bool()>& pred, int timeout_ms = 10000);
  std::vector<std::unique_ptr<ServerConn>>& conns() { return conns_; }
  ServerConn* last() { return conns_.empty() ? nullptr : conns_.back().get(); }
  bool last_finished() { return last() != nullptr && (last()->done || last()->failed); }
  std::string greeting = "hello\n";  // written by the server after the handshake
  size_t pre_read = 0;  // read this many bytes before the Acceptor starts; passed as initial_bytes
  // Nonzero: the connection's bufferevent gets the data path's limits and
  // callbacks (net::raise_io_limits), and its owner takes nothing out of the
  // input until this many bytes are in, like a parser that waits for a whole
  // frame.
  size_t take_at = 0;

 private:
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  static void on_tick(evutil_socket_t, short, void*) {}
  event_base* base_ = nullptr;
  evconnlistener* listener_ = nullptr;
  event* tick_ = nullptr;
  uint16_t port_ = 0;
  std::shared_ptr<const ContextSet> set_;
  AcceptOptions opts_;
  std::vector<std::unique_ptr<ServerConn>> conns_;
};

// ------------------------------------------------------------ client

struct ClientOptions {
  std::string sni;                // empty = no SNI
  std::vector<std::string> alpn;  // empty = no ALPN extension
  int min_version = 0;
  int max_version = 0;
  std::string cipher_list;   // TLS 1.2
  std::string ciphersuites;  // TLS 1.3
  std::string groups;
  std::string ca_path;  // verify the server against it (empty = no verification)
  std::string cert_path;
  std::string key_path;
  SessionPtr session;
  bool no_ticket = false;
  size_t chunk = 0;            // send in pieces of this size (with TCP_NODELAY), 0 = whole
  std::string with_finished;   // application data sent in the same write as the client Finished
  std::string after_greeting;  // application data sent after the server's greeting was read
  size_t record_size = 0;      // nonzero: after_greeting goes as records of this size, all in one write
  int hold_ms = 0;             // after after_greeting, wait this long before closing
  bool read_greeting = true;
  bool send_nothing = false;  // connect and wait for the server to close
  std::string raw;            // send these bytes instead of a TLS client (garbage tests)
};

struct ClientResult {
  bool handshake_ok = false;
  bool greeting_ok = false;
  std::string error;
  unsigned long ssl_reason = 0;       // ERR_GET_REASON of the last OpenSSL error
  std::vector<uint8_t> first_flight;  // bytes sent before the first byte was received (the ClientHello)
  std::string alpn;
  std::string version;
  std::string cipher;
  int group_nid = 0;
  bool reused = false;
  std::string peer_cn;
  std::vector<std::string> ca_names;  // CA names from the CertificateRequest (one-line)
  SessionPtr session;
  bool server_closed = false;     // send_nothing: the server closed the connection
  uint32_t data_segments_in = 0;  // TCP segments with data received up to the greeting (TCP_INFO)
  int64_t closed_after_ms = -1;
};

ClientResult run_client(uint16_t port, const ClientOptions& o);

// TCP segments with data that the socket has received (TCP_INFO; tcp_segments.cpp).
uint32_t data_segments_in(int fd);

// Runs the client in a thread while the server loop runs; returns when the
// client finished and the server's last connection finished (or timeout).
ClientResult connect_and_run(TestServer& srv, const ClientOptions& o, int timeout_ms = 10000);

}  // namespace huginn::worker::tls::test
