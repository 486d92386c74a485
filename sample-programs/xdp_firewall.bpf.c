// SPDX-License-Identifier: GPL-2.0
/* XDP firewall: drops IPv4 packets whose source address is in `deny_v4`,
 * counts what it drops and passes, and lets everything else through. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* IPv4 source address, network byte order */
	__type(value, __u8);
} deny_v4 SEC(".maps");

struct counters {
	__u64 dropped;
	__u64 passed;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct counters *c;
	__u32 zero = 0;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;

	c = bpf_map_lookup_elem(&stats, &zero);
	if (bpf_map_lookup_elem(&deny_v4, &ip->saddr)) {
		if (c)
			__sync_fetch_and_add(&c->dropped, 1);
		return XDP_DROP;
	}
	if (c)
		__sync_fetch_and_add(&c->passed, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
