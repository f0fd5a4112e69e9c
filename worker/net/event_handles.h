// Owning handles for the libevent objects of the worker.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/sys/c_handle.h"

namespace huginn::worker::net {

using EventPtr = sys::CHandle<event, event_free>;
using BufferEventPtr = sys::CHandle<bufferevent, bufferevent_free>;
using ListenerPtr = sys::CHandle<evconnlistener, evconnlistener_free>;

// Bytes queued in a bufferevent's output / input buffer.
inline size_t out_len(bufferevent* bev) { return evbuffer_get_length(bufferevent_get_output(bev)); }
inline size_t in_len(bufferevent* bev) { return evbuffer_get_length(bufferevent_get_input(bev)); }

inline timeval to_timeval(uint64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

}  // namespace huginn::worker::net
