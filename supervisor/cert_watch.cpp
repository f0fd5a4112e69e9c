#include "supervisor/cert_watch.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "common/sys/c_handle.h"
#include "common/sys/log.h"
#include "common/sys/unique_fd.h"

namespace huginn::supervisor {
namespace {

using Event = sys::CHandle<event, event_free>;

constexpr uint32_t kDirMask = IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                              IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

class InotifyCertWatch final : public CertWatch {
 public:
  InotifyCertWatch(event_base* base, std::chrono::milliseconds debounce, Callback cb)
      : base_(base), debounce_(debounce), cb_(std::move(cb)) {}

  bool init(std::string* error) {
    fd_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd_) {
      *error = std::string("inotify_init1: ") + std::strerror(errno);
      return false;
    }
    read_ev_.reset(event_new(
        base_, fd_.get(), EV_READ | EV_PERSIST,
        [](evutil_socket_t, short, void* p) { static_cast<InotifyCertWatch*>(p)->on_readable(); }, this));
    timer_.reset(evtimer_new(
        base_, [](evutil_socket_t, short, void* p) { static_cast<InotifyCertWatch*>(p)->on_settled(); },
        this));
    if (!read_ev_ || !timer_ || event_add(read_ev_.get(), nullptr) != 0) {
      *error = "cannot register the inotify event";
      return false;
    }
    return true;
  }

  bool set_paths(const std::vector<std::string>& paths, std::string* error) override {
    paths_ = paths;
    return rearm(error);
  }

 private:
  bool rearm(std::string* error) {
    std::set<std::string> dirs;
    for (const auto& p : paths_) {
      dirs.insert(dir_of(p));
      // A symlink (certbot's live/ → archive/): also where it points now.
      char real[PATH_MAX];
      if (realpath(p.c_str(), real) != nullptr) dirs.insert(dir_of(real));
    }
    for (auto it = watches_.begin(); it != watches_.end();) {
      if (!dirs.count(it->second)) {
        inotify_rm_watch(fd_.get(), it->first);
        it = watches_.erase(it);
      } else {
        ++it;
      }
    }
    std::set<std::string> have;
    for (const auto& [wd, d] : watches_) have.insert(d);
    bool ok = true;
    std::string failed;
    for (const auto& d : dirs) {
      // inotify_add_watch on a directory already watched returns its wd again.
      const int wd = inotify_add_watch(fd_.get(), d.c_str(), kDirMask);
      if (wd < 0) {
        ok = false;
        failed += (failed.empty() ? "" : "; ") + d + ": " + std::strerror(errno);
        continue;
      }
      watches_[wd] = d;
    }
    if (!ok) *error = "cannot watch " + failed;
    return ok;
  }

  void on_readable() {
    alignas(inotify_event) char buf[16 * 1024];
    bool any = false;
    for (;;) {
      const ssize_t n = read(fd_.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EAGAIN: drained
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        if (ev->mask & IN_IGNORED) {  // directory gone: re-armed after the burst
          watches_.erase(ev->wd);
          continue;
        }
        any = true;
      }
    }
    if (!any) return;
    // Trailing-edge debounce: every event pushes the callback further out.
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(debounce_).count();
    timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    evtimer_add(timer_.get(), &tv);
  }

  void on_settled() {
    std::string err;
    if (!rearm(&err)) HLOG_WARN("certificate watch: %s", err.c_str());
    cb_();
  }

  event_base* base_;
  std::chrono::milliseconds debounce_;
  Callback cb_;
  sys::UniqueFd fd_;
  Event read_ev_;
  Event timer_;
  std::vector<std::string> paths_;
  std::map<int, std::string> watches_;  // wd → directory
};

}  // namespace

std::unique_ptr<CertWatch> make_inotify_cert_watch(event_base* base, std::chrono::milliseconds debounce,
                                                   CertWatch::Callback callback, std::string* error) {
  auto w = std::make_unique<InotifyCertWatch>(base, debounce, std::move(callback));
  if (!w->init(error)) return nullptr;
  return w;
}

}  // namespace huginn::supervisor
