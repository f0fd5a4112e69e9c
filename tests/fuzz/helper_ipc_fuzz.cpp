// Fuzzes the privhelper protocol decoder and its state tables: the helper's
// permit table, the supervisor's answer matching, and the worker's
// MAPS_GRANT check (without descriptors).
#include <cstddef>
#include <cstdint>

#include "common/ipc/helper_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huginn::ipc::helper;
  if (size == 0) return 0;
  // First byte: descriptors that "arrived" (low 3 bits) and the state the
  // helper session is driven to after a successful LOAD_ATTACH (bits 3-4);
  // the rest: datagrams, each prefixed by a u16 length, driving one session.
  const size_t nfds = data[0] & 7;
  const auto after_load = static_cast<HelperSession::State>(1 + ((data[0] >> 3) % 2));
  HelperSession helper_side;
  SupervisorSession sup_side;
  size_t off = 1;
  while (off + 2 <= size) {
    size_t n = static_cast<size_t>(data[off]) | (static_cast<size_t>(data[off + 1]) << 8);
    off += 2;
    if (n > size - off) n = size - off;
    DecodeResult d = decode(data + off, n, nfds);
    if (d.ok) {
      const MsgType t = type_of(d.message);
      if (helper_side.accept(t).empty()) {
        if (t == MsgType::kLoadAttach) helper_side.set_state(after_load);
        if (t == MsgType::kShutdown) helper_side.set_state(HelperSession::State::kStopping);
        sup_side.expect(t);
      }
      sup_side.accept(t);
      // Accepted messages round-trip exactly and carry the declared fd count.
      if (fds_required(d.message) != nfds) __builtin_trap();
      auto again = encode(d.message);
      DecodeResult d2 = decode(again.data(), again.size(), nfds);
      if (!d2.ok || !(d2.message == d.message)) __builtin_trap();
    }
    off += n;
  }
  return 0;
}
