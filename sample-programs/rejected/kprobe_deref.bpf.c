// SPDX-License-Identifier: GPL-2.0
/* Mistake: a kprobe reading a kernel struct through the argument
 * directly. To the verifier a pt_regs register is a number, not a pointer.
 */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "verifier.h"

struct file_head {
	__u64 f_u;
	__u64 f_path[2];
	__u64 f_inode;
};

SEC("kprobe/vfs_read")
__rejected("all", "invalid mem access '(inv|scalar)'")
int read_inode(struct pt_regs *ctx)
{
	struct file_head *file = (void *)PT_REGS_PARM1(ctx);

	return file->f_inode != 0;
}

char LICENSE[] SEC("license") = "GPL";
