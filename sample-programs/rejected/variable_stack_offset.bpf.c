// SPDX-License-Identifier: GPL-2.0
/* Mistake: a stack buffer indexed by a value from the packet masked to
 * 0..255, while the buffer has 64 bytes.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[64]);
} last SEC(".maps");

SEC("xdp")
__rejected("all", "variable.offset|variable stack access")
int histogram(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u8 hist[64] = {};
	__u32 key = 0;

	if (p + 1 > (__u8 *)data_end)
		return XDP_PASS;
	hist[p[0] & 0xff] = 1;
	bpf_map_update_elem(&last, &key, hist, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
