// What happens to a request once it is routed, for HTTP/1.1 and HTTP/2
// alike: either the proxy answers it itself (SPEC.md §4 order: no domain →
// 421, TLS/mTLS host rules → 421, no route → 404, no backend → 503) or it
// goes to the backend with the header-rewrite context built here. The policy
// checks of issue #7 (IP filter, rate limit) belong in local_answer().
// Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/config/model.h"
#include "worker/net/connection.h"
#include "worker/proxy/header_rewrite.h"
#include "worker/proxy/router.h"

namespace huginn::worker::proxy {

struct LocalAnswer {
  uint16_t status = 0;
  std::string_view reason;  // http1::reason code for the JSON body
};

// The proxy's own answer to a routed request, or nullopt when it goes to the backend.
std::optional<LocalAnswer> local_answer(const config::Config& cfg, const net::ClientInfo& client,
                                        const Router::Decision& d);

// The header-rewrite context of a request routed to a backend (`host`: the
// normalised routing host; `client` must outlive the context).
RequestContext request_context(const config::Config& cfg, const Router::Decision& d,
                               const net::ClientInfo& client, std::string_view host);

}  // namespace huginn::worker::proxy
