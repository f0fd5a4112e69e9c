// Ground truth for the p0f renderer: every client SYN of every oracle capture
// (30 crafted SYNs, 36 crafted-ClientHello connections, the real clients),
// read through the capture reader, must give expected.json's `expect.tcp`.
#include <gtest/gtest.h>
#include <json/json.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/fingerprint/p0f.h"
#include "common/pcap/flows.h"

namespace huginn::fp {
namespace {

const std::string kOracleDir = std::string(HUGINN_TEST_DATA) + "/oracles/";

const Json::Value& expected_json() {
  static const Json::Value root = [] {
    std::ifstream in(kOracleDir + "expected.json");
    Json::Value v;
    Json::CharReaderBuilder b;
    std::string errs;
    EXPECT_TRUE(Json::parseFromStream(b, in, &v, &errs)) << errs;
    return v;
  }();
  return root;
}

const std::vector<capture::Flow>& flows_of(const std::string& pcap) {
  static std::map<std::string, std::vector<capture::Flow>> cache;
  auto it = cache.find(pcap);
  if (it != cache.end()) return it->second;
  auto r = capture::read_flows(kOracleDir + pcap);
  if (auto* err = std::get_if<std::string>(&r)) ADD_FAILURE() << *err;
  auto& slot = cache[pcap];
  if (auto* flows = std::get_if<std::vector<capture::Flow>>(&r)) slot = std::move(*flows);
  return slot;
}

const capture::Flow* find_flow(const std::string& pcap, const std::string& src, uint16_t src_port) {
  for (const auto& f : flows_of(pcap))
    if (f.src == src && f.src_port == src_port) return &f;
  return nullptr;
}

// The SYN of (src, src_port) in `pcap` rendered, or a marker string on failure.
std::string rendered_syn(const std::string& pcap, const std::string& src, uint16_t src_port) {
  const capture::Flow* f = find_flow(pcap, src, src_port);
  if (!f) return "<flow not found>";
  if (!f->syn_packet) return "<no SYN>";
  std::string error;
  const auto fields = syn_fields_from_packet(f->syn_packet->data(), f->syn_packet->size(), &error);
  if (!fields) return "<parse error: " + error + ">";
  return p0f_raw_sig(*fields);
}

TEST(P0fOracleTest, EveryCraftedSyn) {
  size_t asserted = 0;
  std::set<std::string> names;
  for (const Json::Value& c : expected_json()["cases"]) {
    if (!c.isMember("syns")) continue;
    const std::string pcap = c["pcap"].asString();
    for (const Json::Value& syn : c["syns"]) {
      SCOPED_TRACE(syn["name"].asString());
      EXPECT_EQ(rendered_syn(pcap, syn["src"].asString(), static_cast<uint16_t>(syn["client_port"].asUInt())),
                syn["expect"]["tcp"].asString());
      names.insert(syn["name"].asString());
      ++asserted;
    }
  }
  EXPECT_EQ(asserted, 30u);
  EXPECT_EQ(names.size(), 30u);
}

TEST(P0fOracleTest, EveryRealAndCraftedConnectionSyn) {
  size_t asserted = 0;
  std::set<std::string> pcaps;
  for (const Json::Value& c : expected_json()["cases"]) {
    const std::string pcap = c["pcap"].asString();
    for (const Json::Value& flow : c["flows"]) {
      if (!flow["expect"].isMember("tcp")) continue;
      SCOPED_TRACE(pcap + " " + flow["src"].asString() + ":" + std::to_string(flow["src_port"].asUInt()));
      EXPECT_EQ(rendered_syn(pcap, flow["src"].asString(), static_cast<uint16_t>(flow["src_port"].asUInt())),
                flow["expect"]["tcp"].asString());
      const capture::Flow* f =
          find_flow(pcap, flow["src"].asString(), static_cast<uint16_t>(flow["src_port"].asUInt()));
      if (f) {
        EXPECT_EQ(f->dst, flow["dst"].asString());
        EXPECT_EQ(f->dst_port, flow["dst_port"].asUInt());
        EXPECT_EQ(f->ip_version, flow["ip_version"].asInt());
      }
      pcaps.insert(pcap);
      ++asserted;
    }
  }
  // 36 crafted ClientHello connections + 25 real-client captures with one connection each.
  EXPECT_EQ(asserted, 61u);
  EXPECT_EQ(pcaps.size(), 26u);
}

// `expect` differs from what p0f 3.09b printed only for ack+ (SPEC.md section 5):
// the one crafted SYN whose non-zero ACK number has an even first byte on the wire.
TEST(P0fOracleTest, DiffersFromP0f309bOnlyOnAckPlus) {
  size_t differ = 0;
  size_t compared = 0;
  auto compare = [&](const Json::Value& item) {
    const std::string want = item["expect"]["tcp"].asString();
    const std::string p0f = item["reference"]["p0f_3.09b_raw_sig"].asString();
    ++compared;
    if (want == p0f) return;
    ++differ;
    EXPECT_NE(want.find("ack+"), std::string::npos) << want;
    EXPECT_EQ(p0f.find("ack+"), std::string::npos) << p0f;
  };
  for (const Json::Value& c : expected_json()["cases"]) {
    for (const Json::Value& syn : c["syns"]) compare(syn);
    for (const Json::Value& flow : c["flows"])
      if (flow["expect"].isMember("tcp")) compare(flow);
  }
  EXPECT_EQ(compared, 91u);
  EXPECT_EQ(differ, 1u);
}

// The SYN kept by the reader is the IP + TCP header bytes only (what
// TCP_SAVED_SYN returns); a SYN carrying payload keeps pclass "+" through the IP length.
TEST(P0fOracleTest, SavedSynBytesAreHeadersOnly) {
  for (const Json::Value& c : expected_json()["cases"]) {
    if (!c.isMember("syns")) continue;
    for (const auto& f : flows_of(c["pcap"].asString())) {
      ASSERT_TRUE(f.syn_packet);
      const auto fields = syn_fields_from_packet(f.syn_packet->data(), f.syn_packet->size(), nullptr);
      ASSERT_TRUE(fields);
      const size_t ip_len = fields->ip_version == 6 ? 40 : 20u + fields->ip_options_len;
      EXPECT_EQ(f.syn_packet->size(), ip_len + 20 + fields->tcp_options_len);
      if (f.src_port == 40021) {  // syn_with_payload: 10 bytes
        EXPECT_EQ(fields->payload_len, 10u);
        EXPECT_EQ(f.client_stream.size(), 10u);
      }
    }
  }
}

}  // namespace
}  // namespace huginn::fp
