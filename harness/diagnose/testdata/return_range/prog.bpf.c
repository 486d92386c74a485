// SPDX-License-Identifier: GPL-2.0
/* Mistake: a cgroup_skb ingress program must return 0 (drop) or 1 (allow);
 * this one returns TC_ACT_SHOT (2), a tc verdict. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define MARK_BLOCKED 0xdead

SEC("cgroup_skb/ingress")
int block_marked(struct __sk_buff *skb)
{
	if (skb->mark == MARK_BLOCKED)
		return TC_ACT_SHOT;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
