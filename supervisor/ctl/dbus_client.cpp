#include "supervisor/ctl/dbus_client.h"

#include <json/json.h>
#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <cinttypes>
#include <set>
#include <sstream>

namespace huginn::ctl {
namespace {

constexpr const char* kBusName = "org.huginn.Proxy1";
constexpr const char* kObjectPath = "/org/huginn/Proxy1";
constexpr const char* kInterface = "org.huginn.Proxy1";
constexpr auto kShortTimeout = std::chrono::seconds(25);

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string bus_label(const std::string& bus) {
  if (bus == "system" || bus == "session") return "the " + bus + " bus";
  return "the bus at " + bus;
}

std::string describe(const sdbus::Error& e) { return one_line(e.getMessage()) + " (" + e.getName() + ")"; }

bool name_in(const std::string& name, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}

}  // namespace

DbusClient::DbusClient(const std::string& bus) : bus_(bus) {
  try {
    if (bus == "system") {
      conn_ = sdbus::createSystemBusConnection();
    } else if (bus == "session") {
      conn_ = sdbus::createSessionBusConnection();
    } else {
      conn_ = sdbus::createSessionBusConnectionWithAddress(bus);
    }
    proxy_ = sdbus::createProxy(*conn_, kBusName, kObjectPath);
  } catch (const sdbus::Error& e) {
    throw ClientError(kExitUnreachable,
                      "cannot reach huginn-proxy: cannot connect to " + bus_label(bus) + ": " + describe(e));
  }
}

DbusClient::~DbusClient() = default;

void DbusClient::rethrow_bus_error(const char* what) const {
  try {
    throw;
  } catch (const sdbus::Error& e) {
    const std::string& n = e.getName();
    if (name_in(n,
                {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"})) {
      throw ClientError(kExitUnreachable, "cannot reach huginn-proxy: it is not running (nobody owns " +
                                              std::string(kBusName) + " on " + bus_label(bus_) + ")");
    }
    if (name_in(n, {"org.freedesktop.DBus.Error.Disconnected", "System.Error.ECONNRESET",
                    "System.Error.ENOTCONN", "System.Error.ECONNREFUSED", "System.Error.EPIPE"})) {
      throw ClientError(kExitUnreachable, "cannot reach huginn-proxy: lost the connection to " +
                                              bus_label(bus_) + ": " + describe(e));
    }
    if (name_in(n, {"org.freedesktop.DBus.Error.AccessDenied", "org.huginn.Proxy1.Error.AccessDenied",
                    "System.Error.EACCES", "System.Error.EPERM"})) {
      throw ClientError(kExitAccessDenied, std::string(what) + ": access denied: " + describe(e) +
                                               "; run as root or as a member of group huginn-admin");
    }
    if (name_in(n, {"org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout",
                    "org.freedesktop.DBus.Error.TimedOut", "System.Error.ETIMEDOUT"})) {
      throw ClientError(kExitBusError, std::string(what) + ": no answer from huginn-proxy: " + describe(e));
    }
    throw ClientError(kExitBusError, std::string(what) + ": " + describe(e));
  }
}

std::pair<bool, std::string> DbusClient::reload(std::chrono::seconds timeout) {
  bool ok = false;
  std::string message;
  try {
    proxy_->callMethod("Reload").onInterface(kInterface).withTimeout(timeout).storeResultsTo(ok, message);
  } catch (const sdbus::Error&) {
    rethrow_bus_error("reload");
  }
  return {ok, message};
}

std::pair<bool, std::vector<std::string>> DbusClient::check_config(const std::string& path) {
  bool ok = false;
  std::vector<std::string> errors;
  try {
    proxy_->callMethod("CheckConfig")
        .onInterface(kInterface)
        .withTimeout(kShortTimeout)
        .withArguments(path)
        .storeResultsTo(ok, errors);
  } catch (const sdbus::Error&) {
    rethrow_bus_error("check-config");
  }
  return {ok, errors};
}

std::string DbusClient::status_json() {
  std::string json;
  try {
    proxy_->callMethod("GetStatus").onInterface(kInterface).withTimeout(kShortTimeout).storeResultsTo(json);
  } catch (const sdbus::Error&) {
    rethrow_bus_error("status");
  }
  return json;
}

uint32_t DbusClient::generation() {
  try {
    return proxy_->getProperty("Generation").onInterface(kInterface).get<uint32_t>();
  } catch (const sdbus::Error&) {
    rethrow_bus_error("Generation");
  }
}

std::string DbusClient::version() {
  try {
    return proxy_->getProperty("Version").onInterface(kInterface).get<std::string>();
  } catch (const sdbus::Error&) {
    rethrow_bus_error("Version");
  }
}

namespace {

std::string scalar(const Json::Value& v) {
  if (v.isString()) return v.asString();
  if (v.isBool()) return v.asBool() ? "yes" : "no";
  if (v.isNull()) return "-";
  if (v.isArray() && v.empty()) return "(none)";
  if (v.isArray()) {
    bool all_scalar = true;
    for (const auto& x : v) all_scalar = all_scalar && !x.isObject() && !x.isArray();
    if (all_scalar) {
      std::string s;
      for (const auto& x : v) {
        if (!s.empty()) s += ' ';
        s += scalar(x);
      }
      return s;
    }
  }
  Json::StreamWriterBuilder b;
  b["indentation"] = "";
  return v.isObject() || v.isArray() ? Json::writeString(b, v) : v.asString();
}

std::string uptime_text(int64_t secs) {
  char buf[64];
  const int64_t d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60, s = secs % 60;
  if (d > 0) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "d %02" PRId64 "h %02" PRId64 "m %02" PRId64 "s", d, h, m, s);
  } else if (h > 0) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "h %02" PRId64 "m %02" PRId64 "s", h, m, s);
  } else if (m > 0) {
    std::snprintf(buf, sizeof buf, "%" PRId64 "m %02" PRId64 "s", m, s);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRId64 "s", s);
  }
  return buf;
}

// Nested objects as "prefix.key: value" lines.
void render_rest(const Json::Value& v, const std::string& prefix, std::ostringstream& o) {
  for (const auto& key : v.getMemberNames()) {
    const Json::Value& x = v[key];
    if (x.isObject()) {
      render_rest(x, prefix + key + ".", o);
    } else {
      o << prefix << key << ": " << scalar(x) << "\n";
    }
  }
}

}  // namespace

bool render_status(const std::string& json, std::string* out) {
  Json::Value root;
  Json::CharReaderBuilder rb;
  std::string errs;
  std::istringstream in(json);
  if (!Json::parseFromStream(rb, in, &root, &errs) || !root.isObject()) return false;

  const Json::Value& r = root;  // const: lookups of absent keys must not add them
  std::ostringstream o;
  static const std::set<std::string> kShown = {"generation", "config_path", "uptime_secs", "state",
                                               "version",    "pid",         "workers",     "listeners"};
  if (r.isMember("state")) o << "state:       " << scalar(r["state"]) << "\n";
  if (r.isMember("generation")) o << "generation:  " << scalar(r["generation"]) << "\n";
  if (r.isMember("config_path")) o << "config:      " << scalar(r["config_path"]) << "\n";
  if (r["uptime_secs"].isIntegral()) o << "uptime:      " << uptime_text(r["uptime_secs"].asInt64()) << "\n";
  if (r.isMember("version") || r.isMember("pid")) {
    o << "version:     " << scalar(r["version"]) << " (pid " << scalar(r["pid"]) << ")\n";
  }
  if (r.isMember("listeners")) o << "listeners:   " << scalar(r["listeners"]) << "\n";

  const Json::Value& workers = r["workers"];
  if (workers.isArray()) {
    o << "workers:     " << workers.size() << "\n";
    if (!workers.empty()) {
      static const std::set<std::string> kColumns = {"pid", "generation", "state", "connections"};
      char line[160];
      std::snprintf(line, sizeof line, "  %-8s %-4s %-10s %-10s %s\n", "PID", "GEN", "STATE", "CONNS",
                    "OTHER");
      o << line;
      for (const auto& w : workers) {
        if (!w.isObject()) continue;
        std::string other;
        for (const auto& k : w.getMemberNames()) {
          if (kColumns.count(k)) continue;
          other += (other.empty() ? "" : " ") + k + "=" + scalar(w[k]);
        }
        std::snprintf(line, sizeof line, "  %-8s %-4s %-10s %-10s ", scalar(w["pid"]).c_str(),
                      scalar(w["generation"]).c_str(), scalar(w["state"]).c_str(),
                      scalar(w["connections"]).c_str());
        o << line << other << "\n";
      }
    }
  }

  Json::Value rest(Json::objectValue);
  for (const auto& key : r.getMemberNames())
    if (!kShown.count(key)) rest[key] = r[key];
  render_rest(rest, "", o);
  *out = o.str();
  return true;
}

}  // namespace huginn::ctl
