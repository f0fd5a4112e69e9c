#include "common/sys/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/sys/c_handle.h"

namespace huginn::sys {
namespace {

int cap_free_void(void* p) { return cap_free(p); }
using CapHandle = CHandle<_cap_struct, cap_free_void>;

std::string errno_str(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool clear_all_caps(std::string* error) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    *error = errno_str("PR_CAP_AMBIENT_CLEAR_ALL");
    return false;
  }
  CapHandle empty(cap_init());
  if (!empty || cap_clear(empty.get()) != 0 || cap_set_proc(empty.get()) != 0) {
    *error = errno_str("cap_set_proc");
    return false;
  }
  return true;
}

constexpr cap_value_t kSupervisorPermitted[] = {CAP_SETUID, CAP_SETGID, CAP_SETPCAP,   CAP_NET_BIND_SERVICE,
                                                CAP_KILL,   CAP_BPF,    CAP_NET_ADMIN, CAP_PERFMON};
constexpr cap_value_t kSupervisorEffective[] = {CAP_NET_BIND_SERVICE, CAP_KILL};

template <size_t N>
bool listed(const cap_value_t (&set)[N], int c) {
  for (cap_value_t v : set)
    if (v == c) return true;
  return false;
}

}  // namespace

bool restrict_supervisor_capabilities(std::string* error) {
  if (geteuid() != 0) return true;
  // Bounding set first, while CAP_SETPCAP is still effective. The kernel may
  // know more capabilities than this libcap's CAP_LAST_CAP: read until EINVAL.
  for (int c = 0; c < 64; ++c) {
    int in = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
    if (in < 0) break;
    if (in == 1 && !listed(kSupervisorPermitted, c) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
      *error = errno_str("PR_CAPBSET_DROP");
      return false;
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    *error = errno_str("PR_CAP_AMBIENT_CLEAR_ALL");
    return false;
  }
  CapHandle cur(cap_get_proc());
  CapHandle want(cap_init());
  if (!cur || !want || cap_clear(want.get()) != 0) {
    *error = errno_str("cap_get_proc");
    return false;
  }
  for (cap_value_t c : kSupervisorPermitted) {
    cap_flag_value_t held = CAP_CLEAR;
    cap_get_flag(cur.get(), c, CAP_PERMITTED, &held);
    if (held != CAP_SET) continue;  // never more than we had
    cap_set_flag(want.get(), CAP_PERMITTED, 1, &c, CAP_SET);
    if (listed(kSupervisorEffective, c)) cap_set_flag(want.get(), CAP_EFFECTIVE, 1, &c, CAP_SET);
  }
  if (cap_set_proc(want.get()) != 0) {
    *error = errno_str("cap_set_proc");
    return false;
  }
  return true;
}

bool lookup_user(const std::string& name, UserIds* out, std::string* error) {
  long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(sz > 0 ? static_cast<size_t>(sz) : 16384);
  passwd pw{};
  passwd* res = nullptr;
  int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
  if (rc != 0 || res == nullptr) {
    *error = "unknown user \"" + name + "\"" + (rc ? std::string(": ") + std::strerror(rc) : "");
    return false;
  }
  out->uid = pw.pw_uid;
  out->gid = pw.pw_gid;
  return true;
}

bool drop_privileges(const std::string& user, std::string* error) {
  const bool root = geteuid() == 0 || getuid() == 0;
  if (root) {
    UserIds ids;
    if (!lookup_user(user, &ids, error)) return false;
    if (ids.uid == 0) {
      *error = "refusing to run workers as uid 0 (user \"" + user + "\")";
      return false;
    }
    // Empty the bounding set while CAP_SETPCAP is still effective.
    for (int c = 0; c <= CAP_LAST_CAP; ++c) {
      if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
        *error = errno_str("PR_CAPBSET_DROP");
        return false;
      }
    }
    if (setgroups(0, nullptr) != 0) {
      *error = errno_str("setgroups");
      return false;
    }
    if (setresgid(ids.gid, ids.gid, ids.gid) != 0) {
      *error = errno_str("setresgid");
      return false;
    }
    if (setresuid(ids.uid, ids.uid, ids.uid) != 0) {
      *error = errno_str("setresuid");
      return false;
    }
  }
  if (!clear_all_caps(error)) return false;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    *error = errno_str("PR_SET_NO_NEW_PRIVS");
    return false;
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    *error = errno_str("PR_SET_DUMPABLE");
    return false;
  }
  if (root) {
    // Prove that the drop cannot be undone.
    if (setuid(0) == 0 || seteuid(0) == 0 || setresuid(0, 0, 0) == 0) {
      *error = "uid 0 could be regained after dropping privileges";
      return false;
    }
    if (setgid(0) == 0 || setegid(0) == 0) {
      *error = "gid 0 could be regained after dropping privileges";
      return false;
    }
  }
  return verify_unprivileged(root, error);
}

bool verify_unprivileged(bool expect_unprivileged_uid, std::string* error) {
  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  if (expect_unprivileged_uid && (r == 0 || e == 0 || s == 0 || gr == 0 || ge == 0 || gs == 0)) {
    *error = "still running with uid or gid 0";
    return false;
  }
  CapHandle caps(cap_get_proc());
  CapHandle empty(cap_init());
  if (!caps || !empty) {
    *error = errno_str("cap_get_proc");
    return false;
  }
  cap_clear(empty.get());
  if (cap_compare(caps.get(), empty.get()) != 0) {
    *error = "capability sets are not empty";
    return false;
  }
  for (int c = 0; c <= CAP_LAST_CAP; ++c) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1) {
      *error = "ambient capability set is not empty";
      return false;
    }
    if (expect_unprivileged_uid && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) {
      *error = "bounding capability set is not empty";
      return false;
    }
  }
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
    *error = "NoNewPrivs is not set";
    return false;
  }
  return true;
}

}  // namespace huginn::sys
