#include "common/ipc/protocol.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/ipc/channel.h"
#include "common/sys/memfd.h"

namespace huginn::ipc {
namespace {

std::vector<uint8_t> header(uint16_t version, uint16_t type, uint32_t len) {
  std::vector<uint8_t> b;
  for (int i = 0; i < 2; ++i) b.push_back(static_cast<uint8_t>(version >> (8 * i)));
  for (int i = 0; i < 2; ++i) b.push_back(static_cast<uint8_t>(type >> (8 * i)));
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(len >> (8 * i)));
  return b;
}

TEST(IpcProtocol, EveryMessageRoundTrips) {
  const std::vector<std::pair<Message, size_t>> cases = {
      {Hello{kVersion, 3, 7, 1234}, 0},
      {Listeners{{{0, false, "127.0.0.1:8080"}, {1, true, "[::1]:8443"}}}, 2},
      {Listeners{}, 0},
      {Ready{7, 1234}, 0},
      {Drain{30000}, 0},
      {Terminate{}, 0},
      {StatsReq{}, 0},
      {StatsAns{1, 2, 3}, 0},
      {TlsMaterial{42}, 1},
      {Metrics{1, 4}, 1},
      {HostState{1, 5}, 1},
      {Health{{1, 0, 1}}, 0},
      {Health{}, 0},
  };
  for (const auto& [m, nfds] : cases) {
    auto bytes = encode(m);
    auto d = decode(bytes.data(), bytes.size(), nfds);
    ASSERT_TRUE(d.ok) << type_name(type_of(m)) << ": " << d.error;
    EXPECT_EQ(d.message, m) << type_name(type_of(m));
  }
}

struct BadCase {
  const char* name;
  std::vector<uint8_t> bytes;
  size_t nfds;
  const char* error_contains;
};

TEST(IpcProtocol, MalformedDatagramsAreRejectedWithAReason) {
  auto hello = encode(Hello{kVersion, 1, 1, 1});
  auto truncated = hello;
  truncated.pop_back();
  auto trailing = hello;
  trailing.push_back(0);
  trailing[4] += 1;  // length covers the extra byte, so the payload has trailing bytes
  auto listeners = encode(Listeners{{{0, false, "127.0.0.1:1"}}});
  auto bad_tls = listeners;
  bad_tls[kHeaderSize + 8] = 2;
  auto huge_count = header(kVersion, 2, 4);
  for (int i = 0; i < 4; ++i) huge_count.push_back(0xff);
  auto string_overrun = header(kVersion, 2, 4 + 4 + 1 + 2);
  for (uint8_t b : {1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}) string_overrun.push_back(b);
  string_overrun.resize(kHeaderSize + 11);
  auto peer_version = encode(Hello{99, 1, 1, 1});
  const std::vector<BadCase> cases = {
      {"empty", {}, 0, "short datagram"},
      {"short header", {1, 0, 1}, 0, "short datagram"},
      {"bad version", header(2, 1, 0), 0, "protocol version 2"},
      {"length mismatch", header(kVersion, 1, 100), 0, "length mismatch"},
      {"over limit", header(kVersion, 1, kMaxPayload + 1), 0, "over limit"},
      {"unknown type", header(kVersion, 99, 0), 0, "unknown message type 99"},
      {"truncated hello", truncated, 0, "length mismatch"},
      {"trailing bytes", trailing, 0, "trailing bytes in HELLO"},
      {"fds on hello", hello, 1, "unexpected file descriptors"},
      {"fd count mismatch", listeners, 0, "names 1 sockets but 0 descriptors"},
      {"bad tls flag", bad_tls, 1, "bad tls flag"},
      {"huge listener count", huge_count, 0, "too many listeners"},
      {"string overrun", string_overrun, 1, "truncated LISTENERS"},
      {"peer protocol", peer_version, 0, "peer speaks protocol 99"},
      {"empty drain", header(kVersion, 4, 0), 0, "truncated DRAIN"},
      {"tls material without fd", encode(TlsMaterial{1}), 0, "exactly one descriptor, 0 arrived"},
      {"tls material with 2 fds", encode(TlsMaterial{1}), 2, "exactly one descriptor, 2 arrived"},
      {"truncated tls material", header(kVersion, 8, 0), 1, "truncated TLS_MATERIAL"},
      {"metrics without fd", encode(Metrics{1, 2}), 0, "exactly one descriptor, 0 arrived"},
      {"metrics with 2 fds", encode(Metrics{1, 2}), 2, "exactly one descriptor, 2 arrived"},
      {"truncated metrics",
       [] {
         auto b = header(kVersion, 9, 4);
         b.insert(b.end(), 4, 0);
         return b;
       }(),
       1, "truncated METRICS"},
  };
  for (const auto& c : cases) {
    auto d = decode(c.bytes.data(), c.bytes.size(), c.nfds);
    EXPECT_FALSE(d.ok) << c.name;
    EXPECT_NE(d.error.find(c.error_contains), std::string::npos) << c.name << ": got '" << d.error << "'";
  }
}

TEST(IpcSession, WorkerSideAcceptsOnlyTheLegalOrder) {
  Session s(Session::Role::kWorkerSide);
  EXPECT_NE(s.accept(MsgType::kListeners), "");  // HELLO must come first
  Session w(Session::Role::kWorkerSide);
  EXPECT_EQ(w.accept(MsgType::kHello), "");
  EXPECT_NE(w.accept(MsgType::kHello), "");  // second HELLO
  EXPECT_NE(w.accept(MsgType::kDrain), "");  // before LISTENERS
  EXPECT_EQ(w.accept(MsgType::kListeners), "");
  EXPECT_NE(w.accept(MsgType::kListeners), "");  // once only
  EXPECT_EQ(w.accept(MsgType::kStatsReq), "");
  EXPECT_EQ(w.accept(MsgType::kDrain), "");
  EXPECT_NE(w.accept(MsgType::kReady), "");  // supervisor never sends READY
}

TEST(IpcSession, TlsMaterialIsLegalAfterListenersAnyNumberOfTimes) {
  Session w(Session::Role::kWorkerSide);
  EXPECT_EQ(w.accept(MsgType::kHello), "");
  EXPECT_NE(w.accept(MsgType::kTlsMaterial), "");  // before LISTENERS
  EXPECT_EQ(w.accept(MsgType::kListeners), "");
  EXPECT_EQ(w.accept(MsgType::kTlsMaterial), "");
  EXPECT_EQ(w.accept(MsgType::kTlsMaterial), "");
  EXPECT_EQ(w.accept(MsgType::kStatsReq), "");
  EXPECT_EQ(w.accept(MsgType::kTlsMaterial), "");
  Session sup(Session::Role::kSupervisorSide);
  EXPECT_EQ(sup.accept(MsgType::kHello), "");
  EXPECT_NE(sup.accept(MsgType::kTlsMaterial), "");  // workers never send it
}

TEST(IpcSession, MetricsIsLegalOnceAfterListeners) {
  Session w(Session::Role::kWorkerSide);
  EXPECT_EQ(w.accept(MsgType::kHello), "");
  EXPECT_NE(w.accept(MsgType::kMetrics), "");  // before LISTENERS
  EXPECT_EQ(w.accept(MsgType::kListeners), "");
  EXPECT_EQ(w.accept(MsgType::kMetrics), "");
  EXPECT_NE(w.accept(MsgType::kMetrics), "");  // once only
  EXPECT_EQ(w.accept(MsgType::kTlsMaterial), "");
  Session sup(Session::Role::kSupervisorSide);
  EXPECT_EQ(sup.accept(MsgType::kHello), "");
  EXPECT_NE(sup.accept(MsgType::kMetrics), "");  // workers never send it
}

TEST(IpcSession, HostStateOnceAndHealthAnyNumberOfTimesAfterListeners) {
  Session w(Session::Role::kWorkerSide);
  EXPECT_EQ(w.accept(MsgType::kHello), "");
  EXPECT_NE(w.accept(MsgType::kHostState), "");  // before LISTENERS
  EXPECT_NE(w.accept(MsgType::kHealth), "");
  EXPECT_EQ(w.accept(MsgType::kListeners), "");
  EXPECT_EQ(w.accept(MsgType::kHostState), "");
  EXPECT_NE(w.accept(MsgType::kHostState), "");  // once only
  EXPECT_EQ(w.accept(MsgType::kHealth), "");
  EXPECT_EQ(w.accept(MsgType::kHealth), "");
  Session sup(Session::Role::kSupervisorSide);
  EXPECT_EQ(sup.accept(MsgType::kHello), "");
  EXPECT_NE(sup.accept(MsgType::kHostState), "");  // workers never send them
  EXPECT_NE(sup.accept(MsgType::kHealth), "");
}

TEST(IpcProtocol, HostStateAndHealthAreChecked) {
  auto hs = encode(HostState{1, 0});
  EXPECT_FALSE(decode(hs.data(), hs.size(), 0).ok);  // needs its fd
  EXPECT_FALSE(decode(hs.data(), hs.size(), 2).ok);
  auto h = encode(Health{{1, 1}});
  EXPECT_FALSE(decode(h.data(), h.size(), 1).ok);  // no fds allowed
  auto bad = h;
  bad.back() = 2;  // a state is 0 or 1
  auto d = decode(bad.data(), bad.size(), 0);
  EXPECT_FALSE(d.ok);
  EXPECT_NE(d.error.find("bad HEALTH state"), std::string::npos) << d.error;
  auto huge = header(kVersion, static_cast<uint16_t>(MsgType::kHealth), 4);
  for (int i = 0; i < 4; ++i) huge.push_back(0xff);
  d = decode(huge.data(), huge.size(), 0);
  EXPECT_FALSE(d.ok);
  EXPECT_NE(d.error.find("too many HEALTH"), std::string::npos) << d.error;
}

TEST(IpcSession, SupervisorSideAcceptsOnlyTheLegalOrder) {
  Session s(Session::Role::kSupervisorSide);
  EXPECT_NE(s.accept(MsgType::kReady), "");
  Session t(Session::Role::kSupervisorSide);
  EXPECT_EQ(t.accept(MsgType::kHello), "");
  EXPECT_NE(t.accept(MsgType::kStatsAns), "");  // before READY
  EXPECT_EQ(t.accept(MsgType::kReady), "");
  EXPECT_NE(t.accept(MsgType::kReady), "");
  EXPECT_EQ(t.accept(MsgType::kStatsAns), "");
  EXPECT_NE(t.accept(MsgType::kListeners), "");
  EXPECT_NE(t.accept(MsgType::kDrain), "");
}

TEST(IpcChannel, PassesListeningSocketsWithTheirManifest) {
  sys::UniqueFd a, b;
  ASSERT_TRUE(make_channel(&a, &b));
  sys::UniqueFd lfd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lfd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  ASSERT_EQ(listen(lfd.get(), 4), 0);
  std::string err;
  ASSERT_TRUE(send_message(a.get(), Listeners{{{5, false, "127.0.0.1:0"}}}, {lfd.get()}, &err)) << err;
  auto r = receive_message(b.get());
  ASSERT_EQ(r.status, RecvStatus::kMessage) << r.error;
  ASSERT_EQ(r.fds.size(), 1u);
  EXPECT_TRUE(is_listening_tcp_socket(r.fds[0].get(), AF_INET, &err)) << err;
  EXPECT_FALSE(is_listening_tcp_socket(r.fds[0].get(), AF_INET6, &err));
  EXPECT_FALSE(is_listening_tcp_socket(a.get(), AF_INET, &err));
  EXPECT_EQ(std::get<Listeners>(r.message).entries[0].id, 5u);
}

TEST(IpcChannel, DescriptorsOnTheWrongMessageAreClosedAndRejected) {
  sys::UniqueFd a, b;
  ASSERT_TRUE(make_channel(&a, &b));
  std::string err;
  ASSERT_TRUE(send_message(a.get(), Ready{1, 2}, {a.get()}, &err)) << err;
  auto r = receive_message(b.get());
  EXPECT_EQ(r.status, RecvStatus::kError);
  EXPECT_TRUE(r.fds.empty());
  EXPECT_NE(r.error.find("unexpected file descriptors"), std::string::npos) << r.error;
}

TEST(IpcChannel, TlsMaterialCarriesOneSealedMemfd) {
  sys::UniqueFd a, b;
  ASSERT_TRUE(make_channel(&a, &b));
  std::string err;
  sys::UniqueFd mfd = sys::make_sealed_memfd("test", "bundle bytes", &err);
  ASSERT_TRUE(mfd) << err;
  ASSERT_TRUE(send_message(a.get(), TlsMaterial{9}, {mfd.get()}, &err)) << err;
  auto r = receive_message(b.get());
  ASSERT_EQ(r.status, RecvStatus::kMessage) << r.error;
  ASSERT_EQ(r.fds.size(), 1u);
  EXPECT_EQ(std::get<TlsMaterial>(r.message).serial, 9u);
  std::string text;
  ASSERT_TRUE(sys::read_sealed_memfd(r.fds[0].get(), 100, &text, &err)) << err;
  EXPECT_EQ(text, "bundle bytes");
  EXPECT_FALSE(sys::read_sealed_memfd(r.fds[0].get(), 5, &text, &err));  // over the cap
  EXPECT_NE(err.find("over the limit"), std::string::npos) << err;
  EXPECT_FALSE(sys::read_sealed_memfd(a.get(), 100, &text, &err));  // not a memfd
  EXPECT_NE(err.find("not a sealed memfd"), std::string::npos) << err;
}

TEST(IpcChannel, PeerCloseIsReported) {
  sys::UniqueFd a, b;
  ASSERT_TRUE(make_channel(&a, &b));
  a.reset();
  EXPECT_EQ(receive_message(b.get()).status, RecvStatus::kClosed);
}

}  // namespace
}  // namespace huginn::ipc
