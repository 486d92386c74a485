// SPDX-License-Identifier: GPL-2.0
/* Mistake: a cgroup connect hook returning -EPERM. Such hooks return 1
 * to allow and 0 to deny (the caller then sees EPERM).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("cgroup/connect4")
__rejected("all", "At program exit the register R0 has")
int deny_smtp(struct bpf_sock_addr *ctx)
{
	if (ctx->user_port == __builtin_bswap16(25))
		return -1;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
