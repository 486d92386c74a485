// SPDX-License-Identifier: GPL-2.0
/* File-access policy, a BPF LSM enforcer (5.7, "bpf" in lsm=): opening a
 * file whose name is in `denied_names` fails with EPERM, and each denial
 * is audited as an audit_event in the `events` ring buffer with the rule
 * that matched; `stats` counts denials and dropped audit records. Names
 * are the dentry's (the last path component), as Tetragon's file policies
 * match on. An empty map denies nothing.
 *
 * Expected: accepted on 5.10 on. Refused with EPERM and an empty log on
 * kernels that cannot attach BPF trampolines (the development host's 6.18).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define EPERM 1
#define NAME_LEN 32

struct audit_event {
	u32 pid;
	u32 uid;
	u32 rule;
	s32 verdict;	/* what the hook returned: -EPERM */
	u64 ino;
	char comm[16];
	char name[NAME_LEN];
};

const struct audit_event *unused_audit_event __attribute__((unused));

enum stat { STAT_DENIED, STAT_DROPPED, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[NAME_LEN]);
	__type(value, u32);	/* rule id */
} denied_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, enum stat);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline void count(enum stat which)
{
	u64 *n = bpf_map_lookup_elem(&stats, &which);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* LSM hooks chain: a previous denial (ret) stands. */
SEC("lsm/file_open")
int BPF_PROG(restrict_open, struct file *file, int ret)
{
	char name[NAME_LEN] = {};
	struct audit_event *e;
	u32 *rule;

	if (ret)
		return ret;
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
	rule = bpf_map_lookup_elem(&denied_names, name);
	if (!rule)
		return 0;
	count(STAT_DENIED);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_DROPPED);
		return -EPERM;
	}
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = bpf_get_current_uid_gid();
	e->rule = *rule;
	e->verdict = -EPERM;
	e->ino = BPF_CORE_READ(file, f_inode, i_ino);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->name, name, sizeof(name));
	bpf_ringbuf_submit(e, 0);
	return -EPERM;
}

char LICENSE[] SEC("license") = "GPL";
