// SPDX-License-Identifier: GPL-2.0
/* Feature: a program the verifier gives up on. A bounded loop (5.3) is
 * walked iteration by iteration; this one mixes a packet's first 64
 * bytes into `flags`, each round choosing one of three constants to mix
 * with by the (unknown) data, then branching on the (known) result. A
 * branch decided by a constant makes the verifier track that register
 * precisely, so no two paths through the loop are alike and none can be
 * pruned: the paths triple every round. (The helper call in that branch
 * keeps clang from turning it into branch-free arithmetic.) It is the
 * shape of real parsers (TCP options, IPv6 extension headers) that grow
 * past the limit when a loop bound is raised.
 *
 * Expected: rejected on every kernel: "BPF program is too large.
 * Processed 1000001 insn" (the limit of one million processed
 * instructions, 5.2 on), errno E2BIG. It takes the verifier about two
 * seconds to give up.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

#define ROUNDS 64

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} scores SEC(".maps");

SEC("xdp")
__rejected("all", "BPF program is too large. Processed 1000001 insn")
int score(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u32 flags = 0, odd = 0, i, key;
	__u64 *s;

	if (p + ROUNDS > (__u8 *)data_end)
		return XDP_PASS;
	for (i = 0; i < ROUNDS; i++) {
		__u8 b = p[i];

		if (b & 0x80)
			flags = flags * 3 + 1;
		else if (b & 0x40)
			flags = flags * 5 + 2;
		else
			flags = flags * 7 + 3;
		/* Decided from the constant in flags: flags becomes precise. */
		if (flags & 0x100)
			odd += bpf_get_smp_processor_id();
	}
	key = (flags ^ odd) & 0xff;
	s = bpf_map_lookup_elem(&scores, &key);
	if (s)
		*s += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
