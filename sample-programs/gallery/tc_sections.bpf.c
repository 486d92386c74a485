// SPDX-License-Identifier: GPL-2.0
/* Feature: the libbpf >= 1.0 names of tc programs.
 *
 * SEC("tc") is what libbpf-bootstrap's tc example uses (libbpf 1.0 made it
 * the name of BPF_PROG_TYPE_SCHED_CLS; aya and older loaders only know
 * "classifier"). SEC("tcx/ingress") and SEC("tcx/egress") are the names of
 * the tcx hooks (bpf_mprog, kernel 6.6): libbpf loads them as sched_cls
 * with expected_attach_type BPF_TCX_INGRESS/EGRESS.
 *
 * Expected: all three accepted on every kernel with BPF (5.10 on) by a
 * loader that knows the names: the kernel ignores a sched_cls program's
 * expected_attach_type, so tcx programs load before 6.6; only attaching
 * them needs 6.6.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} ipv4_packets SEC(".maps");

static __always_inline void count_ipv4(struct __sk_buff *skb, __u32 dir)
{
	__u64 *count;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return;
	count = bpf_map_lookup_elem(&ipv4_packets, &dir);
	if (count)
		*count += 1;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = (void *)(long)skb->data;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	count_ipv4(skb, 0);
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int tcx_ingress(struct __sk_buff *skb)
{
	count_ipv4(skb, 0);
	/* TCX_NEXT: hand over to the next program of the chain. */
	return -1;
}

SEC("tcx/egress")
int tcx_egress(struct __sk_buff *skb)
{
	count_ipv4(skb, 1);
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
