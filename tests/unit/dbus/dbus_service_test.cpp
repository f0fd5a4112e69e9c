// org.huginn.Proxy1 on a private session-type bus, driven through the real
// huginnctl binary, busctl and an in-process sdbus-c++ client.
#include <gtest/gtest.h>
#include <json/json.h>
#include <sdbus-c++/sdbus-c++.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "build_info.h"
#include "tests/unit/dbus/dbus_fixture.h"

namespace huginn::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kName = "org.huginn.Proxy1";
constexpr const char* kPath = "/org/huginn/Proxy1";
constexpr const char* kIface = "org.huginn.Proxy1";

Json::Value parse_json(const std::string& s) {
  Json::Value v;
  Json::CharReaderBuilder b;
  std::string errs;
  std::istringstream in(s);
  EXPECT_TRUE(Json::parseFromStream(b, in, &v, &errs)) << errs << " in: " << s;
  return v;
}

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class DbusServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { bus_ = new PrivateBus(PrivateBus::Kind::kSessionOpen); }
  static void TearDownTestSuite() {
    delete bus_;
    bus_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(bus_->ok()) << bus_->error();
    service_ = std::make_unique<ServiceThread>(bus_->address(), control_);
    ASSERT_TRUE(service_->ok()) << service_->error();
  }
  void TearDown() override { service_.reset(); }

  static std::vector<std::string> ctl_argv(std::vector<std::string> args) {
    args.insert(args.begin(), {huginnctl_path(), "--bus", bus_->address()});
    return args;
  }
  static ProcResult ctl(std::vector<std::string> args, bool as_nobody = false) {
    return run(ctl_argv(std::move(args)), as_nobody);
  }
  static ProcResult busctl(std::vector<std::string> args, bool as_nobody = false) {
    args.insert(args.begin(), {"/usr/bin/busctl", "--address=" + bus_->address()});
    return run(args, as_nobody);
  }
  static ProcResult busctl_call(std::vector<std::string> args) {
    args.insert(args.begin(), {"--json=short", "call", kName, kPath, kIface});
    return busctl(std::move(args));
  }

  static PrivateBus* bus_;
  FakeControl control_;
  std::unique_ptr<ServiceThread> service_;
};

PrivateBus* DbusServiceTest::bus_ = nullptr;

TEST_F(DbusServiceTest, ReloadSuccessPrintsOutcomeAndExitsZero) {
  control_.set_outcome(true, "generation 2 serving on 127.0.0.1:8080 with 2 workers");
  const ProcResult r = ctl({"reload"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "generation 2 serving on 127.0.0.1:8080 with 2 workers\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(control_.reload_calls.load(), 1);
  EXPECT_EQ(control_.gen.load(), 2u);
}

TEST_F(DbusServiceTest, ReloadFailureExitsOneWithTheMessage) {
  control_.set_outcome(false, "routes[1].backend (/etc/huginn-proxy/config.toml:9): unknown backend \"b9\"");
  const ProcResult r = ctl({"reload"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "huginnctl: reload failed: routes[1].backend (/etc/huginn-proxy/config.toml:9): unknown backend "
            "\"b9\"\n");
  EXPECT_EQ(control_.gen.load(), 1u);
}

TEST_F(DbusServiceTest, BusctlReloadReturnsOkAndMessage) {
  control_.set_outcome(true, "done");
  const ProcResult r = busctl_call({"Reload"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json::Value v = parse_json(r.out);
  EXPECT_EQ(v["type"].asString(), "bs");
  EXPECT_TRUE(v["data"][0].asBool());
  EXPECT_EQ(v["data"][1].asString(), "done");
}

TEST_F(DbusServiceTest, StatusAndRefusalAnsweredWhileReloadPending) {
  control_.reload_delay_ms = 1500;
  Child reload(ctl_argv({"reload"}));
  ASSERT_TRUE(wait_until([&] { return control_.reload_pending.load(); })) << "Reload never reached Control";

  const auto t0 = std::chrono::steady_clock::now();
  const ProcResult status = ctl({"status", "--json"});
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_LT(elapsed, 1000ms) << "GetStatus waited for the pending Reload";
  EXPECT_TRUE(parse_json(status.out)["reload_in_progress"].asBool());
  EXPECT_TRUE(reload.running()) << "the first reload finished too early for this test to mean anything";

  // A second reload while the first runs gets the refusal at once.
  const ProcResult second = ctl({"reload"});
  EXPECT_EQ(second.code, 1);
  EXPECT_NE(second.err.find(FakeControl::kRefusal), std::string::npos) << second.err;
  EXPECT_TRUE(reload.running());

  const ProcResult first = reload.wait();
  EXPECT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.out, "reloaded\n");
  EXPECT_EQ(control_.reload_calls.load(), 2);
  EXPECT_EQ(control_.gen.load(), 2u);
}

TEST_F(DbusServiceTest, StatusJsonIsPrintedVerbatim) {
  const ProcResult r = ctl({"status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(parse_json(r.out), parse_json(control_.status_json()));
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
}

TEST_F(DbusServiceTest, StatusHumanReadableShowsEverything) {
  const ProcResult r = ctl({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string& o = r.out;
  EXPECT_NE(o.find("state:       ready\n"), std::string::npos) << o;
  EXPECT_NE(o.find("generation:  1\n"), std::string::npos) << o;
  EXPECT_NE(o.find("config:      /etc/huginn-proxy/config.toml\n"), std::string::npos) << o;
  EXPECT_NE(o.find("uptime:      1h 02m 05s\n"), std::string::npos) << o;
  EXPECT_NE(o.find("version:     0.0.0-test (pid 4242)\n"), std::string::npos) << o;
  EXPECT_NE(o.find("workers:     2\n"), std::string::npos) << o;
  EXPECT_TRUE(std::regex_search(o, std::regex("\n  5000 +1 +serving +7 +slot=0\n"))) << o;
  EXPECT_TRUE(std::regex_search(o, std::regex("\n  5001 +1 +serving +8 +slot=1\n"))) << o;
  EXPECT_NE(o.find("helper.state: attached\n"), std::string::npos) << o;
  EXPECT_NE(o.find("helper.syn_captured: 123\n"), std::string::npos) << o;
  EXPECT_NE(o.find("reload_in_progress: no\n"), std::string::npos) << o;
}

TEST_F(DbusServiceTest, CheckConfigReturnsEveryError) {
  ProcResult r = busctl_call({"CheckConfig", "s", "/etc/bad.toml"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json::Value v = parse_json(r.out);
  EXPECT_EQ(v["type"].asString(), "bas");
  EXPECT_FALSE(v["data"][0].asBool());
  ASSERT_EQ(v["data"][1].size(), 2u);
  EXPECT_EQ(v["data"][1][0].asString(), "listen[0].address (/etc/bad.toml:3): \"nowhere\" is not an address");
  EXPECT_EQ(v["data"][1][1].asString(), "routes[1].backend (/etc/bad.toml:9): unknown backend \"b9\"");

  r = busctl_call({"CheckConfig", "s", ""});
  ASSERT_EQ(r.code, 0) << r.err;
  v = parse_json(r.out);
  EXPECT_TRUE(v["data"][0].asBool());
  EXPECT_EQ(v["data"][1].size(), 0u);
  EXPECT_EQ(control_.checked_paths(), (std::vector<std::string>{"/etc/bad.toml", ""}));
}

TEST_F(DbusServiceTest, BadArgumentsGetClearErrorsAndTheServiceLivesOn) {
  auto conn = sdbus::createSessionBusConnectionWithAddress(bus_->address());
  auto proxy = sdbus::createProxy(*conn, kName, kPath);
  bool ok = true;
  std::vector<std::string> errors;

  try {
    proxy->callMethod("CheckConfig")
        .onInterface(kIface)
        .withArguments(std::string(70000, 'a'))
        .storeResultsTo(ok, errors);
    ADD_FAILURE() << "a 70000-byte path was accepted";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), "org.freedesktop.DBus.Error.InvalidArgs");
    EXPECT_NE(e.getMessage().find("longer than"), std::string::npos) << e.getMessage();
  }
  try {
    proxy->callMethod("CheckConfig").onInterface(kIface).withArguments(42u).storeResultsTo(ok, errors);
    ADD_FAILURE() << "a u argument was accepted for s";
  } catch (const sdbus::Error& e) {
    EXPECT_FALSE(e.getName().empty());
  }
  try {
    proxy->callMethod("CheckConfig").onInterface(kIface).storeResultsTo(ok, errors);
    ADD_FAILURE() << "a call without arguments was accepted";
  } catch (const sdbus::Error& e) {
    EXPECT_FALSE(e.getName().empty());
  }
  try {
    proxy->callMethod("NoSuchMethod").onInterface(kIface).storeResultsTo(ok);
    ADD_FAILURE() << "an unknown method was answered";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), "org.freedesktop.DBus.Error.UnknownMethod");
  }
  EXPECT_TRUE(control_.checked_paths().empty()) << "bad arguments reached Control";
  try {
    proxy->callMethod("CheckConfig")
        .onInterface(kIface)
        .withArguments(std::string("/throw"))
        .storeResultsTo(ok, errors);
    ADD_FAILURE() << "an exception in Control was answered as success";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), "org.freedesktop.DBus.Error.Failed");
    EXPECT_EQ(e.getMessage(), "CheckConfig failed: simulated failure in Control");
  }

  std::string json;
  proxy->callMethod("GetStatus").onInterface(kIface).storeResultsTo(json);
  EXPECT_EQ(parse_json(json)["generation"].asUInt(), 1u);
}

TEST_F(DbusServiceTest, PropertiesGenerationAndVersion) {
  ProcResult r = busctl({"get-property", kName, kPath, kIface, "Version"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, std::string("s \"") + build::kVersion + "\"\n");
  r = busctl({"get-property", kName, kPath, kIface, "Generation"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "u 1\n");
  ASSERT_EQ(ctl({"reload"}).code, 0);
  r = busctl({"get-property", kName, kPath, kIface, "Generation"});
  EXPECT_EQ(r.out, "u 2\n");
  // Read-only.
  r = busctl({"set-property", kName, kPath, kIface, "Generation", "u", "9"});
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(control_.gen.load(), 2u);
}

TEST_F(DbusServiceTest, ReloadedSignalAndPropertiesChanged) {
  struct Seen {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::tuple<uint32_t, bool, std::string>> reloaded;
    std::vector<uint32_t> generations;  // from PropertiesChanged
  } seen;
  auto conn = sdbus::createSessionBusConnectionWithAddress(bus_->address());
  auto proxy = sdbus::createProxy(*conn, kName, kPath);
  proxy->uponSignal("Reloaded").onInterface(kIface).call([&](uint32_t g, bool ok, const std::string& m) {
    std::lock_guard<std::mutex> l(seen.mu);
    seen.reloaded.emplace_back(g, ok, m);
    seen.cv.notify_all();
  });
  proxy->uponSignal("PropertiesChanged")
      .onInterface("org.freedesktop.DBus.Properties")
      .call([&](const std::string& iface, const std::map<std::string, sdbus::Variant>& changed,
                const std::vector<std::string>&) {
        std::lock_guard<std::mutex> l(seen.mu);
        auto it = changed.find("Generation");
        if (iface == kIface && it != changed.end()) seen.generations.push_back(it->second.get<uint32_t>());
        seen.cv.notify_all();
      });
  proxy->finishRegistration();
  conn->enterEventLoopAsync();

  control_.set_outcome(true, "generation 2 ready");
  ASSERT_EQ(ctl({"reload"}).code, 0);
  service_->run_on_loop(
      [](supervisor::DbusService& s) { s.emit_reloaded(2, false, "bad \"config\"\nline 2"); });

  std::unique_lock<std::mutex> l(seen.mu);
  ASSERT_TRUE(
      seen.cv.wait_for(l, 5s, [&] { return seen.reloaded.size() >= 2 && seen.generations.size() >= 2; }));
  EXPECT_EQ(seen.reloaded[0], std::make_tuple(2u, true, std::string("generation 2 ready")));
  EXPECT_EQ(seen.reloaded[1], std::make_tuple(2u, false, std::string("bad \"config\"\nline 2")));
  EXPECT_EQ(seen.generations, (std::vector<uint32_t>{2, 2}));
  l.unlock();
  conn->leaveEventLoop();
}

// --- the live object against the IDL file ---------------------------------

// Members of interface org.huginn.Proxy1 in introspection XML, as lines like
// "method Reload out:b:ok out:s:message" (annotations ignored).
std::vector<std::string> idl_members(std::string xml) {
  xml = std::regex_replace(xml, std::regex("<!--[\\s\\S]*?-->"), "");
  std::vector<std::string> out;
  const std::regex tag("<(/?)(\\w+)([^>]*?)(/?)>");
  const std::regex attr("(\\w+)=\"([^\"]*)\"");
  bool in_iface = false;
  std::string current;
  for (std::sregex_iterator it(xml.begin(), xml.end(), tag), end; it != end; ++it) {
    const bool closing = (*it)[1] == "/";
    const std::string name = (*it)[2];
    const bool self_closing = (*it)[4] == "/";
    std::map<std::string, std::string> a;
    const std::string attrs = (*it)[3];
    for (std::sregex_iterator j(attrs.begin(), attrs.end(), attr); j != end; ++j) a[(*j)[1]] = (*j)[2];
    if (name == "interface") {
      in_iface = !closing && a["name"] == kIface;
      continue;
    }
    if (!in_iface) continue;
    if (name == "method" || name == "signal") {
      if (!closing) current = name + " " + a["name"];
      if (closing || self_closing) {
        out.push_back(current);
        current.clear();
      }
    } else if (name == "arg" && !current.empty()) {
      std::string dir = a.count("direction") ? a["direction"] : (current.rfind("signal", 0) == 0 ? "" : "in");
      current += " " + dir + ":" + a["type"] + ":" + a["name"];
    } else if (name == "property" && !closing) {
      out.push_back("property " + a["name"] + " " + a["type"] + " " + a["access"]);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(DbusServiceTest, IntrospectionMatchesTheIdlFile) {
  std::ifstream f(HUGINN_SOURCE_DIR "/supervisor/dbus/org.huginn.Proxy1.xml");
  std::stringstream idl;
  idl << f.rdbuf();
  const std::vector<std::string> want = idl_members(idl.str());
  ASSERT_EQ(want.size(), 6u) << "IDL parse";

  const ProcResult r = busctl({"introspect", "--xml-interface", kName, kPath});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(idl_members(r.out), want) << r.out;
}

// --- caller checks and bus failures ----------------------------------------

TEST_F(DbusServiceTest, HandlerRefusesReloadFromUnprivilegedCaller) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run the client as nobody (uid 65534)";
  // This bus lets everybody talk to everybody: only the handler's check stands
  // between nobody and a reload.
  ProcResult r = ctl({"reload"}, /*as_nobody=*/true);
  EXPECT_EQ(r.code, 4);
  ASSERT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("org.huginn.Proxy1.Error.AccessDenied"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");

  r = busctl({"call", kName, kPath, kIface, "Reload"}, /*as_nobody=*/true);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("requires root or membership in group huginn-admin"), std::string::npos) << r.err;
  EXPECT_EQ(control_.reload_calls.load(), 0);

  // Read-only methods stay open to whoever the bus lets through.
  r = ctl({"status", "--json"}, /*as_nobody=*/true);
  EXPECT_EQ(r.code, 0) << r.err;
  r = busctl_call({"CheckConfig", "s", "/etc/bad.toml"});
  EXPECT_EQ(r.code, 0) << r.err;

  // And root still may.
  r = ctl({"reload"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(control_.reload_calls.load(), 1);
}

TEST_F(DbusServiceTest, SecondServiceOnTheSameBusFailsCleanly) {
  FakeControl other;
  ServiceThread second(bus_->address(), other);
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.error().find("File exists"), std::string::npos) << second.error();
  // The first one is unaffected.
  EXPECT_EQ(ctl({"status", "--json"}).code, 0);
}

TEST(DbusServiceCreate, UnreachableBusReturnsNullWithError) {
  FakeControl control;
  ServiceThread service("unix:path=/nonexistent/huginn-test.sock", control);
  EXPECT_FALSE(service.ok());
  EXPECT_NE(service.error().find("unix:path=/nonexistent/huginn-test.sock"), std::string::npos)
      << service.error();
}

TEST(Huginnctl, NoBusIsExitThreeAndOneLine) {
  const ProcResult r = run({huginnctl_path(), "--bus", "unix:path=/nonexistent/huginn-test.sock", "reload"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.out, "");
  ASSERT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("huginnctl: cannot reach huginn-proxy", 0), 0u) << r.err;
}

TEST(Huginnctl, NameNotOwnedIsExitThreeAndOneLine) {
  PrivateBus bus(PrivateBus::Kind::kSessionOpen);
  ASSERT_TRUE(bus.ok()) << bus.error();
  for (const char* cmd : {"reload", "status"}) {
    const ProcResult r = run({huginnctl_path(), "--bus", bus.address(), cmd});
    EXPECT_EQ(r.code, 3) << cmd;
    EXPECT_EQ(r.out, "");
    ASSERT_EQ(lines(r.err).size(), 1u) << r.err;
    EXPECT_NE(r.err.find("cannot reach huginn-proxy: it is not running"), std::string::npos) << r.err;
  }
}

TEST(Huginnctl, UsageErrorsAndLocalCommandsNeedNoDaemon) {
  EXPECT_EQ(run({huginnctl_path(), "--bus"}).code, 2);
  EXPECT_EQ(run({huginnctl_path(), "--bus", "unix:path=/nonexistent", "status", "--yaml"}).code, 2);
  EXPECT_EQ(run({huginnctl_path(), "--bus", "unix:path=/nonexistent", "reload", "now"}).code, 2);
  const ProcResult v = run({huginnctl_path(), "--bus", "unix:path=/nonexistent", "version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out, std::string("huginnctl ") + build::kVersion + "\n");
}

}  // namespace
}  // namespace huginn::testing

namespace huginn::testing {
namespace {

double loop_thread_cpu_ms(ServiceThread& service) {
  double ms = 0;
  service.run_on_loop([&](supervisor::DbusService&) {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  });
  return ms;
}

TEST(DbusServiceLifecycle, BusDaemonDeathDoesNotSpinTheLoop) {
  auto bus = std::make_unique<PrivateBus>(PrivateBus::Kind::kSessionOpen);
  ASSERT_TRUE(bus->ok()) << bus->error();
  FakeControl control;
  ServiceThread service(bus->address(), control);
  ASSERT_TRUE(service.ok()) << service.error();
  bus.reset();  // kills the dbus-daemon under the service
  std::this_thread::sleep_for(100ms);
  const double before = loop_thread_cpu_ms(service);
  std::this_thread::sleep_for(500ms);
  const double used = loop_thread_cpu_ms(service) - before;
  EXPECT_LT(used, 100.0) << "the loop thread burned " << used << " ms of CPU in 500 ms";
  // Emitting on a dead connection is harmless.
  service.run_on_loop([](supervisor::DbusService& s) { s.emit_reloaded(5, true, "after the bus died"); });
}

}  // namespace
}  // namespace huginn::testing
