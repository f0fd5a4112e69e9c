// Owning handles for the libevent objects of the worker.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/sys/c_handle.h"

namespace huginn::worker::net {

using EventPtr = sys::CHandle<event, event_free>;
using BufferEventPtr = sys::CHandle<bufferevent, bufferevent_free>;
using ListenerPtr = sys::CHandle<evconnlistener, evconnlistener_free>;

inline timeval to_timeval(uint64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

}  // namespace huginn::worker::net
