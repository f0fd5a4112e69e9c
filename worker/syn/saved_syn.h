// TCP_SAVED_SYN source: the kernel keeps the SYN's IP + TCP headers of each
// connection accepted on a listener with TCP_SAVE_SYN; the worker reads them
// once after accept (platform-facts §4: unprivileged, read-once, empty for
// connections established through SYN cookies).
#pragma once

#include <optional>
#include <string>

#include "common/fingerprint/p0f.h"

namespace huginn::worker::syn {

// setsockopt(TCP_SAVE_SYN, 1) on a listening socket, before SYNs arrive.
bool enable_save_syn(int listen_fd, std::string* error);

// getsockopt(TCP_SAVED_SYN) + fp::syn_fields_from_packet. nullopt (with
// `*error` set when non-null) when nothing was saved (SYN cookies, listener
// without TCP_SAVE_SYN, already read) or the bytes do not parse.
std::optional<fp::SynFields> read_saved_syn(int conn_fd, std::string* error = nullptr);

}  // namespace huginn::worker::syn
