#include "common/ipc/protocol.h"

#include "common/ipc/wire.h"

#include <cstring>
#include <type_traits>

namespace huginn::ipc {
namespace {

using wire::Reader;
using wire::Writer;

// Each entry of LISTENERS takes at least 4 + 1 + 2 bytes on the wire.
constexpr size_t kMinListenerEntry = 7;

}  // namespace

MsgType type_of(const Message& m) {
  static constexpr MsgType kTypes[] = {MsgType::kHello,     MsgType::kListeners,   MsgType::kReady,
                                       MsgType::kDrain,     MsgType::kTerminate,   MsgType::kStatsReq,
                                       MsgType::kStatsAns,  MsgType::kTlsMaterial, MsgType::kMetrics,
                                       MsgType::kHostState, MsgType::kHealth};
  return kTypes[m.index()];
}

const char* type_name(MsgType t) {
  switch (t) {
    case MsgType::kHello:
      return "HELLO";
    case MsgType::kListeners:
      return "LISTENERS";
    case MsgType::kReady:
      return "READY";
    case MsgType::kDrain:
      return "DRAIN";
    case MsgType::kTerminate:
      return "TERMINATE";
    case MsgType::kStatsReq:
      return "STATS_REQ";
    case MsgType::kStatsAns:
      return "STATS_ANS";
    case MsgType::kTlsMaterial:
      return "TLS_MATERIAL";
    case MsgType::kMetrics:
      return "METRICS";
    case MsgType::kHostState:
      return "HOST_STATE";
    case MsgType::kHealth:
      return "HEALTH";
  }
  return "UNKNOWN";
}

std::vector<uint8_t> encode(const Message& m) {
  Writer w;
  w.begin(kVersion, static_cast<uint16_t>(type_of(m)));
  std::visit(
      [&w](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, Hello>) {
          w.u32(msg.proto);
          w.u32(msg.worker_id);
          w.u32(msg.generation);
          w.u32(msg.pid);
        } else if constexpr (std::is_same_v<T, Listeners>) {
          w.u32(static_cast<uint32_t>(msg.entries.size()));
          for (const auto& e : msg.entries) {
            w.u32(e.id);
            w.u8(e.tls ? 1 : 0);
            w.str(e.address, kMaxString);
          }
        } else if constexpr (std::is_same_v<T, Ready>) {
          w.u32(msg.generation);
          w.u32(msg.pid);
        } else if constexpr (std::is_same_v<T, Drain>) {
          w.u32(msg.deadline_ms);
        } else if constexpr (std::is_same_v<T, StatsAns>) {
          w.u64(msg.active_connections);
          w.u64(msg.total_connections);
          w.u64(msg.total_requests);
        } else if constexpr (std::is_same_v<T, TlsMaterial>) {
          w.u64(msg.serial);
        } else if constexpr (std::is_same_v<T, Metrics>) {
          w.u32(msg.layout);
          w.u32(msg.slots);
        } else if constexpr (std::is_same_v<T, HostState>) {
          w.u32(msg.layout);
          w.u32(msg.slot);
        } else if constexpr (std::is_same_v<T, Health>) {
          w.u32(static_cast<uint32_t>(msg.states.size()));
          for (uint8_t b : msg.states) w.u8(b);
        }
      },
      m);
  return w.finish();
}

DecodeResult decode(const uint8_t* data, size_t len, size_t nfds) {
  DecodeResult r;
  auto fail = [&r](std::string why) {
    r.ok = false;
    r.error = std::move(why);
    return r;
  };
  wire::Frame f;
  if (std::string why = wire::parse_frame(data, len, kVersion, "", kMaxPayload, &f); !why.empty())
    return fail(why);
  const uint16_t type = f.type;
  Reader p(f.payload, f.payload_len);
  const auto t = static_cast<MsgType>(type);
  if (t == MsgType::kTlsMaterial && nfds != 1)
    return fail("TLS_MATERIAL needs exactly one descriptor, " + std::to_string(nfds) + " arrived");
  if (t == MsgType::kMetrics && nfds != 1)
    return fail("METRICS needs exactly one descriptor, " + std::to_string(nfds) + " arrived");
  if (t == MsgType::kHostState && nfds != 1)
    return fail("HOST_STATE needs exactly one descriptor, " + std::to_string(nfds) + " arrived");
  if (t != MsgType::kListeners && t != MsgType::kTlsMaterial && t != MsgType::kMetrics &&
      t != MsgType::kHostState && nfds != 0)
    return fail("unexpected file descriptors");
  switch (t) {
    case MsgType::kHello: {
      Hello m;
      p.u32(&m.proto);
      p.u32(&m.worker_id);
      p.u32(&m.generation);
      p.u32(&m.pid);
      if (p.ok() && m.proto != kVersion) return fail("peer speaks protocol " + std::to_string(m.proto));
      r.message = m;
      break;
    }
    case MsgType::kListeners: {
      Listeners m;
      uint32_t n = 0;
      if (!p.u32(&n)) return fail("truncated LISTENERS");
      if (n > kMaxFds || n > p.remaining() / kMinListenerEntry) return fail("too many listeners");
      if (n != nfds)
        return fail("LISTENERS names " + std::to_string(n) + " sockets but " + std::to_string(nfds) +
                    " descriptors arrived");
      m.entries.resize(n);
      for (auto& e : m.entries) {
        uint8_t tls = 0;
        p.u32(&e.id);
        p.u8(&tls);
        p.str(&e.address, kMaxString);
        if (tls > 1) return fail("bad tls flag");
        e.tls = tls == 1;
      }
      r.message = std::move(m);
      break;
    }
    case MsgType::kReady: {
      Ready m;
      p.u32(&m.generation);
      p.u32(&m.pid);
      r.message = m;
      break;
    }
    case MsgType::kDrain: {
      Drain m;
      p.u32(&m.deadline_ms);
      r.message = m;
      break;
    }
    case MsgType::kTerminate:
      r.message = Terminate{};
      break;
    case MsgType::kStatsReq:
      r.message = StatsReq{};
      break;
    case MsgType::kStatsAns: {
      StatsAns m;
      p.u64(&m.active_connections);
      p.u64(&m.total_connections);
      p.u64(&m.total_requests);
      r.message = m;
      break;
    }
    case MsgType::kTlsMaterial: {
      TlsMaterial m;
      p.u64(&m.serial);
      r.message = m;
      break;
    }
    case MsgType::kMetrics: {
      Metrics m;
      p.u32(&m.layout);
      p.u32(&m.slots);
      r.message = m;
      break;
    }
    case MsgType::kHostState: {
      HostState m;
      p.u32(&m.layout);
      p.u32(&m.slot);
      r.message = m;
      break;
    }
    case MsgType::kHealth: {
      Health m;
      uint32_t n = 0;
      if (!p.u32(&n)) return fail("truncated HEALTH");
      if (n > kMaxHealthEntries || n > p.remaining()) return fail("too many HEALTH entries");
      m.states.resize(n);
      for (auto& b : m.states) {
        p.u8(&b);
        if (b > 1) return fail("bad HEALTH state");
      }
      r.message = std::move(m);
      break;
    }
    default:
      return fail("unknown message type " + std::to_string(type));
  }
  if (!p.done()) return fail(std::string(p.ok() ? "trailing bytes in " : "truncated ") + type_name(t));
  r.ok = true;
  return r;
}

std::string Session::accept(MsgType t) {
  if (!hello_) {
    if (t != MsgType::kHello) return std::string("expected HELLO first, got ") + type_name(t);
    hello_ = true;
    return {};
  }
  switch (role_) {
    case Role::kWorkerSide:  // messages a worker accepts from the supervisor
      switch (t) {
        case MsgType::kListeners:
          if (listeners_) return "second LISTENERS";
          listeners_ = true;
          return {};
        case MsgType::kHostState:
          if (!listeners_) return "HOST_STATE before LISTENERS";
          if (host_state_) return "second HOST_STATE";
          host_state_ = true;
          return {};
        case MsgType::kMetrics:
          if (!listeners_) return "METRICS before LISTENERS";
          if (metrics_) return "second METRICS";
          metrics_ = true;
          return {};
        case MsgType::kDrain:
        case MsgType::kTerminate:
        case MsgType::kStatsReq:
        case MsgType::kTlsMaterial:  // any number of times, before and after READY
        case MsgType::kHealth:
          if (!listeners_) return std::string(type_name(t)) + " before LISTENERS";
          return {};
        default:
          break;
      }
      break;
    case Role::kSupervisorSide:  // messages the supervisor accepts from a worker
      switch (t) {
        case MsgType::kReady:
          if (ready_) return "second READY";
          ready_ = true;
          return {};
        case MsgType::kStatsAns:
          if (!ready_) return "STATS_ANS before READY";
          return {};
        default:
          break;
      }
      break;
  }
  return std::string(type_name(t)) + " is not legal here";
}

}  // namespace huginn::ipc
