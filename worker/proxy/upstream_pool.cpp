#include "worker/proxy/upstream_pool.h"

#include <netdb.h>

#include <cstring>

#include "common/sys/log.h"

namespace huginn::worker::proxy {

std::vector<BackendEndpoint> resolve_backends(const config::Config& cfg) {
  std::vector<BackendEndpoint> out(cfg.backends.size());
  for (size_t i = 0; i < cfg.backends.size(); ++i) {
    const auto& b = cfg.backends[i];
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(b.port);
    const int rc = getaddrinfo(b.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || res == nullptr) {
      // AI_ADDRCONFIG hides loopback-only families on hosts without other addresses.
      hints.ai_flags = 0;
      if (res) freeaddrinfo(res);
      res = nullptr;
      if (getaddrinfo(b.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
        HLOG_ERROR("backend %s: cannot resolve %s: %s", b.address.c_str(), b.host.c_str(), gai_strerror(rc));
        continue;
      }
    }
    if (res->ai_addrlen <= sizeof(out[i].addr)) {
      std::memcpy(&out[i].addr, res->ai_addr, res->ai_addrlen);
      out[i].len = res->ai_addrlen;
      out[i].resolved = true;
    }
    freeaddrinfo(res);
  }
  return out;
}

UpstreamPool::UpstreamPool(const config::BackendPool& cfg, size_t backends) : cfg_(cfg), idle_(backends) {}

UpstreamPool::~UpstreamPool() { clear(); }

void UpstreamPool::clear() {
  for (auto& l : idle_) l.clear();
  spare_.clear();
}

size_t UpstreamPool::idle_count(size_t index) const { return index < idle_.size() ? idle_[index].size() : 0; }

net::BufferEventPtr UpstreamPool::acquire(size_t index) {
  if (!cfg_.enabled || index >= idle_.size() || idle_[index].empty()) return nullptr;
  // Most recently used first: the likeliest to still be open on the backend.
  auto& list = idle_[index];
  net::BufferEventPtr bev = std::move(list.back().bev);
  spare_.splice(spare_.end(), list, std::prev(list.end()));
  bufferevent_setcb(bev.get(), nullptr, nullptr, nullptr, nullptr);
  bufferevent_set_timeouts(bev.get(), nullptr, nullptr);
  return bev;
}

void UpstreamPool::release(size_t index, net::BufferEventPtr bev) {
  if (!cfg_.enabled || index >= idle_.size() || !bev) return;
  auto& list = idle_[index];
  if (cfg_.pool_max_idle_per_host != 0 && list.size() >= cfg_.pool_max_idle_per_host) return;
  Idle* raw = &push_node(list);
  raw->pool = this;
  raw->index = index;
  raw->bev = std::move(bev);
  raw->self = std::prev(list.end());
  bufferevent_setcb(raw->bev.get(), &UpstreamPool::on_read, nullptr, &UpstreamPool::on_event, raw);
  if (cfg_.idle_timeout != 0) {  // 0: idle connections wait until the backend closes them
    const timeval tv = net::to_timeval(uint64_t{cfg_.idle_timeout} * 1000);
    bufferevent_set_timeouts(raw->bev.get(), &tv, nullptr);
  }
  bufferevent_enable(raw->bev.get(), EV_READ);
}

UpstreamPool::Idle& UpstreamPool::push_node(std::list<Idle>& list) {
  if (spare_.empty()) return list.emplace_back();
  list.splice(list.end(), spare_, spare_.begin());
  return list.back();
}

void UpstreamPool::drop(Idle* idle) {
  // Frees the bufferevent (safe inside its callback) and keeps the node.
  UpstreamPool* pool = idle->pool;
  idle->bev.reset();
  pool->spare_.splice(pool->spare_.end(), pool->idle_[idle->index], idle->self);
}

void UpstreamPool::on_read(bufferevent* /*bev*/, void* arg) {
  // A backend must not send anything on an idle connection.
  auto* idle = static_cast<Idle*>(arg);
  idle->pool->drop(idle);
}

void UpstreamPool::on_event(bufferevent* /*bev*/, short /*what*/, void* arg) {
  auto* idle = static_cast<Idle*>(arg);
  idle->pool->drop(idle);
}

}  // namespace huginn::worker::proxy
