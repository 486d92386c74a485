// SPDX-License-Identifier: GPL-2.0
/* Mistake: a socket released twice, once inside the branch and once at
 * the end.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("tc")
__rejected("all", "expected=sock")
int release_twice(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	int verdict = TC_ACT_OK;

	sk = bpf_sk_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return TC_ACT_OK;
	if (sk->state == 10) {
		verdict = TC_ACT_SHOT;
		bpf_sk_release(sk);
	}
	bpf_sk_release(sk);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
