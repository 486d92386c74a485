// SPDX-License-Identifier: GPL-2.0
/* Feature: uprobes as libbpf-bootstrap's `uprobe` example writes them:
 * SEC("uprobe") and SEC("uretprobe") without a target (attached by hand
 * with bpf_program__attach_uprobe), and an auto-attach section naming the
 * binary and function (libbpf >= 0.8: "uprobe/PATH:FUNCTION", the path
 * starting with '/'). Loaded as BPF_PROG_TYPE_KPROBE: the target matters
 * only when attaching.
 *
 * Expected: all accepted on every kernel of the matrix (5.10 on).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);	/* tgid */
	__type(value, u64);	/* bytes allocated */
} allocated SEC(".maps");

u64 last_result;

SEC("uprobe")
int BPF_KPROBE(func_entry, int a, int b)
{
	last_result = a + b;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(func_exit, int ret)
{
	last_result = ret;
	return 0;
}

/* void *malloc(size_t size) */
SEC("uprobe//usr/lib/x86_64-linux-gnu/libc.so.6:malloc")
int BPF_KPROBE(malloc_entry, size_t size)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u64 *total = bpf_map_lookup_elem(&allocated, &tgid);

	if (total)
		__sync_fetch_and_add(total, size);
	else
		bpf_map_update_elem(&allocated, &tgid, &size, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
