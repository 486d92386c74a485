// SPDX-License-Identifier: GPL-2.0
/* Mistake: calling a helper while holding a bpf_spin_lock. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct stamp {
	struct bpf_spin_lock lock;
	__u64 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stamp);
} stamps SEC(".maps");

SEC("tc")
__rejected("all", "function calls are not allowed while holding a lock")
int stamp_locked(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct stamp *s = bpf_map_lookup_elem(&stamps, &key);

	if (!s)
		return 0;
	bpf_spin_lock(&s->lock);
	s->last = bpf_ktime_get_ns();
	bpf_spin_unlock(&s->lock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
