// SPDX-License-Identifier: GPL-2.0
/* Mistake: a raw tracepoint argument is a plain number to the verifier; it
 * is dereferenced directly instead of read with bpf_probe_read_kernel(). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_arg SEC(".maps");

SEC("raw_tp/sys_enter")
int save_first_arg(struct bpf_raw_tracepoint_args *ctx)
{
	unsigned long *regs = (unsigned long *)ctx->args[0];
	__u32 zero = 0;
	__u64 *slot;

	slot = bpf_map_lookup_elem(&last_arg, &zero);
	if (slot)
		*slot = regs[14]; /* pt_regs->di on x86-64 */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
