// supervisor/cert_watch: a real inotify on a temporary directory, driven by a
// libevent loop: in-place writes, rename-over, symlink swaps, and bursts of
// writes collapsing into one callback.
#include "supervisor/cert_watch.h"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/sys/c_handle.h"
#include "tests/support/harness.h"

namespace huginn::supervisor {
namespace {

using EventBase = sys::CHandle<event_base, event_base_free>;
using Event = sys::CHandle<event, event_free>;
constexpr std::chrono::milliseconds kDebounce{100};

class CertWatchTest : public ::testing::Test {
 public:
  void SetUp() override {
    base_.reset(event_base_new());
    std::string err;
    watch_ = make_inotify_cert_watch(
        base_.get(), kDebounce, [this] { ++calls_; }, &err);
    ASSERT_TRUE(watch_) << err;
  }
  // Runs the loop for `ms` milliseconds.
  void run_for(int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base_.get(), &tv);
    event_base_dispatch(base_.get());
  }
  void write_file(const std::string& path, const std::string& content) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(content.c_str(), f);
    std::fclose(f);
  }
  EventBase base_;
  std::unique_ptr<CertWatch> watch_;
  int calls_ = 0;
  testing::TempDir dir_;
};

TEST_F(CertWatchTest, InPlaceWriteCallsBackOnce) {
  const std::string cert = dir_.write("cert.pem", "one");
  std::string err;
  ASSERT_TRUE(watch_->set_paths({cert}, &err)) << err;
  run_for(50);
  EXPECT_EQ(calls_, 0);
  write_file(cert, "two");
  run_for(400);
  EXPECT_EQ(calls_, 1);
}

TEST_F(CertWatchTest, RenameOverIsSeen) {
  const std::string cert = dir_.write("cert.pem", "one");
  std::string err;
  ASSERT_TRUE(watch_->set_paths({cert}, &err)) << err;
  const std::string tmp = dir_.write(".cert.pem.tmp", "two");
  ASSERT_EQ(rename(tmp.c_str(), cert.c_str()), 0);
  run_for(400);
  EXPECT_EQ(calls_, 1);
  // The watch survives the replaced inode: a second replacement is seen too.
  const std::string tmp2 = dir_.write(".cert.pem.tmp", "three");
  ASSERT_EQ(rename(tmp2.c_str(), cert.c_str()), 0);
  run_for(400);
  EXPECT_EQ(calls_, 2);
}

TEST_F(CertWatchTest, SymlinkSwapAndWritesToTheTargetAreSeen) {
  // certbot layout: live/cert.pem → ../archive/certN.pem
  ASSERT_EQ(mkdir((dir_.path() + "/live").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dir_.path() + "/archive").c_str(), 0700), 0);
  const std::string a1 = dir_.write("archive/cert1.pem", "one");
  const std::string link = dir_.path() + "/live/cert.pem";
  ASSERT_EQ(symlink("../archive/cert1.pem", link.c_str()), 0);
  std::string err;
  ASSERT_TRUE(watch_->set_paths({link}, &err)) << err;

  dir_.write("archive/cert2.pem", "two");
  const std::string tmp = dir_.path() + "/live/.cert.pem.new";
  ASSERT_EQ(symlink("../archive/cert2.pem", tmp.c_str()), 0);
  ASSERT_EQ(rename(tmp.c_str(), link.c_str()), 0);
  run_for(400);
  EXPECT_EQ(calls_, 1);
  // In-place write to the file the link points to now (in archive/).
  write_file(dir_.path() + "/archive/cert2.pem", "two again");
  run_for(400);
  EXPECT_EQ(calls_, 2);
}

TEST_F(CertWatchTest, QuickWritesAreDebouncedIntoOneCallback) {
  const std::string cert = dir_.write("cert.pem", "0");
  const std::string key = dir_.write("key.pem", "0");
  std::string err;
  ASSERT_TRUE(watch_->set_paths({cert, key}, &err)) << err;
  // Ten writes 30 ms apart (each inside the 100 ms debounce window).
  int n = 0;
  struct Ctx {
    CertWatchTest* t;
    int* n;
    std::string cert, key;
    Event ev;
  } ctx{this, &n, cert, key, nullptr};
  ctx.ev.reset(event_new(
      base_.get(), -1, EV_PERSIST,
      [](evutil_socket_t, short, void* p) {
        auto* c = static_cast<Ctx*>(p);
        if (*c->n >= 10) return;
        c->t->write_file((*c->n % 2) ? c->cert : c->key, std::to_string(*c->n));
        ++*c->n;
      },
      &ctx));
  timeval every{0, 30000};
  event_add(ctx.ev.get(), &every);
  run_for(600);
  ctx.ev.reset();
  EXPECT_EQ(n, 10);
  EXPECT_EQ(calls_, 1);
}

TEST_F(CertWatchTest, UnwatchableDirectoryIsReported) {
  std::string err;
  EXPECT_FALSE(watch_->set_paths({"/nonexistent-dir-huginn/cert.pem"}, &err));
  EXPECT_NE(err.find("/nonexistent-dir-huginn"), std::string::npos) << err;
  EXPECT_TRUE(watch_->set_paths({}, &err)) << err;
}

}  // namespace
}  // namespace huginn::supervisor
