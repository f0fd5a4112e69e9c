// Runs the fingerprint core over every flow of the oracle captures
// (tests/data/oracles, copied from shared/oracles) and asserts every JA4 and
// Akamai `expect` value.
#include <gtest/gtest.h>
#include <json/json.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/fingerprint/akamai.h"
#include "common/fingerprint/clienthello.h"
#include "common/fingerprint/h2frames.h"
#include "common/fingerprint/ja4.h"
#include "tests/unit/fingerprint/pcap_payloads.h"

namespace huginn::fp {
namespace {

using testing::DirectionalStream;
using testing::FlowKey;

const std::string kOracleDir = std::string(HUGINN_TEST_DATA) + "/oracles/";

Json::Value load_json(const std::string& path) {
  std::ifstream in(path);
  Json::Value root;
  Json::CharReaderBuilder b;
  std::string errs;
  EXPECT_TRUE(Json::parseFromStream(b, in, &root, &errs)) << path << ": " << errs;
  return root;
}

const Json::Value& expected() {
  static const Json::Value v = load_json(kOracleDir + "expected.json");
  return v;
}

// pcap path -> streams (parsed once per file).
const std::map<FlowKey, DirectionalStream>& streams_of(const std::string& pcap) {
  static std::map<std::string, std::map<FlowKey, DirectionalStream>> cache;
  auto it = cache.find(pcap);
  if (it != cache.end()) return it->second;
  std::map<FlowKey, DirectionalStream> flows;
  std::string err;
  EXPECT_TRUE(testing::read_tcp_streams(kOracleDir + pcap, flows, &err)) << pcap << ": " << err;
  return cache.emplace(pcap, std::move(flows)).first->second;
}

FlowKey client_key(const Json::Value& flow) {
  return FlowKey{flow["src"].asString(), static_cast<uint16_t>(flow["src_port"].asUInt()),
                 flow["dst"].asString(), static_cast<uint16_t>(flow["dst_port"].asUInt())};
}

std::string describe(const Json::Value& c, const Json::Value& flow) {
  std::string s = c["name"].asString() + " port " + flow["src_port"].asString();
  if (flow.isMember("case")) s += " (" + flow["case"].asString() + ")";
  return s;
}

const std::vector<uint8_t>* client_bytes(const Json::Value& c, const Json::Value& flow) {
  const auto& flows = streams_of(c["pcap"].asString());
  auto it = flows.find(client_key(flow));
  if (it == flows.end()) return nullptr;
  return &it->second.data;
}

TEST(OracleTest, EveryJa4ExpectationMatches) {
  size_t asserted = 0;
  std::set<std::string> pcaps;
  for (const Json::Value& c : expected()["cases"]) {
    for (const Json::Value& flow : c["flows"]) {
      const Json::Value& e = flow["expect"];
      if (!e.isMember("ja4")) continue;
      SCOPED_TRACE(describe(c, flow));
      const std::vector<uint8_t>* bytes = client_bytes(c, flow);
      ASSERT_NE(bytes, nullptr) << "flow not in pcap";
      ASSERT_FALSE(bytes->empty());
      const ClientHelloParse p = parse_client_hello(bytes->data(), bytes->size());
      ASSERT_EQ(p.status, ClientHelloParse::Status::kOk) << p.error;
      EXPECT_GT(p.consumed, 0u);
      EXPECT_LE(p.consumed, bytes->size());
      const Ja4Set j = compute_ja4(p.hello);
      EXPECT_EQ(j.ja4, e["ja4"].asString());
      EXPECT_EQ(j.ja4_r, e["ja4_r"].asString());
      EXPECT_EQ(j.ja4_o, e["ja4_o"].asString());
      EXPECT_EQ(j.ja4_or, e["ja4_or"].asString());
      pcaps.insert(c["pcap"].asString());
      ++asserted;
    }
  }
  // 35 crafted hellos with FoxIO values + 21 real-client flows in the public oracle set.
  EXPECT_EQ(asserted, 56u);
  EXPECT_EQ(pcaps.size(), 22u);
}

// Every proper prefix of every oracle ClientHello is kNeedMore, and the
// `consumed` prefix alone parses to the same hello.
TEST(OracleTest, EveryPrefixOfEveryOracleHelloNeedsMore) {
  size_t checked = 0;
  for (const Json::Value& c : expected()["cases"]) {
    for (const Json::Value& flow : c["flows"]) {
      if (!flow["expect"].isMember("ja4")) continue;
      SCOPED_TRACE(describe(c, flow));
      const std::vector<uint8_t>* bytes = client_bytes(c, flow);
      ASSERT_NE(bytes, nullptr);
      const ClientHelloParse full = parse_client_hello(bytes->data(), bytes->size());
      ASSERT_EQ(full.status, ClientHelloParse::Status::kOk);
      for (size_t n = 0; n < full.consumed; ++n) {
        const ClientHelloParse p = parse_client_hello(bytes->data(), n);
        ASSERT_EQ(p.status, ClientHelloParse::Status::kNeedMore) << "prefix " << n << ": " << p.error;
      }
      const ClientHelloParse exact = parse_client_hello(bytes->data(), full.consumed);
      ASSERT_EQ(exact.status, ClientHelloParse::Status::kOk);
      EXPECT_EQ(compute_ja4(exact.hello).ja4_or, compute_ja4(full.hello).ja4_or);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 56u);
}

std::vector<uint8_t> unhex(const std::string& s) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < s.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  return out;
}

// The parser returns exactly the fields the crafting script sent.
TEST(OracleTest, CraftedHellosParseToTheirCaseDescription) {
  const Json::Value cases = load_json(kOracleDir + "pcaps/crafted_clienthellos.cases.json");
  ASSERT_EQ(cases.size(), 36u);
  const auto& flows = streams_of("pcaps/crafted_clienthellos.pcap");
  std::map<uint16_t, const DirectionalStream*> by_port;
  for (const auto& [key, s] : flows)
    if (key.dst_port == 8443) by_port[key.src_port] = &s;
  size_t checked = 0;
  for (const Json::Value& cs : cases) {
    SCOPED_TRACE(cs["name"].asString());
    auto it = by_port.find(static_cast<uint16_t>(cs["client_port"].asUInt()));
    ASSERT_NE(it, by_port.end());
    const auto& data = it->second->data;
    const ClientHelloParse p = parse_client_hello(data.data(), data.size());
    ASSERT_EQ(p.status, ClientHelloParse::Status::kOk) << p.error;
    EXPECT_EQ(p.hello.legacy_version,
              static_cast<uint16_t>(std::stoi(cs["legacy_version"].asString(), nullptr, 16)));
    std::vector<uint16_t> ciphers;
    for (const Json::Value& v : cs["ciphers"])
      ciphers.push_back(static_cast<uint16_t>(std::stoi(v.asString(), nullptr, 16)));
    EXPECT_EQ(p.hello.cipher_suites, ciphers);
    const Json::Value& exts = cs["extensions"];
    if (exts.isNull()) {
      EXPECT_TRUE(p.hello.extensions.empty());
    } else {
      ASSERT_EQ(p.hello.extensions.size(), exts.size());
      for (Json::ArrayIndex i = 0; i < exts.size(); ++i) {
        EXPECT_EQ(p.hello.extensions[i].type,
                  static_cast<uint16_t>(std::stoi(exts[i]["type"].asString(), nullptr, 16)));
        EXPECT_EQ(p.hello.extensions[i].body, unhex(exts[i]["data"].asString()));
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 36u);
}

// The crafted hello without FoxIO output: empty first ALPN value gives "00".
TEST(OracleTest, CraftedEmptyFirstAlpnGivesZeroZero) {
  for (const Json::Value& flow : expected()["cases"][0]["flows"]) {
    if (flow["case"].asString() != "alpn_empty_first") continue;
    const std::vector<uint8_t>* bytes = client_bytes(expected()["cases"][0], flow);
    ASSERT_NE(bytes, nullptr);
    const ClientHelloParse p = parse_client_hello(bytes->data(), bytes->size());
    ASSERT_EQ(p.status, ClientHelloParse::Status::kOk) << p.error;
    ASSERT_EQ(p.hello.alpn.size(), 2u);
    EXPECT_EQ(p.hello.alpn[0], "");
    EXPECT_EQ(p.hello.alpn[1], "h2");
    EXPECT_EQ(ja4_a(p.hello).substr(8), "00");
    return;
  }
  FAIL() << "alpn_empty_first not found";
}

// Akamai builder fed with the decoded frames of reference.h2_frames.
TEST(OracleTest, AkamaiBuilderFromReferenceFrames) {
  size_t asserted = 0;
  for (const Json::Value& c : expected()["cases"]) {
    for (const Json::Value& flow : c["flows"]) {
      if (!flow["expect"].isMember("akamai")) continue;
      SCOPED_TRACE(describe(c, flow));
      const Json::Value& ref = flow["reference"];
      ASSERT_TRUE(ref.isMember("h2_frames"));
      AkamaiBuilder b;
      for (const Json::Value& fr : ref["h2_frames"]) {
        const int type = fr["type"].asInt();
        const uint32_t stream = fr["stream"].asUInt();
        if (type == 4) {
          std::vector<std::pair<uint16_t, uint32_t>> s;
          for (const Json::Value& kv : fr["settings"])
            s.emplace_back(static_cast<uint16_t>(kv[0].asUInt()), kv[1].asUInt());
          b.on_settings(s, (fr["flags"].asUInt() & 1) != 0);
        } else if (type == 8) {
          b.on_window_update(stream, fr["increment"].asUInt());
        } else if (type == 2) {
          const Json::Value& pr = fr["priority"];
          // reference weights are the effective weight (wire byte + 1).
          b.on_priority(stream, pr["exclusive"].asInt() != 0, pr["depends_on"].asUInt(),
                        static_cast<uint8_t>(pr["weight"].asUInt() - 1));
        } else {
          FAIL() << "unexpected frame type " << type;
        }
        EXPECT_FALSE(b.complete());
      }
      const Json::Value& h = ref["h2_first_headers"];
      std::vector<std::string> pseudo;
      for (const Json::Value& n : h["pseudo_headers"]) pseudo.push_back(n.asString());
      std::optional<H2Priority> hp;
      if (!h["priority"].isNull()) {
        hp = H2Priority{h["priority"]["exclusive"].asInt() != 0, h["priority"]["depends_on"].asUInt(),
                        static_cast<uint8_t>(h["priority"]["weight"].asUInt() - 1)};
      }
      b.on_headers(h["stream"].asUInt(), pseudo, hp);
      EXPECT_TRUE(b.complete());
      EXPECT_EQ(b.value(), flow["expect"]["akamai"].asString());
      ++asserted;
    }
  }
  EXPECT_EQ(asserted, 12u);
}

// Cleartext h2c captures: the raw-frame scanner over the reassembled client
// stream, whole, byte by byte and in random segmentations.
TEST(OracleTest, H2cCapturesThroughFrameScanner) {
  size_t asserted = 0;
  std::mt19937 rng(12345);
  for (const Json::Value& c : expected()["cases"]) {
    for (const Json::Value& flow : c["flows"]) {
      if (!flow["expect"].isMember("akamai") || flow["dst_port"].asUInt() != 8080) continue;
      SCOPED_TRACE(describe(c, flow));
      const std::vector<uint8_t>* bytes = client_bytes(c, flow);
      ASSERT_NE(bytes, nullptr);
      const std::string want = flow["expect"]["akamai"].asString();
      {
        H2PrefaceScanner s;
        ASSERT_EQ(s.feed(bytes->data(), bytes->size()), H2PrefaceScanner::Status::kDone) << s.error();
        EXPECT_EQ(s.akamai(), want);
      }
      {
        H2PrefaceScanner s;
        H2PrefaceScanner::Status st = H2PrefaceScanner::Status::kNeedMore;
        for (size_t i = 0; i < bytes->size() && st == H2PrefaceScanner::Status::kNeedMore; ++i)
          st = s.feed(bytes->data() + i, 1);
        ASSERT_EQ(st, H2PrefaceScanner::Status::kDone) << s.error();
        EXPECT_EQ(s.akamai(), want);
      }
      for (int round = 0; round < 50; ++round) {
        H2PrefaceScanner s;
        size_t off = 0;
        while (off < bytes->size() && s.status() == H2PrefaceScanner::Status::kNeedMore) {
          const size_t n = std::min<size_t>(bytes->size() - off, 1 + rng() % 40);
          s.feed(bytes->data() + off, n);
          off += n;
        }
        ASSERT_EQ(s.status(), H2PrefaceScanner::Status::kDone) << s.error();
        EXPECT_EQ(s.akamai(), want);
      }
      ++asserted;
    }
  }
  EXPECT_EQ(asserted, 4u);
}

}  // namespace
}  // namespace huginn::fp
