// SPDX-License-Identifier: GPL-2.0
/* A privilege-escalation detector: state across events, through maps.
 * fentry/commit_creds marks a process whose effective uid goes from
 * non-zero to 0 (setresuid(0, 0, 0) after dropping to a saved uid 0, a
 * setuid binary, an exploit) in `escalated`; tp_btf/sched_process_fork
 * hands the mark to its children, as process trees inherit privileges;
 * and tp_btf/sched_process_exec raises an alert_event in `events` when a
 * marked process runs a program, then clears the mark.
 *
 * Expected: accepted on 5.10 on. Refused with EPERM and an empty log on
 * kernels that cannot attach BPF trampolines (the development host's 6.18).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

struct escalation {
	u32 from_euid;
	u32 to_euid;
	u64 when_ns;
};

struct alert_event {
	u32 pid;
	u32 from_euid;
	char comm[16];
	char filename[64];
};

const struct alert_event *unused_alert_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);	/* tgid */
	__type(value, struct escalation);
} escalated SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("fentry/commit_creds")
int BPF_PROG(track_creds, struct cred *new)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct escalation esc = {
		.from_euid = BPF_CORE_READ(task, cred, euid.val),
		.to_euid = BPF_CORE_READ(new, euid.val),
	};

	if (esc.from_euid == 0 || esc.to_euid != 0)
		return 0;
	esc.when_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&escalated, &tgid, &esc, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(inherit_mark, struct task_struct *parent, struct task_struct *child)
{
	u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	struct escalation *esc;

	if (ptgid == ctgid)
		return 0;	/* a thread */
	esc = bpf_map_lookup_elem(&escalated, &ptgid);
	if (esc)
		bpf_map_update_elem(&escalated, &ctgid, esc, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(alert_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u32 tgid = BPF_CORE_READ(p, tgid);
	struct escalation *esc = bpf_map_lookup_elem(&escalated, &tgid);
	struct alert_event *e;

	if (!esc)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		__builtin_memset(e, 0, sizeof(*e));
		e->pid = tgid;
		e->from_euid = esc->from_euid;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
					  BPF_CORE_READ(bprm, filename));
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&escalated, &tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
