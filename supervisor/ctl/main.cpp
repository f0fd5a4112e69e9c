// huginnctl: the operator's tool. See huginnctl(8).
//
// Exit status (huginn::ctl::ExitCode): 0 success, 1 the operation failed
// (reload failed, bad config, unreadable capture), 2 usage error, 3 cannot
// reach the daemon (no bus, huginn-proxy not running), 4 access denied, 5 any
// other D-Bus failure (e.g. no answer in time).
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "build_info.h"
#include "common/config/loader.h"
#include "supervisor/ctl/dbus_client.h"
#include "supervisor/ctl/fingerprint_cmd.h"

namespace {

constexpr const char* kUsage =
    "usage: huginnctl [--bus system|session|ADDRESS] reload\n"
    "       huginnctl [--bus system|session|ADDRESS] status [--json]\n"
    "       huginnctl check-config [PATH]\n"
    "       huginnctl fingerprint --pcap FILE [--json]\n"
    "       huginnctl version\n";

using huginn::ctl::ClientError;
using huginn::ctl::DbusClient;

// `huginnctl reload`: blocks until the daemon finished (or failed) the reload.
int reload_command(const std::string& bus, int argc, char**) {
  if (argc != 0) {
    std::fputs(kUsage, stderr);
    return huginn::ctl::kExitUsage;
  }
  DbusClient client(bus);
  auto [ok, message] = client.reload();
  if (ok) {
    std::printf("%s\n", message.empty() ? "reload OK" : message.c_str());
    return huginn::ctl::kExitOk;
  }
  std::fprintf(stderr, "huginnctl: reload failed: %s\n", message.c_str());
  return huginn::ctl::kExitFailed;
}

int status_command(const std::string& bus, int argc, char** argv) {
  bool json = false;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else {
      std::fputs(kUsage, stderr);
      return huginn::ctl::kExitUsage;
    }
  }
  DbusClient client(bus);
  const std::string doc = client.status_json();
  if (json) {
    std::printf("%s\n", doc.c_str());
    return huginn::ctl::kExitOk;
  }
  std::string text;
  if (!huginn::ctl::render_status(doc, &text)) {
    std::fprintf(stderr, "huginnctl: status: the daemon sent a malformed status document\n");
    return huginn::ctl::kExitBusError;
  }
  std::fputs(text.c_str(), stdout);
  return huginn::ctl::kExitOk;
}

int check_config(int argc, char** argv) {
  std::string path;
  if (argc > 1) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (argc == 1) {
    path = argv[0];
  } else {
    const char* env = std::getenv("HUGINN_CONFIG_PATH");
    path = env && *env ? env : huginn::build::kDefaultConfigPath;
  }
  auto loaded = huginn::config::load_file(path);
  if (auto* errs = std::get_if<std::vector<huginn::config::ConfigError>>(&loaded)) {
    for (const auto& e : *errs) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "huginnctl: %zu configuration error%s in %s\n", errs->size(),
                 errs->size() == 1 ? "" : "s", path.c_str());
    return 1;
  }
  std::printf("config OK\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Global options come before the command.
  std::string bus = "system";
  int i = 1;
  while (i < argc && std::strncmp(argv[i], "--bus", 5) == 0) {
    if (std::strcmp(argv[i], "--bus") == 0 && i + 1 < argc) {
      bus = argv[i + 1];
      i += 2;
    } else if (std::strncmp(argv[i], "--bus=", 6) == 0) {
      bus = argv[i] + 6;
      i += 1;
    } else if (std::strcmp(argv[i], "--bus") == 0) {
      bus.clear();  // no value
    } else {
      break;
    }
    if (bus.empty()) {
      std::fprintf(stderr, "huginnctl: --bus needs system, session or a D-Bus address\n");
      return huginn::ctl::kExitUsage;
    }
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[i];
  const int rest_argc = argc - i - 1;
  char** rest_argv = argv + i + 1;
  if (cmd == "version" || cmd == "--version") {
    std::printf("huginnctl %s\n", huginn::build::kVersion);
    return 0;
  }
  if (cmd == "check-config") return check_config(rest_argc, rest_argv);
  if (cmd == "fingerprint") return run_fingerprint_command(rest_argc, rest_argv, std::cout, std::cerr);
  if (cmd == "reload" || cmd == "status") {
    try {
      return cmd == "reload" ? reload_command(bus, rest_argc, rest_argv)
                             : status_command(bus, rest_argc, rest_argv);
    } catch (const ClientError& e) {
      std::fprintf(stderr, "huginnctl: %s\n", e.what());
      return e.exit_code();
    }
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "huginnctl: unknown command '%s'\n", cmd.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}
