#include "worker/syn/map_grant.h"

#include <fcntl.h>

#include "bpf/syn_abi_check.h"
#include "worker/syn/bpf_syscall.h"

namespace huginn::worker::syn {

namespace helper = ipc::helper;

namespace {

bool check_one(const helper::MapManifestEntry& e, int fd, std::string* error) {
  const char* what = e.role == helper::MapRole::kSynV4 ? "syn_v4" : "syn_v6";
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY) {
    *error = std::string(what) + ": descriptor is not read-only";
    return false;
  }
  bpf_map_info info;
  if (const int rc = bpf_map_get_info(fd, &info); rc != 0) {
    *error = std::string(what) + ": not a BPF map (" + std::to_string(-rc) + ")";
    return false;
  }
  if (info.type != e.map_type || info.key_size != e.key_size || info.value_size != e.value_size ||
      info.max_entries != e.max_entries || info.id != e.map_id) {
    *error = std::string(what) + ": descriptor does not match the manifest";
    return false;
  }
  const bool v4 = e.role == helper::MapRole::kSynV4;
  if (e.map_type != BPF_MAP_TYPE_LRU_HASH ||
      e.key_size != (v4 ? sizeof(huginn_syn_key_v4) : sizeof(huginn_syn_key_v6)) ||
      e.value_size != (v4 ? sizeof(huginn_syn_value_v4) : sizeof(huginn_syn_value_v6))) {
    *error = std::string(what) + ": map layout is not the one of this build (ABI " +
             std::to_string(HUGINN_SYN_ABI_VERSION) + ")";
    return false;
  }
  return true;
}

}  // namespace

std::optional<GrantedMaps> validate_grant(const helper::MapsGrant& grant, std::vector<sys::UniqueFd> fds,
                                          uint32_t expected_worker_id, std::string* error) {
  if (grant.worker_id != expected_worker_id) {
    *error = "grant for worker " + std::to_string(grant.worker_id) + ", this is worker " +
             std::to_string(expected_worker_id);
    return std::nullopt;
  }
  if (fds.size() != grant.maps.size()) {
    *error = "descriptor count does not match the manifest";
    return std::nullopt;
  }
  GrantedMaps out;
  out.worker_id = grant.worker_id;
  out.generation = grant.generation;
  for (size_t i = 0; i < fds.size(); ++i) {
    const auto& e = grant.maps[i];
    if (!check_one(e, fds[i].get(), error)) return std::nullopt;
    sys::UniqueFd& slot = e.role == helper::MapRole::kSynV4 ? out.v4 : out.v6;
    if (slot) {
      *error = "duplicate map role";
      return std::nullopt;
    }
    slot = std::move(fds[i]);
  }
  return out;
}

std::optional<GrantedMaps> receive_grant(int channel, uint32_t expected_worker_id, std::string* error,
                                         bool* again) {
  if (again) *again = false;
  helper::Received r = helper::receive_message(channel);
  switch (r.status) {
    case helper::RecvStatus::kMessage:
      break;
    case helper::RecvStatus::kAgain:
      if (again) *again = true;
      *error = "no grant yet";
      return std::nullopt;
    case helper::RecvStatus::kClosed:
      *error = "maps channel closed without a grant";
      return std::nullopt;
    case helper::RecvStatus::kError:
      *error = r.error;
      return std::nullopt;
  }
  const auto* g = std::get_if<helper::MapsGrant>(&r.message);
  if (!g) {
    *error = std::string("expected MAPS_GRANT, got ") + helper::type_name(helper::type_of(r.message));
    return std::nullopt;
  }
  return validate_grant(*g, std::move(r.fds), expected_worker_id, error);
}

}  // namespace huginn::worker::syn
