#include "privhelper/xdp_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bpf/syn_abi_check.h"
#include "common/sys/log.h"
#include "huginn_syn.skel.h"

namespace huginn::privhelper {

void destroy_skeleton(huginn_syn* s) { huginn_syn__destroy(s); }

namespace {

constexpr const char* kLinkPrefix = "link_";

std::string errno_str(const std::string& what, int err = errno) { return what + ": " + std::strerror(err); }

// libbpf returns -errno and sets errno; normalise to a positive errno.
int lerr(int rc) { return rc < 0 ? -rc : errno; }

bool map_info(int fd, bpf_map_info* info) {
  std::memset(info, 0, sizeof *info);
  __u32 len = sizeof *info;
  return bpf_obj_get_info_by_fd(fd, info, &len) == 0;
}

struct MapRef {
  const char* name;
  bpf_map* map;
};

std::vector<MapRef> all_maps(huginn_syn* s) {
  return {{HUGINN_MAP_SYN_V4, s->maps.syn_v4},         {HUGINN_MAP_SYN_V6, s->maps.syn_v6},
          {HUGINN_MAP_COUNTERS, s->maps.syn_counters}, {HUGINN_MAP_WATCH_PORTS, s->maps.watch_ports},
          {HUGINN_MAP_WATCH_DST4, s->maps.watch_dst4}, {HUGINN_MAP_WATCH_DST6, s->maps.watch_dst6},
          {HUGINN_MAP_CONFIG, s->maps.syn_config},     {HUGINN_MAP_SYN_RING, s->maps.syn_ring}};
}

// Freezes syn_ring for every descriptor (BPF_MAP_FREEZE): bpf() writes and
// writable mappings fail from now on; the program still writes it. A ring
// reused from an earlier helper is frozen already (the kernel answers EPERM,
// as a frozen map's descriptors lose write access, or EBUSY); that is
// checked with a write that must be refused.
bool freeze_ring(int fd, std::string* error) {
  const int rc = bpf_map_freeze(fd);
  if (rc == 0) return true;
  if (lerr(rc) == EPERM || lerr(rc) == EBUSY) {
    const uint32_t key = 0;
    huginn_syn_slot zero{};
    if (bpf_map_update_elem(fd, &key, &zero, BPF_ANY) != 0 && errno == EPERM) return true;
  }
  *error = errno_str("freezing " HUGINN_MAP_SYN_RING, lerr(rc));
  return false;
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// Pins are created 0600 by bpffs (minus umask); make sure of it.
bool secure_pin(const std::string& path, std::string* error) {
  if (chmod(path.c_str(), 0600) != 0) {
    *error = errno_str("chmod " + path);
    return false;
  }
  return true;
}

// Replaces the contents of a "set" hash map (value u8 1) by `keys`: new keys
// are inserted first, then the others deleted, so the program never sees an
// empty set during an update.
template <typename Key>
bool replace_set(int fd, const std::vector<Key>& keys, std::string* error) {
  const uint8_t one = 1;
  for (const Key& k : keys) {
    if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0) {
      *error = errno_str("watch map update");
      return false;
    }
  }
  std::vector<Key> stale;
  Key cur{}, next{};
  bool first = true;
  while (bpf_map_get_next_key(fd, first ? nullptr : &cur, &next) == 0) {
    first = false;
    if (std::find(keys.begin(), keys.end(), next) == keys.end()) stale.push_back(next);
    cur = next;
  }
  for (const Key& k : stale) bpf_map_delete_elem(fd, &k);
  return true;
}

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list ap) {
  const log::Level l = level == LIBBPF_WARN ? log::Level::kWarn : log::Level::kDebug;
  if (!log::enabled(l)) return 0;
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  size_t n = std::strlen(buf);
  while (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
  log::write(l, "%s", buf);
  return 0;
}

}  // namespace

XdpLoader::XdpLoader() { libbpf_set_print(libbpf_log); }

XdpLoader::~XdpLoader() = default;

sys::UniqueFd XdpLoader::open_pinned_readonly(const std::string& pin_dir, const char* name,
                                              std::string* error) {
  const std::string path = pin_dir + "/" + name;
  LIBBPF_OPTS(bpf_obj_get_opts, o, .file_flags = BPF_F_RDONLY);
  const int fd = bpf_obj_get_opts(path.c_str(), &o);
  if (fd < 0) {
    *error = errno_str("bpf_obj_get(" + path + ", BPF_F_RDONLY)", lerr(fd));
    return {};
  }
  return sys::UniqueFd(fd);
}

bool XdpLoader::prepare_pin_dir(const std::string& dir, std::string* error) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    *error = errno_str("mkdir " + dir);
    // The usual cause: /sys/fs/bpf exists but nothing is mounted on it.
    const std::string parent = dir.substr(0, std::max<size_t>(dir.rfind('/'), 1));
    struct statfs pfs {};
    if (statfs(parent.c_str(), &pfs) == 0 && pfs.f_type != BPF_FS_MAGIC)
      *error += " (" + parent + " is not a bpf file system: mount -t bpf bpf " + parent + ")";
    return false;
  }
  sys::UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) {
    *error = errno_str("open " + dir);
    return false;
  }
  struct stat st {};
  struct statfs fs {};
  if (fstat(d.get(), &st) != 0 || fstatfs(d.get(), &fs) != 0) {
    *error = errno_str("stat " + dir);
    return false;
  }
  if (fs.f_type != BPF_FS_MAGIC) {
    *error = dir + " is not on a bpf file system (mount -t bpf)";
    return false;
  }
  if (st.st_uid != geteuid()) {
    *error =
        dir + " is owned by uid " + std::to_string(st.st_uid) + ", not by the helper; refusing to use it";
    return false;
  }
  if ((st.st_mode & 07777) != 0700 && fchmod(d.get(), 0700) != 0) {
    *error = errno_str("chmod 0700 " + dir);
    return false;
  }
  return true;
}

bool XdpLoader::open_and_load(const helper::LoadAttach& req, bool* reused, std::string* error) {
  *reused = false;
  Skel skel(huginn_syn__open());
  if (!skel) {
    *error = errno_str("opening the BPF object");
    return false;
  }
  bpf_map__set_max_entries(skel->maps.syn_v4, req.max_entries);
  bpf_map__set_max_entries(skel->maps.syn_v6, req.max_entries);

  // Pins of an earlier helper: only of this ABI version.
  bool abi_ok = false;
  if (exists(pin(HUGINN_MAP_CONFIG))) {
    const int fd = bpf_obj_get(pin(HUGINN_MAP_CONFIG).c_str());
    if (fd >= 0) {
      sys::UniqueFd cfg_fd(fd);
      huginn_syn_config cfg{};
      const uint32_t zero = 0;
      bpf_map_info info;
      abi_ok = map_info(fd, &info) && info.value_size == sizeof cfg &&
               bpf_map_lookup_elem(fd, &zero, &cfg) == 0 && cfg.abi_version == HUGINN_SYN_ABI_VERSION;
    }
    if (!abi_ok) HLOG_WARN("pins in %s are of another ABI version; recreating them", pin_dir_.c_str());
  }
  for (const auto& [name, map] : all_maps(skel.get())) {
    const std::string path = pin(name);
    if (!exists(path)) continue;
    bool compatible = false;
    const int fd = abi_ok ? bpf_obj_get(path.c_str()) : -1;
    if (fd >= 0) {
      sys::UniqueFd old(fd);
      bpf_map_info info;
      compatible = map_info(fd, &info) && info.type == static_cast<__u32>(bpf_map__type(map)) &&
                   info.key_size == bpf_map__key_size(map) && info.value_size == bpf_map__value_size(map) &&
                   info.max_entries == bpf_map__max_entries(map) && info.map_flags == bpf_map__map_flags(map);
      if (compatible) {
        const int rc = bpf_map__reuse_fd(map, fd);  // dups fd
        if (rc != 0) {
          *error = errno_str(std::string("reusing pinned map ") + name, lerr(rc));
          return false;
        }
        *reused = true;
        continue;
      }
    }
    HLOG_INFO("pinned map %s is not compatible with this program; recreating it", path.c_str());
    if (unlink(path.c_str()) != 0) {
      *error = errno_str("unlink " + path);
      return false;
    }
  }
  const int rc = huginn_syn__load(skel.get());
  if (rc != 0) {
    *error = errno_str("loading the XDP program (the verifier log is in the helper's debug log)", lerr(rc));
    return false;
  }
  if (!freeze_ring(bpf_map__fd(skel->maps.syn_ring), error)) return false;
  for (const auto& [name, map] : all_maps(skel.get())) {
    const std::string path = pin(name);
    if (!exists(path)) {
      const int prc = bpf_map__pin(map, path.c_str());
      if (prc != 0) {
        *error = errno_str("pinning " + path, lerr(prc));
        return false;
      }
    }
    if (!secure_pin(path, error)) return false;
  }
  skel_ = std::move(skel);
  return true;
}

bool XdpLoader::fill_watch(const helper::Watch& watch, std::string* error) {
  huginn_syn* s = skel_.get();
  // Destination filters: a filter being added is filled before its flag is set;
  // a filter being removed has its flag cleared before the set is emptied.
  std::vector<uint32_t> v4;
  std::vector<std::array<uint8_t, 16>> v6;
  if (watch.dst_v4) {
    uint32_t a;
    std::memcpy(&a, watch.dst_v4->data(), 4);
    v4.push_back(a);
  }
  if (watch.dst_v6) v6.push_back(*watch.dst_v6);
  if ((!v4.empty() && !replace_set(bpf_map__fd(s->maps.watch_dst4), v4, error)) ||
      (!v6.empty() && !replace_set(bpf_map__fd(s->maps.watch_dst6), v6, error)) ||
      !replace_set(bpf_map__fd(s->maps.watch_ports), watch.ports, error))
    return false;
  huginn_syn_config cfg{};
  cfg.abi_version = HUGINN_SYN_ABI_VERSION;
  cfg.flags = (watch.dst_v4 ? HUGINN_CFG_FILTER_DST4 : 0) | (watch.dst_v6 ? HUGINN_CFG_FILTER_DST6 : 0);
  const uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(s->maps.syn_config), &zero, &cfg, BPF_ANY) != 0) {
    *error = errno_str("syn_config update");
    return false;
  }
  if ((v4.empty() && !replace_set(bpf_map__fd(s->maps.watch_dst4), v4, error)) ||
      (v6.empty() && !replace_set(bpf_map__fd(s->maps.watch_dst6), v6, error)))
    return false;
  return true;
}

bool XdpLoader::attach_one(const std::string& ifname, helper::XdpMode mode, std::string* error) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) {
    *error = errno_str("interface " + ifname);
    return false;
  }
  const int prog_fd = bpf_program__fd(skel_->progs.huginn_syn_capture);
  const uint32_t want_mode = mode == helper::XdpMode::kSkb ? XDP_ATTACHED_SKB : XDP_ATTACHED_DRV;
  const std::string path = pin(kLinkPrefix + ifname);

  if (exists(path)) {
    const int fd = bpf_obj_get(path.c_str());
    sys::UniqueFd old(fd >= 0 ? fd : -1);
    bool reused = false;
    if (old) {
      bpf_link_info info{};
      __u32 len = sizeof info;
      LIBBPF_OPTS(bpf_xdp_query_opts, q);
      if (bpf_obj_get_info_by_fd(old.get(), &info, &len) == 0 && info.type == BPF_LINK_TYPE_XDP &&
          static_cast<int>(info.xdp.ifindex) == ifindex && bpf_xdp_query(ifindex, 0, &q) == 0 &&
          q.attach_mode == want_mode && bpf_link_update(old.get(), prog_fd, nullptr) == 0) {
        reused = true;
      } else {
        bpf_link_detach(old.get());
      }
    }
    if (reused) {
      if (!secure_pin(path, error)) return false;
      HLOG_INFO("XDP on %s: reused the pinned link (%s mode), now running the new program", ifname.c_str(),
                helper::xdp_mode_name(mode));
      links_.push_back({ifname, ifindex, std::move(old)});
      return true;
    }
    if (unlink(path.c_str()) != 0) {
      *error = errno_str("unlink " + path);
      return false;
    }
  }
  LIBBPF_OPTS(bpf_link_create_opts, lo,
              .flags = mode == helper::XdpMode::kSkb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
  const int lfd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &lo);
  if (lfd < 0) {
    *error = errno_str("attaching XDP (" + std::string(helper::xdp_mode_name(mode)) + " mode) to " + ifname,
                       lerr(lfd));
    return false;
  }
  sys::UniqueFd link(lfd);
  const int prc = bpf_obj_pin(link.get(), path.c_str());
  if (prc != 0) {
    *error = errno_str("pinning " + path, lerr(prc));
    bpf_link_detach(link.get());
    return false;
  }
  if (!secure_pin(path, error)) return false;
  HLOG_INFO("XDP attached to %s (ifindex %d, %s mode)", ifname.c_str(), ifindex, helper::xdp_mode_name(mode));
  links_.push_back({ifname, ifindex, std::move(link)});
  return true;
}

void XdpLoader::drop_stale_links(const std::vector<std::string>& keep) {
  sys::UniqueFd d(open(pin_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) return;
  DIR* dir = fdopendir(d.release());
  if (!dir) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.rfind(kLinkPrefix, 0) != 0) continue;
    if (std::find(keep.begin(), keep.end(), name.substr(std::strlen(kLinkPrefix))) == keep.end())
      stale.push_back(name);
  }
  closedir(dir);
  for (const auto& name : stale) {
    const std::string path = pin(name);
    const int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) {
      bpf_link_detach(fd);
      close(fd);
    }
    unlink(path.c_str());
    HLOG_INFO("detached the XDP link %s (interface no longer configured)", path.c_str());
  }
}

XdpLoader::Outcome XdpLoader::load_attach(const helper::LoadAttach& req, helper::LoadAttachAns* ans) {
  ans->ok = false;
  ans->mode = req.mode;
  ans->interfaces.clear();
  // A retry after a failed attach starts from scratch (the pins stay).
  for (auto& l : links_) l.fd.reset();
  links_.clear();
  attached_ = false;
  skel_.reset();
  pin_dir_ = req.pin_path;
  mode_ = req.mode;
  if (!prepare_pin_dir(pin_dir_, &ans->error)) return Outcome::kFailed;
  bool reused = false;
  if (!open_and_load(req, &reused, &ans->error)) return Outcome::kFailed;
  ans->reused_pins = reused;
  if (!fill_watch(req.watch, &ans->error)) return Outcome::kLoaded;
  drop_stale_links(req.interfaces);
  for (const auto& ifname : req.interfaces) {
    if (!attach_one(ifname, req.mode, &ans->error)) {
      // Undo this request's attachments: all or nothing.
      for (auto& l : links_) {
        bpf_link_detach(l.fd.get());
        unlink(pin(kLinkPrefix + l.ifname).c_str());
      }
      links_.clear();
      return Outcome::kLoaded;
    }
    ans->interfaces.push_back(ifname);
  }
  attached_ = true;
  ans->ok = true;
  return Outcome::kAttached;
}

bool XdpLoader::update(const helper::Watch& watch, std::string* error) {
  if (!skel_) {
    *error = "nothing loaded";
    return false;
  }
  return fill_watch(watch, error);
}

bool XdpLoader::grant(int channel, uint32_t worker_id, uint32_t generation, std::string* error) {
  int type = 0, domain = 0;
  socklen_t l = sizeof type;
  if (getsockopt(channel, SOL_SOCKET, SO_TYPE, &type, &l) != 0 || type != SOCK_SEQPACKET) {
    *error = "the maps channel is not a SOCK_SEQPACKET socket";
    return false;
  }
  l = sizeof domain;
  if (getsockopt(channel, SOL_SOCKET, SO_DOMAIN, &domain, &l) != 0 || domain != AF_UNIX) {
    *error = "the maps channel is not a unix socket";
    return false;
  }
  helper::MapsGrant g;
  g.worker_id = worker_id;
  g.generation = generation;
  std::vector<sys::UniqueFd> fds;
  const struct {
    helper::MapRole role;
    uint8_t family;
    const char* name;
  } roles[] = {{helper::MapRole::kSynV4, 4, HUGINN_MAP_SYN_V4},
               {helper::MapRole::kSynV6, 6, HUGINN_MAP_SYN_V6}};
  for (const auto& r : roles) {
    sys::UniqueFd fd = open_pinned_readonly(pin_dir_, r.name, error);
    if (!fd) return false;
    if ((fcntl(fd.get(), F_GETFL) & O_ACCMODE) != O_RDONLY) {
      *error = std::string(r.name) + ": the kernel did not give a read-only descriptor";
      return false;
    }
    bpf_map_info info;
    if (!map_info(fd.get(), &info)) {
      *error = errno_str(std::string("map info of ") + r.name);
      return false;
    }
    g.maps.push_back(
        {r.role, r.family, info.type, info.key_size, info.value_size, info.max_entries, info.id});
    fds.push_back(std::move(fd));
  }
  // The ring: a descriptor opened for writing (Linux maps MAP_SHARED only
  // through those) of the map frozen at load, which no descriptor can write.
  const std::string ring_path = pin(HUGINN_MAP_SYN_RING);
  const int ring = bpf_obj_get(ring_path.c_str());
  if (ring < 0) {
    *error = errno_str("bpf_obj_get(" + ring_path + ")", lerr(ring));
    return false;
  }
  sys::UniqueFd ring_fd(ring);
  bpf_map_info info;
  if (!map_info(ring_fd.get(), &info)) {
    *error = errno_str("map info of " HUGINN_MAP_SYN_RING);
    return false;
  }
  g.maps.push_back(
      {helper::MapRole::kSynRing, 0, info.type, info.key_size, info.value_size, info.max_entries, info.id});
  fds.push_back(std::move(ring_fd));
  std::vector<int> raw;
  for (const auto& f : fds) raw.push_back(f.get());
  return helper::send_message(channel, g, raw, error);
}

helper::StatsAns XdpLoader::stats() const {
  helper::StatsAns s;
  s.attached = attached_;
  s.mode = mode_;
  for (const auto& l : links_) s.interfaces.push_back(l.ifname);
  if (!skel_) return s;
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0 || ncpu > 4096) return s;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
  uint64_t totals[HUGINN_CTR_COUNT] = {};
  const int fd = bpf_map__fd(skel_->maps.syn_counters);
  for (uint32_t i = 0; i < HUGINN_CTR_COUNT; ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) totals[i] += v;
  }
  s.v4 = {totals[HUGINN_CTR_CAPTURED_V4], totals[HUGINN_CTR_MALFORMED_V4], totals[HUGINN_CTR_INSERT_FAIL_V4]};
  s.v6 = {totals[HUGINN_CTR_CAPTURED_V6], totals[HUGINN_CTR_MALFORMED_V6], totals[HUGINN_CTR_INSERT_FAIL_V6]};
  return s;
}

void XdpLoader::shutdown(bool detach) {
  if (!detach || pin_dir_.empty()) {
    HLOG_INFO("stopping; XDP stays attached and the pins stay in %s", pin_dir_.c_str());
    return;
  }
  for (auto& l : links_) {
    if (bpf_link_detach(l.fd.get()) != 0)
      HLOG_WARN("detaching XDP from %s: %s", l.ifname.c_str(), strerror(errno));
    unlink(pin(kLinkPrefix + l.ifname).c_str());
  }
  links_.clear();
  drop_stale_links({});
  attached_ = false;
  for (const char* name :
       {HUGINN_MAP_SYN_V4, HUGINN_MAP_SYN_V6, HUGINN_MAP_COUNTERS, HUGINN_MAP_WATCH_PORTS,
        HUGINN_MAP_WATCH_DST4, HUGINN_MAP_WATCH_DST6, HUGINN_MAP_CONFIG, HUGINN_MAP_SYN_RING})
    unlink(pin(name).c_str());
  if (rmdir(pin_dir_.c_str()) != 0) HLOG_WARN("rmdir %s: %s", pin_dir_.c_str(), strerror(errno));
  HLOG_INFO("XDP detached and pins removed");
}

}  // namespace huginn::privhelper
