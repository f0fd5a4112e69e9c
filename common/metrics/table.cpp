#include "common/metrics/table.h"

#include <cstring>

namespace huginn::metrics {

namespace {

struct Header {
  uint32_t magic;
  uint32_t layout;
  uint32_t slots;
  uint32_t slot_bytes;
};
static_assert(sizeof(Header) <= kHeaderBytes);
static_assert(kSlotBytes % 64 == 0 && kSlotBytes >= kSlotWords * 8);

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

size_t method_index(std::string_view method) {
  for (size_t i = 0; i < kOtherMethod; ++i)
    if (kMethodLabels[i] == method) return i;
  return kOtherMethod;
}

void Slot::request(Protocol p, size_t method, uint16_t status, uint64_t duration_us) {
  const size_t pi = static_cast<size_t>(p);
  const size_t mi = method < kMethods ? method : kOtherMethod;
  add(word::kRequests + (pi * kMethods + mi) * kStatusSlots + status_index(status));
  add(word::kDuration + pi * (kBuckets + 1) + bucket_index(duration_us));
  add(word::kDurationSumUs + pi, duration_us);
}

std::unique_ptr<Table> Table::create(uint32_t slots, std::string* error) {
  if (slots == 0 || slots > kMaxSlots) {
    *error = "metrics table: bad slot count " + std::to_string(slots);
    return nullptr;
  }
  auto t = std::make_unique<Table>();
  if (!sys::SharedMapping::create("huginn-metrics", bytes_for(slots), &t->fd_, &t->map_, error))
    return nullptr;
  t->slots_ = slots;
  const Header h{kMagic, kLayoutVersion, slots, static_cast<uint32_t>(kSlotBytes)};
  std::memcpy(t->map_.data(), &h, sizeof h);
  return t;
}

std::unique_ptr<Table> Table::attach(int fd, uint32_t slots, std::string* error) {
  if (slots == 0 || slots > kMaxSlots) {
    *error = "metrics table: bad slot count " + std::to_string(slots);
    return nullptr;
  }
  auto t = std::make_unique<Table>();
  if (!sys::SharedMapping::attach(fd, bytes_for(slots), &t->map_, error)) return nullptr;
  Header h{};
  std::memcpy(&h, t->map_.data(), sizeof h);
  if (h.magic != kMagic || h.layout != kLayoutVersion || h.slots != slots || h.slot_bytes != kSlotBytes) {
    *error = "metrics table: header does not match layout " + std::to_string(kLayoutVersion) + " with " +
             std::to_string(slots) + " slots";
    return nullptr;
  }
  t->slots_ = slots;
  return t;
}

uint64_t* Table::words(uint32_t i) const {
  auto* base = static_cast<unsigned char*>(map_.data()) + kHeaderBytes + size_t{i} * kSlotBytes;
  return reinterpret_cast<uint64_t*>(base);
}

Counters Table::read(uint32_t i) const {
  Counters c{};
  const Slot s = slot(i);
  for (size_t w = 0; w < kSlotWords; ++w) c[w] = s.get(w);
  return c;
}

void Table::fold_into(uint32_t i, Counters* base) {
  Slot s = slot(i);
  for (size_t w = 0; w < kSlotWords; ++w) {
    if (!is_gauge(w)) (*base)[w] += s.get(w);
    s.set(w, 0);
  }
}

void accumulate(const Counters& from, Counters* into) {
  for (size_t w = 0; w < kSlotWords; ++w) (*into)[w] += from[w];
}

}  // namespace huginn::metrics
