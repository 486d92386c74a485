// SPDX-License-Identifier: GPL-2.0
/* Mistake: a length kept in an `int`, capped from above only, passed as a
 * helper's size. It may still be 0 or negative (then, as the helper's
 * __u32, huge): the verifier wants 1 <= len <= sizeof(buf).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, int);
} snaplen SEC(".maps");

SEC("tc")
__rejected("all", "invalid zero-sized read")
int snapshot(struct __sk_buff *skb)
{
	__u8 buf[64];
	__u32 key = 0;
	int *want = bpf_map_lookup_elem(&snaplen, &key);
	int len;

	if (!want)
		return 0;
	len = *want;
	if (len > (int)sizeof(buf))
		len = sizeof(buf);
	bpf_skb_load_bytes(skb, 0, buf, len);
	return buf[0];
}

char LICENSE[] SEC("license") = "GPL";
