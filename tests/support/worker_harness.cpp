#include "tests/support/worker_harness.h"

#include <arpa/inet.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <variant>
#include <vector>

#include "common/config/loader.h"
#include "worker/net/event_handles.h"

namespace huginn::test {

std::shared_ptr<const config::Config> load_config(const std::string& toml) {
  auto r = config::load_text(toml, "test.toml");
  if (auto* errs = std::get_if<std::vector<config::ConfigError>>(&r)) {
    std::string all;
    for (const auto& e : *errs) all += e.to_string() + "\n";
    ADD_FAILURE() << "config errors:\n" << all;
    return nullptr;
  }
  return std::get<std::shared_ptr<const config::Config>>(r);
}

std::string simple_config(const std::string& backend, const std::string& extra,
                          const std::string& route_extra) {
  return "[listen]\naddrs = [\"127.0.0.1:0\"]\n"
         "[[backends]]\naddress = \"" +
         backend +
         "\"\n"
         "[[domains]]\n"
         "[[domains.routes]]\nprefix = \"/\"\nbackend = \"" +
         backend + "\"\n" + route_extra + "\n" + extra;
}

int listen_loopback(uint16_t* port, int backlog, int type_flags) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

int connect_loopback(uint16_t port, int rcvbuf) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      // A non-blocking socket waits; a blocking one hit its SO_SNDTIMEO.
      if (errno == EAGAIN && (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0) {
        pollfd pf{fd, POLLOUT, 0};
        ::poll(&pf, 1, 100);
        continue;
      }
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string make_body(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 16);
  }
  return s;
}

// ------------------------------------------------------------ EventLoopThread

EventLoopThread::EventLoopThread() {
  static const int threads_ok = evthread_use_pthreads();
  (void)threads_ok;
  base_.reset(worker::net::new_event_base().release());  // configured like a worker's
}

EventLoopThread::~EventLoopThread() { stop(); }

void EventLoopThread::start() {
  thread_ = std::thread([this] { event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY); });
}

void EventLoopThread::run(const std::function<void()>& fn) {
  std::promise<void> done;
  auto* task = new std::function<void()>([&] {
    fn();
    done.set_value();
  });
  const timeval zero{0, 0};
  event_base_once(
      base_.get(), -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) {
        std::unique_ptr<std::function<void()>> t(static_cast<std::function<void()>*>(arg));
        (*t)();
      },
      task, &zero);
  done.get_future().wait();
}

void EventLoopThread::stop() {
  if (!thread_.joinable()) return;
  event_base_loopbreak(base_.get());
  thread_.join();
}

}  // namespace huginn::test
