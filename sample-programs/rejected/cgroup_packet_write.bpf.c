// SPDX-License-Identifier: GPL-2.0
/* Mistake: rewriting packet bytes in a cgroup_skb program, whose packet
 * access is read-only.
 */
#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("cgroup_skb/egress")
__rejected("all", "cannot write into packet")
int clear_tos(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;

	if (data + sizeof(*ip) > data_end)
		return 1;
	ip->tos = 0;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
