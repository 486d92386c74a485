// SPDX-License-Identifier: GPL-2.0
/* Exec monitor, the process-execution half of a Tetragon-style sensor: on
 * every exec (tp_btf/sched_process_exec, 5.5) an exec_event with the new
 * program's pid, parent, credentials, comm, file name and the head of its
 * argv goes to the `events` ring buffer (5.8), unless its comm is in the
 * `allowed_comms` allow-list; `stats` counts what was sent, allowed and
 * dropped because the ring buffer was full.
 *
 * on_exec_tp reports the same through a classic tracepoint into a perf
 * event array, as tools written before ring buffers do.
 *
 * count_syscalls (raw_tp/sys_enter) counts system calls by number, from
 * its scalar argument only, so a case can drive it with crafted arguments
 * through BPF_PROG_TEST_RUN.
 *
 * Expected: accepted on 5.10 on.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define TASK_COMM_LEN 16
#define ARGS_LEN 64

struct exec_event {
	u32 pid;
	u32 ppid;
	u32 uid;
	u32 gid;
	char comm[TASK_COMM_LEN];
	char filename[64];
	char args[ARGS_LEN];	/* argv, NUL-separated, as /proc/PID/cmdline */
};

/* Ring buffers carry no type: name it so it lands in BTF for decoders. */
const struct exec_event *unused_exec_event __attribute__((unused));

enum stat { STAT_SENT, STAT_ALLOWED, STAT_DROPPED, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, u8);
} allowed_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, enum stat);
	__type(value, u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, u32);
	__type(value, u64);
} syscall_counts SEC(".maps");

static __always_inline void count(enum stat which)
{
	u64 *n = bpf_map_lookup_elem(&stats, &which);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	char comm[TASK_COMM_LEN] = {};
	struct exec_event *e;
	unsigned long start, end, len;

	bpf_get_current_comm(comm, sizeof(comm));
	if (bpf_map_lookup_elem(&allowed_comms, comm)) {
		count(STAT_ALLOWED);
		return 0;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_DROPPED);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = BPF_CORE_READ(p, tgid);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->uid = BPF_CORE_READ(p, cred, uid.val);
	e->gid = BPF_CORE_READ(p, cred, gid.val);
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	start = BPF_CORE_READ(p, mm, arg_start);
	end = BPF_CORE_READ(p, mm, arg_end);
	/* At most ARGS_LEN - 1 bytes, so the head always ends in a NUL; the
	 * mask is what the verifier sees as the bound. */
	len = end - start;
	if (len >= ARGS_LEN)
		len = ARGS_LEN - 1;
	bpf_probe_read_user(e->args, len & (ARGS_LEN - 1), (void *)start);
	bpf_ringbuf_submit(e, 0);
	count(STAT_SENT);
	return 0;
}

/* The same exec, the way tools that predate ring buffers (5.8) report it:
 * a classic tracepoint and a perf event array, one perf ring per CPU. */
struct exec_sample {
	u32 pid;
	u32 uid;
	char comm[TASK_COMM_LEN];
};

const struct exec_sample *unused_exec_sample __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} perf_events SEC(".maps");

SEC("tracepoint/sched/sched_process_exec")
int on_exec_tp(void *ctx)
{
	struct exec_sample s = {};

	s.pid = bpf_get_current_pid_tgid() >> 32;
	s.uid = bpf_get_current_uid_gid();
	bpf_get_current_comm(s.comm, sizeof(s.comm));
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &s, sizeof(s));
	return 0;
}

SEC("raw_tp/sys_enter")
int count_syscalls(struct bpf_raw_tracepoint_args *ctx)
{
	u32 id = ctx->args[1];
	u64 one = 1, *n = bpf_map_lookup_elem(&syscall_counts, &id);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&syscall_counts, &id, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
