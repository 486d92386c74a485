// SPDX-License-Identifier: GPL-2.0
/* Feature: `?`-prefixed sections (libbpf >= 0.8): a program that is not
 * loaded unless the user asks for it (bpf_program__set_autoload(prog,
 * true) before load), the way Tetragon and Cilium keep alternative
 * implementations of one hook in one object.
 *
 * sys_enter_fast reads the syscall id from the raw tracepoint arguments;
 * sys_enter_compat is its fallback, off by default. A plain program sits
 * beside them so the object always loads something.
 *
 * Expected: all accepted on every kernel (raw_tp: 4.17) when loaded; a
 * libbpf-style loader skips the `?` programs by default; veristat loads
 * each program on its own and so verifies them too.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u64);
} syscalls SEC(".maps");

static __always_inline int count(__u64 id)
{
	__u32 key = id;
	__u64 *n = bpf_map_lookup_elem(&syscalls, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/* raw_tp/sys_enter: args[0] is struct pt_regs *, args[1] the syscall id. */
SEC("?raw_tp/sys_enter")
int sys_enter_fast(struct bpf_raw_tracepoint_args *ctx)
{
	return count(ctx->args[1]);
}

SEC("?raw_tp/sys_enter")
int sys_enter_compat(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = ctx->args[1];

	if (id >= 512)
		return 0;
	return count(id);
}

SEC("raw_tp/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
