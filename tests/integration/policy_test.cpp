// Traffic policy through the real binaries: the IP filter (403) with IPv4 and
// IPv6 clients, configured header manipulation (order, case-insensitivity,
// scopes) and security headers on proxied and proxy-generated responses
// (HSTS only over TLS).
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "tests/support/backend.h"
#include "tests/support/harness.h"
#include "tests/support/test_certs.h"

namespace huginn::testing {
namespace {

bool have(const char* path) { return access(path, X_OK) == 0; }

struct CurlResult {
  int status = 0;
  std::string body;
};

// GET `url` with curl bound to the source address `from` (a loopback
// address), connecting to `dest_ip`:`port` whatever the URL's host is (so that
// the Host header is the URL's name). `headers`: the response head instead of the body.
CurlResult curl_get(const std::string& from, const std::string& dest_ip, uint16_t port,
                    const std::string& url, bool headers = false,
                    const std::vector<std::string>& extra = {}) {
  std::string out;
  const auto host_end = url.find('/', url.find("//") + 2);
  const std::string authority = url.substr(url.find("//") + 2, host_end - url.find("//") - 2);
  std::vector<std::string> argv = {"/usr/bin/curl",
                                   "-sS",
                                   "-k",
                                   "--max-time",
                                   "10",
                                   "--interface",
                                   from,
                                   "--connect-to",
                                   authority + ":" + dest_ip + ":" + std::to_string(port),
                                   "-w",
                                   "\n%{http_code}"};
  if (headers) argv.insert(argv.end(), {"-D", "-", "-o", "/dev/null"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  const int rc = run_command(argv, &out);
  CurlResult r;
  if (rc != 0) {
    r.body = out;
    return r;
  }
  const auto nl = out.rfind('\n');
  r.status = std::atoi(out.c_str() + nl + 1);
  r.body = out.substr(0, nl);
  return r;
}

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("/usr/bin/curl")) GTEST_SKIP() << "curl missing (scripts/install-deps.sh installs it)";
    port_ = free_dual_stack_port();
  }
  void TearDown() override {
    if (proxy_) {
      proxy_->signal(SIGTERM);
      proxy_->wait_exit(15000);
    }
  }
  std::string head(int workers, bool dual_stack = false, const std::string& listen_extra = "") const {
    const std::string p = std::to_string(port_);
    return "workers = " + std::to_string(workers) +
           "\nuser = \"nobody\"\n\n[listen]\naddrs = [\"127.0.0.1:" + p + "\"" +
           (dual_stack ? ", \"[::1]:" + p + "\"" : std::string()) + "]\n" + listen_extra +
           "\n[timeout]\nshutdown_secs = 5\nupstream_connect_ms = 1000\nupstream_response_secs = 2\n\n"
           "[dbus]\nbus = \"none\"\n\n";
  }
  void start(const std::string& toml) {
    const std::string path = dir_.write("config.toml", toml);
    proxy_ = spawn_proxy(dir_, path);
    ASSERT_TRUE(proxy_->wait_log("workers ready")) << proxy_->log();
  }
  std::string url(const std::string& host, const std::string& path) const {
    return "http://" + host + ":" + std::to_string(port_) + path;
  }

  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> proxy_;
};

TEST_F(PolicyTest, IpFilterAllowsAndDeniesIpv4AndIpv6ClientsPerScope) {
  Backend be;
  const std::string b = be.address();
  // Global: deny 127.0.0.3. Domain a.test: allowlist 127.0.0.1, 127.0.0.2 and
  // ::1. Its /open route: filter disabled. Its /v6only route: allowlist ::1.
  start(head(2, true) + "[security.ip_filter]\nmode = \"denylist\"\ndenylist = [\"127.0.0.3/32\"]\n\n" +
        "[[backends]]\naddress = \"" + b + "\"\n\n" +
        "[[domains]]\nhost = \"a.test\"\n"
        "[domains.security.ip_filter]\nmode = \"allowlist\"\nallowlist = [\"127.0.0.0/31\", \"127.0.0.2\", "
        "\"::1/128\"]\n"
        "[[domains.routes]]\nprefix = \"/open\"\nbackend = \"" +
        b +
        "\"\n[domains.routes.security.ip_filter]\nmode = \"disabled\"\n"
        "[[domains.routes]]\nprefix = \"/v6only\"\nbackend = \"" +
        b +
        "\"\n[domains.routes.security.ip_filter]\nmode = \"allowlist\"\nallowlist = [\"::1\"]\n"
        "[[domains.routes]]\nprefix = \"/app\"\nbackend = \"" +
        b + "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/\"\nbackend = \"" + b + "\"\n");

  struct Case {
    const char* from;
    const char* host;
    const char* path;
    int status;
  };
  const Case cases[] = {
      {"127.0.0.1", "a.test", "/app", 200},     {"127.0.0.2", "a.test", "/app", 200},
      {"::1", "a.test", "/app", 200},           {"127.0.0.4", "a.test", "/app", 403},
      {"127.0.0.3", "a.test", "/app", 403},     {"127.0.0.4", "a.test", "/open", 200},
      {"127.0.0.3", "a.test", "/open", 200},    {"127.0.0.1", "a.test", "/v6only", 403},
      {"::1", "a.test", "/v6only", 200},        {"127.0.0.4", "a.test", "/nowhere", 403},  // 403, not 404
      {"127.0.0.2", "a.test", "/nowhere", 404}, {"127.0.0.3", "b.test", "/", 403},         // global denylist
      {"127.0.0.4", "b.test", "/", 200},        {"::1", "b.test", "/", 200},
  };
  for (const auto& c : cases) {
    const bool v6 = std::string(c.from).find(':') != std::string::npos;
    const CurlResult r = curl_get(c.from, v6 ? "[::1]" : "127.0.0.1", port_, url(c.host, c.path));
    EXPECT_EQ(r.status, c.status) << c.from << " " << c.host << c.path << ": " << r.body;
    if (c.status == 403) {
      EXPECT_EQ(r.body, "{\"error\":\"ip_blocked\"}");
    }
    if (c.status == 200) {
      EXPECT_EQ(parse_json(r.body)["headers"]["x-forwarded-for"].asString(), c.from);
    }
  }
}

TEST_F(PolicyTest, RequestsTheProxyAnswersDoNotTakeARoundRobinTurn) {
  // Two backends share /rr; every other request comes from a denied address
  // (403). The forwarded ones must still alternate between the backends, over
  // HTTP/1.1 and HTTP/2 alike: with the 403s taking turns, they all went to
  // the same backend.
  const auto named = [](const char* name) {
    return [name](const Request&) {
      Response r;
      r.body = name;
      return r;
    };
  };
  Backend a(named("a")), b(named("b"));
  start(head(1) + "[security.ip_filter]\nmode = \"denylist\"\ndenylist = [\"127.0.0.3\"]\n\n" +
        "[[backends]]\naddress = \"" + a.address() + "\"\n[[backends]]\naddress = \"" + b.address() +
        "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/rr\"\nbackend = \"" + a.address() +
        "\"\n[[domains.routes]]\nprefix = \"/rr\"\nbackend = \"" + b.address() + "\"\n");
  for (const bool h2 : {false, true}) {
    const std::string proto = h2 ? "h2: " : "h1: ";
    const std::vector<std::string> extra =
        h2 ? std::vector<std::string>{"--http2-prior-knowledge"} : std::vector<std::string>{};
    std::string order;
    for (int i = 0; i < 6; ++i) {
      const CurlResult ok = curl_get("127.0.0.1", "127.0.0.1", port_, url("rr.test", "/rr/x"), false, extra);
      ASSERT_EQ(ok.status, 200) << proto << ok.body << "\n" << proxy_->log();
      order += ok.body;
      const CurlResult denied =
          curl_get("127.0.0.3", "127.0.0.1", port_, url("rr.test", "/rr/x"), false, extra);
      EXPECT_EQ(denied.status, 403) << proto << denied.body << "\n" << proxy_->log();
    }
    EXPECT_TRUE(order == "ababab" || order == "bababa") << proto << order << "\n" << proxy_->log();
  }
}

TEST_F(PolicyTest, HeaderManipulationOrderScopesAndCase) {
  Backend be([](const Request& req) {
    Response r;
    r.headers = {{"Server", "backend"},
                 {"X-Powered-By", "php"},
                 {"X-Scope", "backend"},
                 {"Content-Type", "text/plain"}};
    r.body = echo_json(req);
    return r;
  });
  const std::string b = be.address();
  // Global, domain and route blocks; names in mixed case; a header removed and
  // added in the same block is replaced (remove first, then add); later scopes
  // overwrite earlier ones.
  start(head(1) +
        "[headers.request]\nremove = [\"X-Client-Secret\", \"x-scope\"]\n"
        "add = [{name = \"X-Scope\", value = \"global\"}, {name = \"X-Global\", value = \"g\"}]\n"
        "[headers.response]\nremove = [\"SERVER\", \"x-scope\"]\n"
        "add = [{name = \"X-Scope\", value = \"global\"}]\n\n"
        "[[backends]]\naddress = \"" +
        b +
        "\"\n\n[[domains]]\n[domains.headers.request]\nadd = [{name = \"x-scope\", value = \"domain\"}]\n"
        "[domains.headers.response]\nremove = [\"x-powered-by\"]\n"
        "[[domains.routes]]\nprefix = \"/r\"\nbackend = \"" +
        b +
        "\"\n[domains.routes.headers.request]\nremove = [\"x-global\"]\n"
        "add = [{name = \"X-Route\", value = \"r\"}]\n"
        "[domains.routes.headers.response]\nadd = [{name = \"x-scope\", value = \"route\"}]\n"
        "[[domains.routes]]\nprefix = \"/\"\nbackend = \"" +
        b + "\"\n");

  auto r = http_request(port_, "GET", "/r/x", "a.test", "x-client-secret: s\r\nX-SCOPE: client\r\n");
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.status, 200);
  auto j = parse_json(r.body);
  EXPECT_FALSE(j["headers"].isMember("x-client-secret"));
  EXPECT_EQ(j["headers"]["x-scope"].asString(), "domain")
      << r.body;  // client's copy removed, domain overwrote global
  EXPECT_FALSE(j["headers"].isMember("x-global")) << "the route removes what the global block added";
  EXPECT_EQ(j["headers"]["x-route"].asString(), "r");
  EXPECT_FALSE(r.has_header("server"));
  EXPECT_FALSE(r.has_header("x-powered-by"));
  EXPECT_EQ(r.header("x-scope"), "route");
  int scope_count = 0;
  for (const auto& [k, v] : r.headers) scope_count += k == "x-scope";
  EXPECT_EQ(scope_count, 1);

  r = http_request(port_, "GET", "/other", "a.test");
  ASSERT_TRUE(r.ok) << r.error;
  j = parse_json(r.body);
  EXPECT_EQ(j["headers"]["x-global"].asString(), "g");
  EXPECT_FALSE(j["headers"].isMember("x-route"));
  EXPECT_EQ(r.header("x-scope"), "global");
  EXPECT_FALSE(r.has_header("x-powered-by"));
}

TEST_F(PolicyTest, SecurityHeadersOnProxiedAndProxyGeneratedResponsesHstsOnlyOverTls) {
  if (!have("/usr/bin/openssl")) GTEST_SKIP() << "openssl missing";
  huginn::test::TestPki pki;
  const auto srv = pki.server("localhost", {"localhost", "127.0.0.1"});
  Backend be;
  const uint16_t dead = free_port();  // nothing listens there: 502
  const uint16_t clear_port = free_port();
  const std::string b = be.address();
  const std::string dead_b = "127.0.0.1:" + std::to_string(dead);
  start(head(1, false, "cleartext_addrs = [\"127.0.0.1:" + std::to_string(clear_port) + "\"]\n") +
        "[tls]\ncert_path = \"" + srv.cert_path + "\"\nkey_path = \"" + srv.key_path +
        "\"\n\n[security.headers]\ncustom = [{name = \"X-Frame-Options\", value = \"DENY\"}, "
        "{name = \"x-content-type-options\", value = \"nosniff\"}]\n"
        "[security.headers.hsts]\nenabled = true\nmax_age = 600\ninclude_subdomains = true\n"
        "[security.headers.csp]\nenabled = true\npolicy = \"default-src 'none'\"\n\n"
        "[security.ip_filter]\nmode = \"denylist\"\ndenylist = [\"127.0.0.9\"]\n\n"
        "[[backends]]\naddress = \"" +
        b + "\"\n[[backends]]\naddress = \"" + dead_b +
        "\"\n\n[[domains]]\n[[domains.routes]]\nprefix = \"/dead\"\nbackend = \"" + dead_b +
        "\"\n[[domains.routes]]\nprefix = \"/ok\"\nbackend = \"" + b +
        "\"\n[[domains.routes]]\nprefix = \"/limited\"\nbackend = \"" + b +
        "\"\n[domains.routes.security.rate_limit]\nenabled = true\nrequests_per_second = 1\nburst = 1\n");

  // The security headers of a response head as curl printed it (names compared
  // case-insensitively); HSTS exactly on TLS connections.
  auto expect_security_headers = [](const std::string& head, bool tls, const std::string& what) {
    std::string lower = head;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_NE(lower.find("\r\nx-frame-options: deny\r\n"), std::string::npos) << what << "\n" << head;
    EXPECT_NE(lower.find("\r\nx-content-type-options: nosniff\r\n"), std::string::npos) << what;
    EXPECT_NE(lower.find("\r\ncontent-security-policy: default-src 'none'\r\n"), std::string::npos) << what;
    const bool hsts =
        lower.find("\r\nstrict-transport-security: max-age=600; includesubdomains\r\n") != std::string::npos;
    EXPECT_EQ(hsts, tls) << what << "\n" << head;
  };

  struct Case {
    const char* from;
    bool tls;
    const char* path;
    int status;
  };
  const Case cases[] = {
      {"127.0.0.1", true, "/ok", 200},    {"127.0.0.1", true, "/nowhere", 404},
      {"127.0.0.1", true, "/dead", 502},  {"127.0.0.9", true, "/ok", 403},
      {"127.0.0.1", false, "/ok", 200},   {"127.0.0.1", false, "/nowhere", 404},
      {"127.0.0.1", false, "/dead", 502}, {"127.0.0.9", false, "/ok", 403},
  };
  for (const auto& c : cases) {
    const std::string u = std::string(c.tls ? "https" : "http") +
                          "://localhost:" + std::to_string(c.tls ? port_ : clear_port) + c.path;
    const CurlResult r = curl_get(c.from, "127.0.0.1", c.tls ? port_ : clear_port, u, /*headers=*/true);
    const std::string what = std::string(c.tls ? "TLS " : "cleartext ") + c.path + " from " + c.from;
    ASSERT_EQ(r.status, c.status) << what << ": " << r.body;
    expect_security_headers(r.body, c.tls, what);
  }
  // 429: one token per second, burst 1 — a few quick requests find the bucket empty.
  for (bool tls : {true, false}) {
    const uint16_t p = tls ? port_ : clear_port;
    const std::string u =
        std::string(tls ? "https" : "http") + "://localhost:" + std::to_string(p) + "/limited";
    CurlResult r;
    for (int i = 0; i < 10 && r.status != 429; ++i)
      r = curl_get("127.0.0.1", "127.0.0.1", p, u, /*headers=*/true);
    ASSERT_EQ(r.status, 429) << r.body;
    expect_security_headers(r.body, tls, std::string(tls ? "TLS" : "cleartext") + " 429");
    std::string lower = r.body;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_NE(lower.find("\r\nretry-after: "), std::string::npos) << r.body;
    EXPECT_NE(lower.find("\r\nratelimit-limit: "), std::string::npos) << r.body;
  }
}

}  // namespace
}  // namespace huginn::testing
