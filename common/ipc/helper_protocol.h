// The supervisor <-> huginn-privhelper protocol and the privhelper -> worker
// map grant. The whole protocol is this file.
//
// Transport: AF_UNIX SOCK_SEQPACKET socketpairs made by the supervisor.
//   * ctl: supervisor <-> helper; the helper's end is fd 3 (--ctl-fd 3).
//   * maps: one per worker. The supervisor makes the pair, gives one end to
//     the helper with WORKER_GRANT and the other to the worker. The helper
//     only ever *sends* on it (one MAPS_GRANT) and never reads from it.
// Framing (same rules as common/ipc/protocol.h, with its own version and a
// disjoint range of type numbers so that a datagram of the other protocol is
// rejected):
//   * One datagram = one message: Header{u16 version, u16 type, u32 length}
//     followed by exactly `length` payload bytes. version must be
//     kHelperVersion; length must equal the bytes received and be <=
//     kHelperMaxPayload. Anything else is a protocol error.
//   * Payload fields are little-endian fixed-width integers; strings carry a
//     u16 length prefix and lists a u16 count, both capped (kMaxIfaces,
//     kMaxPorts, kMaxIfName, kMaxPinPath, kMaxError, kMaxGrantMaps) before
//     any allocation. Every read is bounds-checked; trailing bytes are an error.
//   * File descriptors travel only with WORKER_GRANT (exactly one: the
//     helper's end of a maps channel, which must be a SOCK_SEQPACKET unix
//     socket) and MAPS_GRANT (exactly one per manifest entry; the worker
//     checks each against its entry: read-only, same map id/type/sizes).
//     Any other message carrying fds is an error; received fds are closed.
//   * Values are validated by decode() (interface names, absolute pin path,
//     non-zero ports, map size range, xdp mode), not only their syntax.
// Messages (S = supervisor, P = privhelper, W = worker):
//   HELLO            S->P, P->S  proto version, pid; first message each way
//   LOAD_ATTACH      S->P        interfaces, xdp mode, ports, dst v4/v6,
//                                pin path, SYN map max entries
//   LOAD_ATTACH_ANS  P->S        ok, error, mode, attached interfaces,
//                                whether pins of an earlier helper were reused
//   UPDATE           S->P        ports, dst v4/v6
//   UPDATE_ANS       P->S        ok, error
//   WORKER_GRANT     S->P        worker id, generation; 1 fd (maps channel)
//   WORKER_GRANT_ANS P->S        worker id, generation, ok, error
//   STATS_REQ        S->P        (empty)
//   STATS_ANS        P->S        counters per family, mode, interfaces, attached
//   SHUTDOWN         S->P        detach (true) or keep the program attached
//   SHUTDOWN_ANS     P->S        (empty); the helper exits after sending it
//   MAPS_GRANT       P->W        worker id, generation, manifest; n fds
// Which message is legal when: HelperSession (the helper's permit table,
// OpenSSH monitor.c style), SupervisorSession (answers must match the
// oldest outstanding request) and the worker accepts exactly one MAPS_GRANT.
// A violation closes the channel: the helper exits (the supervisor restarts
// it), the supervisor kills and restarts the helper, the worker drops the
// maps channel and keeps serving without XDP fingerprints.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/ipc/wire.h"
#include "common/sys/unique_fd.h"

namespace huginn::ipc::helper {

inline constexpr uint16_t kHelperVersion = 1;
inline constexpr size_t kHeaderSize = wire::kFrameHeaderSize;
inline constexpr size_t kHelperMaxPayload = 8 * 1024;
inline constexpr size_t kHelperMaxDatagram = kHeaderSize + kHelperMaxPayload;
inline constexpr size_t kMaxIfaces = 16;
inline constexpr size_t kMaxIfName = 15;  // IFNAMSIZ - 1
inline constexpr size_t kMaxPorts = 64;   // HUGINN_WATCH_MAX_PORTS
inline constexpr size_t kMaxPinPath = 200;
inline constexpr size_t kMaxError = 512;
inline constexpr size_t kMaxGrantMaps = 4;
inline constexpr uint32_t kMaxMapEntries = 1u << 24;

enum class MsgType : uint16_t {
  kHello = 0x101,
  kLoadAttach = 0x102,
  kLoadAttachAns = 0x103,
  kUpdate = 0x104,
  kUpdateAns = 0x105,
  kWorkerGrant = 0x106,
  kWorkerGrantAns = 0x107,
  kStatsReq = 0x108,
  kStatsAns = 0x109,
  kShutdown = 0x10A,
  kShutdownAns = 0x10B,
  kMapsGrant = 0x10C,
};

enum class XdpMode : uint8_t { kNative = 0, kSkb = 1 };
const char* xdp_mode_name(XdpMode m);

struct Hello {
  uint32_t proto = kHelperVersion;
  uint32_t pid = 0;
  bool operator==(const Hello&) const = default;
};

// Destination filter and ports; shared by LOAD_ATTACH and UPDATE.
struct Watch {
  std::vector<uint16_t> ports;                    // 1..kMaxPorts entries, non-zero, unique
  std::optional<std::array<uint8_t, 4>> dst_v4;   // network order; absent = any
  std::optional<std::array<uint8_t, 16>> dst_v6;  // absent = any
  bool operator==(const Watch&) const = default;
};

struct LoadAttach {
  std::vector<std::string> interfaces;  // 1..kMaxIfaces valid interface names
  XdpMode mode = XdpMode::kNative;
  Watch watch;
  std::string pin_path;  // absolute, no "..", <= kMaxPinPath
  uint32_t max_entries = 8192;
  bool operator==(const LoadAttach&) const = default;
};

struct LoadAttachAns {
  bool ok = false;
  std::string error;
  XdpMode mode = XdpMode::kNative;
  std::vector<std::string> interfaces;  // attached
  bool reused_pins = false;
  bool operator==(const LoadAttachAns&) const = default;
};

struct Update {
  Watch watch;
  bool operator==(const Update&) const = default;
};

struct UpdateAns {
  bool ok = false;
  std::string error;
  bool operator==(const UpdateAns&) const = default;
};

struct WorkerGrant {
  uint32_t worker_id = 0;
  uint32_t generation = 0;
  bool operator==(const WorkerGrant&) const = default;
};

struct WorkerGrantAns {
  uint32_t worker_id = 0;
  uint32_t generation = 0;
  bool ok = false;
  std::string error;
  bool operator==(const WorkerGrantAns&) const = default;
};

struct StatsReq {
  bool operator==(const StatsReq&) const = default;
};

struct FamilyCounters {
  uint64_t captured = 0;
  uint64_t malformed = 0;
  uint64_t insert_failures = 0;
  bool operator==(const FamilyCounters&) const = default;
};

struct StatsAns {
  bool attached = false;
  XdpMode mode = XdpMode::kNative;
  std::vector<std::string> interfaces;
  FamilyCounters v4;
  FamilyCounters v6;
  bool operator==(const StatsAns&) const = default;
};

struct Shutdown {
  bool detach = false;
  bool operator==(const Shutdown&) const = default;
};

struct ShutdownAns {
  bool operator==(const ShutdownAns&) const = default;
};

// kSynRing: the frozen syn_ring array (bpf/syn_abi.h), sent with a
// descriptor that is not O_RDONLY because Linux maps MAP_SHARED only through
// descriptors opened for writing; the freeze is what keeps it read-only.
enum class MapRole : uint8_t { kSynV4 = 1, kSynV6 = 2, kSynRing = 3 };

// One map fd of a MAPS_GRANT: read-only (kSynV4, kSynV6) or frozen (kSynRing).
struct MapManifestEntry {
  MapRole role = MapRole::kSynV4;
  uint8_t family = 4;  // 4 or 6 for kSynV4 / kSynV6, 0 for kSynRing; must agree with role
  uint32_t map_type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t map_id = 0;
  bool operator==(const MapManifestEntry&) const = default;
};

struct MapsGrant {
  uint32_t worker_id = 0;
  uint32_t generation = 0;
  std::vector<MapManifestEntry> maps;  // maps[i] describes fds[i]; roles unique
  bool operator==(const MapsGrant&) const = default;
};

using Message = std::variant<Hello, LoadAttach, LoadAttachAns, Update, UpdateAns, WorkerGrant, WorkerGrantAns,
                             StatsReq, StatsAns, Shutdown, ShutdownAns, MapsGrant>;

MsgType type_of(const Message& m);
const char* type_name(MsgType t);
// The number of descriptors that must travel with `m`.
size_t fds_required(const Message& m);

std::vector<uint8_t> encode(const Message& m);

struct DecodeResult {
  bool ok = false;
  Message message;
  std::string error;
};

// Pure: decodes one datagram; `nfds` descriptors arrived with it.
DecodeResult decode(const uint8_t* data, size_t len, size_t nfds);

// Validity of names and paths as decode() checks them.
bool valid_interface_name(const std::string& name);
bool valid_pin_path(const std::string& path);

// The helper's permit table: which supervisor message is legal in which state.
//   state      HELLO  LOAD_ATTACH  UPDATE  WORKER_GRANT  STATS_REQ  SHUTDOWN
//   INIT       once   yes*         -       -             -          yes*
//   LOADED     -      yes          -       -             yes        yes
//   ATTACHED   -      -            yes     yes           yes        yes
//   STOPPING   -      -            -       -             -          -
//   (* after HELLO). LOADED = program loaded and maps pinned, but attaching
//   failed: the supervisor may retry LOAD_ATTACH. Any other message (answers,
//   MAPS_GRANT, unknown types) is never legal on the helper's side.
class HelperSession {
 public:
  enum class State { kInit, kLoaded, kAttached, kStopping };
  // Empty string when `t` is legal now, else the reason (the helper exits).
  std::string accept(MsgType t);
  // The helper reports the outcome of LOAD_ATTACH and SHUTDOWN here.
  void set_state(State s) { state_ = s; }
  State state() const { return state_; }
  static const char* state_name(State s);

 private:
  bool hello_ = false;
  State state_ = State::kInit;
};

// The supervisor's side: HELLO first, then every answer must answer the
// oldest outstanding request (expect() is called when a request is sent).
class SupervisorSession {
 public:
  void expect(MsgType request);
  std::string accept(MsgType t);
  size_t outstanding() const { return pending_.size(); }

 private:
  bool hello_ = false;
  std::vector<MsgType> pending_;  // answer types, oldest first
};

// --- Transport (sendmsg/recvmsg with SCM_RIGHTS; no policy) ---

// Sends `m` with `fds` (borrowed; count must equal fds_required(m)).
bool send_message(int fd, const Message& m, const std::vector<int>& fds, std::string* error);

using ipc::RecvStatus;  // common/ipc/wire.h

struct Received {
  RecvStatus status = RecvStatus::kError;
  Message message;
  std::vector<sys::UniqueFd> fds;  // owned, close-on-exec
  std::string error;
};

// Receives and decodes one datagram; truncated datagrams or control data,
// non-SCM_RIGHTS control messages and fd counts other than the message's are
// errors (the fds are closed).
Received receive_message(int fd);

}  // namespace huginn::ipc::helper
