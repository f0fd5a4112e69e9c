#include "supervisor/metrics_endpoint.h"

#include <event2/buffer.h>

#include <algorithm>

#include "common/metrics/render.h"
#include "common/sys/log.h"
#include "supervisor/listeners.h"

namespace huginn::supervisor {

namespace {

constexpr std::string_view kJson = "application/json";

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

TelemetryResponse json(int status, std::string body) { return {status, std::string(kJson), std::move(body)}; }

}  // namespace

TelemetryResponse route_telemetry(const metrics::Request& req, Readiness readiness,
                                  const std::function<std::string()>& metrics) {
  if (req.method != "GET" && req.method != "HEAD") return json(405, R"({"status":"method_not_allowed"})");
  if (req.path == "/metrics") return {200, std::string(metrics::kContentType), metrics()};
  if (req.path == "/health") return json(200, R"({"status":"healthy"})");
  if (req.path == "/live") return json(200, R"({"status":"alive"})");
  if (req.path == "/ready") {
    switch (readiness) {
      case Readiness::kReady:
        return json(200, R"({"status":"ready"})");
      case Readiness::kStarting:
        return json(503, R"({"status":"not_ready","reason":"proxy_starting"})");
      case Readiness::kStopping:
        return json(503, R"({"status":"not_ready","reason":"shutting_down"})");
    }
  }
  return json(404, R"({"status":"not_found"})");
}

std::string serialize_response(const TelemetryResponse& r, bool head_request) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (!head_request) out += r.body;
  return out;
}

std::unique_ptr<MetricsEndpoint> MetricsEndpoint::start(event_base* base, const net::SocketAddress& addr,
                                                        Hooks hooks, std::string* error) {
  supervisor::Listener l;
  if (!bind_listener(addr, 64, &l, error)) return nullptr;
  std::unique_ptr<MetricsEndpoint> ep(new MetricsEndpoint());
  ep->base_ = base;
  ep->addr_ = addr;
  ep->hooks_ = std::move(hooks);
  if (evutil_make_socket_nonblocking(l.fd.get()) != 0) {
    *error = "telemetry listener: cannot make it non-blocking";
    return nullptr;
  }
  ep->listener_.reset(
      evconnlistener_new(base, &MetricsEndpoint::accept_cb, ep.get(), LEV_OPT_CLOSE_ON_FREE, 0, l.fd.get()));
  if (!ep->listener_) {
    *error = "telemetry listener: evconnlistener_new failed";
    return nullptr;
  }
  l.fd.release();  // owned by the evconnlistener now
  return ep;
}

MetricsEndpoint::~MetricsEndpoint() {
  listener_.reset();
  clients_.clear();
}

void MetricsEndpoint::accept_cb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* ep = static_cast<MetricsEndpoint*>(arg);
  if (ep->clients_.size() >= kMaxClients) {
    evutil_closesocket(fd);
    return;
  }
  auto c = std::make_unique<Client>();
  c->ep = ep;
  c->bev.reset(bufferevent_socket_new(ep->base_, fd, BEV_OPT_CLOSE_ON_FREE));
  if (!c->bev) {
    evutil_closesocket(fd);
    return;
  }
  Client* raw = c.get();
  bufferevent_setcb(raw->bev.get(), &read_cb, &write_cb, &event_cb, raw);
  bufferevent_setwatermark(raw->bev.get(), EV_READ, 0, metrics::kMaxRequestBytes);
  const timeval tv{kClientTimeoutSecs, 0};
  bufferevent_set_timeouts(raw->bev.get(), &tv, &tv);
  bufferevent_enable(raw->bev.get(), EV_READ);
  ep->clients_.emplace(raw, std::move(c));
}

void MetricsEndpoint::read_cb(bufferevent* bev, void* arg) {
  auto* c = static_cast<Client*>(arg);
  if (c->responded) {  // bytes after the request: ignored until the response is out
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
    return;
  }
  evbuffer* in = bufferevent_get_input(bev);
  const size_t len = std::min(evbuffer_get_length(in), metrics::kMaxRequestBytes);
  const auto* data = reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(len)));
  metrics::Request req;
  switch (metrics::parse_request(std::string_view(data, len), &req)) {
    case metrics::RequestStatus::kIncomplete:
      return;
    case metrics::RequestStatus::kBad:
      return c->ep->respond(c, json(400, R"({"status":"bad_request"})"), false);
    case metrics::RequestStatus::kTooLarge:
      return c->ep->respond(c, json(431, R"({"status":"request_too_large"})"), false);
    case metrics::RequestStatus::kComplete:
      break;
  }
  const Readiness r = c->ep->hooks_.readiness();
  c->ep->respond(c, route_telemetry(req, r, c->ep->hooks_.metrics), req.method == "HEAD");
}

void MetricsEndpoint::respond(Client* c, const TelemetryResponse& r, bool head) {
  c->responded = true;
  const std::string out = serialize_response(r, head);
  if (bufferevent_write(c->bev.get(), out.data(), out.size()) != 0) return drop(c);
  bufferevent_enable(c->bev.get(), EV_WRITE);
}

void MetricsEndpoint::write_cb(bufferevent* bev, void* arg) {
  auto* c = static_cast<Client*>(arg);
  if (c->responded && evbuffer_get_length(bufferevent_get_output(bev)) == 0) c->ep->drop(c);
}

void MetricsEndpoint::event_cb(bufferevent* bev, short what, void* arg) {
  auto* c = static_cast<Client*>(arg);
  // A client that half-closes after its request still gets the response.
  if ((what & BEV_EVENT_EOF) && c->responded && evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
    bufferevent_disable(bev, EV_READ);
    return;
  }
  c->ep->drop(c);  // error, timeout or EOF: nothing more to do for this client
}

void MetricsEndpoint::drop(Client* c) { clients_.erase(c); }

}  // namespace huginn::supervisor
