// SPDX-License-Identifier: GPL-2.0
/* Feature: BPF_PROG_TYPE_SK_LOOKUP (5.9), attached to a network
 * namespace: it picks the listening socket for an incoming connection
 * with bpf_sk_assign, so one socket can serve many ports or addresses
 * (Cloudflare's use, and the kernel's test_sk_lookup). Ports to steer
 * come from a hash; the socket from a SOCKMAP user space fills.
 *
 * Expected: accepted on every kernel of the matrix (5.10 on).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);	/* local port, host order */
	__type(value, __u8);
} steered_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} server SEC(".maps");

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
	__u16 port = ctx->local_port;
	__u32 zero = 0;
	struct bpf_sock *sk;
	long err;

	if (ctx->protocol != 6 /* IPPROTO_TCP */)
		return SK_PASS;
	if (!bpf_map_lookup_elem(&steered_ports, &port))
		return SK_PASS;
	sk = bpf_map_lookup_elem(&server, &zero);
	if (!sk)
		return SK_PASS;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err ? SK_DROP : SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
