// worker/net/graveyard.h: buried objects of any type are freed from the event
// loop (never inside the call that buries them), through their own type's
// destructor; what a destructor buries is not freed by the reap in progress
// (the event runs again for it); `after` runs
// after every turn; reap() and the destructor free the rest at teardown.
#include "worker/net/graveyard.h"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <memory>
#include <string_view>

#include "common/sys/c_handle.h"
#include "worker/net/backend_exchange.h"

namespace huginn::worker::net {
namespace {

using BasePtr = sys::CHandle<event_base, event_base_free>;

// Counts its own destruction; only the Graveyard ever destroys it.
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

// A type of its own (no base class in common with the above) that buries
// another object into the same Graveyard from its destructor.
struct Burier {
  Burier(Graveyard* g, event_base* base, int* freed, int* freed_after_bury)
      : g(g), base(base), freed(freed), freed_after_bury(freed_after_bury) {}
  ~Burier() {
    ++*freed;
    g->bury(base, std::make_unique<CountedExchange>(freed));
    *freed_after_bury = *freed;
  }
  Graveyard* g;
  event_base* base;
  int* freed;
  int* freed_after_bury;
};

TEST(Graveyard, FreesBuriedObjectsOnTheNextLoopTurnNotInsideTheCall) {
  BasePtr base(event_base_new());
  ASSERT_TRUE(base);
  int freed = 0;
  {
    Graveyard g;
    g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
    // Through a base-class pointer: the virtual destructor runs.
    g.bury(base.get(), std::unique_ptr<BackendExchange>(std::make_unique<CountedExchange>(&freed)));
    g.bury(base.get(), std::unique_ptr<CountedExchange>());  // nothing to bury: ignored
    EXPECT_EQ(freed, 0);
    EXPECT_EQ(g.size(), 2u);
    event_base_loop(base.get(), EVLOOP_NONBLOCK);
    EXPECT_EQ(freed, 2);
    // Buried again after a turn: the one event is reused.
    g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
    event_base_loop(base.get(), EVLOOP_NONBLOCK);
    EXPECT_EQ(freed, 3);
    // Teardown: reap() frees what the loop has not reached.
    g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
    g.reap();
    EXPECT_EQ(freed, 4);
    g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
  }
  EXPECT_EQ(freed, 5);  // and its destructor frees the rest
}

TEST(Graveyard, WhatADestructorBuriesIsNotFreedByTheReapInProgress) {
  BasePtr base(event_base_new());
  ASSERT_TRUE(base);
  int freed = 0;
  int freed_after_bury = -1;
  Graveyard g;
  g.bury(base.get(), std::make_unique<Burier>(&g, base.get(), &freed, &freed_after_bury));
  event_base_loop(base.get(), EVLOOP_NONBLOCK);
  EXPECT_EQ(freed_after_bury, 1);  // the bury inside ~Burier freed nothing there
  EXPECT_EQ(freed, 2);             // the event ran again for it
  EXPECT_EQ(g.size(), 0u);
  // At teardown too: reap() leaves it for the destructor or the next reap().
  freed = 0;
  g.bury(base.get(), std::make_unique<Burier>(&g, base.get(), &freed, &freed_after_bury));
  g.reap();
  EXPECT_EQ(freed, 1);
  EXPECT_EQ(g.size(), 1u);
  g.reap();
  EXPECT_EQ(freed, 2);
}

TEST(Graveyard, AfterRunsOnEveryTurnAndWakeMakesATurnWithNothingBuried) {
  BasePtr base(event_base_new());
  ASSERT_TRUE(base);
  int freed = 0;
  int turns = 0;
  int freed_at_turn = -1;
  Graveyard g([&] {
    ++turns;
    freed_at_turn = freed;
  });
  g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
  g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
  event_base_loop(base.get(), EVLOOP_NONBLOCK);
  EXPECT_EQ(turns, 1);          // one turn for both
  EXPECT_EQ(freed_at_turn, 2);  // after the objects were freed
  g.wake(base.get());
  EXPECT_EQ(turns, 1);
  event_base_loop(base.get(), EVLOOP_NONBLOCK);
  EXPECT_EQ(turns, 2);
  event_base_loop(base.get(), EVLOOP_NONBLOCK);
  EXPECT_EQ(turns, 2);  // no turn without a bury or a wake
}

// The list keeps its room from turn to turn (no allocation per bury in steady
// traffic), up to a bound; a burst's room is given back.
TEST(Graveyard, TheListKeepsItsRoomBetweenTurnsUpToABound) {
  BasePtr base(event_base_new());
  ASSERT_TRUE(base);
  int freed = 0;
  Graveyard g;
  for (int i = 0; i < 3; ++i) g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
  const size_t room = g.capacity();
  ASSERT_GE(room, 3u);
  event_base_loop(base.get(), EVLOOP_NONBLOCK);
  EXPECT_EQ(freed, 3);
  EXPECT_EQ(g.size(), 0u);
  EXPECT_EQ(g.capacity(), room);
  g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
  EXPECT_EQ(g.capacity(), room);  // no new list
  g.reap();
  EXPECT_EQ(freed, 4);
  for (int i = 0; i < 1000; ++i) g.bury(base.get(), std::make_unique<CountedExchange>(&freed));
  ASSERT_GT(g.capacity(), Graveyard::kKeptCapacity);
  event_base_loop(base.get(), EVLOOP_NONBLOCK);
  EXPECT_EQ(freed, 1004);
  EXPECT_EQ(g.capacity(), 0u);  // the burst's room is given back
}

}  // namespace
}  // namespace huginn::worker::net
