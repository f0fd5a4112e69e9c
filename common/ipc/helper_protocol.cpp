#include "common/ipc/helper_protocol.h"

#include "common/ipc/wire.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <type_traits>

namespace huginn::ipc::helper {
namespace {

using wire::Reader;
using wire::Writer;

constexpr size_t kManifestEntrySize = 2 + 5 * 4;

void put_watch(Writer& w, const Watch& watch) {
  const size_t n = std::min(watch.ports.size(), kMaxPorts);
  w.u16(static_cast<uint16_t>(n));
  for (size_t i = 0; i < n; ++i) w.u16(watch.ports[i]);
  w.u8(watch.dst_v4 ? 1 : 0);
  if (watch.dst_v4) w.bytes(watch.dst_v4->data(), 4);
  w.u8(watch.dst_v6 ? 1 : 0);
  if (watch.dst_v6) w.bytes(watch.dst_v6->data(), 16);
}

// Reads and validates a Watch; returns an error string or "".
std::string get_watch(Reader& r, Watch* watch) {
  uint16_t n = 0;
  if (!r.u16(&n)) return "truncated port list";
  if (n == 0) return "no ports to watch";
  if (n > kMaxPorts) return "too many ports (" + std::to_string(n) + ")";
  if (n > r.remaining() / 2) return "truncated port list";
  watch->ports.resize(n);
  for (auto& p : watch->ports) {
    r.u16(&p);
    if (p == 0) return "port 0";
  }
  std::vector<uint16_t> sorted = watch->ports;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return "duplicate port";
  bool has = false;
  if (!r.boolean(&has)) return "bad dst_v4 flag";
  if (has) {
    std::array<uint8_t, 4> a{};
    if (!r.bytes(a.data(), a.size())) return "truncated dst_v4";
    watch->dst_v4 = a;
  }
  if (!r.boolean(&has)) return "bad dst_v6 flag";
  if (has) {
    std::array<uint8_t, 16> a{};
    if (!r.bytes(a.data(), a.size())) return "truncated dst_v6";
    watch->dst_v6 = a;
  }
  return {};
}

bool get_mode(Reader& r, XdpMode* m) {
  uint8_t v = 0;
  if (!r.u8(&v)) return false;
  if (v > 1) return r.fail();
  *m = static_cast<XdpMode>(v);
  return true;
}

void put_counters(Writer& w, const FamilyCounters& c) {
  w.u64(c.captured);
  w.u64(c.malformed);
  w.u64(c.insert_failures);
}

void get_counters(Reader& r, FamilyCounters* c) {
  r.u64(&c->captured);
  r.u64(&c->malformed);
  r.u64(&c->insert_failures);
}

bool unique_interfaces(const std::vector<std::string>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    for (size_t j = i + 1; j < v.size(); ++j)
      if (v[i] == v[j]) return false;
  return true;
}

}  // namespace

const char* xdp_mode_name(XdpMode m) { return m == XdpMode::kSkb ? "skb" : "native"; }

MsgType type_of(const Message& m) {
  static constexpr MsgType kTypes[] = {
      MsgType::kHello,     MsgType::kLoadAttach,  MsgType::kLoadAttachAns,  MsgType::kUpdate,
      MsgType::kUpdateAns, MsgType::kWorkerGrant, MsgType::kWorkerGrantAns, MsgType::kStatsReq,
      MsgType::kStatsAns,  MsgType::kShutdown,    MsgType::kShutdownAns,    MsgType::kMapsGrant};
  static_assert(std::size(kTypes) == std::variant_size_v<Message>);
  return kTypes[m.index()];
}

const char* type_name(MsgType t) {
  switch (t) {
    case MsgType::kHello:
      return "HELLO";
    case MsgType::kLoadAttach:
      return "LOAD_ATTACH";
    case MsgType::kLoadAttachAns:
      return "LOAD_ATTACH_ANS";
    case MsgType::kUpdate:
      return "UPDATE";
    case MsgType::kUpdateAns:
      return "UPDATE_ANS";
    case MsgType::kWorkerGrant:
      return "WORKER_GRANT";
    case MsgType::kWorkerGrantAns:
      return "WORKER_GRANT_ANS";
    case MsgType::kStatsReq:
      return "STATS_REQ";
    case MsgType::kStatsAns:
      return "STATS_ANS";
    case MsgType::kShutdown:
      return "SHUTDOWN";
    case MsgType::kShutdownAns:
      return "SHUTDOWN_ANS";
    case MsgType::kMapsGrant:
      return "MAPS_GRANT";
  }
  return "UNKNOWN";
}

size_t fds_required(const Message& m) {
  if (std::holds_alternative<WorkerGrant>(m)) return 1;
  if (const auto* g = std::get_if<MapsGrant>(&m)) return g->maps.size();
  return 0;
}

bool valid_interface_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxIfName || name == "." || name == "..") return false;
  for (unsigned char c : name)
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':') return false;
  return true;
}

bool valid_pin_path(const std::string& path) {
  if (path.size() < 2 || path.size() > kMaxPinPath || path[0] != '/') return false;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string comp = path.substr(start, end - start);
    if (comp.empty() ? end != path.size() : (comp == "." || comp == "..")) return false;
    for (unsigned char c : comp)
      if (c < 0x20 || c == 0x7f) return false;
    start = end + 1;
  }
  return true;
}

std::vector<uint8_t> encode(const Message& m) {
  Writer w;
  w.begin(kHelperVersion, static_cast<uint16_t>(type_of(m)));
  std::visit(
      [&w](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, Hello>) {
          w.u32(msg.proto);
          w.u32(msg.pid);
        } else if constexpr (std::is_same_v<T, LoadAttach>) {
          w.strs(msg.interfaces, kMaxIfaces, kMaxIfName);
          w.u8(static_cast<uint8_t>(msg.mode));
          put_watch(w, msg.watch);
          w.str(msg.pin_path, kMaxPinPath);
          w.u32(msg.max_entries);
        } else if constexpr (std::is_same_v<T, LoadAttachAns>) {
          w.u8(msg.ok ? 1 : 0);
          w.str(msg.error, kMaxError);
          w.u8(static_cast<uint8_t>(msg.mode));
          w.strs(msg.interfaces, kMaxIfaces, kMaxIfName);
          w.u8(msg.reused_pins ? 1 : 0);
        } else if constexpr (std::is_same_v<T, Update>) {
          put_watch(w, msg.watch);
        } else if constexpr (std::is_same_v<T, UpdateAns>) {
          w.u8(msg.ok ? 1 : 0);
          w.str(msg.error, kMaxError);
        } else if constexpr (std::is_same_v<T, WorkerGrant>) {
          w.u32(msg.worker_id);
          w.u32(msg.generation);
        } else if constexpr (std::is_same_v<T, WorkerGrantAns>) {
          w.u32(msg.worker_id);
          w.u32(msg.generation);
          w.u8(msg.ok ? 1 : 0);
          w.str(msg.error, kMaxError);
        } else if constexpr (std::is_same_v<T, StatsAns>) {
          w.u8(msg.attached ? 1 : 0);
          w.u8(static_cast<uint8_t>(msg.mode));
          w.strs(msg.interfaces, kMaxIfaces, kMaxIfName);
          put_counters(w, msg.v4);
          put_counters(w, msg.v6);
        } else if constexpr (std::is_same_v<T, Shutdown>) {
          w.u8(msg.detach ? 1 : 0);
        } else if constexpr (std::is_same_v<T, MapsGrant>) {
          w.u32(msg.worker_id);
          w.u32(msg.generation);
          const size_t n = std::min(msg.maps.size(), kMaxGrantMaps);
          w.u16(static_cast<uint16_t>(n));
          for (size_t i = 0; i < n; ++i) {
            const auto& e = msg.maps[i];
            w.u8(static_cast<uint8_t>(e.role));
            w.u8(e.family);
            w.u32(e.map_type);
            w.u32(e.key_size);
            w.u32(e.value_size);
            w.u32(e.max_entries);
            w.u32(e.map_id);
          }
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
  if (std::string why = wire::parse_frame(data, len, kHelperVersion, "helper ", kHelperMaxPayload, &f);
      !why.empty())
    return fail(why);
  const uint16_t type = f.type;
  Reader p(f.payload, f.payload_len);
  const auto t = static_cast<MsgType>(type);
  const bool fd_message = t == MsgType::kWorkerGrant || t == MsgType::kMapsGrant;
  if (!fd_message && nfds != 0) return fail("unexpected file descriptors");
  switch (t) {
    case MsgType::kHello: {
      Hello m;
      p.u32(&m.proto);
      p.u32(&m.pid);
      if (p.ok() && m.proto != kHelperVersion)
        return fail("peer speaks helper protocol " + std::to_string(m.proto));
      r.message = m;
      break;
    }
    case MsgType::kLoadAttach: {
      LoadAttach m;
      if (!p.strs(&m.interfaces, kMaxIfaces, kMaxIfName)) return fail("bad interface list");
      if (m.interfaces.empty()) return fail("no interfaces");
      for (const auto& i : m.interfaces)
        if (!valid_interface_name(i)) return fail("invalid interface name");
      if (!unique_interfaces(m.interfaces)) return fail("duplicate interface");
      if (!get_mode(p, &m.mode)) return fail("bad xdp mode");
      if (auto e = get_watch(p, &m.watch); !e.empty()) return fail(e);
      if (!p.str(&m.pin_path, kMaxPinPath)) return fail("bad pin path");
      if (!valid_pin_path(m.pin_path)) return fail("pin path must be absolute without \".\" or \"..\"");
      p.u32(&m.max_entries);
      if (p.ok() && (m.max_entries == 0 || m.max_entries > kMaxMapEntries))
        return fail("map size out of range");
      r.message = std::move(m);
      break;
    }
    case MsgType::kLoadAttachAns: {
      LoadAttachAns m;
      p.boolean(&m.ok);
      p.str(&m.error, kMaxError);
      get_mode(p, &m.mode);
      p.strs(&m.interfaces, kMaxIfaces, kMaxIfName);
      p.boolean(&m.reused_pins);
      r.message = std::move(m);
      break;
    }
    case MsgType::kUpdate: {
      Update m;
      if (auto e = get_watch(p, &m.watch); !e.empty()) return fail(e);
      r.message = std::move(m);
      break;
    }
    case MsgType::kUpdateAns: {
      UpdateAns m;
      p.boolean(&m.ok);
      p.str(&m.error, kMaxError);
      r.message = std::move(m);
      break;
    }
    case MsgType::kWorkerGrant: {
      if (nfds != 1) return fail("WORKER_GRANT needs exactly one descriptor, got " + std::to_string(nfds));
      WorkerGrant m;
      p.u32(&m.worker_id);
      p.u32(&m.generation);
      r.message = m;
      break;
    }
    case MsgType::kWorkerGrantAns: {
      WorkerGrantAns m;
      p.u32(&m.worker_id);
      p.u32(&m.generation);
      p.boolean(&m.ok);
      p.str(&m.error, kMaxError);
      r.message = std::move(m);
      break;
    }
    case MsgType::kStatsReq:
      r.message = StatsReq{};
      break;
    case MsgType::kStatsAns: {
      StatsAns m;
      p.boolean(&m.attached);
      get_mode(p, &m.mode);
      p.strs(&m.interfaces, kMaxIfaces, kMaxIfName);
      get_counters(p, &m.v4);
      get_counters(p, &m.v6);
      r.message = std::move(m);
      break;
    }
    case MsgType::kShutdown: {
      Shutdown m;
      p.boolean(&m.detach);
      r.message = m;
      break;
    }
    case MsgType::kShutdownAns:
      r.message = ShutdownAns{};
      break;
    case MsgType::kMapsGrant: {
      MapsGrant m;
      uint16_t n = 0;
      p.u32(&m.worker_id);
      p.u32(&m.generation);
      if (!p.u16(&n)) return fail("truncated MAPS_GRANT");
      if (n == 0 || n > kMaxGrantMaps || n > p.remaining() / kManifestEntrySize) return fail("bad map count");
      if (n != nfds)
        return fail("MAPS_GRANT names " + std::to_string(n) + " maps but " + std::to_string(nfds) +
                    " descriptors arrived");
      m.maps.resize(n);
      for (auto& e : m.maps) {
        uint8_t role = 0;
        p.u8(&role);
        p.u8(&e.family);
        p.u32(&e.map_type);
        p.u32(&e.key_size);
        p.u32(&e.value_size);
        p.u32(&e.max_entries);
        p.u32(&e.map_id);
        if (!p.ok()) break;
        if (role == static_cast<uint8_t>(MapRole::kSynV4) && e.family == 4) {
          e.role = MapRole::kSynV4;
        } else if (role == static_cast<uint8_t>(MapRole::kSynV6) && e.family == 6) {
          e.role = MapRole::kSynV6;
        } else if (role == static_cast<uint8_t>(MapRole::kSynRing) && e.family == 0) {
          e.role = MapRole::kSynRing;
        } else {
          return fail("bad map role/family");
        }
      }
      for (size_t i = 0; i < m.maps.size(); ++i)
        for (size_t j = i + 1; j < m.maps.size(); ++j)
          if (m.maps[i].role == m.maps[j].role) return fail("duplicate map role");
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

const char* HelperSession::state_name(State s) {
  switch (s) {
    case State::kInit:
      return "INIT";
    case State::kLoaded:
      return "LOADED";
    case State::kAttached:
      return "ATTACHED";
    case State::kStopping:
      return "STOPPING";
  }
  return "?";
}

std::string HelperSession::accept(MsgType t) {
  if (state_ == State::kStopping) return std::string(type_name(t)) + " after SHUTDOWN";
  if (!hello_) {
    if (t != MsgType::kHello) return std::string("expected HELLO first, got ") + type_name(t);
    hello_ = true;
    return {};
  }
  bool ok = false;
  switch (t) {
    case MsgType::kLoadAttach:
      ok = state_ == State::kInit || state_ == State::kLoaded;
      break;
    case MsgType::kUpdate:
    case MsgType::kWorkerGrant:
      ok = state_ == State::kAttached;
      break;
    case MsgType::kStatsReq:
      ok = state_ == State::kLoaded || state_ == State::kAttached;
      break;
    case MsgType::kShutdown:
      ok = true;
      break;
    default:
      return std::string(type_name(t)) + " is never legal from the supervisor";
  }
  if (!ok) return std::string(type_name(t)) + " is not legal in state " + state_name(state_);
  return {};
}

void SupervisorSession::expect(MsgType request) {
  switch (request) {
    case MsgType::kLoadAttach:
      pending_.push_back(MsgType::kLoadAttachAns);
      break;
    case MsgType::kUpdate:
      pending_.push_back(MsgType::kUpdateAns);
      break;
    case MsgType::kWorkerGrant:
      pending_.push_back(MsgType::kWorkerGrantAns);
      break;
    case MsgType::kStatsReq:
      pending_.push_back(MsgType::kStatsAns);
      break;
    case MsgType::kShutdown:
      pending_.push_back(MsgType::kShutdownAns);
      break;
    default:
      break;  // HELLO has no answer of its own; the helper's HELLO is checked below
  }
}

std::string SupervisorSession::accept(MsgType t) {
  if (!hello_) {
    if (t != MsgType::kHello) return std::string("expected HELLO first, got ") + type_name(t);
    hello_ = true;
    return {};
  }
  if (pending_.empty()) return std::string("unsolicited ") + type_name(t);
  if (pending_.front() != t)
    return std::string("expected ") + type_name(pending_.front()) + ", got " + type_name(t);
  pending_.erase(pending_.begin());
  return {};
}

bool send_message(int fd, const Message& m, const std::vector<int>& fds, std::string* error) {
  if (fds.size() != fds_required(m) || fds.size() > kMaxGrantMaps) {
    *error = std::string("wrong descriptor count for ") + type_name(type_of(m));
    return false;
  }
  return wire::send_datagram(fd, encode(m), fds, kMaxGrantMaps, error);
}

Received receive_message(int fd) {
  return wire::receive_decoded<Received>(fd, kHelperMaxDatagram, kMaxGrantMaps, decode);
}

}  // namespace huginn::ipc::helper
