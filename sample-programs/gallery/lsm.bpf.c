// SPDX-License-Identifier: GPL-2.0
/* Feature: BPF LSM programs (kernel >= 5.7, CONFIG_BPF_LSM, "bpf" in the
 * lsm= list to run them): lsm/file_open, and the sleepable lsm.s/ form
 * (5.11) that may fault user memory in. A Tetragon-style policy: files
 * named `secret` may only be opened by one process, and every exec's uid
 * is recorded by a sleepable hook.
 *
 * Expected: accepted on 5.11 on (lsm.s before 5.11: "Only fentry/fexit/
 * fmod_ret and lsm programs can be sleepable"); lsm/file_open on 5.10 on.
 * Loading needs BTF and BPF_PROG_TYPE_LSM, not the lsm= list: attaching
 * does. Refused with EPERM and an empty log on kernels that cannot
 * attach BPF trampolines (the development host's 6.18).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define EPERM 1

const volatile pid_t protected_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, pid_t);
	__type(value, u32);
} exec_uids SEC(".maps");

/* The previous verdict (ret) is kept: LSM hooks chain. */
SEC("lsm/file_open")
int BPF_PROG(deny_protected, struct file *file, int ret)
{
	char name[8] = {};
	pid_t tgid = bpf_get_current_pid_tgid() >> 32;

	if (ret)
		return ret;
	if (!protected_tgid || tgid == protected_tgid)
		return 0;
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
	if (name[0] == 's' && name[1] == 'e' && name[2] == 'c' && name[3] == 'r' &&
	    name[4] == 'e' && name[5] == 't' && name[6] == 0)
		return -EPERM;
	return 0;
}

SEC("lsm.s/bprm_committed_creds")
int BPF_PROG(record_exec, struct linux_binprm *bprm)
{
	pid_t tgid = bpf_get_current_pid_tgid() >> 32;
	u32 uid = bpf_get_current_uid_gid();

	bpf_map_update_elem(&exec_uids, &tgid, &uid, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
