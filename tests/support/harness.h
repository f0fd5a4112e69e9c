// Test harness for integration tests: temp dirs, child processes with their
// logs, free ports, and a small blocking HTTP/1.1 client.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <json/json.h>
#include <openssl/ssl.h>

namespace huginn::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;  // returns the full path

 private:
  std::string path_;
};

// A port that was free a moment ago, outside the kernel's ephemeral range (so
// no outgoing connection takes it before the test listens on it) and reserved
// against other test processes running in parallel (a lock on its byte of
// free_port_lock_file(), held until this process exits). Neither function
// returns a port that either of them has returned before in this process, so a
// fixture's listeners never share one.
uint16_t free_port(const char* host = "127.0.0.1");
// A port that is free on every IPv4 and IPv6 address (the kernel's choice for
// a dual-stack wildcard bind): for tests that listen on both 127.0.0.1 and ::1.
uint16_t free_dual_stack_port();
// The file whose byte N a test process locks while port N is its own.
std::string free_port_lock_file();

std::string binary_path(const std::string& rel);  // relative to the build tree

// Raises the soft RLIMIT_NOFILE to `want` where the hard limit allows (processes
// spawned afterwards inherit it) and returns the soft limit now in force.
uint64_t raise_nofile_limit(uint64_t want);

class Process {
 public:
  // stdout and stderr go to `log_path`. `env` is added to this process's
  // environment, replacing the entries it names.
  Process(const std::vector<std::string>& argv, const std::string& log_path,
          const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // Waits until the log contains `needle` (returns false on timeout or exit).
  bool wait_log(const std::string& needle, int timeout_ms = 15000);
  // Counts occurrences of `needle` in the log.
  int log_count(const std::string& needle) const;
  // Waits for the exit; returns the raw wait status, or -1 on timeout.
  int wait_exit(int timeout_ms = 15000);
  bool running();
  std::string log() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_status_cache_ = 0;
  std::string log_path_;
};

// Starts the built supervisor (sbin/huginn-proxy) on the config file
// `config_path`, logging to <dir>/proxy.log. The caller waits for "workers ready".
std::unique_ptr<Process> spawn_proxy(const TempDir& dir, const std::string& config_path);

// Parses a JSON document (an echo-backend body, a status document); null on error.
Json::Value parse_json(const std::string& text);

// Runs a command to completion; returns exit code (or -1) and captures output.
int run_command(const std::vector<std::string>& argv, std::string* output, int timeout_ms = 30000);

// Direct children of `pid` (from /proc/PID/task/PID/children).
std::vector<pid_t> children_of(pid_t pid);
// A field of /proc/PID/status, e.g. "CapEff" → "0000000000000000".
std::string proc_status_field(pid_t pid, const std::string& field);
// The NUL-separated strings of /proc/PID/<file> ("cmdline", "environ").
std::vector<std::string> proc_strings(pid_t pid, const std::string& file);

// A configuration with two workers (user nobody, no D-Bus) listening on
// 127.0.0.1:`port` in cleartext, routing everything to `backend` (host:port).
std::string two_worker_config(uint16_t port, const std::string& backend);

struct HttpResponse {
  bool ok = false;    // a complete response was read
  std::string error;  // why not
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  uint64_t body_bytes = 0;
  uint64_t body_fnv = 0;
  std::string header(const std::string& lower_name) const;
  bool has_header(const std::string& lower_name) const;
};

// TLS for HttpClient (OpenSSL client).
struct TlsOptions {
  std::string sni;                // empty = no server_name extension
  std::string ca_file;            // verify the server chain against it; empty = no verification
  std::string cert_file;          // client certificate (mTLS) ...
  std::string key_file;           // ... and its key
  std::vector<std::string> alpn;  // offered protocols; empty = no ALPN extension
  int min_version = 0;            // TLS1_2_VERSION, TLS1_3_VERSION; 0 = library default
  int max_version = 0;
  SSL_SESSION* session = nullptr;  // offered for resumption (not owned)
};

class HttpClient {
 public:
  HttpClient(const std::string& host, uint16_t port);
  // The same over TLS: connects and completes the handshake; on failure
  // connected() is false and tls_error() says why.
  HttpClient(const std::string& host, uint16_t port, const TlsOptions& tls);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  // SO_RCVBUF (a slow reader: the peer's data waits in its own send queue).
  void set_receive_buffer(int bytes);
  bool send(const std::string& bytes);
  // Sends `n` bytes of the fnv_pattern as a chunked or Content-Length body,
  // in pieces, after the head was sent with send().
  bool send_pattern_body(uint64_t n, bool chunked);
  // Reads one response. `keep_body_limit` caps how much of the body is stored
  // (size and checksum always cover all of it).
  HttpResponse read_response(int timeout_ms = 15000, bool head_request = false,
                             size_t keep_body_limit = 1 << 20);
  // True if the server closes the connection within the timeout (EOF or reset).
  bool wait_closed(int timeout_ms = 5000);
  // Cleartext only: true once the first bytes waiting in the socket contain
  // `needle` (e.g. the end of a response head), without reading them.
  bool wait_received(const std::string& needle, int timeout_ms = 15000);

  // TLS connections only.
  // Sends `first` (application bytes, e.g. a request), then the client's
  // close_notify; with `fin`, the socket's write side is shut down too, and
  // all of it travels in one segment (TCP_CORK). Then reads what the server
  // still sends until it closes (or the timeout).
  struct Drained {
    size_t app_bytes = 0;       // decrypted bytes (e.g. a response)
    bool close_notify = false;  // the server's close_notify ended the stream
    bool timed_out = false;
  };
  Drained close_notify_then_drain(bool fin, const std::string& first = {}, int timeout_ms = 5000);
  const std::string& tls_error() const { return tls_error_; }
  bool session_reused() const;
  std::string alpn() const;
  std::string tls_version() const;
  std::string peer_subject() const;   // RFC 2253 one-line subject of the server certificate
  std::string peer_serial() const;    // hex serial number of the server certificate
  SSL_SESSION* get1_session() const;  // caller frees with SSL_SESSION_free
  // TLS 1.3 tickets arrive after the handshake: read (briefly) so that
  // get1_session() has one. Plain HTTP exchanges do this implicitly.
  void pump(int timeout_ms);

 private:
  bool fill(int timeout_ms);
  ssize_t raw_send(const char* data, size_t len);
  ssize_t raw_recv(char* data, size_t len);
  int fd_ = -1;
  std::string buf_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string tls_error_;
};

// One request on a new connection; `extra` is inserted verbatim after Host.
HttpResponse http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& host = "localhost", const std::string& extra = "",
                          const std::string& body = "");

}  // namespace huginn::testing
