#include "supervisor/health_prober.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "common/metrics/render.h"
#include "common/sys/c_handle.h"
#include "common/sys/log.h"

namespace huginn::supervisor {

namespace {

using BufferEvent = sys::CHandle<bufferevent, bufferevent_free>;
using Event = sys::CHandle<event, event_free>;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The first address of `host`:`port` (AI_ADDRCONFIG first, then without it,
// as the workers resolve backends); false + why.
bool resolve(const std::string& host, uint16_t port, sockaddr_storage* out, socklen_t* len,
             std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string service = std::to_string(port);
  for (int flags : {AI_ADDRCONFIG, 0}) {
    hints.ai_flags = flags;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    sys::CHandle<addrinfo, freeaddrinfo> owned(res);
    if (rc != 0 || res == nullptr) {
      *why = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
      continue;
    }
    if (res->ai_addrlen > sizeof(*out)) {
      *why = "address of " + host + " too long";
      return false;
    }
    std::memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    return true;
  }
  return false;
}

timeval seconds(uint32_t s) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(s);
  return tv;
}

}  // namespace

StatusLine parse_status_line(std::string_view bytes) {
  StatusLine r;
  const size_t nl = bytes.substr(0, kMaxProbeStatusLine).find('\n');
  if (nl == std::string_view::npos) {
    r.result = bytes.size() >= kMaxProbeStatusLine ? StatusLine::Result::kBad : StatusLine::Result::kNeedMore;
    return r;
  }
  std::string_view line = bytes.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  r.result = StatusLine::Result::kBad;
  // HTTP-version SP 3DIGIT [SP reason-phrase]
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !is_digit(line[5]) || line[6] != '.' ||
      !is_digit(line[7]) || line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) ||
      !is_digit(line[11]) || (line.size() > 12 && line[12] != ' '))
    return r;
  const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status < 100 || status > 599) return r;
  r.result = StatusLine::Result::kOk;
  r.status = static_cast<uint16_t>(status);
  return r;
}

bool HealthCounter::record(bool ok, uint32_t unhealthy_threshold, uint32_t healthy_threshold) {
  if (ok) {
    consecutive_failures = 0;
    if (consecutive_successes < UINT32_MAX) ++consecutive_successes;
    if (!healthy && consecutive_successes >= healthy_threshold) {
      healthy = true;
      return true;
    }
  } else {
    consecutive_successes = 0;
    if (consecutive_failures < UINT32_MAX) ++consecutive_failures;
    if (healthy && consecutive_failures >= unhealthy_threshold) {
      healthy = false;
      return true;
    }
  }
  return false;
}

struct HealthProber::Target {
  HealthProber* owner = nullptr;
  std::string address;
  std::string host;
  config::HealthCheck check;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string resolve_error;  // non-empty: every probe fails with it
  HealthCounter counter;
  std::string last_error;
  Event tick;            // every interval_secs
  Event deadline;        // timeout_secs after a probe started
  BufferEvent bev;       // the probe in flight; null between probes
  std::string response;  // http: the start of the response
};

HealthProber::HealthProber(event_base* base, OnChange on_change)
    : base_(base), on_change_(std::move(on_change)) {}

HealthProber::~HealthProber() = default;

std::string HealthProber::key_of(const config::Backend& b) {
  const config::HealthCheck& h = *b.health_check;
  return b.address + '\n' + (h.type == config::HealthCheck::Type::kHttp ? "http " + h.path : "tcp") + '\n' +
         std::to_string(h.expected_status) + ' ' + std::to_string(h.interval_secs) + ' ' +
         std::to_string(h.timeout_secs) + ' ' + std::to_string(h.unhealthy_threshold) + ' ' +
         std::to_string(h.healthy_threshold);
}

void HealthProber::add_generation(uint32_t id, const config::Config& cfg) {
  std::vector<GenBackend> list;
  list.reserve(cfg.backends.size());
  for (const auto& b : cfg.backends) {
    GenBackend gb{b.address, nullptr};
    if (b.health_check) {
      const std::string key = key_of(b);
      auto it = targets_.find(key);
      if (it == targets_.end()) {
        auto t = std::make_unique<Target>();
        t->owner = this;
        t->address = b.address;
        t->host = b.host;
        t->check = *b.health_check;
        if (!resolve(b.host, b.port, &t->addr, &t->addr_len, &t->resolve_error))
          HLOG_ERROR("health check of backend %s: %s; every probe fails", b.address.c_str(),
                     t->resolve_error.c_str());
        else
          t->resolve_error.clear();
        t->tick.reset(event_new(
            base_, -1, EV_PERSIST,
            [](evutil_socket_t, short, void* p) {
              auto* tg = static_cast<Target*>(p);
              // timeout_secs may equal interval_secs: a probe still running now has used its time.
              if (tg->bev) tg->owner->finish_probe(tg, false, "timed out");
              tg->owner->start_probe(tg);
            },
            t.get()));
        t->deadline.reset(evtimer_new(
            base_,
            [](evutil_socket_t, short, void* p) {
              auto* tg = static_cast<Target*>(p);
              tg->owner->finish_probe(tg, false,
                                      "timed out after " + std::to_string(tg->check.timeout_secs) + " s");
            },
            t.get()));
        timeval every = seconds(t->check.interval_secs);
        event_add(t->tick.get(), &every);
        event_active(t->tick.get(), EV_TIMEOUT, 0);  // the first probe right away
        it = targets_.emplace(key, std::move(t)).first;
      }
      gb.target = it->second.get();
      counts_.try_emplace(b.address);
    }
    list.push_back(std::move(gb));
  }
  generations_[id] = std::move(list);
}

void HealthProber::remove_generation(uint32_t id) {
  if (generations_.erase(id) == 0) return;
  for (auto it = targets_.begin(); it != targets_.end();) {
    const Target* t = it->second.get();
    const bool used = std::any_of(generations_.begin(), generations_.end(), [t](const auto& g) {
      return std::any_of(g.second.begin(), g.second.end(),
                         [t](const GenBackend& b) { return b.target == t; });
    });
    it = used ? std::next(it) : targets_.erase(it);
  }
  for (auto it = counts_.begin(); it != counts_.end();) {
    const bool used = std::any_of(targets_.begin(), targets_.end(),
                                  [&](const auto& kv) { return kv.second->address == it->first; });
    it = used ? std::next(it) : counts_.erase(it);
  }
}

std::vector<uint8_t> HealthProber::states(uint32_t id) const {
  std::vector<uint8_t> out;
  auto it = generations_.find(id);
  if (it == generations_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& b : it->second) out.push_back(!b.target || b.target->counter.healthy ? 1 : 0);
  return out;
}

void HealthProber::start_probe(Target* t) {
  if (!t->resolve_error.empty()) return finish_probe(t, false, t->resolve_error);
  t->response.clear();
  t->bev.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE));
  if (!t->bev) return finish_probe(t, false, "cannot create a socket");
  bufferevent_setcb(
      t->bev.get(),
      [](bufferevent*, void* p) {
        auto* tg = static_cast<Target*>(p);
        tg->owner->on_readable(tg);
      },
      nullptr,
      [](bufferevent*, short what, void* p) {
        auto* tg = static_cast<Target*>(p);
        if (what & BEV_EVENT_CONNECTED) return tg->owner->on_connected(tg);
        if (what & BEV_EVENT_EOF)
          return tg->owner->finish_probe(tg, false, "connection closed before the status line");
        const int err = EVUTIL_SOCKET_ERROR();
        tg->owner->finish_probe(tg, false,
                                err != 0 ? evutil_socket_error_to_string(err) : "connection failed");
      },
      t);
  timeval limit = seconds(t->check.timeout_secs);
  evtimer_add(t->deadline.get(), &limit);
  if (bufferevent_socket_connect(t->bev.get(), reinterpret_cast<sockaddr*>(&t->addr),
                                 static_cast<int>(t->addr_len)) != 0) {
    const int err = EVUTIL_SOCKET_ERROR();
    // The event callback may already have reported it.
    if (t->bev) finish_probe(t, false, err != 0 ? evutil_socket_error_to_string(err) : "connect failed");
  }
}

void HealthProber::on_connected(Target* t) {
  if (t->check.type == config::HealthCheck::Type::kTcp) return finish_probe(t, true, "");
  const std::string req =
      "GET " + t->check.path + " HTTP/1.1\r\nHost: " + t->address +
      "\r\nUser-Agent: huginn-proxy-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  bufferevent_write(t->bev.get(), req.data(), req.size());
  bufferevent_enable(t->bev.get(), EV_READ);
}

void HealthProber::on_readable(Target* t) {
  evbuffer* in = bufferevent_get_input(t->bev.get());
  const size_t room = kMaxProbeStatusLine - std::min(kMaxProbeStatusLine, t->response.size());
  const size_t take = std::min(room, evbuffer_get_length(in));
  const size_t old = t->response.size();
  t->response.resize(old + take);
  evbuffer_remove(in, t->response.data() + old, take);
  const StatusLine sl = parse_status_line(t->response);
  switch (sl.result) {
    case StatusLine::Result::kNeedMore:
      return;
    case StatusLine::Result::kBad:
      return finish_probe(t, false, "not an HTTP/1.x status line");
    case StatusLine::Result::kOk:
      if (sl.status == t->check.expected_status) return finish_probe(t, true, "");
      return finish_probe(
          t, false,
          "status " + std::to_string(sl.status) + ", expected " + std::to_string(t->check.expected_status));
  }
}

void HealthProber::finish_probe(Target* t, bool ok, const std::string& error) {
  t->bev.reset();
  t->response.clear();
  evtimer_del(t->deadline.get());
  ProbeCounts& c = counts_[t->address];
  ++(ok ? c.ok : c.fail);
  if (!ok) t->last_error = error;
  if (!t->counter.record(ok, t->check.unhealthy_threshold, t->check.healthy_threshold)) return;
  if (t->counter.healthy)
    HLOG_INFO("backend %s is healthy again: %u consecutive successful health checks", t->address.c_str(),
              t->counter.consecutive_successes);
  else
    HLOG_WARN("backend %s is down: %u consecutive failed health checks (last: %s)", t->address.c_str(),
              t->counter.consecutive_failures, error.c_str());
  std::vector<uint32_t> affected;
  for (const auto& [id, list] : generations_)
    if (std::any_of(list.begin(), list.end(), [t](const GenBackend& b) { return b.target == t; }))
      affected.push_back(id);
  for (uint32_t id : affected) on_change_(id);
}

std::string HealthProber::render_metrics() const {
  std::string s;
  s += "# HELP huginn_health_check_probes_total Active health-check probes by backend and result.\n";
  s += "# TYPE huginn_health_check_probes_total counter\n";
  for (const auto& [address, c] : counts_) {
    const std::string b = metrics::escape_label_value(address);
    s += "huginn_health_check_probes_total{backend=\"" + b + "\",result=\"ok\"} " + std::to_string(c.ok) +
         "\n";
    s += "huginn_health_check_probes_total{backend=\"" + b + "\",result=\"fail\"} " + std::to_string(c.fail) +
         "\n";
  }
  // One sample per configured backend; the newest generation that has it decides.
  std::map<std::string, bool> healthy;
  for (const auto& [id, list] : generations_)
    for (const auto& b : list) healthy[b.address] = !b.target || b.target->counter.healthy;
  s +=
      "# HELP huginn_backend_healthy Whether the backend is in rotation (1) or taken out by its health check "
      "(0).\n";
  s += "# TYPE huginn_backend_healthy gauge\n";
  for (const auto& [address, up] : healthy)
    s += "huginn_backend_healthy{backend=\"" + metrics::escape_label_value(address) + "\"} " +
         (up ? "1" : "0") + "\n";
  return s;
}

Json::Value HealthProber::status_json(uint32_t id) const {
  Json::Value out(Json::arrayValue);
  auto it = generations_.find(id);
  if (it == generations_.end()) return out;
  for (const auto& b : it->second) {
    Json::Value v;
    v["address"] = b.address;
    v["healthy"] = !b.target || b.target->counter.healthy;
    if (!b.target) {
      v["health_check"] = Json::Value(Json::nullValue);
    } else {
      const Target& t = *b.target;
      v["health_check"] = t.check.type == config::HealthCheck::Type::kHttp ? "http" : "tcp";
      v["consecutive_failures"] = t.counter.consecutive_failures;
      v["consecutive_successes"] = t.counter.consecutive_successes;
      if (auto c = counts_.find(b.address); c != counts_.end()) {
        v["probes_ok"] = static_cast<Json::UInt64>(c->second.ok);
        v["probes_fail"] = static_cast<Json::UInt64>(c->second.fail);
      }
      if (!t.last_error.empty()) v["last_error"] = t.last_error;
    }
    out.append(v);
  }
  return out;
}

}  // namespace huginn::supervisor
