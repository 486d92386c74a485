// SPDX-License-Identifier: GPL-2.0
/* Mistake: a packet pointer used after bpf_xdp_adjust_head(). Helpers
 * that change the packet invalidate every packet pointer taken before.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("xdp")
__rejected("all", "invalid mem access '(inv|scalar)'")
int pop_tag(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if (data + sizeof(*eth) + 4 > data_end)
		return XDP_PASS;
	if (bpf_xdp_adjust_head(ctx, 4))
		return XDP_DROP;
	eth->h_proto = __builtin_bswap16(ETH_P_IP);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
