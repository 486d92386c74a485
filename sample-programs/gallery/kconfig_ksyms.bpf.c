// SPDX-License-Identifier: GPL-2.0
/* Feature: externs that libbpf resolves at load time.
 *   - __kconfig (libbpf >= 0.0.8): LINUX_KERNEL_VERSION, filled from the
 *     running kernel, and CONFIG_* values from /proc/config.gz or
 *     /boot/config-$(uname -r); __weak ones are 0 when absent.
 *   - .ksyms (libbpf >= 0.2, kernel >= 5.10): a typed ksym, the per-CPU
 *     variable bpf_prog_active found in the kernel's BTF, read through
 *     bpf_this_cpu_ptr.
 *   - a kfunc (kernel >= 6.2: bpf_cast_to_kern_ctx) declared __ksym __weak
 *     and called only behind bpf_ksym_exists(), so the same object loads
 *     where the kfunc is missing (libbpf >= 1.2 leaves the call poisoned
 *     in dead code).
 *
 * Expected: kernel_facts accepted on every kernel with BTF (5.10 on) and
 * CONFIG_KALLSYMS_ALL (Debian's kernels): the kernel finds the address
 * of a typed data ksym through kallsyms, so without it the load fails
 * with ENOENT and "ldimm64 failed to find the address for kernel symbol
 * 'bpf_prog_active'" (the development host's 6.18). libbpf reads the
 * kernel config for CONFIG_HZ and CONFIG_BPF_JIT (both __weak: 0 when no
 * config is found); LINUX_KERNEL_VERSION needs none.
 * skb_len accepted on every kernel: through the kfunc on 6.2 on, through
 * __sk_buff before.
 * Neither is loaded on 7.3, Debian's release candidate: libbpf takes
 * LINUX_KERNEL_VERSION from `Debian X.Y.Z` in `uname -v` or `X.Y.Z` in
 * `uname -r`, and 7.3~rc7-1~exp1 (release 7.3-cloud-amd64) has three
 * numbers in neither, so libbpf refuses the object ("failed to get kernel
 * version").
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "gallery.h"
#include "verifier.h"

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_JIT __kconfig __weak;
extern int CONFIG_HZ __kconfig __weak;

extern const int bpf_prog_active __ksym;

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

struct facts {
	u32 version;
	u32 hz;
	bool jit;
	int active;
};

struct facts facts;

SEC("raw_tp/sys_enter")
/* A typed __ksym is object-wide: on a kernel whose BTF has no per-CPU
 * variables (5.10) libbpf prepares neither program. */
__not_loaded("<5.11", "'bpf_prog_active': not found in kernel BTF")
__not_loaded("7.3", "'LINUX_KERNEL_VERSION': failed to get kernel version")
int kernel_facts(void *ctx)
{
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	facts.version = LINUX_KERNEL_VERSION;
	facts.hz = CONFIG_HZ;
	facts.jit = CONFIG_BPF_JIT;
	facts.active = *active;
	return 0;
}

u64 bytes;

SEC("tc")
__not_loaded("<5.11", "'bpf_prog_active': not found in kernel BTF")
__not_loaded("7.3", "'LINUX_KERNEL_VERSION': failed to get kernel version")
int skb_len(struct __sk_buff *ctx)
{
	if (bpf_ksym_exists(bpf_cast_to_kern_ctx)) {
		struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);

		bytes += skb->len;
	} else {
		bytes += ctx->len;
	}
	return 0; /* TC_ACT_OK */
}

char LICENSE[] SEC("license") = "GPL";
