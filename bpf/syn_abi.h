/* The ABI between the XDP SYN recorder (syn_capture.bpf.c) and user space
 * (huginn-privhelper writes the watch maps and reads the counters; workers
 * read the SYN maps through read-only fds).
 *
 * Plain C, fixed-width fields, explicit padding: every struct has the same
 * layout in the BPF target and in the host compilers. bpf/syn_abi_check.h
 * static_asserts the sizes and offsets from C++. Any change to a struct here
 * bumps HUGINN_SYN_ABI_VERSION; the helper stores the version in the pinned
 * `syn_config` map and never reuses pins of another version.
 *
 * Byte order: keys hold address and port in network order exactly as on the
 * wire (user space fills them from sockaddr without conversion). Values hold
 * every multi-byte field in host order (converted by the program), ready for
 * fp::SynFields.
 */
#ifndef HUGINN_BPF_SYN_ABI_H
#define HUGINN_BPF_SYN_ABI_H

#include <linux/types.h>

#define HUGINN_SYN_ABI_VERSION 2

/* Map names as the kernel sees them (BPF_OBJ_NAME_LEN 16) and as pinned. */
#define HUGINN_MAP_SYN_V4 "syn_v4"
#define HUGINN_MAP_SYN_V6 "syn_v6"
#define HUGINN_MAP_COUNTERS "syn_counters"
#define HUGINN_MAP_WATCH_PORTS "watch_ports"
#define HUGINN_MAP_WATCH_DST4 "watch_dst4"
#define HUGINN_MAP_WATCH_DST6 "watch_dst6"
#define HUGINN_MAP_CONFIG "syn_config"
#define HUGINN_MAP_SYN_RING "syn_ring"

#define HUGINN_SYN_MAX_OPTIONS 40 /* TCP options: data offset 15 words - 20 bytes */
#define HUGINN_WATCH_MAX_PORTS 64 /* entries of watch_ports */
#define HUGINN_WATCH_MAX_ADDRS 16 /* entries of watch_dst4 / watch_dst6 */
#define HUGINN_MAX_VLAN_TAGS 2    /* 802.1Q / 802.1ad tags walked */
#define HUGINN_MAX_IPV6_EXT 6     /* IPv6 extension headers walked */

#define HUGINN_FAMILY_V4 4
#define HUGINN_FAMILY_V6 6

/* Key of syn_v4: (family, source port, source address). 8 bytes. */
struct huginn_syn_key_v4 {
  __u8 family; /* HUGINN_FAMILY_V4 */
  __u8 pad;    /* zero */
  __u16 sport; /* network order */
  __u32 saddr; /* network order */
};

/* Key of syn_v6. 20 bytes. */
struct huginn_syn_key_v6 {
  __u8 family; /* HUGINN_FAMILY_V6 */
  __u8 pad;    /* zero */
  __u16 sport; /* network order */
  __u8 saddr[16];
};

/* The TCP part of a recorded SYN, shared by both families. 64 bytes. */
struct huginn_syn_tcp {
  __u32 seq;         /* host order */
  __u32 ack;         /* host order */
  __u32 payload_len; /* TCP payload bytes, from the IP length fields */
  __u16 window;      /* host order */
  __u16 urg_ptr;     /* host order */
  __u16 dport;       /* host order: the watched port the SYN went to */
  __u8 flags;        /* CWR ECE URG ACK PSH RST SYN FIN */
  __u8 reserved;     /* low nibble of the data-offset byte (bit 0 = NS) */
  __u8 options_len;  /* bytes valid in options (0-40) */
  __u8 pad[3];       /* zero */
  __u8 options[HUGINN_SYN_MAX_OPTIONS];
};

/* IPv4 flag bits of huginn_syn_value_v4.ip_flags. */
#define HUGINN_IP_DF 0x01
#define HUGINN_IP_MF 0x02
#define HUGINN_IP_RESERVED 0x04

/* Value of syn_v4. 88 bytes. */
struct huginn_syn_value_v4 {
  __u64 captured_ns; /* bpf_ktime_get_ns() = CLOCK_MONOTONIC */
  __u32 daddr;       /* network order */
  __u16 ip_id;       /* host order */
  __u8 ttl;
  __u8 tos;
  __u8 ip_flags;       /* HUGINN_IP_* */
  __u8 ip_options_len; /* ihl * 4 - 20 */
  __u8 pad[6];         /* zero */
  struct huginn_syn_tcp tcp;
};

/* Value of syn_v6. 96 bytes. */
struct huginn_syn_value_v6 {
  __u64 captured_ns; /* bpf_ktime_get_ns() = CLOCK_MONOTONIC */
  __u8 daddr[16];
  __u32 flow_label; /* 20 bits, host order */
  __u8 hop_limit;
  __u8 traffic_class;
  __u8 ext_headers; /* extension headers walked before TCP */
  __u8 pad[1];      /* zero */
  struct huginn_syn_tcp tcp;
};

/* syn_ring: the newest SYNs again, in a direct-mapped array that workers
 * read through a read-only memory mapping, without a system call. The LRU
 * maps stay the record; the ring is a cache in front of them: a worker that
 * finds another key in the slot, a slot being written or a record that does
 * not pass its checks looks the LRU map up as before.
 *
 * A SYN's slot is huginn_syn_ring_index() of its key. The program writes a
 * slot after the LRU update, as a seqlock writer: it claims the slot by
 * moving an even `seq` to odd with a compare-and-swap (a writer that finds
 * it odd, or loses the swap to another CPU, leaves the slot alone), writes
 * key and value, then adds one (even again). A reader copies the slot
 * between two reads of `seq` and uses the copy only if both are the same
 * even, non-zero number. The helper freezes the map (BPF_MAP_FREEZE), so no
 * file descriptor can write it through the bpf() system call or map it
 * writable; only the program writes it. 128 bytes per slot. */
#define HUGINN_SYN_RING_SLOTS 2048 /* a power of two */

struct huginn_syn_slot {
  __u32 seq;      /* 0: never written; odd: being written */
  __u8 family;    /* HUGINN_FAMILY_V4 or _V6 */
  __u8 pad;       /* zero */
  __u16 sport;    /* network order, as in the keys */
  __u8 saddr[16]; /* as in the keys; an IPv4 address in the first 4 bytes, the rest zero */
  union {
    struct huginn_syn_value_v4 v4;
    struct huginn_syn_value_v6 v6;
  } value;
  __u8 tail[8]; /* zero */
};

/* The slot of a key: the source port and the address as 32-bit words loaded
 * from the key's bytes (IPv4: the address and three zero words), mixed with
 * multiply-xorshift steps. Shared by the program and the workers. */
static inline __u32 huginn_syn_ring_index(__u16 sport, __u32 w0, __u32 w1, __u32 w2, __u32 w3) {
  __u32 h = 0x9E3779B9u ^ sport;

  h = (h ^ w0) * 0x85EBCA6Bu;
  h ^= h >> 13;
  h = (h ^ w1) * 0xC2B2AE35u;
  h ^= h >> 16;
  h = (h ^ w2) * 0x85EBCA6Bu;
  h ^= h >> 13;
  h = (h ^ w3) * 0xC2B2AE35u;
  h ^= h >> 16;
  return h & (HUGINN_SYN_RING_SLOTS - 1);
}

/* Indexes of the per-CPU array syn_counters (value: __u64 per CPU). */
enum huginn_syn_counter {
  HUGINN_CTR_CAPTURED_V4 = 0,
  HUGINN_CTR_CAPTURED_V6 = 1,
  HUGINN_CTR_MALFORMED_V4 = 2,
  HUGINN_CTR_MALFORMED_V6 = 3,
  HUGINN_CTR_INSERT_FAIL_V4 = 4,
  HUGINN_CTR_INSERT_FAIL_V6 = 5,
  HUGINN_CTR_COUNT = 6,
};

/* syn_config[0]: written by the helper. */
#define HUGINN_CFG_FILTER_DST4 0x01 /* only SYNs to an address in watch_dst4 */
#define HUGINN_CFG_FILTER_DST6 0x02 /* only SYNs to an address in watch_dst6 */
struct huginn_syn_config {
  __u32 abi_version; /* HUGINN_SYN_ABI_VERSION once the helper filled the maps */
  __u32 flags;       /* HUGINN_CFG_* */
};

/* Key of watch_ports: destination port in host order; value: __u8 1. */
/* Key of watch_dst4: __u32 address in network order; value: __u8 1. */
/* Key of watch_dst6: __u8[16] address; value: __u8 1. */

#endif /* HUGINN_BPF_SYN_ABI_H */
