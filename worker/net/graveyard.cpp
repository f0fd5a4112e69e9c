#include "worker/net/graveyard.h"

namespace huginn::worker::net {

void Graveyard::wake(event_base* base) {
  if (!ev_ && base != nullptr) ev_.reset(event_new(base, -1, 0, &Graveyard::turn_cb, this));
  if (ev_) event_active(ev_.get(), EV_TIMEOUT, 0);
}

void Graveyard::reap() {
  // Destructors may bury more (here or in another Graveyard): those wait for
  // the event instead of growing the list being freed.
  std::vector<Corpse> dead;
  dead.swap(dead_);
  dead.clear();
  // The emptied list goes back, with its room, unless something was buried
  // meanwhile: burying then costs no allocation per turn. The room kept is
  // bounded; a burst's is given back.
  if (dead_.empty() && dead.capacity() <= kKeptCapacity) dead_.swap(dead);
}

void Graveyard::turn_cb(evutil_socket_t, short, void* arg) {
  auto* g = static_cast<Graveyard*>(arg);
  g->reap();
  // Last: `after` may destroy the Graveyard (the Server's reports "drained",
  // and its owner may then free the Server); nothing touches `g` afterwards.
  if (g->after_) g->after_();
}

}  // namespace huginn::worker::net
