// SPDX-License-Identifier: GPL-2.0
/* Flow hashing for receive-side steering, with bpf_loop.
 *
 * Hashes an IPv4 UDP/TCP flow (addresses and ports) with eight mixing
 * rounds run through bpf_loop, picks one of four queues from the hash, and
 * records the hash and a per-queue count.
 *
 * bpf_loop arrived in 5.17, and older kernels refuse this program for two
 * different reasons, declared below: before 5.13 the kernel does not know
 * callbacks (BPF_PSEUDO_FUNC), so it counts one subprogram where the BTF
 * describes two; 5.13 to 5.16 know callbacks but not the helper.
 */
#include "parsing.h"
#include "verifier.h"

#define QUEUES 4

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} last_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, QUEUES);
	__type(key, __u32);
	__type(value, __u64);
} queue_hits SEC(".maps");

struct mix_state {
	__u32 hash;
};

/* One round: multiply by the golden ratio, fold in the round number. */
static long mix_round(__u32 index, void *data)
{
	struct mix_state *s = data;

	s->hash = (s->hash ^ (s->hash >> 15)) * 0x9e3779b1u + index;
	return 0;
}

SEC("xdp")
__rejected("<5.13", "number of funcs in func_info doesn't match number of subprogs")
__rejected("5.13..5.17", "invalid func unknown#181")
__accepted(">=5.17")
int flow_hash(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct mix_state s;
	__u32 zero = 0, queue, *last;
	__u64 *hits;
	__be16 *ports;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	ports = (void *)(ip + 1);
	if (ip->ihl != 5 || (void *)(ports + 2) > data_end)
		return XDP_PASS;

	s.hash = bpf_ntohl(ip->saddr) ^ bpf_ntohl(ip->daddr) ^ ((__u32)bpf_ntohs(ports[0]) << 16 | bpf_ntohs(ports[1]));
	bpf_loop(8, mix_round, &s, 0);

	queue = s.hash % QUEUES;
	last = bpf_map_lookup_elem(&last_hash, &zero);
	if (last)
		*last = s.hash;
	hits = bpf_map_lookup_elem(&queue_hits, &queue);
	if (hits)
		__sync_fetch_and_add(hits, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
