/* XDP SYN recorder.
 *
 * Records the client SYNs (SYN set, ACK clear) addressed to a watched port,
 * and optionally a watched destination address, into one LRU hash map per
 * family keyed by (source address, source port), with every field the p0f
 * renderer needs and the capture time. The verdict is always XDP_PASS: no
 * packet is ever dropped or changed.
 *
 * Parsing: Ethernet, up to two VLAN tags (802.1Q / 802.1ad); IPv4 (ihl < 5 is
 * malformed; fragments are skipped: a first fragment's SYN would be
 * incomplete and later fragments carry no TCP header); IPv6 with hop-by-hop,
 * routing and destination-options extension headers walked to a bounded
 * depth (a fragment header or anything else ends the walk, not captured);
 * TCP with doff >= 5. Every header is bounds-checked right before it is read.
 * "Malformed" counts packets of a known family whose IP or TCP header is
 * truncated or inconsistent.
 *
 * Every recorded SYN is also written to its slot of syn_ring, the array the
 * workers read through a memory mapping (bpf/syn_abi.h describes the slot
 * protocol). The compare-and-swap needs BPF ISA v3 (-mcpu=v3, Linux 5.12).
 *
 * Layouts: bpf/syn_abi.h.
 */
// linux/bpf.h (and its types) must come before libbpf's BPF-side headers.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "syn_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#define IP_FRAG_MASK 0x3FFF /* MF | fragment offset */

struct vlan_hdr {
  __be16 tci;
  __be16 encap_proto;
};

/* The recorded SYNs of IPv4 clients. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192); /* set by the helper before load */
  __type(key, struct huginn_syn_key_v4);
  __type(value, struct huginn_syn_value_v4);
} syn_v4 SEC(".maps");

/* The recorded SYNs of IPv6 clients. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct huginn_syn_key_v6);
  __type(value, struct huginn_syn_value_v6);
} syn_v6 SEC(".maps");

/* The newest SYNs again, one direct-mapped slot per key hash, for workers
 * that map it read-only (frozen by the helper). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, HUGINN_SYN_RING_SLOTS);
  __type(key, __u32);
  __type(value, struct huginn_syn_slot);
} syn_ring SEC(".maps");

/* Per-CPU counters, indexed by enum huginn_syn_counter. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, HUGINN_CTR_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} syn_counters SEC(".maps");

/* Destination ports (host order) whose SYNs are recorded. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, HUGINN_WATCH_MAX_PORTS);
  __type(key, __u16);
  __type(value, __u8);
} watch_ports SEC(".maps");

/* Destination IPv4 addresses, used when HUGINN_CFG_FILTER_DST4 is set. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, HUGINN_WATCH_MAX_ADDRS);
  __type(key, __u32);
  __type(value, __u8);
} watch_dst4 SEC(".maps");

/* Destination IPv6 addresses, used when HUGINN_CFG_FILTER_DST6 is set. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, HUGINN_WATCH_MAX_ADDRS);
  __type(key, __u8[16]);
  __type(value, __u8);
} watch_dst6 SEC(".maps");

/* Filter flags and the ABI version (one entry). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct huginn_syn_config);
} syn_config SEC(".maps");

static __always_inline void count(__u32 idx) {
  __u64* c = bpf_map_lookup_elem(&syn_counters, &idx);

  if (c) *c += 1;
}

static __always_inline __u32 config_flags(void) {
  __u32 zero = 0;
  struct huginn_syn_config* cfg = bpf_map_lookup_elem(&syn_config, &zero);

  return cfg ? cfg->flags : 0;
}

/* Claims slot `idx` of syn_ring for writing (seq even -> odd), or returns
 * NULL when it is being written or another CPU claimed it first. */
static __always_inline struct huginn_syn_slot* ring_claim(__u32 idx) {
  struct huginn_syn_slot* s = bpf_map_lookup_elem(&syn_ring, &idx);
  __u32 seq;

  if (!s) return NULL;
  seq = *(volatile __u32*)&s->seq;
  if (seq & 1) return NULL;
  if (__sync_val_compare_and_swap(&s->seq, seq, seq + 1) != seq) return NULL;
  return s;
}

/* Publishes a claimed slot (odd -> even; a full barrier after the writes). */
static __always_inline void ring_release(struct huginn_syn_slot* s) { __sync_fetch_and_add(&s->seq, 1); }

/* Result of parse_tcp. */
enum tcp_verdict {
  TCP_RECORD = 0,    /* a pure SYN to a watched port: record it */
  TCP_IGNORE = 1,    /* valid, but not for us */
  TCP_MALFORMED = 2, /* truncated or doff < 5 */
};

/* Parses the TCP header at `tcp` (and its options) into `out`. `ip_payload`
 * is the number of bytes the IP header declares after itself and the
 * extension headers (TCP header + payload). */
static __always_inline enum tcp_verdict parse_tcp(struct tcphdr* tcp, void* data_end, __u32 ip_payload,
                                                  struct huginn_syn_tcp* out) {
  __u8* opts;
  __u32 doff, opt_len, i;
  __u8 flags;
  __u16 dport;

  if ((void*)(tcp + 1) > data_end) return TCP_MALFORMED;
  doff = tcp->doff * 4;
  if (doff < sizeof(*tcp)) return TCP_MALFORMED;
  if (ip_payload < doff) return TCP_MALFORMED;
  flags = ((__u8*)tcp)[13];
  if (!(flags & 0x02) || (flags & 0x10)) /* SYN set, ACK clear */
    return TCP_IGNORE;
  dport = bpf_ntohs(tcp->dest);
  if (!bpf_map_lookup_elem(&watch_ports, &dport)) return TCP_IGNORE;
  opt_len = doff - sizeof(*tcp);
  opts = (__u8*)(tcp + 1);
  if ((void*)opts + opt_len > data_end) return TCP_MALFORMED;

  out->seq = bpf_ntohl(tcp->seq);
  out->ack = bpf_ntohl(tcp->ack_seq);
  out->payload_len = ip_payload - doff;
  out->window = bpf_ntohs(tcp->window);
  out->urg_ptr = bpf_ntohs(tcp->urg_ptr);
  out->dport = dport;
  out->flags = flags;
  out->reserved = ((__u8*)tcp)[12] & 0x0F;
  out->options_len = (__u8)opt_len;
#pragma clang loop unroll(disable)
  for (i = 0; i < HUGINN_SYN_MAX_OPTIONS; i++) {
    if (i >= opt_len) break;
    if ((void*)(opts + i + 1) > data_end) return TCP_MALFORMED;
    out->options[i] = opts[i];
  }
  return TCP_RECORD;
}

static __always_inline void handle_v4(struct iphdr* ip, void* data_end) {
  struct huginn_syn_value_v4 val = {};
  struct huginn_syn_key_v4 key = {};
  struct huginn_syn_slot* slot;
  struct tcphdr* tcp;
  __u32 ihl, tot_len;
  __u16 frag;
  enum tcp_verdict v;

  if ((void*)(ip + 1) > data_end || ip->version != 4) {
    count(HUGINN_CTR_MALFORMED_V4);
    return;
  }
  ihl = ip->ihl * 4;
  if (ihl < sizeof(*ip)) {
    count(HUGINN_CTR_MALFORMED_V4);
    return;
  }
  if ((void*)ip + ihl > data_end) {
    count(HUGINN_CTR_MALFORMED_V4);
    return;
  }
  frag = bpf_ntohs(ip->frag_off);
  if (frag & IP_FRAG_MASK) return;
  if (ip->protocol != IPPROTO_TCP) return;
  tot_len = bpf_ntohs(ip->tot_len);
  if (tot_len < ihl) {
    count(HUGINN_CTR_MALFORMED_V4);
    return;
  }
  if ((config_flags() & HUGINN_CFG_FILTER_DST4) && !bpf_map_lookup_elem(&watch_dst4, &ip->daddr)) return;

  tcp = (void*)ip + ihl;
  v = parse_tcp(tcp, data_end, tot_len - ihl, &val.tcp);
  if (v == TCP_MALFORMED) {
    count(HUGINN_CTR_MALFORMED_V4);
    return;
  }
  if (v != TCP_RECORD) return;

  key.family = HUGINN_FAMILY_V4;
  key.sport = tcp->source;
  key.saddr = ip->saddr;
  val.captured_ns = bpf_ktime_get_ns();
  val.daddr = ip->daddr;
  val.ip_id = bpf_ntohs(ip->id);
  val.ttl = ip->ttl;
  val.tos = ip->tos;
  val.ip_flags = ((frag & 0x4000) ? HUGINN_IP_DF : 0) | ((frag & 0x2000) ? HUGINN_IP_MF : 0) |
                 ((frag & 0x8000) ? HUGINN_IP_RESERVED : 0);
  val.ip_options_len = (__u8)(ihl - sizeof(*ip));
  if (bpf_map_update_elem(&syn_v4, &key, &val, BPF_ANY) != 0) {
    count(HUGINN_CTR_INSERT_FAIL_V4);
    return;
  }
  count(HUGINN_CTR_CAPTURED_V4);
  slot = ring_claim(huginn_syn_ring_index(key.sport, key.saddr, 0, 0, 0));
  if (!slot) return;
  slot->family = HUGINN_FAMILY_V4;
  slot->pad = 0;
  slot->sport = key.sport;
  __builtin_memset(slot->saddr, 0, sizeof(slot->saddr));
  __builtin_memcpy(slot->saddr, &key.saddr, 4);
  slot->value.v4 = val;
  ring_release(slot);
}

static __always_inline void handle_v6(struct ipv6hdr* ip6, void* data_end) {
  struct huginn_syn_value_v6 val = {};
  struct huginn_syn_key_v6 key = {};
  struct huginn_syn_slot* slot;
  __u32 w[4];
  __u8 *hdr, nexthdr;
  __u32 ext_len = 0, plen, i;
  struct tcphdr* tcp;
  enum tcp_verdict v;
  __u8 walked = 0;

  if ((void*)(ip6 + 1) > data_end || ip6->version != 6) {
    count(HUGINN_CTR_MALFORMED_V6);
    return;
  }
  plen = bpf_ntohs(ip6->payload_len);
  nexthdr = ip6->nexthdr;
  hdr = (__u8*)(ip6 + 1);
#pragma unroll
  for (i = 0; i < HUGINN_MAX_IPV6_EXT; i++) {
    __u32 len;

    if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING && nexthdr != IPPROTO_DSTOPTS) break;
    if ((void*)(hdr + 2) > data_end) {
      count(HUGINN_CTR_MALFORMED_V6);
      return;
    }
    len = ((__u32)hdr[1] + 1) * 8;
    nexthdr = hdr[0];
    hdr += len;
    ext_len += len;
    walked++;
  }
  if (nexthdr != IPPROTO_TCP) return; /* fragment, ESP, too many extension headers, or not TCP */
  if ((void*)hdr > data_end || plen < ext_len) {
    count(HUGINN_CTR_MALFORMED_V6);
    return;
  }
  if ((config_flags() & HUGINN_CFG_FILTER_DST6) && !bpf_map_lookup_elem(&watch_dst6, &ip6->daddr)) return;

  tcp = (struct tcphdr*)hdr;
  v = parse_tcp(tcp, data_end, plen - ext_len, &val.tcp);
  if (v == TCP_MALFORMED) {
    count(HUGINN_CTR_MALFORMED_V6);
    return;
  }
  if (v != TCP_RECORD) return;

  key.family = HUGINN_FAMILY_V6;
  key.sport = tcp->source;
  __builtin_memcpy(key.saddr, &ip6->saddr, 16);
  val.captured_ns = bpf_ktime_get_ns();
  __builtin_memcpy(val.daddr, &ip6->daddr, 16);
  val.flow_label =
      ((__u32)(ip6->flow_lbl[0] & 0x0F) << 16) | ((__u32)ip6->flow_lbl[1] << 8) | ip6->flow_lbl[2];
  val.hop_limit = ip6->hop_limit;
  val.traffic_class = (__u8)((ip6->priority << 4) | (ip6->flow_lbl[0] >> 4));
  val.ext_headers = walked;
  if (bpf_map_update_elem(&syn_v6, &key, &val, BPF_ANY) != 0) {
    count(HUGINN_CTR_INSERT_FAIL_V6);
    return;
  }
  count(HUGINN_CTR_CAPTURED_V6);
  __builtin_memcpy(w, key.saddr, 16);
  slot = ring_claim(huginn_syn_ring_index(key.sport, w[0], w[1], w[2], w[3]));
  if (!slot) return;
  slot->family = HUGINN_FAMILY_V6;
  slot->pad = 0;
  slot->sport = key.sport;
  __builtin_memcpy(slot->saddr, key.saddr, 16);
  slot->value.v6 = val;
  ring_release(slot);
}

SEC("xdp")
int huginn_syn_capture(struct xdp_md* ctx) {
  void* data_end = (void*)(long)ctx->data_end;
  void* data = (void*)(long)ctx->data;
  struct ethhdr* eth = data;
  void* l3;
  __u16 proto;
  int i;

  if ((void*)(eth + 1) > data_end) return XDP_PASS;
  proto = eth->h_proto;
  l3 = eth + 1;
#pragma unroll
  for (i = 0; i < HUGINN_MAX_VLAN_TAGS; i++) {
    struct vlan_hdr* vh = l3;

    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    if ((void*)(vh + 1) > data_end) return XDP_PASS;
    proto = vh->encap_proto;
    l3 = vh + 1;
  }
  if (proto == bpf_htons(ETH_P_IP))
    handle_v4(l3, data_end);
  else if (proto == bpf_htons(ETH_P_IPV6))
    handle_v6(l3, data_end);
  return XDP_PASS;
}
