// SPDX-License-Identifier: GPL-2.0
/* Socket filter for a DNS capture tool.
 *
 * Keeps DNS over UDP whole, keeps only the IP and TCP headers of DNS over
 * TCP (a snap length: the return value is how many bytes to keep), drops
 * everything else (returns 0). Counts packets per IPv4 source in an LRU
 * hash, so busy talkers age out instead of filling the map.
 *
 * A socket filter sees the packet from the network header on: offsets below
 * are relative to the IP header.
 */
#include "parsing.h"

#define DNS_PORT 53

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __be32);   /* IPv4 source address */
	__type(value, __u64);  /* DNS packets kept */
} talkers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32); /* 0: kept whole, 1: headers only, 2: dropped */
	__type(value, __u64);
} outcomes SEC(".maps");

static __always_inline __u32 outcome(__u32 which, __u32 keep)
{
	__u64 *n = bpf_map_lookup_elem(&outcomes, &which);

	if (n)
		*n += 1;
	return keep;
}

SEC("socket")
int dns_filter(struct __sk_buff *skb)
{
	__u8 vihl, proto, tcp_doff;
	__u32 l4, keep;
	__be16 ports[2], frag;
	__be32 saddr = 0;
	__u64 one = 1, *n;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) ||
		    bpf_skb_load_bytes(skb, 6, &frag, 2) ||
		    bpf_skb_load_bytes(skb, 9, &proto, 1) ||
		    bpf_skb_load_bytes(skb, 12, &saddr, 4))
			return outcome(2, 0);
		if (frag & bpf_htons(IP_OFFSET_MASK))
			return outcome(2, 0);
		l4 = (vihl & 0xf) * 4;
		if (l4 < 20)
			return outcome(2, 0);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 6, &proto, 1))
			return outcome(2, 0);
		l4 = 40;
	} else {
		return outcome(2, 0);
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return outcome(2, 0);
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)))
		return outcome(2, 0);
	if (ports[0] != bpf_htons(DNS_PORT) && ports[1] != bpf_htons(DNS_PORT))
		return outcome(2, 0);

	if (proto == IPPROTO_UDP) {
		keep = outcome(0, skb->len);
	} else {
		/* Data offset: the high nibble of byte 12 of the TCP header. */
		if (bpf_skb_load_bytes(skb, l4 + 12, &tcp_doff, 1))
			return outcome(2, 0);
		keep = outcome(1, l4 + (tcp_doff >> 4) * 4);
	}
	if (saddr) {
		n = bpf_map_lookup_elem(&talkers, &saddr);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			bpf_map_update_elem(&talkers, &saddr, &one, BPF_ANY);
	}
	return keep;
}

char LICENSE[] SEC("license") = "GPL";
