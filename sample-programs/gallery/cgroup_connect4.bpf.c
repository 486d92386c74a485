// SPDX-License-Identifier: GPL-2.0
/* Feature: cgroup socket-address hooks: SEC("cgroup/connect4") (4.17)
 * rewrites the destination of connect() for sockets of a cgroup, the
 * socket-level load balancing of Cilium (bpf_sock.c) and Calico; with
 * its reverse, SEC("cgroup/getpeername4") (5.8), so the application sees
 * the address it asked for.
 *
 * Expected: both accepted on every kernel of the matrix (5.10 on); a
 * loader must pass expected_attach_type BPF_CGROUP_INET4_CONNECT /
 * BPF_CGROUP_INET4_GETPEERNAME, which libbpf takes from the section.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct frontend {
	__u32 addr;	/* network order */
	__u16 port;	/* network order */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct frontend);
	__type(value, struct frontend);	/* the backend */
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct frontend);	/* the backend */
	__type(value, struct frontend);	/* the frontend */
} reverse SEC(".maps");

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	struct frontend key = {
		.addr = ctx->user_ip4,
		.port = ctx->user_port,
	};
	struct frontend *backend;

	if (ctx->protocol != 6 && ctx->protocol != 17)
		return 1;
	backend = bpf_map_lookup_elem(&services, &key);
	if (!backend)
		return 1;
	ctx->user_ip4 = backend->addr;
	ctx->user_port = backend->port;
	return 1; /* allow */
}

SEC("cgroup/getpeername4")
int getpeername4(struct bpf_sock_addr *ctx)
{
	struct frontend key = {
		.addr = ctx->user_ip4,
		.port = ctx->user_port,
	};
	struct frontend *front = bpf_map_lookup_elem(&reverse, &key);

	if (front) {
		ctx->user_ip4 = front->addr;
		ctx->user_port = front->port;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
