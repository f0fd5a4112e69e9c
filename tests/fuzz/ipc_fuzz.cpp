// Fuzzes the supervisor<->worker message decoder and the session state machine.
#include <cstddef>
#include <cstdint>

#include "common/ipc/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huginn::ipc;
  if (size == 0) return 0;
  // First byte: number of descriptors that "arrived"; the rest: datagrams
  // separated by their own length prefix so one input drives a session.
  const size_t nfds = data[0] % 4;
  Session worker(Session::Role::kWorkerSide), sup(Session::Role::kSupervisorSide);
  size_t off = 1;
  while (off + 2 <= size) {
    size_t n = static_cast<size_t>(data[off]) | (static_cast<size_t>(data[off + 1]) << 8);
    off += 2;
    if (n > size - off) n = size - off;
    DecodeResult d = decode(data + off, n, nfds);
    if (d.ok) {
      worker.accept(type_of(d.message));
      sup.accept(type_of(d.message));
      // Round trip must be exact for accepted messages.
      auto again = encode(d.message);
      DecodeResult d2 = decode(again.data(), again.size(), nfds);
      if (!d2.ok || !(d2.message == d.message)) __builtin_trap();
    }
    off += n;
  }
  return 0;
}
