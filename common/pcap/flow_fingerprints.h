// The fingerprints `huginnctl fingerprint --pcap` reports for one reassembled
// connection: the JA4 family of the client's first ClientHello, the Akamai
// string of a cleartext prior-knowledge HTTP/2 (h2c) connection, and the p0f
// signature of the client's SYN. Pure: no I/O.
#pragma once

#include <optional>
#include <string>

#include "common/fingerprint/ja4.h"
#include "common/pcap/flows.h"

namespace huginn::capture {

struct FlowFingerprints {
  std::optional<fp::Ja4Set> ja4;      // the stream starts with a parseable ClientHello
  std::optional<std::string> akamai;  // the stream starts with the h2 preface and reaches HEADERS
  std::optional<std::string> tcp;     // the client's SYN is in the capture
};

FlowFingerprints fingerprint_flow(const Flow& flow);

}  // namespace huginn::capture
