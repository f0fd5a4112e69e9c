// worker/proxy/upstream_pool: idle backend connections are kept, handed out
// most recently used first, and dropped when the backend closes them or sends
// anything; nodes are recycled. Real socketpairs, a real event base.
#include "worker/proxy/upstream_pool.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"

namespace huginn::worker::proxy {
namespace {

using BasePtr = sys::CHandle<event_base, event_base_free>;

class UpstreamPoolTest : public ::testing::Test {
 protected:
  UpstreamPoolTest() : base_(event_base_new()) {
    cfg_.enabled = true;
    cfg_.idle_timeout = 0;
  }

  // A bufferevent on one end of a socketpair; the other end goes to `peers_`.
  net::BufferEventPtr connection() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return nullptr;
    peers_.emplace_back(sv[1]);
    return net::BufferEventPtr(bufferevent_socket_new(base_.get(), sv[0], BEV_OPT_CLOSE_ON_FREE));
  }

  void turn() { event_base_loop(base_.get(), EVLOOP_NONBLOCK); }

  BasePtr base_;
  config::BackendPool cfg_;
  std::vector<sys::UniqueFd> peers_;
};

TEST_F(UpstreamPoolTest, KeepsHandsOutAndDropsIdleConnections) {
  UpstreamPool pool(cfg_, 2);
  net::BufferEventPtr a = connection(), b = connection();
  bufferevent* raw_b = b.get();
  pool.release(0, std::move(a));
  pool.release(0, std::move(b));
  EXPECT_EQ(pool.idle_count(0), 2u);
  EXPECT_EQ(pool.idle_count(1), 0u);
  EXPECT_EQ(pool.acquire(1).get(), nullptr);
  // Most recently used first.
  net::BufferEventPtr got = pool.acquire(0);
  EXPECT_EQ(got.get(), raw_b);
  EXPECT_EQ(pool.idle_count(0), 1u);
  pool.release(0, std::move(got));  // back in, on a recycled node
  EXPECT_EQ(pool.idle_count(0), 2u);

  // The backend closes connection a: dropped from the loop.
  peers_[0].reset();
  turn();
  EXPECT_EQ(pool.idle_count(0), 1u);
  // An unsolicited byte on b drops it too.
  ASSERT_EQ(write(peers_[1].get(), "x", 1), 1);
  turn();
  EXPECT_EQ(pool.idle_count(0), 0u);

  // Dropped nodes are reused; a fresh connection still works.
  net::BufferEventPtr c = connection();
  bufferevent* raw_c = c.get();
  pool.release(1, std::move(c));
  EXPECT_EQ(pool.idle_count(1), 1u);
  EXPECT_EQ(pool.acquire(1).get(), raw_c);
}

TEST_F(UpstreamPoolTest, RespectsTheIdleLimitAndTheSwitch) {
  cfg_.pool_max_idle_per_host = 1;
  UpstreamPool pool(cfg_, 1);
  pool.release(0, connection());
  pool.release(0, connection());  // full: closed
  EXPECT_EQ(pool.idle_count(0), 1u);
  cfg_.enabled = false;
  UpstreamPool off(cfg_, 1);
  off.release(0, connection());
  EXPECT_EQ(off.idle_count(0), 0u);
  EXPECT_EQ(off.acquire(0).get(), nullptr);
}

}  // namespace
}  // namespace huginn::worker::proxy
