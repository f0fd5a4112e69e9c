// Frees objects from the next turn of the event loop, so that nothing is
// destroyed inside one of its own callbacks. The one way the worker defers a
// delete: retired backend exchanges (WorkerContext::reaper), closed and
// lingering client connections (Server), dead h2c backend sessions (H2cPool).
//
// Any type goes in (bury<T> records T's deleter; no allocation beyond the
// list's, which keeps its room from turn to turn), one libevent event per
// Graveyard, made at the first wake(). An
// object buried by a destructor while a reap is freeing the list is not freed
// by that reap: it waits for the event, which runs again for it.
#pragma once

#include <event2/event.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "worker/net/event_handles.h"

namespace huginn::worker::net {

class Graveyard {
 public:
  // Entries of room the list keeps between turns (16 bytes each).
  static constexpr size_t kKeptCapacity = 256;

  // `after` runs from the loop after each turn's objects are freed (Server:
  // reporting "drained" once the last connection is gone).
  explicit Graveyard(std::function<void()> after = {}) : after_(std::move(after)) {}
  ~Graveyard() { reap(); }
  Graveyard(const Graveyard&) = delete;
  Graveyard& operator=(const Graveyard&) = delete;

  template <typename T>
  void bury(event_base* base, std::unique_ptr<T> p) {
    if (!p) return;
    dead_.emplace_back(p.release(), [](void* q) { delete static_cast<T*>(q); });
    wake(base);
  }
  // A turn on the loop (running `after`) even with nothing to free. Without
  // an event (out of memory) buried objects wait for a later wake or reap().
  void wake(event_base* base);
  // Frees every buried object now (an owner's teardown, before the pools
  // the objects may hand connections back to).
  void reap();
  size_t size() const { return dead_.size(); }
  size_t capacity() const { return dead_.capacity(); }  // room of the list (tests)

 private:
  static void turn_cb(evutil_socket_t, short, void* arg);

  using Corpse = std::unique_ptr<void, void (*)(void*)>;
  std::vector<Corpse> dead_;
  std::function<void()> after_;
  EventPtr ev_;
};

}  // namespace huginn::worker::net
