// SPDX-License-Identifier: GPL-2.0
/* Feature: CO-RE. A vmlinux.h-style header (include/vmlinux.h, every
 * struct preserve_access_index), BPF_CORE_READ chains, and
 * bpf_core_field_exists to pick between task_struct::__state (5.14 on) and
 * the older task_struct::state, resolved by libbpf against the kernel's
 * BTF at load time. An exec tracer in the style of libbpf-bootstrap's
 * `bootstrap` example, with three attach points for the same event.
 *
 * Expected:
 *   - raw_tp/sched_process_exec: accepted on every kernel with BTF (5.10
 *     on; raw_tp reads through bpf_probe_read_kernel);
 *   - tp_btf/sched_process_exec: BPF_PROG_TYPE_TRACING, accepted on 5.10
 *     on where the kernel has BTF;
 *   - fentry/do_exit: also tracing, but through a BPF trampoline:
 *     accepted on 5.10 on (x86-64); refused with EPERM and an empty log
 *     on kernels that cannot attach trampolines (the development host's
 *     6.18 refuses every fentry, fexit, fmod_ret and lsm program so).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* The field was renamed in 5.14: an older kernel's view of task_struct. */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

struct exec_event {
	pid_t pid;
	pid_t ppid;
	u32 state;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, pid_t);
	__type(value, struct exec_event);
} execs SEC(".maps");

static __always_inline u32 task_state(struct task_struct *task)
{
	if (bpf_core_field_exists(task->__state))
		return BPF_CORE_READ(task, __state);
	return BPF_CORE_READ((struct task_struct___old *)task, state);
}

static __always_inline int record(struct task_struct *task)
{
	struct exec_event e = {};

	e.pid = BPF_CORE_READ(task, tgid);
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.state = task_state(task);
	BPF_CORE_READ_STR_INTO(&e.comm, task, comm);
	bpf_map_update_elem(&execs, &e.pid, &e, BPF_ANY);
	return 0;
}

/* TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return record(p);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_raw, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return record(p);
}

/* The task is gone from the table when it exits. */
SEC("fentry/do_exit")
int BPF_PROG(exit_fentry, long code)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	pid_t pid = BPF_CORE_READ(task, tgid);

	if (BPF_CORE_READ(task, pid) == pid)
		bpf_map_delete_elem(&execs, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
