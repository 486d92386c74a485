// SPDX-License-Identifier: GPL-2.0
/* Mistake: an inline asm barrier that claims to produce a value but never
 * writes it. The compiler trusts the asm and returns that register as it
 * is: the verifier sees R0 read before anything was written to it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("xdp")
__rejected("all", "R0 !read_ok")
int verdict(struct xdp_md *ctx)
{
	int action;

	asm volatile("" : "=r"(action));
	return action;
}

char LICENSE[] SEC("license") = "GPL";
