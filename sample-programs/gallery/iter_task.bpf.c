// SPDX-License-Identifier: GPL-2.0
/* Feature: BPF iterators (5.8): SEC("iter/task") walks every task and
 * writes text to a seq_file with BPF_SEQ_PRINTF (bpf_seq_printf, 5.8), a
 * `ps` in BPF as in the kernel's bpf_iter selftests and bpftool's
 * `pids` iterator.
 *
 * Expected: accepted on 5.10 on (BPF_PROG_TYPE_TRACING with
 * expected_attach_type BPF_TRACE_ITER; the target bpf_iter_task must be
 * in the kernel's BTF). No trampoline is involved: it loads even where
 * fentry programs are refused.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	/* NULL once, after the last task. */
	if (!task)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "%8s %8s %s\n", "tgid", "pid", "comm");
	BPF_SEQ_PRINTF(seq, "%8d %8d %s\n", task->tgid, task->pid, task->comm);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
