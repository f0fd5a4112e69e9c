#include "privhelper/caps.h"

#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/sys/c_handle.h"

namespace huginn::privhelper {
namespace {

int cap_free_void(void* p) { return cap_free(p); }
using CapHandle = sys::CHandle<_cap_struct, cap_free_void>;

constexpr cap_value_t kKeep[] = {CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON};

bool kept(int c) {
  for (cap_value_t k : kKeep)
    if (k == c) return true;
  return false;
}

std::string cap_label(int c) {
  char* n = cap_to_name(c);
  std::string s = n ? n : std::to_string(c);
  cap_free(n);
  return s;
}

std::string errno_str(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

bool restrict_capabilities(std::string* error) {
  if (geteuid() == 0 || getuid() == 0) {
    // CAP_SETPCAP is needed for every drop, so it goes last.
    for (int c = 0; c <= CAP_LAST_CAP; ++c) {
      if (kept(c) || c == CAP_SETPCAP || prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1) continue;
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
        *error = errno_str("cannot drop " + cap_label(c) + " from the bounding set");
        return false;
      }
    }
    if (prctl(PR_CAPBSET_READ, CAP_SETPCAP, 0, 0, 0) == 1 &&
        prctl(PR_CAPBSET_DROP, CAP_SETPCAP, 0, 0, 0) != 0) {
      *error = errno_str("cannot drop cap_setpcap from the bounding set");
      return false;
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    *error = errno_str("PR_CAP_AMBIENT_CLEAR_ALL");
    return false;
  }
  CapHandle cur(cap_get_proc());
  CapHandle want(cap_init());
  if (!cur || !want) {
    *error = errno_str("cap_get_proc");
    return false;
  }
  cap_clear(want.get());
  for (cap_value_t c : kKeep) {
    cap_flag_value_t v = CAP_CLEAR;
    cap_get_flag(cur.get(), c, CAP_PERMITTED, &v);
    if (v == CAP_SET) {
      cap_set_flag(want.get(), CAP_PERMITTED, 1, &c, CAP_SET);
      cap_set_flag(want.get(), CAP_EFFECTIVE, 1, &c, CAP_SET);
    }
  }
  if (cap_set_proc(want.get()) != 0) {
    *error = errno_str("cap_set_proc");
    return false;
  }
  return true;
}

bool verify_capabilities(std::string* error) {
  CapHandle cur(cap_get_proc());
  if (!cur) {
    *error = errno_str("cap_get_proc");
    return false;
  }
  const bool root = geteuid() == 0 || getuid() == 0;
  for (int c = 0; c <= CAP_LAST_CAP; ++c) {
    cap_flag_value_t p = CAP_CLEAR, e = CAP_CLEAR, i = CAP_CLEAR;
    cap_get_flag(cur.get(), c, CAP_PERMITTED, &p);
    cap_get_flag(cur.get(), c, CAP_EFFECTIVE, &e);
    cap_get_flag(cur.get(), c, CAP_INHERITABLE, &i);
    const bool want = kept(c);
    if ((p == CAP_SET) != want || (e == CAP_SET) != want) {
      *error = (want ? "missing " : "holds extra capability ") + cap_label(c);
      return false;
    }
    if (i == CAP_SET) {
      *error = "inheritable set holds " + cap_label(c);
      return false;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1) {
      *error = "ambient set holds " + cap_label(c);
      return false;
    }
    if (root && !want && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) {
      *error = "bounding set holds " + cap_label(c);
      return false;
    }
  }
  return true;
}

}  // namespace huginn::privhelper
