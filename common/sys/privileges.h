// Dropping and verifying process privileges (OpenSSH uidswap.c style: after a
// drop, prove that it cannot be undone).
#pragma once

#include <sys/types.h>

#include <string>

namespace huginn::sys {

struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
};

// Looks up a user by name (getpwnam_r). Returns false with `*error` set.
bool lookup_user(const std::string& name, UserIds* out, std::string* error);

// Makes the calling process unprivileged for good:
//  * if it runs as root: empties the bounding set, clears supplementary
//    groups, switches real/effective/saved gid and uid to `user`;
//  * clears every capability set (effective, permitted, inheritable, ambient);
//  * PR_SET_NO_NEW_PRIVS and PR_SET_DUMPABLE 0;
//  * verifies that uid 0 cannot be regained.
// When not started as root the uid is left as it is (tests, unprivileged runs).
bool drop_privileges(const std::string& user, std::string* error);

// The supervisor's own capabilities when it runs as root (DESIGN.md's
// privilege table). The bounding and permitted sets are cut to
// kSupervisorPermitted: SETUID, SETGID, SETPCAP (the workers switch user and
// empty their bounding set), NET_BIND_SERVICE, KILL, and BPF, NET_ADMIN,
// PERFMON for the helper. Only NET_BIND_SERVICE (listeners, also on reload)
// and KILL (signals to workers of another uid) stay effective. Children are
// exec'd as root and so start with the bounding set (intersected with this
// permitted set under NO_NEW_PRIVS); they narrow it themselves. Inheritable
// and ambient sets are cleared. Does nothing when not root.
bool restrict_supervisor_capabilities(std::string* error);

// Checks the facts drop_privileges() establishes, from the kernel's view:
// uid/gid non-zero if `expect_unprivileged_uid`, all capability sets empty,
// NoNewPrivs set. Returns false with a description of the first violation.
bool verify_unprivileged(bool expect_unprivileged_uid, std::string* error);

}  // namespace huginn::sys
