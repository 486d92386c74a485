// SPDX-License-Identifier: GPL-2.0
/* Mistake: computing with data_end. It may only be compared with; the
 * check must move the packet pointer instead.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("xdp")
__rejected("all", "pointer arithmetic on pkt_end prohibited")
int min_size(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	volatile void *last = data_end - 60;

	if (last < data)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
