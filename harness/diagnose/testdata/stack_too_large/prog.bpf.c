// SPDX-License-Identifier: GPL-2.0
/* Mistake: each function stays under clang's 512-byte stack limit, but the
 * call chain needs more than the verifier's 512 bytes in total. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define HEAD 256
#define BODY 320

static __attribute__((noinline)) __u32 checksum(struct __sk_buff *skb, __u32 offset)
{
	__u8 buf[BODY];
	__u32 sum = 0;
	int i;

	if (bpf_skb_load_bytes(skb, offset, buf, sizeof(buf)))
		return 0;
	for (i = 0; i < BODY; i += 32)
		sum += buf[i];
	return sum;
}

SEC("classifier")
int mark_by_payload(struct __sk_buff *skb)
{
	__u8 head[HEAD];
	__u32 sum;

	if (bpf_skb_load_bytes(skb, 0, head, sizeof(head)))
		return TC_ACT_OK;
	sum = head[0] + checksum(skb, HEAD);
	skb->mark = sum;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
