// SPDX-License-Identifier: GPL-2.0
/* Feature: lightweight tunnel programs (4.10), run on routes with
 * `ip route add ... encap bpf in|out|xmit obj ... section ...`:
 * SEC("lwt_in") on input, SEC("lwt_xmit") on transmit (which may push
 * an encapsulation header with bpf_lwt_push_encap, 4.18) and
 * SEC("lwt_out") on output. Per-route accounting and a mark-based drop,
 * in the style of the kernel's test_lwt_bpf samples.
 *
 * Expected: all accepted on every kernel of the matrix (5.10 on).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct route_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct route_stats);
} stats SEC(".maps");

static __always_inline void account(struct __sk_buff *skb, __u32 where)
{
	struct route_stats *s = bpf_map_lookup_elem(&stats, &where);

	if (s) {
		s->packets++;
		s->bytes += skb->len;
	}
}

SEC("lwt_in")
int route_in(struct __sk_buff *skb)
{
	account(skb, 0);
	return skb->mark == 0xdead ? BPF_DROP : BPF_OK;
}

SEC("lwt_out")
int route_out(struct __sk_buff *skb)
{
	account(skb, 1);
	return BPF_OK;
}

SEC("lwt_xmit")
int route_xmit(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	account(skb, 2);
	/* lwt_xmit sees the packet from the network header on. */
	if (data + 1 > data_end)
		return BPF_DROP;
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
