// SPDX-License-Identifier: GPL-2.0
/* Feature: the XDP redirect maps. DEVMAP (4.14) and DEVMAP_HASH (5.4)
 * to another interface, CPUMAP (4.15) to another CPU's backlog, XSKMAP
 * (4.18) to an AF_XDP socket; and a program that runs on the devmap
 * entry (SEC("xdp/devmap"), expected_attach_type BPF_XDP_DEVMAP, 5.8),
 * as an xdp-tools/xdp-tutorial style forwarding setup does it.
 *
 * Expected: every program accepted on every kernel of the matrix (5.10
 * on). The maps are created empty (their values are ifindexes, CPUs and
 * sockets that only exist at run time); a CPUMAP may not have more
 * entries than NR_CPUS (8192 in Debian's kernels).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} tx_by_ifindex SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Traffic for queue N goes to the AF_XDP socket bound to it, if any. */
SEC("xdp")
int to_xsk(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

/* Spread by RX queue over the CPUs of the cpumap. */
SEC("xdp")
int to_cpu(struct xdp_md *ctx)
{
	return bpf_redirect_map(&cpus, ctx->rx_queue_index % 64, XDP_PASS);
}

/* Forward to the port configured for the ingress interface. */
SEC("xdp")
int to_port(struct xdp_md *ctx)
{
	__u32 port = ctx->ingress_ifindex;

	if (bpf_map_lookup_elem(&tx_by_ifindex, &port))
		return bpf_redirect_map(&tx_by_ifindex, port, 0);
	return bpf_redirect_map(&tx_ports, port & 63, XDP_DROP);
}

/* Runs on the egress side of a devmap entry (bpf_devmap_val.bpf_prog.fd). */
SEC("xdp/devmap")
int on_egress(struct xdp_md *ctx)
{
	return ctx->egress_ifindex ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
