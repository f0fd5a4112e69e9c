// A small HTTP/2 load generator for the integration tests (nghttp2 client
// session, one thread and one connection at a time per "client", h2c prior
// knowledge or TLS with ALPN h2).
//
// Unlike h2load it treats a graceful GOAWAY the way RFC 9113 §6.8/§8.7 asks a
// client to: it opens no new stream on that connection, lets the streams the
// server will still process finish, and re-issues on a new connection every
// request the server did not process (refused with REFUSED_STREAM, above the
// GOAWAY's last stream id, or never sent because the GOAWAY came first). Those
// are counted as `retried`, not as failures; everything else that does not end
// in a response is a failure.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace huginn::testing {

struct H2LoadOptions {
  std::string host = "127.0.0.1";  // numeric IPv4 or IPv6 address
  uint16_t port = 0;
  std::string authority;  // :authority; empty = "localhost"
  std::string path = "/";
  int connections = 8;                       // concurrent clients, each with one connection at a time
  int streams = 10;                          // concurrent streams per connection
  std::chrono::milliseconds duration{4000};  // new requests are started during this time ...
  const std::atomic<bool>* stop = nullptr;   // ... or until *stop becomes true
  std::string record_header;                 // response header recorded per response (lowercase)
  int stream_timeout_ms = 10000;             // a connection silent this long with open streams fails
  bool tls = false;                          // TLS 1.2+ with ALPN h2 (no certificate verification)
  std::string sni;                           // TLS server_name; empty = none
};

struct H2LoadSample {
  std::chrono::steady_clock::time_point submitted;  // when the HEADERS were queued
  std::chrono::steady_clock::time_point completed;  // when the stream closed
  int status = 0;
  std::string header;  // value of record_header ("" if absent)
};

struct H2LoadResult {
  uint64_t ok_2xx = 0;                // responses with a 2xx status
  uint64_t other_status = 0;          // responses with any other status
  uint64_t stream_resets = 0;         // RST_STREAM from the server, not REFUSED_STREAM
  uint64_t connection_errors = 0;     // connect failures, resets, protocol errors, timeouts, early EOF
  uint64_t lost = 0;                  // requests in flight on a connection that failed
  uint64_t retried = 0;               // not processed by the server, issued again
  uint64_t goaways = 0;               // GOAWAY frames received
  uint64_t connects = 0;              // connections established
  std::vector<std::string> errors;    // the first few error messages
  std::vector<H2LoadSample> samples;  // every response, in no particular order

  uint64_t completed() const { return ok_2xx + other_status; }
  uint64_t failed() const { return other_status + stream_resets + lost; }
  std::string summary() const;  // one line with every counter and the first errors
};

// Runs the load for opts.duration (or until *opts.stop), then waits for the requests still in flight
// (and those being retried) for at most stream_timeout_ms.
H2LoadResult run_h2_load(const H2LoadOptions& opts);

}  // namespace huginn::testing
