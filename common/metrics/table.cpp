#include "common/metrics/table.h"

#include <algorithm>
#include <cstring>

namespace huginn::metrics {

namespace {

struct Header {
  uint32_t magic;
  uint32_t layout;
  uint32_t slots;
  uint32_t slot_bytes;
  uint32_t route_slots;
};
static_assert(sizeof(Header) <= kHeaderBytes);
static_assert(slot_bytes(kMaxRouteSlots) % 64 == 0 && slot_bytes(1) >= slot_words(1) * 8);

bool check_shape(uint32_t slots, size_t route_slots, std::string* error) {
  if (slots == 0 || slots > kMaxSlots) {
    *error = "metrics table: bad slot count " + std::to_string(slots);
    return false;
  }
  if (route_slots == 0 || route_slots > kMaxRouteSlots) {
    *error = "metrics table: " + std::to_string(route_slots) + " route slots (at most " +
             std::to_string(kMaxRouteSlots) + ": too many routes for per-route metrics)";
    return false;
  }
  return true;
}

void add_route(const uint64_t* section, const RouteKey& key, RouteTotals* routes) {
  bool any = false;
  for (size_t w = 0; w < kRouteWords && !any; ++w) any = section[w] != 0;
  if (!any) return;
  auto [it, inserted] = routes->try_emplace(key);
  if (inserted) it->second.fill(0);
  for (size_t w = 0; w < kRouteWords; ++w) it->second[w] += section[w];
}

}  // namespace

size_t status_index(uint16_t status) {
  for (size_t i = 0; i < kStatusCodes.size(); ++i)
    if (kStatusCodes[i] == status) return i;
  const size_t cls = (status >= 100 && status <= 599) ? status / 100 : 5;
  return kStatusCodes.size() + cls - 1;
}

std::string_view status_label(size_t index, char* buf4) {
  if (index < kStatusCodes.size()) {
    const uint16_t s = kStatusCodes[index];
    buf4[0] = static_cast<char>('0' + s / 100);
    buf4[1] = static_cast<char>('0' + s / 10 % 10);
    buf4[2] = static_cast<char>('0' + s % 10);
  } else {
    buf4[0] = static_cast<char>('1' + (index - kStatusCodes.size()));
    buf4[1] = 'x';
    buf4[2] = 'x';
  }
  return std::string_view(buf4, 3);
}

size_t tls_version_index(std::string_view name) {
  for (size_t i = 0; i + 1 < kTlsVersionLabels.size(); ++i)
    if (kTlsVersionLabels[i] == name) return i;
  return kTlsVersionLabels.size() - 1;
}

size_t bucket_index(uint64_t duration_us) {
  for (size_t i = 0; i < kBuckets; ++i)
    if (duration_us <= kBucketBoundsUs[i]) return i;
  return kBuckets;
}

size_t cipher_index(std::string_view name) {
  for (size_t i = 0; i + 1 < kCiphers; ++i)
    if (kCipherLabels[i] == name) return i;
  return kCiphers - 1;
}

size_t method_index(std::string_view method) {
  for (size_t i = 0; i < kOtherMethod; ++i)
    if (kMethodLabels[i] == method) return i;
  return kOtherMethod;
}

void Slot::request(Protocol p, size_t method, uint16_t status, uint64_t duration_us, size_t route_slot) {
  const size_t pi = static_cast<size_t>(p);
  const size_t mi = method < kMethods ? method : kOtherMethod;
  const size_t bucket = bucket_index(duration_us);
  add(word::kRequests + (pi * kMethods + mi) * kStatusSlots + status_index(status));
  add(word::kDuration + pi * (kBuckets + 1) + bucket);
  add(word::kDurationSumUs + pi, duration_us);
  // Route-matched requests only: the last section is "no route".
  if (route_slot >= route_slots_ || route_slot == route_slots_ - 1) return;
  const size_t r = kFixedWords + route_slot * kRouteWords;
  add(r + route_word::kRequests + (pi * kMethods + mi) * kStatusClasses + status_class_index(status));
  add(r + route_word::kDuration + pi * (kBuckets + 1) + bucket);
  add(r + route_word::kDurationSumUs + pi, duration_us);
}

void Slot::rate_limit(size_t route_slot, config::RateLimit::LimitBy strategy, bool allowed) {
  const auto si = static_cast<size_t>(strategy);
  if (route_slot >= route_slots_ || si >= kStrategies) return;
  const size_t r = kFixedWords + route_slot * kRouteWords;
  add(r + (allowed ? route_word::kRateLimitAllowed : route_word::kRateLimitRejected) + si);
}

void Slot::backend_response(size_t route_slot, uint16_t status, uint64_t duration_us) {
  if (route_slot >= route_slots_) return;
  const size_t r = kFixedWords + route_slot * kRouteWords;
  add(r + route_word::kBackendResponses + status_class_index(status));
  add(r + route_word::kBackendDuration + bucket_index(duration_us));
  add(r + route_word::kBackendDurationSumUs, duration_us);
}

void Slot::backend_error(size_t route_slot, BackendError e) {
  if (route_slot >= route_slots_) return;
  add(kFixedWords + route_slot * kRouteWords + route_word::kBackendErrors + static_cast<size_t>(e));
}

Counters LocalSlot::counters() const {
  Counters c{};
  for (size_t w = 0; w < kFixedWords; ++w) c[w] = words_[w];
  return c;
}

RouteCounters LocalSlot::route(uint32_t r) const {
  RouteCounters c{};
  if (r < route_slots_)
    for (size_t w = 0; w < kRouteWords; ++w) c[w] = words_[kFixedWords + size_t{r} * kRouteWords + w];
  return c;
}

std::unique_ptr<Table> Table::create(uint32_t slots, size_t route_slots_in, std::string* error) {
  if (!check_shape(slots, route_slots_in, error)) return nullptr;
  const auto route_slots = static_cast<uint32_t>(route_slots_in);
  auto t = std::make_unique<Table>();
  if (!sys::SharedMapping::create("huginn-metrics", bytes_for(slots, route_slots), &t->fd_, &t->map_, error))
    return nullptr;
  t->slots_ = slots;
  t->route_slots_ = route_slots;
  const Header h{kMagic, kLayoutVersion, slots, static_cast<uint32_t>(slot_bytes(route_slots)), route_slots};
  std::memcpy(t->map_.data(), &h, sizeof h);
  return t;
}

std::unique_ptr<Table> Table::attach(int fd, uint32_t slots, size_t route_slots_in, std::string* error) {
  if (!check_shape(slots, route_slots_in, error)) return nullptr;
  const auto route_slots = static_cast<uint32_t>(route_slots_in);
  auto t = std::make_unique<Table>();
  if (!sys::SharedMapping::attach(fd, bytes_for(slots, route_slots), &t->map_, error)) return nullptr;
  Header h{};
  std::memcpy(&h, t->map_.data(), sizeof h);
  if (h.magic != kMagic || h.layout != kLayoutVersion || h.slots != slots ||
      h.slot_bytes != slot_bytes(route_slots) || h.route_slots != route_slots) {
    *error = "metrics table: header does not match layout " + std::to_string(kLayoutVersion) + " with " +
             std::to_string(slots) + " slots of " + std::to_string(route_slots) + " route slots";
    return nullptr;
  }
  t->slots_ = slots;
  t->route_slots_ = route_slots;
  return t;
}

uint64_t* Table::words(uint32_t i) const {
  auto* base = static_cast<unsigned char*>(map_.data()) + kHeaderBytes + size_t{i} * slot_bytes(route_slots_);
  return reinterpret_cast<uint64_t*>(base);
}

Counters Table::read(uint32_t i) const {
  Counters c{};
  const Slot s = slot(i);
  for (size_t w = 0; w < kFixedWords; ++w) c[w] = s.get(w);
  return c;
}

RouteCounters Table::read_route(uint32_t i, uint32_t r) const {
  RouteCounters c{};
  if (r >= route_slots_) return c;
  const Slot s = slot(i);
  for (size_t w = 0; w < kRouteWords; ++w) c[w] = s.get(kFixedWords + size_t{r} * kRouteWords + w);
  return c;
}

void Table::sum_into(const std::vector<RouteKey>& keys, Counters* totals, RouteTotals* routes) const {
  const uint32_t n = std::min<uint32_t>(route_slots_, static_cast<uint32_t>(keys.size()));
  for (uint32_t i = 0; i < slots_; ++i) {
    accumulate(read(i), totals);
    for (uint32_t r = 0; r < n; ++r) add_route(read_route(i, r).data(), keys[r], routes);
  }
}

void Table::fold_into(uint32_t i, const std::vector<RouteKey>& keys, Counters* base, RouteTotals* routes) {
  Slot s = slot(i);
  const Counters c = read(i);
  for (size_t w = 0; w < kFixedWords; ++w)
    if (!is_gauge(w)) (*base)[w] += c[w];
  const uint32_t n = std::min<uint32_t>(route_slots_, static_cast<uint32_t>(keys.size()));
  for (uint32_t r = 0; r < n; ++r) add_route(read_route(i, r).data(), keys[r], routes);
  for (size_t w = 0; w < slot_words(route_slots_); ++w) s.set(w, 0);
}

void accumulate(const Counters& from, Counters* into) {
  for (size_t w = 0; w < kFixedWords; ++w) (*into)[w] += from[w];
}

void accumulate(const RouteTotals& from, RouteTotals* into) {
  for (const auto& [k, c] : from) add_route(c.data(), k, into);
}

}  // namespace huginn::metrics
