// SPDX-License-Identifier: GPL-2.0
/* Egress policy for a cgroup.
 *
 * IPv4 destinations are looked up in an LPM trie whose longest matching
 * prefix decides (ALLOW or DENY: a /16 can be allowed inside a denied /8).
 * Outgoing SMTP (TCP 25) is denied unless the packet carries the
 * "privileged" mark. IPv6 is not policed. Counts packets per destination
 * port per CPU. Returns 1 to let a packet out and 0 to drop it; packets too
 * short to judge are dropped (fail closed).
 *
 * A cgroup_skb program sees the packet from the network header on.
 */
#include "parsing.h"

#define MARK_PRIVILEGED 0x1
#define SMTP_PORT 25

enum action {
	ACTION_ALLOW = 1,
	ACTION_DENY = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, enum action);
} policy_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, __u16); /* destination port, host order */
	__type(value, __u64);
} egress_ports SEC(".maps");

SEC("cgroup_skb/egress")
int egress_policy(struct __sk_buff *skb)
{
	struct lpm_v4_key key = { .prefixlen = 32 };
	struct iphdr ip;
	enum action *action;
	__be16 ports[2];
	__u64 one = 1, *n;
	__u16 dport;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
		return 0;
	__builtin_memcpy(key.addr, &ip.daddr, sizeof(key.addr));
	action = bpf_map_lookup_elem(&policy_v4, &key);
	if (action && *action == ACTION_DENY)
		return 0;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return 1;
	if (ip.ihl < 5 || bpf_skb_load_bytes(skb, ip.ihl * 4, ports, sizeof(ports)))
		return 0;
	dport = bpf_ntohs(ports[1]);
	n = bpf_map_lookup_elem(&egress_ports, &dport);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&egress_ports, &dport, &one, BPF_NOEXIST);
	if (ip.protocol == IPPROTO_TCP && dport == SMTP_PORT && !(skb->mark & MARK_PRIVILEGED))
		return 0;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
