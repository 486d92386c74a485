// SPDX-License-Identifier: GPL-2.0
/* Feature: kprobe.multi (kernel >= 5.18, libbpf >= 0.8): one program
 * attached to many functions at once through a BPF_LINK_TYPE_KPROBE_MULTI
 * link (fprobe), here every vfs_* function, with bpf_get_func_ip
 * (5.15 for kprobes) telling which function fired. Loaded as a kprobe
 * program with expected_attach_type BPF_TRACE_KPROBE_MULTI. Beside it,
 * the classic single kprobe/kretprobe pair on the same function.
 *
 * Expected: all accepted on 6.1 on. On 5.10 the multi program is
 * rejected, not for its attach type (the kernel ignores a kprobe's
 * expected_attach_type before 5.18) but for bpf_get_func_ip ("unknown
 * func bpf_get_func_ip#173"); the plain kprobes are accepted there.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u64);	/* function address */
	__type(value, u64);	/* calls */
} calls SEC(".maps");

u64 bytes_asked;
u64 read_errors;

SEC("kprobe.multi/vfs_*")
/* bpf_get_func_ip() from kprobes came in 5.15. */
__rejected("<5.15", "invalid func unknown#173")
int count_vfs(struct pt_regs *ctx)
{
	u64 ip = bpf_get_func_ip(ctx), one = 1, *n;

	n = bpf_map_lookup_elem(&calls, &ip);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &ip, &one, BPF_NOEXIST);
	return 0;
}

/* ssize_t vfs_read(struct file *file, char __user *buf, size_t count, loff_t *pos) */
SEC("kprobe/vfs_read")
int BPF_KPROBE(vfs_read_entry, struct file *file, char *buf, size_t count)
{
	__sync_fetch_and_add(&bytes_asked, count);
	return 0;
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(vfs_read_exit, long ret)
{
	if (ret < 0)
		__sync_fetch_and_add(&read_errors, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
