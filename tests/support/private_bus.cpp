#include "tests/support/private_bus.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef HUGINN_SOURCE_DIR
#define HUGINN_SOURCE_DIR "."
#endif

namespace huginn::testing {
namespace {

std::string make_temp_dir() {
  char tmpl[] = "/tmp/huginn-dbus-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return {};
  chmod(tmpl, 0755);  // an unprivileged client must reach the socket
  return tmpl;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string config_text(PrivateBus::Kind kind, const std::string& dir) {
  std::ostringstream c;
  c << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
       " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n";
  if (kind == PrivateBus::Kind::kSessionOpen) {
    c << "  <type>session</type>\n"
      << "  <listen>unix:path=" << dir << "/bus.sock</listen>\n"
      << "  <auth>EXTERNAL</auth>\n"
      << "  <policy context=\"default\">\n"
         "    <allow user=\"*\"/>\n"
         "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
         "    <allow eavesdrop=\"true\"/>\n"
         "    <allow own=\"*\"/>\n"
         "  </policy>\n";
  } else {
    // The default context of /usr/share/dbus-1/system.conf, then the
    // project's own policy directory.
    c << "  <type>system</type>\n"
      << "  <listen>unix:path=" << dir << "/sys.sock</listen>\n"
      << "  <auth>EXTERNAL</auth>\n"
      << "  <policy context=\"default\">\n"
         "    <allow user=\"*\"/>\n"
         "    <deny own=\"*\"/>\n"
         "    <deny send_type=\"method_call\"/>\n"
         "    <allow send_type=\"signal\"/>\n"
         "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
         "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
         "    <allow receive_type=\"method_call\"/>\n"
         "    <allow receive_type=\"method_return\"/>\n"
         "    <allow receive_type=\"error\"/>\n"
         "    <allow receive_type=\"signal\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\"\n"
         "           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\" "
         "send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
         "    <deny send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"\n"
         "          send_member=\"UpdateActivationEnvironment\"/>\n"
         "  </policy>\n"
      << "  <includedir>" HUGINN_SOURCE_DIR "/etc/dbus-1</includedir>\n";
  }
  c << "</busconfig>\n";
  return c.str();
}

// The forked daemon is not our child; once dead it may linger as a zombie
// until init reaps it, which counts as gone.
bool pid_alive(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

}  // namespace

PrivateBus::PrivateBus(Kind kind) {
  dir_ = make_temp_dir();
  if (dir_.empty()) {
    error_ = "mkdtemp failed";
    return;
  }
  const std::string conf = dir_ + "/bus.conf";
  std::ofstream(conf) << config_text(kind, dir_);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    error_ = "pipe failed";
    return;
  }
  const pid_t child = fork();
  if (child == 0) {
    dup2(out[1], 1);
    const std::string cfg_arg = "--config-file=" + conf;
    execl("/usr/bin/dbus-daemon", "dbus-daemon", cfg_arg.c_str(), "--fork", "--print-address=1",
          "--print-pid=1", "--nopidfile", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  // The forking daemon prints "ADDRESS\nPID\n" and closes its copy of the pipe.
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::count(text.begin(), text.end(), '\n') < 2 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[512];
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  std::istringstream in(text);
  std::string pid_line;
  std::getline(in, address_);
  std::getline(in, pid_line);
  if (address_.empty() || pid_line.empty()) {
    error_ = "dbus-daemon did not start (exit status " + std::to_string(WEXITSTATUS(status)) + ", output '" +
             text + "')";
    return;
  }
  pid_ = static_cast<pid_t>(std::stol(pid_line));
}

PrivateBus::~PrivateBus() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100 && pid_alive(pid_); ++i) usleep(10000);
    if (pid_alive(pid_)) kill(pid_, SIGKILL);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace huginn::testing
