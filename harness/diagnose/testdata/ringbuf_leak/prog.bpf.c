// SPDX-License-Identifier: GPL-2.0
/* Mistake: a ring buffer record is reserved, and one early return neither
 * submits nor discards it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 uid;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("raw_tp/sched_process_exec")
int report_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct event *e;
	__u64 uid_gid;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	uid_gid = bpf_get_current_uid_gid();
	if ((__u32)uid_gid == 0)
		return 0; /* root: not reported, but the record stays reserved */
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)uid_gid;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
