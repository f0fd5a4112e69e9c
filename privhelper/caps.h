// The helper's capability rules (DESIGN.md "Privileges after start-up"): it
// keeps CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (the verifier needs PERFMON
// for variable packet-pointer arithmetic, platform-facts §2) and nothing else.
#pragma once

#include <string>

namespace huginn::privhelper {

// Drops every other capability from the bounding set (when running as root;
// needs CAP_SETPCAP, which goes last), clears the ambient and inheritable
// sets and sets permitted = effective = the three. Returns false with
// `*error` set when a set cannot be narrowed.
bool restrict_capabilities(std::string* error);

// Checks the sets from the kernel's view: permitted and effective are exactly
// the three, inheritable and ambient are empty, and (as root) the bounding set
// holds nothing else. False with the first violation in `*error`.
bool verify_capabilities(std::string* error);

}  // namespace huginn::privhelper
