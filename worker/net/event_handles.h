// Owning handles for the libevent objects of the worker.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/sys/c_handle.h"

namespace huginn::worker::net {

using EventBasePtr = sys::CHandle<event_base, event_base_free>;
using EventPtr = sys::CHandle<event, event_free>;
using BufferEventPtr = sys::CHandle<bufferevent, bufferevent_free>;

// The worker's event base (the worker and the worker tests use this one).
// epoll with its change list: interest changes made while callbacks run are
// applied together before the next epoll_wait, and an add undone in the same
// turn costs no system call (a TLS response adds the write event when it is
// queued and removes it once OutputPump has written it). The price, from
// libevent's documentation: a descriptor whose open file description other
// processes share (our listening sockets) must not be closed in the same turn
// as its event is deleted, or the pending EPOLL_CTL_DEL fails with EBADF and
// the description stays in the epoll set (Server::drain closes its listeners
// one turn later).
inline EventBasePtr new_event_base() {
  event_config* ec = event_config_new();
  if (ec == nullptr) return EventBasePtr();
  event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  EventBasePtr base(event_base_new_with_config(ec));
  event_config_free(ec);
  return base;
}

// Bytes queued in a bufferevent's output / input buffer.
inline size_t out_len(bufferevent* bev) { return evbuffer_get_length(bufferevent_get_output(bev)); }
inline size_t in_len(bufferevent* bev) { return evbuffer_get_length(bufferevent_get_input(bev)); }

inline timeval to_timeval_us(uint64_t us) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}
inline timeval to_timeval(uint64_t ms) { return to_timeval_us(ms * 1000); }

}  // namespace huginn::worker::net
