// SPDX-License-Identifier: GPL-2.0
/* tc L4 load balancer (DNAT).
 *
 * IPv4 TCP and UDP packets to a service (virtual IP, port, protocol) are
 * rewritten to the service's backend: destination address and port, with
 * the IPv4 header checksum and the TCP/UDP checksum (pseudo-header
 * included) updated incrementally. The packet's mark records the backend.
 * Everything else, and IPv4 fragments, pass untouched.
 */
#include <stddef.h>
#include "parsing.h"

struct svc_key {
	__be32 vip;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct backend {
	__be32 addr;
	__be16 port;
	__u16 id; /* written to skb->mark as 0x1000 | id */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct svc_key);
	__type(value, struct backend);
} services SEC(".maps");

struct lb_stats {
	__u64 rewritten;
	__u64 passed;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_stats);
} lb_stats SEC(".maps");

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))

static __always_inline int pass(void)
{
	__u32 zero = 0;
	struct lb_stats *s = bpf_map_lookup_elem(&lb_stats, &zero);

	if (s)
		__sync_fetch_and_add(&s->passed, 1);
	return TC_ACT_OK;
}

SEC("classifier")
int tc_lb(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct svc_key key = {};
	struct backend *be;
	__be32 old_addr, new_addr;
	__be16 ports[2], new_port;
	__u32 l4_off, csum_off, zero = 0;
	__u64 flags;
	__u8 proto;
	struct lb_stats *s;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return pass();
	if ((void *)(ip + 1) > data_end)
		return pass();
	proto = ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return pass();
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK | IP_MF))
		return pass();
	if (ip->ihl < 5)
		return pass();
	l4_off = ETH_HLEN + ip->ihl * 4;
	old_addr = ip->daddr;
	if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)) < 0)
		return pass();

	key.vip = old_addr;
	key.port = ports[1];
	key.proto = proto;
	be = bpf_map_lookup_elem(&services, &key);
	if (!be)
		return pass();
	new_addr = be->addr;
	new_port = be->port;

	if (proto == IPPROTO_TCP) {
		csum_off = l4_off + offsetof(struct tcphdr, check);
		flags = 0;
	} else {
		csum_off = l4_off + offsetof(struct udphdr, check);
		/* A zero UDP checksum means "none" and must stay zero. */
		flags = BPF_F_MARK_MANGLED_0;
	}
	/* The address is part of the L4 pseudo-header, the port of the header. */
	if (bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, flags | BPF_F_PSEUDO_HDR | sizeof(new_addr)) ||
	    bpf_l4_csum_replace(skb, csum_off, ports[1], new_port, flags | sizeof(new_port)) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)) ||
	    bpf_skb_store_bytes(skb, IP_DST_OFF, &new_addr, sizeof(new_addr), 0) ||
	    bpf_skb_store_bytes(skb, l4_off + 2, &new_port, sizeof(new_port), 0))
		return TC_ACT_SHOT;

	skb->mark = 0x1000 | be->id;
	s = bpf_map_lookup_elem(&lb_stats, &zero);
	if (s)
		__sync_fetch_and_add(&s->rewritten, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
