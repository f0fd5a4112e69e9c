// Offline capture reading (libpcap) and TCP stream reassembly for
// `huginnctl fingerprint --pcap`: groups the TCP packets of a capture into
// connections and reassembles the start of each client->server byte stream.
//
// Link types: Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1 and v2
// (SLL, SLL2), raw IP (DLT_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) and BSD loopback
// (DLT_NULL, DLT_LOOP). IPv4 and IPv6 (hop-by-hop, routing, destination options
// and AH extension headers are walked; IP fragments are skipped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace huginn::capture {

struct ReadOptions {
  // Bytes of the client->server stream kept per connection (only the start is needed).
  size_t max_stream_bytes = 64 * 1024;
  // Stream bytes kept over all connections (each stored piece also costs 64 bytes
  // of bookkeeping); past it further payload is dropped and the affected flows
  // are marked truncated.
  size_t max_total_stream_bytes = 256 * 1024 * 1024;
  // Connections tracked; a capture with more is rejected with an error.
  size_t max_flows = 250'000;
};

struct Flow {
  int ip_version = 4;     // 4 or 6
  std::string src;        // client address ("127.0.0.1", "::1")
  uint16_t src_port = 0;  // client port
  std::string dst;        // server address
  uint16_t dst_port = 0;  // server port
  bool saw_syn = false;   // the client's SYN is in the capture
  // The client's SYN: IP header + TCP header bytes (no payload), as TCP_SAVED_SYN returns them.
  std::optional<std::vector<uint8_t>> syn_packet;
  // Client->server bytes from the start of the stream (the byte after the SYN, or
  // the first client segment when the SYN is missing), contiguous, at most
  // ReadOptions::max_stream_bytes. Ends at the first hole.
  std::vector<uint8_t> client_stream;
  bool stream_truncated = false;  // data past the cap (or the global budget) was dropped
  bool stream_has_gap = false;    // client data beyond a hole in the sequence space was seen
};

using ReadResult = std::variant<std::vector<Flow>, std::string /*error*/>;

// Reads a pcap or pcapng file. Flows are returned in the order of their first packet.
ReadResult read_flows(const std::string& path, const ReadOptions& opts = {});
// The same for a capture file held in memory.
ReadResult read_flows_from_memory(const uint8_t* data, size_t len, const ReadOptions& opts = {});

}  // namespace huginn::capture
