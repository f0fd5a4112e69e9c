// The kernel's struct tcp_info (linux/tcp.h), in a file of its own: glibc's
// netinet/tcp.h has an older struct of the same name, without the segment
// counters.
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

namespace huginn::worker::tls::test {

uint32_t data_segments_in(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return 0;
  return ti.tcpi_data_segs_in;
}

}  // namespace huginn::worker::tls::test
