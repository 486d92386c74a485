// SPDX-License-Identifier: MIT
/* Mistake: bpf_probe_read_kernel() is GPL-only, and this object declares
 * an MIT license.
 */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "verifier.h"

SEC("kprobe/vfs_read")
__rejected("all", "cannot call GPL-restricted function from non-GPL compatible program")
int count_reads(struct pt_regs *ctx)
{
	void *file = (void *)PT_REGS_PARM1(ctx);
	__u32 mode = 0;

	bpf_probe_read_kernel(&mode, sizeof(mode), file + 20);
	return mode;
}

char LICENSE[] SEC("license") = "MIT";
