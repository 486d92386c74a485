// SPDX-License-Identifier: GPL-2.0
/* Mistake: spinning until another program changes a map value. Nothing in
 * the loop changes the state the verifier tracks, so it sees a loop that
 * can never end.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ready SEC(".maps");

SEC("tc")
__rejected("all", "infinite loop detected at insn")
int wait_ready(struct __sk_buff *skb)
{
	__u32 key = 0;
	volatile __u32 *flag = bpf_map_lookup_elem(&ready, &key);

	if (!flag)
		return 0;
	while (*flag == 0)
		;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
