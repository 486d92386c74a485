// SPDX-License-Identifier: GPL-2.0
/* Mistake: a `const volatile` setting (in .rodata, frozen by libbpf
 * before the load) is written by the program through a cast.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

const volatile __u32 sample_rate = 100;

SEC("xdp")
__rejected("all", "write into map forbidden")
int sample(struct xdp_md *ctx)
{
	/* Reset by the first packet of interface 1. */
	if (ctx->ingress_ifindex == 1)
		*(volatile __u32 *)&sample_rate = 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
