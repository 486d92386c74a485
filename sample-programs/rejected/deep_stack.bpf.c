// SPDX-License-Identifier: GPL-2.0
/* Mistake: two functions that each keep a 320-byte buffer on the stack,
 * one calling the other. Each frame fits in 512 bytes; the chain does not.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

static __noinline int checksum(struct __sk_buff *skb)
{
	__u8 buf[320];
	int i, sum = 0;

	if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)))
		return 0;
	for (i = 0; i < sizeof(buf); i += 64)
		sum += buf[i];
	return sum;
}

SEC("tc")
__rejected("all", "combined stack size of 2 calls is [0-9]+. Too large")
int sum_headers(struct __sk_buff *skb)
{
	__u8 hdr[320];

	if (bpf_skb_load_bytes(skb, 0, hdr, sizeof(hdr)))
		return 0;
	return hdr[0] + hdr[319] + checksum(skb);
}

char LICENSE[] SEC("license") = "GPL";
