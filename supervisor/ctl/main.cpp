// huginnctl: the operator's tool. See huginnctl(8).
//
// Exit status: 0 success, 1 the operation failed (bad config, unreadable
// capture), 2 usage error.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "build_info.h"
#include "common/config/loader.h"
#include "supervisor/ctl/fingerprint_cmd.h"

namespace {

constexpr const char* kUsage =
    "usage: huginnctl version\n"
    "       huginnctl check-config [PATH]\n"
    "       huginnctl fingerprint --pcap FILE [--json]\n";

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
    std::fprintf(stderr, "huginnctl: %zu configuration error%s in %s\n", errs->size(), errs->size() == 1 ? "" : "s",
                 path.c_str());
    return 1;
  }
  std::printf("config OK\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "version" || cmd == "--version") {
    std::printf("huginnctl %s\n", huginn::build::kVersion);
    return 0;
  }
  if (cmd == "check-config") return check_config(argc - 2, argv + 2);
  if (cmd == "fingerprint") return run_fingerprint_command(argc - 2, argv + 2, std::cout, std::cerr);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "huginnctl: unknown command '%s'\n", cmd.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}
