// SPDX-License-Identifier: GPL-2.0
/* Mistake: a socket filter tries to rewrite the packet with
 * bpf_skb_store_bytes(), a helper only tc and lwt programs may call. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int clear_tos(struct __sk_buff *skb)
{
	__u8 tos = 0;

	bpf_skb_store_bytes(skb, 1, &tos, sizeof(tos), 0);
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
