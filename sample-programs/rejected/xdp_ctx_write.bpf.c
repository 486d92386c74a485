// SPDX-License-Identifier: GPL-2.0
/* Mistake: moving the packet start by writing ctx->data. The XDP context
 * is read-only; bpf_xdp_adjust_head() moves the start.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("xdp")
__rejected("all", "invalid bpf_context access off=0 size=4")
int strip_vlan(struct xdp_md *ctx)
{
	ctx->data += 4;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
