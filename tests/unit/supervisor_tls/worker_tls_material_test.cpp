// The real huginn-worker receiving TLS_MATERIAL from a stand-in supervisor on
// its control channel: after READY, i.e. inside the seccomp sandbox (receive
// the memfd, check its seals and size, read and decode it), any number of
// times; a bad descriptor is a protocol error that ends the worker.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "common/hoststate/region.h"
#include "common/ipc/channel.h"
#include "common/sys/memfd.h"
#include "common/tls/bundle.h"
#include "tests/support/harness.h"

namespace huginn::supervisor {
namespace {

class WorkerTlsMaterialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A cleartext listener: the worker says READY without waiting for TLS
    // material, so every TLS_MATERIAL below arrives inside the sandbox.
    listener_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    ASSERT_EQ(listen(listener_.get(), 8), 0);
    socklen_t len = sizeof sin;
    getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&sin), &len);
    addr_ = "127.0.0.1:" + std::to_string(ntohs(sin.sin_port));
    const std::string toml = "workers = 1\nuser = \"nobody\"\n[listen]\naddrs = [\"" + addr_ +
                             "\"]\n[fingerprint]\ntcp_enabled = false\n[dbus]\nbus = \"none\"\n";
    std::string err;
    sys::UniqueFd config = sys::make_sealed_memfd("config", toml, &err);
    ASSERT_TRUE(config) << err;
    sys::UniqueFd theirs;
    ASSERT_TRUE(ipc::make_channel(&ctl_, &theirs));
    log_path_ = dir_.path() + "/worker.log";
    const std::string worker = std::string(HUGINN_BINARY_DIR) + "/libexec/huginn-proxy/huginn-worker";
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      const int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(log, STDERR_FILENO);
      const int t = fcntl(theirs.get(), F_DUPFD_CLOEXEC, 10);  // out of the way of 3 and 4
      const int c = fcntl(config.get(), F_DUPFD_CLOEXEC, 10);
      dup2(t, 3);
      dup2(c, 4);
      close_range(5, ~0U, 0);
      execl(worker.c_str(), "huginn-worker", "--ctl-fd", "3", "--config-fd", "4", "--worker-id", "0",
            "--generation", "1", static_cast<char*>(nullptr));
      _exit(127);
    }
    theirs.reset();
    ASSERT_TRUE(ipc::send_message(ctl_.get(), ipc::Hello{ipc::kVersion, 0, 1, 0}, {}, &err)) << err;
    ASSERT_TRUE(ipc::send_message(ctl_.get(), ipc::Listeners{{{0, false, addr_}}}, {listener_.get()}, &err))
        << err;
    host_state_ = hoststate::Region::create(&err);
    ASSERT_TRUE(host_state_) << err;
    ASSERT_TRUE(ipc::send_message(ctl_.get(), ipc::HostState{hoststate::kLayoutVersion, 0},
                                  {host_state_->fd()}, &err))
        << err;
    ASSERT_TRUE(std::holds_alternative<ipc::Hello>(next().message)) << log();
    ASSERT_TRUE(std::holds_alternative<ipc::Ready>(next().message)) << log();
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  ipc::Received next(int timeout_ms = 10000) {
    pollfd p{ctl_.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return {};
    return ipc::receive_message(ctl_.get());
  }

  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // The worker still answers: STATS_REQ → STATS_ANS.
  bool alive() {
    std::string err;
    if (!ipc::send_message(ctl_.get(), ipc::StatsReq{}, {}, &err)) return false;
    return std::holds_alternative<ipc::StatsAns>(next().message);
  }

  testing::TempDir dir_;
  sys::UniqueFd listener_, ctl_;
  std::unique_ptr<hoststate::Region> host_state_;  // what a supervisor sends with HOST_STATE
  std::string addr_, log_path_;
  pid_t pid_ = -1;
};

tls::Bundle bundle(uint64_t serial) {
  tls::Bundle b;
  b.serial = serial;
  b.ticket_lifetime_secs = 7200;
  b.files = {{"/etc/c.pem", "cert bytes"}, {"/etc/k.pem", "key bytes"}};
  b.ticket_keys.resize(3);
  return b;
}

TEST_F(WorkerTlsMaterialTest, InsideTheSandboxAnyNumberOfTimes) {
  std::string err;
  for (uint64_t serial = 1; serial <= 3; ++serial) {
    sys::UniqueFd m = sys::make_sealed_memfd("tls", tls::encode(bundle(serial)), &err);
    ASSERT_TRUE(m) << err;
    ASSERT_TRUE(ipc::send_message(ctl_.get(), ipc::TlsMaterial{serial}, {m.get()}, &err)) << err;
    ASSERT_TRUE(alive()) << log();
    EXPECT_NE(log().find("TLS material " + std::to_string(serial) + " received (2 files, 3 ticket keys)"),
              std::string::npos)
        << log();
  }
}

TEST_F(WorkerTlsMaterialTest, UnsealedDescriptorEndsTheWorker) {
  std::string err;
  sys::UniqueFd plain(memfd_create("unsealed", MFD_CLOEXEC));
  ASSERT_TRUE(plain);
  const std::string bytes = tls::encode(bundle(1));
  ASSERT_EQ(write(plain.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ASSERT_TRUE(ipc::send_message(ctl_.get(), ipc::TlsMaterial{1}, {plain.get()}, &err)) << err;
  int status = 0;
  for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status << "\n" << log();
  EXPECT_NE(log().find("TLS_MATERIAL: not a sealed memfd"), std::string::npos) << log();
}

TEST_F(WorkerTlsMaterialTest, MalformedBundleEndsTheWorker) {
  std::string err;
  std::string bytes = tls::encode(bundle(1));
  bytes.push_back('x');  // trailing byte
  sys::UniqueFd m = sys::make_sealed_memfd("tls", bytes, &err);
  ASSERT_TRUE(ipc::send_message(ctl_.get(), ipc::TlsMaterial{1}, {m.get()}, &err)) << err;
  int status = 0;
  for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status << "\n" << log();
  EXPECT_NE(log().find("trailing bytes"), std::string::npos) << log();
}

}  // namespace
}  // namespace huginn::supervisor
