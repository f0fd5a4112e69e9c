#include "worker/syn/map_grant.h"

#include <fcntl.h>

#include "bpf/syn_abi_check.h"
#include "worker/syn/bpf_syscall.h"

namespace huginn::worker::syn {

namespace helper = ipc::helper;

namespace {

const char* role_name(helper::MapRole r) {
  switch (r) {
    case helper::MapRole::kSynV4:
      return "syn_v4";
    case helper::MapRole::kSynV6:
      return "syn_v6";
    case helper::MapRole::kSynRing:
      return "syn_ring";
  }
  return "?";
}

// The manifest entry agrees with the descriptor (BPF_OBJ_GET_INFO_BY_FD).
bool matches_manifest(const helper::MapManifestEntry& e, int fd, std::string* error) {
  const char* what = role_name(e.role);
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
  if (e.role == helper::MapRole::kSynRing && !(info.map_flags & BPF_F_MMAPABLE)) {
    *error = std::string(what) + ": not an mmap-able array";
    return false;
  }
  return true;
}

std::string layout_error(const char* what) {
  return std::string(what) + ": map layout is not the one of this build (ABI " +
         std::to_string(HUGINN_SYN_ABI_VERSION) + ")";
}

bool check_ring(const helper::MapManifestEntry& e, int fd, SynRing* ring, std::string* error) {
  if (!matches_manifest(e, fd, error)) return false;
  if (e.map_type != BPF_MAP_TYPE_ARRAY || e.key_size != sizeof(uint32_t) ||
      e.value_size != sizeof(huginn_syn_slot) || e.max_entries != HUGINN_SYN_RING_SLOTS) {
    *error = layout_error("syn_ring");
    return false;
  }
  auto r = SynRing::attach(fd, error);
  if (!r) return false;
  *ring = std::move(*r);
  return true;
}

bool check_one(const helper::MapManifestEntry& e, int fd, std::string* error) {
  const char* what = role_name(e.role);
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY) {
    *error = std::string(what) + ": descriptor is not read-only";
    return false;
  }
  if (!matches_manifest(e, fd, error)) return false;
  const bool v4 = e.role == helper::MapRole::kSynV4;
  if (e.map_type != BPF_MAP_TYPE_LRU_HASH ||
      e.key_size != (v4 ? sizeof(huginn_syn_key_v4) : sizeof(huginn_syn_key_v6)) ||
      e.value_size != (v4 ? sizeof(huginn_syn_value_v4) : sizeof(huginn_syn_value_v6))) {
    *error = layout_error(what);
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
  bool have_ring = false;
  for (size_t i = 0; i < fds.size(); ++i) {
    const auto& e = grant.maps[i];
    if (e.role == helper::MapRole::kSynRing) {
      if (have_ring) {
        *error = "duplicate map role";
        return std::nullopt;
      }
      have_ring = true;
      if (!check_ring(e, fds[i].get(), &out.ring, error)) return std::nullopt;
      continue;  // mapped; its descriptor closes with `fds`
    }
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
