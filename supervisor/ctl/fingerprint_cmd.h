// `huginnctl fingerprint --pcap FILE [--json]`: reads a capture offline and
// prints, per TCP connection, the client and server endpoints, the JA4 family
// of the client's first ClientHello, the Akamai string of a cleartext
// prior-knowledge HTTP/2 connection and the p0f signature of the client's SYN.
#pragma once

#include <ostream>

// `argv` holds the arguments after the word "fingerprint" (argc of them).
// Returns the exit status: 0 success, 1 unreadable or corrupt capture (one line
// on `err`), 2 usage error.
int run_fingerprint_command(int argc, char** argv, std::ostream& out, std::ostream& err);
