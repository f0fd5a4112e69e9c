#include "privhelper/server.h"

#include <unistd.h>

#include <bpf/libbpf.h>

#include "common/sys/log.h"
#include "common/sys/seccomp.h"

namespace huginn::privhelper {

namespace helper = ipc::helper;

int Server::run() {
  std::string err;
  if (!helper::send_message(ctl_, helper::Hello{helper::kHelperVersion, static_cast<uint32_t>(getpid())}, {},
                            &err)) {
    HLOG_ERROR("sending HELLO: %s", err.c_str());
    return 1;
  }
  while (!done_) {
    helper::Received r = helper::receive_message(ctl_);
    if (r.status == helper::RecvStatus::kClosed) {
      HLOG_INFO("the supervisor closed the control channel; exiting (XDP stays attached)");
      return 0;
    }
    if (r.status != helper::RecvStatus::kMessage) {
      HLOG_ERROR("control channel: %s", r.error.c_str());
      return 1;
    }
    if (!handle(r)) return 1;
  }
  return 0;
}

bool Server::handle(helper::Received& r) {
  const helper::MsgType t = helper::type_of(r.message);
  if (std::string why = session_.accept(t); !why.empty()) {
    HLOG_ERROR("unpermitted request: %s", why.c_str());
    return false;
  }
  std::string err;
  bool sent = true;
  if (auto* m = std::get_if<helper::LoadAttach>(&r.message)) {
    helper::LoadAttachAns ans;
    switch (loader_.load_attach(*m, &ans)) {
      case XdpLoader::Outcome::kAttached:
        session_.set_state(helper::HelperSession::State::kAttached);
        break;
      case XdpLoader::Outcome::kLoaded:
        session_.set_state(helper::HelperSession::State::kLoaded);
        break;
      case XdpLoader::Outcome::kFailed:
        break;
    }
    if (!ans.ok) HLOG_ERROR("LOAD_ATTACH failed: %s", ans.error.c_str());
    sent = helper::send_message(ctl_, ans, {}, &err);
    // Everything that needs the file system or new sockets is done: from here
    // on the helper only answers with bpf(2) and its channels.
    if (sent && ans.ok && !enter_sandbox()) return false;
  } else if (auto* u = std::get_if<helper::Update>(&r.message)) {
    helper::UpdateAns ans;
    ans.ok = loader_.update(u->watch, &ans.error);
    sent = helper::send_message(ctl_, ans, {}, &err);
  } else if (auto* g = std::get_if<helper::WorkerGrant>(&r.message)) {
    // The one descriptor is the helper's end of the worker's maps channel:
    // one MAPS_GRANT goes out on it, then it is closed unread.
    sys::UniqueFd channel = std::move(r.fds.at(0));
    helper::WorkerGrantAns ans{g->worker_id, g->generation, false, {}};
    ans.ok = loader_.grant(channel.get(), g->worker_id, g->generation, &ans.error);
    if (!ans.ok) HLOG_WARN("grant for worker %u: %s", g->worker_id, ans.error.c_str());
    sent = helper::send_message(ctl_, ans, {}, &err);
  } else if (std::holds_alternative<helper::StatsReq>(r.message)) {
    sent = helper::send_message(ctl_, loader_.stats(), {}, &err);
  } else if (auto* s = std::get_if<helper::Shutdown>(&r.message)) {
    session_.set_state(helper::HelperSession::State::kStopping);
    loader_.shutdown(s->detach);
    sent = helper::send_message(ctl_, helper::ShutdownAns{}, {}, &err);
    done_ = true;
  }
  if (!sent) {
    HLOG_ERROR("answering %s: %s", helper::type_name(t), err.c_str());
    return false;
  }
  return true;
}

bool Server::enter_sandbox() {
  if (sandboxed_) return true;
  // libbpf reads /sys/devices/system/cpu/possible once (per-CPU counters) and
  // caches it; do that while files can still be opened.
  if (libbpf_num_possible_cpus() <= 0) HLOG_WARN("cannot read the number of possible CPUs");
  std::string err;
  if (!sys::install_privhelper_sandbox(sys::sandbox_options_from_env(), &err)) {
    HLOG_ERROR("seccomp sandbox: %s", err.c_str());
    return false;
  }
  sandboxed_ = true;
  return true;
}

}  // namespace huginn::privhelper
