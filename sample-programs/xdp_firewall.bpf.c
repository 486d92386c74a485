// SPDX-License-Identifier: GPL-2.0
/* XDP firewall.
 *
 * Drops IPv4 and IPv6 packets whose source lies in a denied CIDR (one LPM
 * trie per family) and TCP/UDP packets to a denied port; sees through up to
 * two VLAN tags (802.1Q, QinQ) and IPv6 extension headers; lets one trusted
 * ingress interface through untouched; counts packets and bytes per verdict
 * and per CPU. Non-first fragments carry no ports, so port rules skip them.
 */
#include "parsing.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32); /* rule id */
} deny_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6_key);
	__type(value, __u32); /* rule id */
} deny_v6 SEC(".maps");

struct port_key {
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
	__be16 port; /* destination port */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct port_key);
	__type(value, __u32); /* rule id */
} deny_ports SEC(".maps");

enum verdict {
	PASSED,
	DROPPED_V4,
	DROPPED_V6,
	DROPPED_PORT,
	NOT_IP,
	MALFORMED,
	TRUSTED,
	VERDICT_MAX,
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_MAX);
	__type(key, __u32); /* enum verdict */
	__type(value, struct counter);
} stats SEC(".maps");

/* The verdict of the last packet (also puts `enum verdict` in the BTF, so
 * test cases and dumps can name verdicts). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, enum verdict);
} last_verdict SEC(".maps");

struct config {
	__u32 trusted_ifindex; /* 0: none */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

static __always_inline int account(enum verdict v, __u64 bytes, int action)
{
	__u32 key = v, zero = 0;
	struct counter *c = bpf_map_lookup_elem(&stats, &key);
	enum verdict *last = bpf_map_lookup_elem(&last_verdict, &zero);

	if (last)
		*last = v;
	if (c) {
		/* Per-CPU slot: no other CPU writes it. */
		c->packets++;
		c->bytes += bytes;
	}
	return action;
}

static __always_inline int check_ports(__u8 proto, void *l4, void *data_end, __u64 bytes)
{
	struct port_key key = { .proto = proto };
	__be16 *ports = l4;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return account(PASSED, bytes, XDP_PASS);
	if ((void *)(ports + 2) > data_end)
		return account(MALFORMED, bytes, XDP_PASS);
	key.port = ports[1];
	if (bpf_map_lookup_elem(&deny_ports, &key))
		return account(DROPPED_PORT, bytes, XDP_DROP);
	return account(PASSED, bytes, XDP_PASS);
}

static __always_inline int ipv4(void *l3, void *data_end, __u64 bytes)
{
	struct iphdr *ip = l3;
	struct lpm_v4_key key = { .prefixlen = 32 };
	__u32 ihl;

	if ((void *)(ip + 1) > data_end)
		return account(MALFORMED, bytes, XDP_PASS);
	__builtin_memcpy(key.addr, &ip->saddr, sizeof(key.addr));
	if (bpf_map_lookup_elem(&deny_v4, &key))
		return account(DROPPED_V4, bytes, XDP_DROP);
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK))
		return account(PASSED, bytes, XDP_PASS);
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return account(MALFORMED, bytes, XDP_PASS);
	return check_ports(ip->protocol, l3 + ihl, data_end, bytes);
}

static __always_inline int ipv6(void *l3, void *data_end, __u64 bytes)
{
	struct ipv6hdr *ip6 = l3;
	struct lpm_v6_key key = { .prefixlen = 128 };
	void *next;
	__u8 nexthdr;

	if ((void *)(ip6 + 1) > data_end)
		return account(MALFORMED, bytes, XDP_PASS);
	__builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
	if (bpf_map_lookup_elem(&deny_v6, &key))
		return account(DROPPED_V6, bytes, XDP_DROP);

	nexthdr = ip6->nexthdr;
	next = ip6 + 1;
	/* Walk up to three extension headers to find the transport. */
#pragma unroll
	for (int i = 0; i < 3; i++) {
		__u8 *ext = next;

		if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_DSTOPTS &&
		    nexthdr != IPPROTO_ROUTING && nexthdr != IPPROTO_FRAGMENT)
			break;
		if ((void *)(ext + 8) > data_end)
			return account(MALFORMED, bytes, XDP_PASS);
		if (nexthdr == IPPROTO_FRAGMENT) {
			/* Offset in the top 13 bits of bytes 2-3. */
			if ((ext[2] << 8 | ext[3]) & 0xfff8)
				return account(PASSED, bytes, XDP_PASS);
			nexthdr = ext[0];
			next = ext + 8;
		} else {
			nexthdr = ext[0];
			next = ext + (ext[1] + 1) * 8;
		}
	}
	return check_ports(nexthdr, next, data_end, bytes);
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct ethhdr *eth = data;
	struct config *cfg;
	__u32 zero = 0;
	__be16 proto;
	void *l3;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg && cfg->trusted_ifindex && ctx->ingress_ifindex == cfg->trusted_ifindex)
		return account(TRUSTED, bytes, XDP_PASS);

	if ((void *)(eth + 1) > data_end)
		return account(MALFORMED, bytes, XDP_PASS);
	proto = eth->h_proto;
	l3 = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vlan = l3;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > data_end)
			return account(MALFORMED, bytes, XDP_PASS);
		proto = vlan->h_vlan_encapsulated_proto;
		l3 = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_IP))
		return ipv4(l3, data_end, bytes);
	if (proto == bpf_htons(ETH_P_IPV6))
		return ipv6(l3, data_end, bytes);
	return account(NOT_IP, bytes, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
