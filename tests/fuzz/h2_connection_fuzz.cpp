// libFuzzer target: arbitrary bytes as the client side of an h2c connection
// into a real Http2Connection, through a socketpair on a libevent loop.
// Requests route to a backend on a closed loopback port (→ 502), so the
// routing, rewrite, upstream error and local-response paths all run. The
// first input byte picks the mode:
//   bit 0: the first 24 bytes are already in the transport's input buffer
//          when start() runs (what the h2c sniffer hands over)
//   bit 1: small limits (1 KiB header list, 8 fields, 2 streams)
//   bit 2: drain() after the input was delivered
//   bits 4-7: write size = 1 << (bits % 15) bytes for the first 48 writes
//             (segmentation), 16 KiB writes after them
// Invariants (abort on violation): the connection reports itself closed
// exactly once, and after the client end is closed it always does.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <variant>

#include "common/config/loader.h"
#include "common/sys/log.h"
#include "worker/net/http2_connection.h"
#include "worker/proxy/router.h"
#include "worker/proxy/upstream_pool.h"

namespace {

namespace config = huginn::config;
namespace log = huginn::log;
namespace net = huginn::worker::net;
namespace proxy = huginn::worker::proxy;

std::shared_ptr<const config::Config> make_config(bool small) {
  std::string toml =
      "[listen]\naddrs = [\"127.0.0.1:0\"]\n"
      "[[backends]]\naddress = \"127.0.0.1:1\"\n"
      "[timeout]\nupstream_connect_ms = 200\nproxy_idle_ms = 500\n"
      "[[domains]]\n"
      "[[domains.routes]]\nprefix = \"/\"\nbackend = \"127.0.0.1:1\"\n";
  if (small) toml += "[limits]\nmax_header_bytes = 1024\nmax_headers = 8\nh2_max_concurrent_streams = 2\n";
  auto r = config::load_text(toml, "fuzz.toml");
  if (!std::holds_alternative<std::shared_ptr<const config::Config>>(r)) std::abort();
  return std::get<std::shared_ptr<const config::Config>>(r);
}

struct Fixture {
  event_base* base = event_base_new();
  std::shared_ptr<const config::Config> cfg[2] = {make_config(false), make_config(true)};
};

Fixture& fixture() {
  static Fixture* f = [] {
    log::Options o;
    o.level = log::Level::kError;
    log::configure(o);
    return new Fixture();
  }();
  return *f;
}

constexpr int kSegmentedWrites = 48;
constexpr size_t kBulkWrite = 16384;

void tick_cb(evutil_socket_t, short, void*) {}

// One turn of the loop: whatever is ready (socketpair I/O, activated and
// deferred events) runs; nothing waits, so one input costs no wall-clock time.
void turn(event_base* base) { event_base_loop(base, EVLOOP_NONBLOCK); }

// The last resort when only a timer can end the connection: one bounded
// blocking turn (a 5 ms timer keeps it from blocking longer).
void timed_turn(event_base* base) {
  const timeval tv{0, 5000};
  event_base_once(base, -1, EV_TIMEOUT, &tick_cb, nullptr, &tv);
  event_base_loop(base, EVLOOP_ONCE);
}

void read_all(int fd) {
  char buf[65536];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& f = fixture();
  const uint8_t mode = data[0];
  ++data;
  --size;

  net::WorkerContext ctx;
  ctx.base = f.base;
  ctx.cfg = f.cfg[(mode >> 1) & 1];
  ctx.router = std::make_unique<proxy::Router>(*ctx.cfg);
  ctx.limits.max_header_bytes = ctx.cfg->limits.max_header_bytes;
  ctx.limits.max_headers = ctx.cfg->limits.max_headers;
  ctx.endpoints = proxy::resolve_backends(*ctx.cfg);
  ctx.pool = std::make_unique<proxy::UpstreamPool>(ctx.cfg->backend_pool, ctx.cfg->backends.size());
  int closed_calls = 0;
  ctx.on_closed = [&](net::Connection*) { ++closed_calls; };

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return 0;
  const int client = sv[1];
  bufferevent* bev = bufferevent_socket_new(f.base, sv[0], BEV_OPT_CLOSE_ON_FREE);
  if (bev == nullptr) std::abort();
  size_t off = 0;
  if (mode & 1) {
    off = size < 24 ? size : 24;
    // The end of a socket bufferevent's input is frozen: prepend.
    if (evbuffer_prepend(bufferevent_get_input(bev), data, off) != 0) std::abort();
  }
  net::ClientInfo info;
  info.peer_ip = "127.0.0.1";
  info.local_port = 80;
  auto conn = std::make_unique<net::Http2Connection>(ctx, net::BufferEventPtr(bev), std::move(info));
  conn->start();

  // The first kSegmentedWrites writes have the chosen size, so frame headers
  // and the preface split at every offset; the rest goes in 16 KiB writes, so
  // that a long input costs a few dozen loop turns, not one per byte.
  const size_t chunk = size_t{1} << ((mode >> 4) % 15);
  int writes = 0;
  int guard = 0;
  while (off < size && closed_calls == 0 && ++guard < 10000) {
    const size_t step = writes++ < kSegmentedWrites ? chunk : std::max(chunk, kBulkWrite);
    const size_t n = std::min(size - off, step);
    const ssize_t w = ::send(client, data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) off += static_cast<size_t>(w);
    turn(f.base);
    read_all(client);
  }
  for (int i = 0; i < 20 && closed_calls == 0; ++i) {
    turn(f.base);
    read_all(client);
  }
  if (mode & 4) {
    conn->drain();
    for (int i = 0; i < 20 && closed_calls == 0; ++i) {
      turn(f.base);
      read_all(client);
    }
  }
  ::close(client);
  for (int i = 0; i < 20 && closed_calls == 0; ++i) turn(f.base);
  for (int i = 0; i < 200 && closed_calls == 0; ++i) timed_turn(f.base);
  if (closed_calls != 1) std::abort();
  conn.reset();
  ctx.pool->clear();
  // Let deferred frees and cancelled events settle before the next input.
  for (int i = 0; i < 2; ++i) turn(f.base);
  return 0;
}
