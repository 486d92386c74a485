// SPDX-License-Identifier: GPL-2.0
/* Mistake: a socket found with bpf_sk_lookup_tcp() is released on one
 * path only; the early return for a listening socket keeps the reference.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("tc")
__rejected("all", "Unreleased reference id=[0-9]+ alloc_insn=[0-9]+")
int has_listener(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;

	tuple.ipv4.dport = __builtin_bswap16(80);
	sk = bpf_sk_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return TC_ACT_SHOT;
	if (sk->state == 10)
		return TC_ACT_OK;
	bpf_sk_release(sk);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
