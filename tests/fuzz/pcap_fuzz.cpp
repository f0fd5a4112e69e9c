// Fuzzes the capture reader and TCP reassembly: input bytes as a pcap/pcapng
// file held in memory -> flows -> JA4 / Akamai / p0f of every flow.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/pcap/flow_fingerprints.h"
#include "common/pcap/flows.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  huginn::capture::ReadOptions opts;
  opts.max_stream_bytes = 16 * 1024;
  opts.max_total_stream_bytes = 1024 * 1024;
  opts.max_flows = 4096;
  auto result = huginn::capture::read_flows_from_memory(data, size, opts);
  if (auto* error = std::get_if<std::string>(&result)) {
    if (error->empty()) __builtin_trap();
    return 0;
  }
  for (const auto& flow : std::get<std::vector<huginn::capture::Flow>>(result)) {
    if (flow.client_stream.size() > opts.max_stream_bytes) __builtin_trap();
    if (flow.syn_packet && !flow.saw_syn) __builtin_trap();
    const auto fps = huginn::capture::fingerprint_flow(flow);
    if (fps.tcp && fps.tcp->empty()) __builtin_trap();
    if (fps.ja4 && fps.ja4->ja4.size() != 36) __builtin_trap();
  }
  return 0;
}
