// SPDX-License-Identifier: GPL-2.0
/* Feature: fentry/fexit programs driven by BPF_PROG_TEST_RUN's tracing
 * mode (5.5): a test run of an fentry or fexit program makes the kernel
 * call its own bpf_fentry_test1(1) (and friends), so programs attached
 * there see a crafted call with known arguments and return value.
 * test_progs' fentry_test works this way.
 *
 * Expected: accepted on 5.10 on. Refused with EPERM and an empty log on
 * kernels that cannot attach BPF trampolines (the development host's 6.18).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

enum seen { ARGUMENT, RETURN_VALUE, CALLS, SEEN_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SEEN_MAX);
	__type(key, enum seen);
	__type(value, u64);
} seen SEC(".maps");

static __always_inline void store(enum seen what, u64 value)
{
	u64 *slot = bpf_map_lookup_elem(&seen, &what);

	if (slot)
		*slot = value;
}

SEC("fentry/bpf_fentry_test1")
int BPF_PROG(on_entry, int a)
{
	enum seen calls = CALLS;
	u64 *n = bpf_map_lookup_elem(&seen, &calls);

	if (n)
		__sync_fetch_and_add(n, 1);
	store(ARGUMENT, a);
	return 0;
}

SEC("fexit/bpf_fentry_test1")
int BPF_PROG(on_exit, int a, int ret)
{
	store(RETURN_VALUE, ret);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
