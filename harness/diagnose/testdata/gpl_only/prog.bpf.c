// SPDX-License-Identifier: MIT
/* Mistake: bpf_printk() (bpf_trace_printk) is a GPL-only helper, and this
 * program's license is not GPL-compatible. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NR_OPENAT 257

SEC("raw_tp/sys_enter")
int trace_openat(struct bpf_raw_tracepoint_args *ctx)
{
	long id = ctx->args[1];

	if (id != NR_OPENAT)
		return 0;
	bpf_printk("openat by pid %d", bpf_get_current_pid_tgid() >> 32);
	return 0;
}

char LICENSE[] SEC("license") = "MIT";
