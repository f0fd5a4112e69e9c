#include "worker/net/backend_exchange.h"

#include "worker/http1/writer.h"
#include "worker/net/h2c_upstream.h"
#include "worker/net/upstream_exchange.h"

namespace huginn::worker::net {

bool uses_h2c(const config::Backend& backend, bool client_h2) {
  switch (backend.http_version) {
    case config::HttpVersion::kHttp2:
      return true;
    case config::HttpVersion::kPreserve:
      return client_h2;
    case config::HttpVersion::kUnset:
    case config::HttpVersion::kHttp11:
      break;
  }
  return false;
}

namespace {

std::unique_ptr<BackendExchange> start_h2c(WorkerContext& ctx, ExchangeSink& sink, BackendRequest& r) {
  if (ctx.h2c_pool == nullptr) return nullptr;
  H2cRequest req;
  req.backend_index = r.backend_index;
  req.method = std::move(r.method);
  req.path = std::move(r.target);
  req.head_request = r.head_request;
  req.has_body = r.body != BackendRequest::Body::kNone;
  req.reusable = r.reusable && ctx.h2c_pool->enabled();
  req.headers.reserve(r.headers.size() + r.header_refs.size() + 1);
  for (auto& h : r.headers) {
    // Host becomes :authority (rewrite_request puts it first).
    if (req.authority.empty() && http1::to_lower(h.name) == "host") {
      req.authority = std::move(h.value);
      continue;
    }
    req.headers.push_back(std::move(h));
  }
  for (const auto& h : r.header_refs) req.headers.push_back({std::string(h.name), std::string(h.value)});
  if (r.body == BackendRequest::Body::kLength)
    req.headers.push_back({"content-length", std::to_string(r.content_length)});
  auto x = std::make_unique<H2cUpstream>(ctx, *ctx.h2c_pool, sink);
  if (!x->start(std::move(req))) return nullptr;
  return x;
}

std::unique_ptr<BackendExchange> start_http11(WorkerContext& ctx, ExchangeSink& sink, BackendRequest& r) {
  UpstreamExchange::Request req;
  req.backend_index = r.backend_index;
  req.head_request = r.head_request;
  req.has_body = r.body != BackendRequest::Body::kNone;
  req.reusable = r.reusable && ctx.pool && ctx.pool->enabled();
  switch (r.body) {
    case BackendRequest::Body::kChunked:
      r.headers.push_back({"Transfer-Encoding", "chunked"});
      req.chunked = true;
      break;
    case BackendRequest::Body::kLength:
      r.headers.push_back({"Content-Length", std::to_string(r.content_length)});
      break;
    case BackendRequest::Body::kNone:
      break;
  }
  if (!req.reusable) r.headers.push_back({"Connection", "close"});
  http1::append_request_head(req.head, r.method, r.target, r.headers, r.header_refs);
  auto x = std::make_unique<UpstreamExchange>(ctx, sink);
  if (!x->start(std::move(req))) return nullptr;
  return x;
}

}  // namespace

std::unique_ptr<BackendExchange> start_backend_exchange(WorkerContext& ctx, ExchangeSink& sink,
                                                        BackendRequest& req) {
  if (req.backend_index >= ctx.cfg->backends.size()) return nullptr;
  if (uses_h2c(ctx.cfg->backends[req.backend_index], req.client_h2)) return start_h2c(ctx, sink, req);
  return start_http11(ctx, sink, req);
}

}  // namespace huginn::worker::net
