// SPDX-License-Identifier: GPL-2.0
/* A forensic probe: who changed credentials (fentry/commit_creds, 5.5)
 * and who opened a TCP connection (kprobe/tcp_connect). Both kinds of
 * record share one ring buffer, `events`, told apart by their first field,
 * `kind` (1: cred_event, 2: tcp_event), as sensors multiplex theirs.
 *
 * Expected: accepted on 5.10 on. on_commit_creds is refused with EPERM and
 * an empty log on kernels that cannot attach BPF trampolines (the
 * development host's 6.18).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

enum kind { KIND_CRED = 1, KIND_TCP = 2 };

struct cred_event {
	u32 kind;
	u32 pid;
	u32 old_uid;
	u32 new_uid;
	u32 old_euid;
	u32 new_euid;
	char comm[16];
};

struct tcp_event {
	u32 kind;
	u32 pid;
	u16 family;
	u16 dport;	/* host order */
	u32 daddr;	/* network order */
	char comm[16];
};

const struct cred_event *unused_cred_event __attribute__((unused));
const struct tcp_event *unused_tcp_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("fentry/commit_creds")
int BPF_PROG(on_commit_creds, struct cred *new)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct cred_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->kind = KIND_CRED;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->old_uid = BPF_CORE_READ(task, cred, uid.val);
	e->old_euid = BPF_CORE_READ(task, cred, euid.val);
	e->new_uid = BPF_CORE_READ(new, uid.val);
	e->new_euid = BPF_CORE_READ(new, euid.val);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("kprobe/tcp_connect")
int BPF_KPROBE(on_tcp_connect, struct sock *sk)
{
	struct tcp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->kind = KIND_TCP;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
