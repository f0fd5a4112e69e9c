#include "common/pcap/flow_fingerprints.h"

#include <cstring>

#include "common/fingerprint/clienthello.h"
#include "common/fingerprint/h2frames.h"
#include "common/fingerprint/p0f.h"

namespace huginn::capture {
namespace {

constexpr char kH2Preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kH2PrefaceLen = sizeof(kH2Preface) - 1;

}  // namespace

FlowFingerprints fingerprint_flow(const Flow& flow) {
  FlowFingerprints out;
  const auto& s = flow.client_stream;
  if (!s.empty()) {
    if (s.size() >= kH2PrefaceLen && std::memcmp(s.data(), kH2Preface, kH2PrefaceLen) == 0) {
      fp::H2PrefaceScanner scanner;
      if (scanner.feed(s.data(), s.size()) == fp::H2PrefaceScanner::Status::kDone)
        out.akamai = scanner.akamai();
    } else {
      const fp::ClientHelloParse parsed = fp::parse_client_hello(s.data(), s.size());
      if (parsed.status == fp::ClientHelloParse::Status::kOk) out.ja4 = fp::compute_ja4(parsed.hello, 't');
    }
  }
  if (flow.syn_packet) out.tcp = fp::p0f_from_packet(flow.syn_packet->data(), flow.syn_packet->size());
  return out;
}

}  // namespace huginn::capture
