// SPDX-License-Identifier: GPL-2.0
/* Mistake: bpf_ringbuf_output() on a PERF_EVENT_ARRAY, the map of
 * bpf_perf_event_output(), left over from a port to the ring buffer.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("xdp")
__rejected("all", "cannot pass map_type 4 into func bpf_ringbuf_output#130")
int report_ifindex(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;

	bpf_ringbuf_output(&events, &ifindex, sizeof(ifindex), 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
