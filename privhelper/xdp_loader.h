// Loads the XDP SYN recorder, pins its maps and XDP links, and hands out
// read-only map fds. All libbpf use of the project is here.
//
// Pins, under the request's pin_path (a directory on bpffs, owned by root,
// mode 0700; every pin 0600 — a pin's file mode is what guards it, see
// platform-facts §3):
//   syn_v4 syn_v6 syn_counters watch_ports watch_dst4 watch_dst6 syn_config syn_ring
//   link_<ifname>   the bpf_link attaching the program to that interface
// Restart: pins left by an earlier helper are reused when compatible (same ABI
// version in syn_config, same map type, key/value size, max entries, flags),
// so a helper crash leaves XDP attached and the SYN maps readable, and the
// new helper keeps the recorded entries. A pinned link on the same interface
// in the same mode is switched to the newly loaded program
// (bpf_link_update), so an upgraded program takes over atomically. Anything
// incompatible is detached/unpinned and created afresh.
#pragma once

#include <linux/bpf.h>

#include <map>
#include <string>
#include <vector>

#include "common/ipc/helper_protocol.h"
#include "common/sys/c_handle.h"
#include "common/sys/unique_fd.h"

struct huginn_syn;  // the generated skeleton (build/bpf/huginn_syn.skel.h)

namespace huginn::privhelper {

namespace helper = ipc::helper;

void destroy_skeleton(huginn_syn* s);  // huginn_syn__destroy

class XdpLoader {
 public:
  enum class Outcome { kFailed, kLoaded, kAttached };

  XdpLoader();
  ~XdpLoader();  // closes everything; pinned links keep XDP attached
  XdpLoader(const XdpLoader&) = delete;
  XdpLoader& operator=(const XdpLoader&) = delete;

  // Loads (or reloads, after a failed attach) and attaches on every interface.
  // kLoaded: program loaded and maps pinned but attaching failed (ans->error).
  Outcome load_attach(const helper::LoadAttach& req, helper::LoadAttachAns* ans);
  bool update(const helper::Watch& watch, std::string* error);
  // Sends MAPS_GRANT (manifest + read-only fds of syn_v4 and syn_v6, and an
  // fd of the frozen syn_ring for a read-only mapping) on
  // `channel`, which must be a SOCK_SEQPACKET unix socket.
  bool grant(int channel, uint32_t worker_id, uint32_t generation, std::string* error);
  helper::StatsAns stats() const;
  // detach: detach the links and remove every pin and the directory.
  void shutdown(bool detach);

  // Read-only fd on a pinned map of `pin_dir` (bpf_obj_get_opts BPF_F_RDONLY).
  static sys::UniqueFd open_pinned_readonly(const std::string& pin_dir, const char* name, std::string* error);

 private:
  struct Link {
    std::string ifname;
    int ifindex = 0;
    sys::UniqueFd fd;
  };
  using Skel = sys::CHandle<huginn_syn, destroy_skeleton>;

  bool prepare_pin_dir(const std::string& dir, std::string* error);
  bool open_and_load(const helper::LoadAttach& req, bool* reused, std::string* error);
  bool fill_watch(const helper::Watch& watch, std::string* error);
  bool attach_one(const std::string& ifname, helper::XdpMode mode, std::string* error);
  void drop_stale_links(const std::vector<std::string>& keep);
  std::string pin(const std::string& name) const { return pin_dir_ + "/" + name; }

  Skel skel_;
  std::string pin_dir_;
  helper::XdpMode mode_ = helper::XdpMode::kNative;
  std::vector<Link> links_;
  bool attached_ = false;
};

}  // namespace huginn::privhelper
