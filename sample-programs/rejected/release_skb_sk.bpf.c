// SPDX-License-Identifier: GPL-2.0
/* Mistake: releasing skb->sk. The program did not acquire it (only
 * bpf_sk_lookup_*() and the like do), so it must not release it.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("tc")
__rejected("all", "reference has not been acquired before|must be referenced when passed to release function|expects referenced PTR_TO_BTF_ID")
int skb_owner(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	int verdict = TC_ACT_OK;

	if (!sk)
		return TC_ACT_OK;
	if (sk->state == 10)
		verdict = TC_ACT_SHOT;
	bpf_sk_release(sk);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
