// Per-connection cost of the TCP fingerprint's SYN lookup: the worker's own
// XdpSynSource::lookup() (key from the peer address, freshness check,
// conversion to fp::SynFields) on an LRU hash map of the production size
// (8,192 entries, every one filled, looked up in a shuffled order so that the
// kernel's hash buckets are not all hot):
//   syn_lookup/bpf                    one bpf(BPF_MAP_LOOKUP_ELEM) per lookup
//   syn_lookup_under_worker_seccomp   the same under the worker's filter
//                                     (every bpf(2) call runs it)
//   syn_lookup/ring                   served by the frozen syn_ring mapping
//                                     (no system call), as most are
// The rest of fingerprinting's per-connection work is in fingerprint_bench.cpp,
// p0f_bench.cpp and rewrite_bench.cpp; bench/README.md adds them up.
//
// Needs root (BPF_MAP_CREATE); skips with the reason otherwise. The filtered
// variant runs each batch in a forked child that installs the filter (it
// cannot be removed again), timed inside the child.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bpf/syn_abi_check.h"
#include "common/net/address.h"
#include "common/sys/seccomp.h"
#include "common/sys/unique_fd.h"
#include "worker/syn/bpf_syscall.h"
#include "worker/syn/syn_ring.h"
#include "worker/syn/syn_source.h"

namespace {

using namespace huginn;

constexpr uint32_t kEntries = 8192;  // the SYN maps' default size ([ebpf] map_size)
constexpr int64_t kBatch = 20000;    // lookups per forked child

long sys_bpf(int cmd, bpf_attr* a) { return syscall(__NR_bpf, cmd, a, sizeof *a); }

struct Fixture {
  sys::UniqueFd rw;                            // creator's fd (fills the map)
  sys::UniqueFd ro;                            // what the worker holds: BPF_F_RDONLY
  sys::UniqueFd ring;                          // syn_ring, filled, then frozen
  std::vector<net::SocketAddress> peers;       // the keys, shuffled
  std::vector<net::SocketAddress> ring_peers;  // the keys the ring holds
  std::string error;                           // why the fixture could not be built
};

// A full syn_v4 map with read-only access, as the helper grants it.
const Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    bpf_attr a{};
    a.map_type = BPF_MAP_TYPE_LRU_HASH;
    a.key_size = sizeof(huginn_syn_key_v4);
    a.value_size = sizeof(huginn_syn_value_v4);
    a.max_entries = kEntries;
    std::strncpy(a.map_name, "bench_syn_v4", sizeof a.map_name - 1);
    const long fd = sys_bpf(BPF_MAP_CREATE, &a);
    if (fd < 0) {
      x.error = std::string("BPF_MAP_CREATE: ") + std::strerror(errno) + " (needs root)";
      return x;
    }
    x.rw = sys::UniqueFd(static_cast<int>(fd));
    bpf_map_info info{};
    if (worker::syn::bpf_map_get_info(x.rw.get(), &info) != 0) {
      x.error = "BPF_OBJ_GET_INFO_BY_FD failed";
      return x;
    }
    bpf_attr g{};
    g.map_id = info.id;
    g.open_flags = BPF_F_RDONLY;
    const long ro = sys_bpf(BPF_MAP_GET_FD_BY_ID, &g);
    if (ro < 0) {
      x.error = std::string("BPF_MAP_GET_FD_BY_ID(RDONLY): ") + std::strerror(errno);
      return x;
    }
    x.ro = sys::UniqueFd(static_cast<int>(ro));

    bpf_attr r{};
    r.map_type = BPF_MAP_TYPE_ARRAY;
    r.key_size = sizeof(uint32_t);
    r.value_size = sizeof(huginn_syn_slot);
    r.max_entries = HUGINN_SYN_RING_SLOTS;
    r.map_flags = BPF_F_MMAPABLE;
    const long ring = sys_bpf(BPF_MAP_CREATE, &r);
    if (ring < 0) {
      x.error = std::string("BPF_MAP_CREATE(ring): ") + std::strerror(errno);
      return x;
    }
    x.ring = sys::UniqueFd(static_cast<int>(ring));
    std::vector<size_t> owner(HUGINN_SYN_RING_SLOTS, SIZE_MAX);  // index into peers

    // Fill it like the XDP program would (a Linux SYN: mss, sack, ts, nop, ws).
    std::mt19937 rng(42);
    const uint64_t now = worker::syn::monotonic_ns();
    static constexpr uint8_t kOptions[] = {2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0, 1, 2, 3, 0, 0, 0, 0, 1, 3, 3, 7};
    while (x.peers.size() < kEntries) {
      huginn_syn_key_v4 key{};
      key.family = HUGINN_FAMILY_V4;
      key.sport = htons(static_cast<uint16_t>(1024 + rng() % 60000));
      key.saddr = htonl(0x0A000000u | (rng() & 0x00FFFFFFu));  // 10.0.0.0/8
      huginn_syn_value_v4 v{};
      v.captured_ns = now;
      v.daddr = htonl(0x7F000001u);
      v.ttl = 64;
      v.ip_flags = HUGINN_IP_DF;
      v.tcp.window = 65495;
      v.tcp.dport = 443;
      v.tcp.flags = 0x02;  // SYN
      v.tcp.options_len = sizeof kOptions;
      std::memcpy(v.tcp.options, kOptions, sizeof kOptions);
      if (worker::syn::bpf_map_update(x.rw.get(), &key, &v, BPF_NOEXIST) != 0) continue;  // duplicate key
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      sin.sin_port = key.sport;
      sin.sin_addr.s_addr = key.saddr;
      x.peers.push_back(
          *net::SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin));
      // The ring: the slot's last writer wins, as in the program.
      const uint32_t idx = huginn_syn_ring_index(key.sport, key.saddr, 0, 0, 0);
      huginn_syn_slot slot{};
      slot.seq = 2;
      slot.family = HUGINN_FAMILY_V4;
      slot.sport = key.sport;
      std::memcpy(slot.saddr, &key.saddr, 4);
      slot.value.v4 = v;
      if (worker::syn::bpf_map_update(x.ring.get(), &idx, &slot, BPF_ANY) != 0) {
        x.error = "ring update failed";
        return x;
      }
      owner[idx] = x.peers.size() - 1;
    }
    for (const size_t i : owner)
      if (i != SIZE_MAX) x.ring_peers.push_back(x.peers[i]);  // before `peers` is shuffled
    std::shuffle(x.peers.begin(), x.peers.end(), rng);
    std::shuffle(x.ring_peers.begin(), x.ring_peers.end(), rng);
    bpf_attr fz{};
    fz.map_fd = static_cast<uint32_t>(x.ring.get());
    if (sys_bpf(BPF_MAP_FREEZE, &fz) != 0) {
      x.error = std::string("BPF_MAP_FREEZE: ") + std::strerror(errno);
      return x;
    }
    return x;
  }();
  return f;
}

// Looks up `n` of `peers` starting at `*next`; returns the number of hits.
int64_t lookups(const worker::syn::XdpSynSource& src, const std::vector<net::SocketAddress>& peers, int64_t n,
                size_t* next) {
  const uint64_t accept_ns = worker::syn::monotonic_ns();
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto fields = src.lookup(peers[*next], accept_ns);
    hits += fields.has_value();
    benchmark::DoNotOptimize(fields);
    *next = (*next + 1) % peers.size();
  }
  return hits;
}

worker::syn::XdpSynSource source(const Fixture& f, bool with_ring) {
  // No age limit: the entries were written once, at start-up.
  worker::syn::XdpSynSource src(~0ull);
  worker::syn::GrantedMaps maps;
  maps.v4 = sys::UniqueFd(dup(f.ro.get()));
  if (with_ring) {
    std::string err;
    auto ring = worker::syn::SynRing::attach(f.ring.get(), &err);
    if (!ring) {
      std::fprintf(stderr, "ring: %s\n", err.c_str());
      std::abort();
    }
    maps.ring = std::move(*ring);
  }
  src.set_maps(std::move(maps));
  return src;
}

// with_ring: the source has the ring and looks up only keys the ring holds.
void syn_lookup(benchmark::State& state, bool with_ring) {
  const Fixture& f = fixture();
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  const auto src = source(f, with_ring);
  const auto& peers = with_ring ? f.ring_peers : f.peers;
  size_t next = 0;
  int64_t hits = 0;
  for (auto _ : state) hits += lookups(src, peers, 1, &next);
  if (hits != state.iterations()) state.SkipWithError("a lookup missed");
  state.counters["keys"] = static_cast<double>(peers.size());
}
BENCHMARK_CAPTURE(syn_lookup, bpf, false);
BENCHMARK_CAPTURE(syn_lookup, ring, true);

// The same, in a child process under the worker's seccomp filter.
void syn_lookup_under_worker_seccomp(benchmark::State& state) {
  const Fixture& f = fixture();
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  size_t next = 0;
  while (state.KeepRunningBatch(kBatch)) {
    int pipefd[2];
    if (pipe(pipefd) != 0) {
      state.SkipWithError("pipe failed");
      return;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      close(pipefd[0]);
      const auto src = source(f, false);
      std::string err;
      double secs = -1;
      if (sys::worker_policy(getpid()).install(false, &err)) {
        const auto t0 = std::chrono::steady_clock::now();
        const int64_t hits = lookups(src, f.peers, kBatch, &next);
        const std::chrono::duration<double> d = std::chrono::steady_clock::now() - t0;
        secs = hits == kBatch ? d.count() : -2;
      }
      (void)!write(pipefd[1], &secs, sizeof secs);
      _exit(0);
    }
    close(pipefd[1]);
    double secs = -1;
    const ssize_t got = pid > 0 ? read(pipefd[0], &secs, sizeof secs) : -1;
    close(pipefd[0]);
    if (pid > 0) waitpid(pid, nullptr, 0);
    if (got != sizeof secs || secs < 0) {
      state.SkipWithError(secs == -2 ? "a lookup missed" : "child could not install the filter or died");
      return;
    }
    state.SetIterationTime(secs);
    next = (next + kBatch) % f.peers.size();
  }
}
BENCHMARK(syn_lookup_under_worker_seccomp)->UseManualTime()->Iterations(10 * kBatch);

}  // namespace
BENCHMARK_MAIN();
