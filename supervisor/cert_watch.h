// Certificate hot reload: notices when a file the configuration names may
// have changed and calls back once things settled.
//
// The inotify implementation watches the *directories* of the files (and,
// for a symlink, the directory of the file it currently points to), not the
// files themselves: editors and `mv`-replace put a new inode in place,
// certbot and Kubernetes swap symlinks, and a watch on the old inode would
// never see that. Any change in a watched directory (write, create, rename
// in or out, delete, attribute change) counts; the callback is debounced:
// it runs once, kCertWatchDebounce after the last event of a burst, so a
// renewal that writes cert, chain and key one after the other is one reload.
// After each burst the watches are set up again (a symlink may point
// elsewhere now). The callback decides whether anything really changed (the
// supervisor compares the bytes it reads).
//
// Driven by the supervisor's libevent loop; no thread, no polling.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace huginn::supervisor {

inline constexpr std::chrono::milliseconds kCertWatchDebounce{500};

class CertWatch {
 public:
  using Callback = std::function<void()>;
  virtual ~CertWatch() = default;
  // Replaces the set of watched files (an empty set watches nothing).
  // Directories that cannot be watched are reported in `*error` (the others
  // are still watched) and false is returned.
  virtual bool set_paths(const std::vector<std::string>& paths, std::string* error) = 0;
};

// inotify-backed CertWatch on `base`; `callback` runs on the loop.
std::unique_ptr<CertWatch> make_inotify_cert_watch(event_base* base, std::chrono::milliseconds debounce,
                                                   CertWatch::Callback callback, std::string* error);

}  // namespace huginn::supervisor
