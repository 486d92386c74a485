// SPDX-License-Identifier: GPL-2.0
/* Feature: a BPF_MAP_TYPE_PROG_ARRAY initialised in the object (libbpf
 * >= 0.2: `__array(values, ...)` plus `.values = { [i] = &prog }`), so
 * the loader, not user space, fills the jump table after loading the
 * programs. An XDP dispatcher in the style of Cilium's and Katran's
 * tail-called parsers: the entry program parses Ethernet and jumps to the
 * handler of the EtherType; handlers count and pass.
 *
 * Expected: every program accepted on every kernel (tail calls: 4.2,
 * XDP: 4.8); the prog array's slots 0 and 1 hold handle_ipv4 and
 * handle_ipv6 after load, slot 2 stays empty (the jump falls through).
 * A loader that loads one program at a time must skip the slots of
 * programs it did not load: veristat does not, so libbpf fails the
 * object after the verifier accepted the program ("failed to initialize
 * slot [0] to prog 'handle_ipv4' fd=-2: -9") and veristat reports
 * `failure` with a clean log. The kernel also refuses BTF on a prog
 * array (EINVAL); libbpf retries without it.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum { SLOT_IPV4, SLOT_IPV6, SLOT_ARP, SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} handled SEC(".maps");

static __always_inline int count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&handled, &slot);

	if (n)
		*n += 1;
	return XDP_PASS;
}

SEC("xdp")
int handle_ipv4(struct xdp_md *ctx)
{
	return count(SLOT_IPV4);
}

SEC("xdp")
int handle_ipv6(struct xdp_md *ctx)
{
	return count(SLOT_IPV6);
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__array(values, int (void *));
} jump_table SEC(".maps") = {
	.values = {
		[SLOT_IPV4] = (void *)&handle_ipv4,
		[SLOT_IPV6] = (void *)&handle_ipv6,
	},
};

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		bpf_tail_call(ctx, &jump_table, SLOT_IPV4);
		break;
	case bpf_htons(ETH_P_IPV6):
		bpf_tail_call(ctx, &jump_table, SLOT_IPV6);
		break;
	case bpf_htons(ETH_P_ARP):
		bpf_tail_call(ctx, &jump_table, SLOT_ARP);
		break;
	}
	/* No handler (or an empty slot): let the stack have it. */
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
