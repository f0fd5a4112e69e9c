// huginn-proxy: the supervisor. See huginn-proxy(8).
//
// Exit status: 0 clean stop (or --check-config success), 1 bad configuration
// or usage, 2 runtime failure.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "build_info.h"
#include "common/config/loader.h"
#include "common/sys/log.h"
#include "common/sys/privileges.h"
#include "supervisor/spawn.h"
#include "supervisor/supervisor.h"
#include "supervisor/tls_options_check.h"

namespace {

constexpr const char* kUsage =
    "usage: huginn-proxy [--config PATH] [--check-config | --print-effective-config] [--foreground]\n"
    "       huginn-proxy --version\n"
    "The configuration path defaults to $HUGINN_CONFIG_PATH, then %s.\n";

void usage(FILE* out) { std::fprintf(out, kUsage, huginn::build::kDefaultConfigPath); }

// The worker binary: next to us in a build tree layout that mirrors the
// install tree (<prefix>/sbin/huginn-proxy → <prefix>/libexec/huginn-proxy/).
std::string worker_path() {
  if (const char* p = std::getenv("HUGINN_WORKER_PATH"); p && *p) return p;
  return huginn::supervisor::self_dir() + "/../" + huginn::build::kLibexecRel + "/huginn-worker";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace huginn;
  std::string config_path;
  bool check = false, print_effective = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--check-config" || a == "-t") {
      check = true;
    } else if (a == "--print-effective-config") {
      print_effective = true;
    } else if (a == "--foreground") {
      // Always in the foreground; accepted for symmetry with other daemons.
    } else if (a == "--version" || a == "-V") {
      std::printf("huginn-proxy %s\n", build::kVersion);
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "huginn-proxy: unknown argument '%s'\n", a.c_str());
      usage(stderr);
      return 1;
    }
  }
  if (config_path.empty()) {
    const char* env = std::getenv("HUGINN_CONFIG_PATH");
    config_path = env && *env ? env : build::kDefaultConfigPath;
  }

  auto loaded = config::load_file(config_path);
  // Beyond the loader: [tls.options] names against OpenSSL (a configuration
  // error, status 1) and, for --check-config, the certificate/key/CA files
  // (at start-up the supervisor reads those after binding; failure is 2).
  if (auto* ok = std::get_if<std::shared_ptr<const config::Config>>(&loaded)) {
    auto more = check ? supervisor::check_tls_config(**ok) : supervisor::check_tls_options(**ok);
    if (!more.empty()) loaded = std::move(more);
  }
  if (auto* errs = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
    for (const auto& e : *errs) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "huginn-proxy: %zu configuration error%s in %s\n", errs->size(),
                 errs->size() == 1 ? "" : "s", config_path.c_str());
    return 1;
  }
  auto cfg = std::get<std::shared_ptr<const config::Config>>(loaded);
  if (check) {
    std::printf("config OK\n");
    return 0;
  }
  if (print_effective) {
    std::cout << config::effective_config_json(*cfg) << std::endl;
    return 0;
  }

  log::Options lo;
  log::parse_level(cfg->logging.level, &lo.level);
  lo.json = cfg->logging.format == "json";
  lo.component = "huginn-proxy";
  log::configure(lo);

  std::string err;
  if (geteuid() == 0) {
    sys::UserIds ids;
    if (!sys::lookup_user(cfg->user, &ids, &err)) {
      HLOG_ERROR("workers cannot run as configured: %s (set `user` in %s)", err.c_str(), config_path.c_str());
      return 2;
    }
    if (ids.uid == 0) {
      HLOG_ERROR("`user = \"%s\"` is uid 0; workers must run unprivileged", cfg->user.c_str());
      return 2;
    }
    // Keep only what the supervisor and its children need (DESIGN.md).
    if (!sys::restrict_supervisor_capabilities(&err)) {
      HLOG_ERROR("restricting the supervisor's capabilities: %s", err.c_str());
      return 2;
    }
  }
  supervisor::Program worker;
  if (!supervisor::Program::open(worker_path(), &worker, &err)) {
    HLOG_ERROR("worker program: %s", err.c_str());
    return 2;
  }
  HLOG_INFO("huginn-proxy %s starting: config %s, %u workers, worker program %s", build::kVersion,
            config_path.c_str(), cfg->workers, worker.path.c_str());
  supervisor::Supervisor sup(config_path, cfg, std::move(worker));
  return sup.run();
}
