// The supervisor <-> worker control protocol. The whole protocol is this file.
//
// Transport: one AF_UNIX SOCK_SEQPACKET socketpair per worker, made by the
// supervisor before fork; the worker's end is fd 3 (named on its command line).
// Rules (checked by decode() and by the Session state machine below):
//   * One datagram = one message: Header{u16 version, u16 type, u32 length}
//     followed by exactly `length` payload bytes. version must be kVersion;
//     length must equal the bytes received and be <= kMaxPayload. Anything
//     else is a protocol error.
//   * Payload fields are little-endian fixed-width integers and strings with a
//     u16 length prefix; every read is bounds-checked; strings are capped at
//     kMaxString before any allocation. Trailing bytes are an error.
//   * File descriptors travel only with LISTENERS, TLS_MATERIAL, METRICS and
//     HOST_STATE. The
//     LISTENERS manifest names one entry per fd; the receiver checks that the
//     count matches exactly and that every fd is a listening TCP socket of the
//     stated family. TLS_MATERIAL carries exactly one fd: a memfd sealed
//     against write/grow/shrink holding tls::encode(bundle)
//     (common/tls/bundle.h); the receiver checks the seals and the size cap
//     (tls::kMaxBundleSize) before reading. METRICS carries exactly one fd:
//     the generation's metrics table (common/metrics/table.h), a memfd sealed
//     against grow/shrink whose size the receiver checks before mapping it
//     read-write. HOST_STATE carries exactly one fd: the host-wide state
//     region (common/hoststate), size-sealed, mapped read-write; the receiver
//     checks its size and header before use. Any other message carrying fds,
//     or a wrong count, is an error (received fds are closed).
//   * The first message in each direction is HELLO. After that, each side
//     accepts only the messages legal in its state (see Session). An unknown
//     type, a second HELLO, a message in the wrong state or any decode error
//     closes the channel; the supervisor then replaces the worker, and a worker
//     whose channel closes exits.
// Messages:
//   HELLO       S->W, W->S  proto version, worker id, generation, pid
//   LISTENERS   S->W        n x {id, tls flag, address "ip:port"}; n fds; once
//   TLS_MATERIAL S->W       serial; 1 fd (sealed memfd with the TLS bundle);
//                           any number of times after LISTENERS, before and
//                           after READY (certificate reload, ticket rotation).
//                           A worker with a TLS listener sends READY only
//                           after it received one.
//   METRICS     S->W        layout version, slot count; 1 fd (the shared metrics
//                           table); once, right after LISTENERS, only when the
//                           configuration has [telemetry] metrics_port.
//   HOST_STATE  S->W        layout version, slot; 1 fd (the host-wide state region:
//                           connection count, rate-limit buckets); once, right
//                           after LISTENERS (before METRICS), always.
//   HEALTH      S->W        backend states: one byte per config backend (index in
//                           Config::backends; 1 = healthy, 0 = down); any number
//                           of times after LISTENERS, before and after READY.
//   READY       W->S        generation, pid; sent once, after sandboxing
//   DRAIN       S->W        deadline ms: stop accepting, finish in-flight, exit
//   TERMINATE   S->W        exit now
//   STATS_REQ   S->W        (empty)
//   STATS_ANS   W->S        active connections, total connections, total requests
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/ipc/wire.h"

namespace huginn::ipc {

inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kHeaderSize = wire::kFrameHeaderSize;
inline constexpr size_t kMaxPayload = 64 * 1024;
inline constexpr size_t kMaxDatagram = kHeaderSize + kMaxPayload;
inline constexpr size_t kMaxString = 1024;
inline constexpr size_t kMaxFds = 64;

enum class MsgType : uint16_t {
  kHello = 1,
  kListeners = 2,
  kReady = 3,
  kDrain = 4,
  kTerminate = 5,
  kStatsReq = 6,
  kStatsAns = 7,
  kTlsMaterial = 8,
  kMetrics = 9,
  kHostState = 10,
  kHealth = 11,
};

struct Hello {
  uint32_t proto = kVersion;
  uint32_t worker_id = 0;
  uint32_t generation = 0;
  uint32_t pid = 0;
  bool operator==(const Hello&) const = default;
};

struct ListenerEntry {
  uint32_t id = 0;
  bool tls = false;
  std::string address;  // "ip:port" / "[v6]:port"
  bool operator==(const ListenerEntry&) const = default;
};

struct Listeners {
  std::vector<ListenerEntry> entries;  // entries[i] describes fds[i]
  bool operator==(const Listeners&) const = default;
};

struct Ready {
  uint32_t generation = 0;
  uint32_t pid = 0;
  bool operator==(const Ready&) const = default;
};

struct Drain {
  uint32_t deadline_ms = 0;
  bool operator==(const Drain&) const = default;
};

struct Terminate {
  bool operator==(const Terminate&) const = default;
};

struct StatsReq {
  bool operator==(const StatsReq&) const = default;
};

struct StatsAns {
  uint64_t active_connections = 0;
  uint64_t total_connections = 0;
  uint64_t total_requests = 0;
  bool operator==(const StatsAns&) const = default;
};

// The fd that arrives with it is handled by the receiver (not part of the value).
struct TlsMaterial {
  uint64_t serial = 0;
  bool operator==(const TlsMaterial&) const = default;
};

// The fd that arrives with it (the metrics table) is handled by the receiver.
struct Metrics {
  uint32_t layout = 0;
  uint32_t slots = 0;
  bool operator==(const Metrics&) const = default;
};

// The fd that arrives with it (the host-wide state region) is handled by the receiver.
struct HostState {
  uint32_t layout = 0;
  uint32_t slot = 0;  // this worker's slot in the region
  bool operator==(const HostState&) const = default;
};

inline constexpr size_t kMaxHealthEntries = 4096;

// Backend health as the supervisor's prober sees it: states[i] is backend i
// of the generation's Config::backends (1 = healthy, 0 = down).
struct Health {
  std::vector<uint8_t> states;
  bool operator==(const Health&) const = default;
};

using Message = std::variant<Hello, Listeners, Ready, Drain, Terminate, StatsReq, StatsAns, TlsMaterial,
                             Metrics, HostState, Health>;

MsgType type_of(const Message& m);
const char* type_name(MsgType t);

// Serialises a message into one datagram (header + payload).
std::vector<uint8_t> encode(const Message& m);

struct DecodeResult {
  bool ok = false;
  Message message;
  std::string error;  // set when !ok
};

// Pure: decodes one received datagram. `nfds` is the number of descriptors
// that arrived with it; the count must match what the message type allows.
DecodeResult decode(const uint8_t* data, size_t len, size_t nfds);

// Per-direction state machine: which message may arrive next.
class Session {
 public:
  enum class Role { kSupervisorSide, kWorkerSide };
  explicit Session(Role role) : role_(role) {}
  // Returns an empty string when `t` is legal now (and advances the state),
  // else the reason it is not.
  std::string accept(MsgType t);

 private:
  Role role_;
  bool hello_ = false;
  bool listeners_ = false;
  bool metrics_ = false;
  bool host_state_ = false;
  bool ready_ = false;
};

}  // namespace huginn::ipc
