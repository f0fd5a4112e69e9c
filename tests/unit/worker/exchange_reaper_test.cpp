// worker/net/worker_context.h ExchangeReaper: retired backend exchanges are
// freed from the event loop (never inside the call that retires them), all of
// a worker's connections share it, and reap() frees the rest at teardown.
#include <event2/event.h>
#include <gtest/gtest.h>

#include <memory>
#include <string_view>

#include "common/sys/c_handle.h"
#include "worker/net/backend_exchange.h"
#include "worker/net/worker_context.h"

namespace huginn::worker::net {
namespace {

using BasePtr = sys::CHandle<event_base, event_base_free>;

// Counts its own destruction; the reaper only ever destroys it.
class CountedExchange : public BackendExchange {
 public:
  explicit CountedExchange(int* freed) : freed_(freed) {}
  ~CountedExchange() override { ++*freed_; }
  void send_body(std::string_view) override {}
  void end_body() override {}
  size_t queued() const override { return 0; }
  bool writable() const override { return true; }
  void pause_reading() override {}
  void resume_reading() override {}
  void cancel() override {}
  bool finished() const override { return true; }
  bool response_started() const override { return false; }
  bool request_complete() const override { return true; }

 private:
  int* freed_;
};

TEST(ExchangeReaper, FreesRetiredExchangesOnTheNextLoopTurnNotInsideTheCall) {
  BasePtr base(event_base_new());
  ASSERT_TRUE(base);
  int freed = 0;
  {
    ExchangeReaper reaper;
    reaper.retire(base.get(), std::make_unique<CountedExchange>(&freed));
    reaper.retire(base.get(), std::make_unique<CountedExchange>(&freed));
    reaper.retire(base.get(), nullptr);  // nothing to retire: ignored
    EXPECT_EQ(freed, 0);
    event_base_loop(base.get(), EVLOOP_NONBLOCK);
    EXPECT_EQ(freed, 2);
    // Retired again after a turn: the one event is reused.
    reaper.retire(base.get(), std::make_unique<CountedExchange>(&freed));
    event_base_loop(base.get(), EVLOOP_NONBLOCK);
    EXPECT_EQ(freed, 3);
    // Teardown: reap() frees what the loop has not reached.
    reaper.retire(base.get(), std::make_unique<CountedExchange>(&freed));
    reaper.reap();
    EXPECT_EQ(freed, 4);
    reaper.retire(base.get(), std::make_unique<CountedExchange>(&freed));
  }
  EXPECT_EQ(freed, 5);  // and its destructor frees the rest
}

}  // namespace
}  // namespace huginn::worker::net
