// --print-effective-config output: defaults present, secrets absent, deterministic.
#include <gtest/gtest.h>
#include <json/json.h>

#include <sstream>

#include "tests/unit/config/config_test_util.h"

namespace huginn::config::test {
namespace {

Json::Value parse_json(const std::string& s) {
  Json::Value v;
  Json::CharReaderBuilder b;
  std::string errs;
  std::istringstream in(s);
  EXPECT_TRUE(Json::parseFromStream(b, in, &v, &errs)) << errs;
  return v;
}

TEST(EffectiveConfig, DefaultsPresent) {
  auto c = ok(kListen);
  const std::string out = effective_config_json(*c);
  Json::Value v = parse_json(out);
  EXPECT_EQ(v["workers"].asUInt(), kTestWorkers);
  EXPECT_EQ(v["user"].asString(), "huginn");
  EXPECT_FALSE(v["preserve_host"].asBool());
  EXPECT_EQ(v["listen"]["addrs"][0].asString(), "127.0.0.1:8080");
  EXPECT_EQ(v["listen"]["tcp_backlog"].asUInt(), 4096u);
  EXPECT_EQ(v["listen"]["proxy_protocol"]["mode"].asString(), "off");
  EXPECT_EQ(v["listen"]["proxy_protocol"]["header_timeout_ms"].asUInt(), 100u);
  EXPECT_TRUE(v["tls"].isNull());
  EXPECT_EQ(v["security"]["max_connections"].asUInt(), 512u);
  EXPECT_EQ(v["security"]["rate_limit"]["burst"].asUInt(), 2000u);
  EXPECT_EQ(v["security"]["rate_limit"]["limit_by"].asString(), "ip");
  EXPECT_EQ(v["security"]["ip_filter"]["mode"].asString(), "disabled");
  EXPECT_EQ(v["security"]["headers"]["hsts"]["max_age"].asUInt64(), 31536000u);
  EXPECT_EQ(v["fingerprint"]["tcp_source"].asString(), "auto");
  EXPECT_EQ(v["fingerprint"]["headers"]["ja4_or"].asString(), "x-huginn-net-ja4_or");
  EXPECT_EQ(v["timeout"]["upstream_connect_ms"].asUInt(), 5000u);
  EXPECT_TRUE(v["timeout"]["connection_handling_secs"].isNull());
  EXPECT_EQ(v["timeout"]["keep_alive"]["upstream_idle_timeout"].asUInt(), 60u);
  EXPECT_TRUE(v["backend_pool"]["enabled"].asBool());
  EXPECT_EQ(v["limits"]["max_header_bytes"].asUInt(), 65536u);
  EXPECT_TRUE(v["telemetry"]["metrics_port"].isNull());
  EXPECT_EQ(v["telemetry"]["metrics_address"].asString(), "0.0.0.0");
  EXPECT_EQ(v["logging"]["format"].asString(), "text");
  EXPECT_EQ(v["reload"]["debounce_secs"].asUInt(), 60u);
  EXPECT_EQ(v["ebpf"]["pin_path"].asString(), "/sys/fs/bpf/huginn");
  EXPECT_EQ(v["ebpf"]["syn_map_max_entries"].asUInt(), 8192u);
  ASSERT_EQ(v["ebpf"]["ports"].size(), 1u);  // resolved from the listeners
  EXPECT_EQ(v["ebpf"]["ports"][0].asUInt(), 8080u);
  EXPECT_EQ(v["dbus"]["bus"].asString(), "system");
  // Every top-level section of the schema is present.
  for (const char* k : {"backends", "domains", "headers", "security", "tls", "fingerprint", "timeout",
                        "backend_pool", "limits", "telemetry", "logging", "reload", "ebpf", "dbus", "listen"})
    EXPECT_TRUE(v.isMember(k)) << k;
}

constexpr const char* kSecrets = R"(
[[backends]]
address = "127.0.0.1:9000"
health_check = { type = "http", path = "/hc" }
[[domains]]
host = "secure.example"
cert_path = "/very/secret/cert.pem"
key_path = "/very/secret/key.pem"
client_ca_path = "/very/secret/ca.pem"
[domains.headers.request]
add = [{ name = "Authorization", value = "Bearer SECRET-TOKEN-1" }]
[[domains.routes]]
prefix = "/"
backend = "127.0.0.1:9000"
security.headers.custom = [{ name = "X-Route-Secret", value = "SECRET-TOKEN-2" }]
[headers.response]
add = [{ name = "X-Api-Key", value = "SECRET-TOKEN-3" }]
[security.headers]
custom = [{ name = "X-Custom", value = "SECRET-TOKEN-4" }]
csp = { enabled = true, policy = "default-src SECRET-TOKEN-5" }
[tls]
cert_path = "/very/secret/default.pem"
key_path = "/very/secret/default.key"
)";

TEST(EffectiveConfig, SecretsRedacted) {
  auto c = ok(std::string(kListen) + kSecrets);
  const std::string out = effective_config_json(*c);
  EXPECT_EQ(out.find("SECRET-TOKEN"), std::string::npos) << out;
  EXPECT_EQ(out.find("/very/secret"), std::string::npos) << out;
  Json::Value v = parse_json(out);
  const Json::Value& d = v["domains"][0];
  EXPECT_EQ(d["host"].asString(), "secure.example");
  EXPECT_TRUE(d["cert_configured"].asBool());
  EXPECT_TRUE(d["private_key_configured"].asBool());
  EXPECT_TRUE(d["client_auth_configured"].asBool());
  EXPECT_FALSE(d.isMember("cert_path"));
  EXPECT_FALSE(d.isMember("key_path"));
  EXPECT_FALSE(d.isMember("client_ca_path"));
  EXPECT_EQ(d["headers"]["request"]["add"][0]["name"].asString(), "authorization");
  EXPECT_EQ(d["headers"]["request"]["add"][0]["value"].asString(), "<redacted>");
  EXPECT_EQ(d["routes"][0]["security"]["headers"]["custom"][0]["value"].asString(), "<redacted>");
  EXPECT_EQ(v["security"]["headers"]["csp"]["policy"].asString(), "<redacted>");
  EXPECT_TRUE(v["tls"]["cert_configured"].asBool());
  EXPECT_TRUE(v["tls"]["private_key_configured"].asBool());
  EXPECT_EQ(v["tls"]["alpn"].size(), 2u);
  EXPECT_EQ(v["backends"][0]["health_check"]["path"].asString(), "/hc");
  // Routes inherit what they do not override: absent blocks are not shown.
  EXPECT_FALSE(d["routes"][0]["security"].isMember("rate_limit"));

  auto plain = ok(std::string(kListen) + "[[domains]]\n");
  Json::Value p = parse_json(effective_config_json(*plain));
  EXPECT_FALSE(p["domains"][0]["cert_configured"].asBool());
  EXPECT_TRUE(p["domains"][0]["host"].isNull());
}

TEST(EffectiveConfig, DeterministicAndSorted) {
  auto a = ok(std::string(kListen) + kSecrets);
  auto b = ok(std::string(kListen) + kSecrets);
  const std::string out = effective_config_json(*a);
  EXPECT_EQ(out, effective_config_json(*b));
  EXPECT_EQ(out.back(), '\n');
  // Keys appear in sorted order in the text.
  const size_t backend_pool = out.find("\"backend_pool\"");
  const size_t backends = out.find("\"backends\"");
  const size_t workers = out.find("\"workers\"");
  EXPECT_LT(backend_pool, backends);
  EXPECT_LT(backends, workers);
}

}  // namespace
}  // namespace huginn::config::test
