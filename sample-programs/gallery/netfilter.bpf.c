// SPDX-License-Identifier: GPL-2.0
/* Feature: BPF_PROG_TYPE_NETFILTER (kernel >= 6.4, libbpf >= 1.2:
 * SEC("netfilter")): a netfilter hook in BPF, attached with a
 * BPF_LINK_TYPE_NETFILTER link (protocol family, hook, priority). The
 * context is struct bpf_nf_ctx (hook state and skb), read through BTF;
 * the return value is a netfilter verdict. A counter per hook that
 * accepts everything, the skeleton of an nftables-free filter.
 *
 * Expected: accepted on 6.4 on (6.12, 7.2); on 5.10 and 6.1 the kernel
 * does not know the program type (EINVAL), and a libbpf older than 1.2
 * does not know the section.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "verifier.h"

#define NF_DROP 0
#define NF_ACCEPT 1

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, u32);
	__type(value, u64);
} per_hook SEC(".maps");

SEC("netfilter")
__not_loaded("<6.4", "does not know netfilter programs")
int nf_count(struct bpf_nf_ctx *ctx)
{
	const struct nf_hook_state *state = ctx->state;
	struct sk_buff *skb = ctx->skb;
	u32 hook = state->hook;
	u64 *n;

	if (hook >= 8)
		return NF_ACCEPT;
	n = bpf_map_lookup_elem(&per_hook, &hook);
	if (n)
		*n += skb->len;
	return NF_ACCEPT;
}

char LICENSE[] SEC("license") = "GPL";
