// Compile-time proof that bpf/syn_abi.h has the same layout in C++ as the
// BPF program assumes (the offsets below are the ones clang -target bpf
// produces; `pahole` on build/bpf/huginn_syn.bpf.o shows them). Included by
// the privhelper and by the worker's map reader, so a layout change that is
// not mirrored here fails their build.
#pragma once

#include <cstddef>

extern "C" {
#include "bpf/syn_abi.h"
}

static_assert(HUGINN_SYN_ABI_VERSION == 2, "update the layout checks below with the ABI version");

static_assert(sizeof(huginn_syn_key_v4) == 8);
static_assert(offsetof(huginn_syn_key_v4, family) == 0);
static_assert(offsetof(huginn_syn_key_v4, sport) == 2);
static_assert(offsetof(huginn_syn_key_v4, saddr) == 4);

static_assert(sizeof(huginn_syn_key_v6) == 20);
static_assert(offsetof(huginn_syn_key_v6, family) == 0);
static_assert(offsetof(huginn_syn_key_v6, sport) == 2);
static_assert(offsetof(huginn_syn_key_v6, saddr) == 4);

static_assert(sizeof(huginn_syn_tcp) == 64);
static_assert(offsetof(huginn_syn_tcp, seq) == 0);
static_assert(offsetof(huginn_syn_tcp, ack) == 4);
static_assert(offsetof(huginn_syn_tcp, payload_len) == 8);
static_assert(offsetof(huginn_syn_tcp, window) == 12);
static_assert(offsetof(huginn_syn_tcp, urg_ptr) == 14);
static_assert(offsetof(huginn_syn_tcp, dport) == 16);
static_assert(offsetof(huginn_syn_tcp, flags) == 18);
static_assert(offsetof(huginn_syn_tcp, reserved) == 19);
static_assert(offsetof(huginn_syn_tcp, options_len) == 20);
static_assert(offsetof(huginn_syn_tcp, options) == 24);

static_assert(sizeof(huginn_syn_value_v4) == 88);
static_assert(alignof(huginn_syn_value_v4) == 8);
static_assert(offsetof(huginn_syn_value_v4, captured_ns) == 0);
static_assert(offsetof(huginn_syn_value_v4, daddr) == 8);
static_assert(offsetof(huginn_syn_value_v4, ip_id) == 12);
static_assert(offsetof(huginn_syn_value_v4, ttl) == 14);
static_assert(offsetof(huginn_syn_value_v4, tos) == 15);
static_assert(offsetof(huginn_syn_value_v4, ip_flags) == 16);
static_assert(offsetof(huginn_syn_value_v4, ip_options_len) == 17);
static_assert(offsetof(huginn_syn_value_v4, tcp) == 24);

static_assert(sizeof(huginn_syn_value_v6) == 96);
static_assert(alignof(huginn_syn_value_v6) == 8);
static_assert(offsetof(huginn_syn_value_v6, captured_ns) == 0);
static_assert(offsetof(huginn_syn_value_v6, daddr) == 8);
static_assert(offsetof(huginn_syn_value_v6, flow_label) == 24);
static_assert(offsetof(huginn_syn_value_v6, hop_limit) == 28);
static_assert(offsetof(huginn_syn_value_v6, traffic_class) == 29);
static_assert(offsetof(huginn_syn_value_v6, ext_headers) == 30);
static_assert(offsetof(huginn_syn_value_v6, tcp) == 32);

static_assert(sizeof(huginn_syn_slot) == 128);
static_assert(alignof(huginn_syn_slot) == 8);
static_assert(offsetof(huginn_syn_slot, seq) == 0);
static_assert(offsetof(huginn_syn_slot, family) == 4);
static_assert(offsetof(huginn_syn_slot, sport) == 6);
static_assert(offsetof(huginn_syn_slot, saddr) == 8);
static_assert(offsetof(huginn_syn_slot, value) == 24);
static_assert(offsetof(huginn_syn_slot, tail) == 120);
static_assert((HUGINN_SYN_RING_SLOTS & (HUGINN_SYN_RING_SLOTS - 1)) == 0);

static_assert(sizeof(huginn_syn_config) == 8);
static_assert(HUGINN_CTR_COUNT == 6);
