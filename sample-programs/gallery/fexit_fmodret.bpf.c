// SPDX-License-Identifier: GPL-2.0
/* Feature: BPF trampolines beyond fentry: fexit/ (5.5) sees the
 * arguments and the return value; fmod_ret/ (5.7) runs before the
 * function and may replace its return value, on functions marked
 * ALLOW_ERROR_INJECTION and on security_* hooks. The style of
 * libbpf-bootstrap's `fentry` example (do_unlinkat), plus fault injection
 * into an LSM hook for one process.
 *
 * Expected: accepted on 5.10 on where tracing programs are allowed and
 * both targets are in the kernel's BTF (the verifier takes their
 * prototypes from there, not from this file); refused with EPERM and an
 * empty log on kernels that cannot attach BPF trampolines (the
 * development host's 6.18).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "verifier.h"

#define EACCES 13

const volatile pid_t target_tgid = 0;

struct unlink_result {
	char name[32];
	long ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, pid_t);
	__type(value, struct unlink_result);
} unlinks SEC(".maps");

SEC("fexit/do_unlinkat")
/* Debian 7.2's BTF has no do_unlinkat: the attach target is gone. */
__not_loaded(">=7.2", "kernel BTF type ID of .do_unlinkat.")
int BPF_PROG(unlink_exit, int dfd, struct filename *name, long ret)
{
	struct unlink_result r = { .ret = ret };
	pid_t tgid = bpf_get_current_pid_tgid() >> 32;

	bpf_probe_read_kernel_str(r.name, sizeof(r.name), BPF_CORE_READ(name, name));
	bpf_map_update_elem(&unlinks, &tgid, &r, BPF_ANY);
	return 0;
}

/* Fail every open of the target process with EACCES: a fault injector. */
SEC("fmod_ret/security_file_open")
int BPF_PROG(fail_open, struct file *file, int ret)
{
	pid_t tgid = bpf_get_current_pid_tgid() >> 32;

	if (target_tgid && tgid == target_tgid)
		return -EACCES;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
