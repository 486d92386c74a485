// SPDX-License-Identifier: GPL-2.0
/* Mistake: handing a helper a pointer into the context (&skb->mark)
 * instead of the context itself. Helpers take the context unmodified.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("tc")
__rejected("all", "dereference of modified ctx ptr R1 off=0? ?[0-9]+ disallowed")
int first_byte(struct __sk_buff *skb)
{
	__u8 b = 0;

	bpf_skb_load_bytes(&skb->mark, 0, &b, 1);
	return b;
}

char LICENSE[] SEC("license") = "GPL";
