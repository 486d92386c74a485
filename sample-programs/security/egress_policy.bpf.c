// SPDX-License-Identifier: GPL-2.0
/* Network egress policy on the cgroup socket-address hooks (4.17): a
 * connect() from the cgroup to a destination in `denied_v4`/`denied_v6`
 * fails with EPERM (the hook returns 0); every connect is reported as a
 * connect_event in the `events` ring buffer with its verdict, and each
 * denial is counted per rule in `denials`. A rule's port 0 matches any
 * port: the exact rule is looked up first, then the address alone.
 *
 * Rules hold addresses and ports in network byte order, as bpf_sock_addr's
 * user_ip4/user_ip6/user_port do; the event holds the port in host order.
 *
 * Expected: the connect hooks accepted on 5.10 on (a loader passes the
 * expected attach type, BPF_CGROUP_INET4_CONNECT / INET6_CONNECT, from the
 * section name); add_v4_rule from 5.14 on, when syscall programs arrived.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "verifier.h"

#define AF_INET 2
#define AF_INET6 10

struct v4_rule {
	__be32 addr;
	__be16 port;	/* 0: any */
	__u16 pad;
};

struct v6_rule {
	__u8 addr[16];
	__be16 port;	/* 0: any */
	__u16 pad;
};

struct connect_event {
	__u32 pid;
	__u32 uid;
	__u16 family;
	__u16 port;	/* host order */
	__be32 dst_v4;	/* family 2 */
	__u8 dst_v6[16];	/* family 10 */
	__u32 protocol;
	__s32 verdict;	/* 1 allowed, 0 denied */
	char comm[16];
};

const struct connect_event *unused_connect_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct v4_rule);
	__type(value, __u8);
} denied_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct v6_rule);
	__type(value, __u8);
} denied_v6 SEC(".maps");

/* Denials per rule; the rule as it matched (its port 0 if it was "any"). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct v6_rule);
	__type(value, __u64);
} denials SEC(".maps");

static __always_inline void report(struct bpf_sock_addr *ctx, const __u32 addr[4], int verdict)
{
	struct connect_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = bpf_get_current_uid_gid();
	e->family = ctx->user_family;
	e->port = bpf_ntohs(ctx->user_port);
	if (ctx->user_family == AF_INET)
		e->dst_v4 = addr[0];
	else
		__builtin_memcpy(e->dst_v6, addr, sizeof(e->dst_v6));
	e->protocol = ctx->protocol;
	e->verdict = verdict;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void count(const struct v6_rule *rule)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(&denials, rule);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&denials, rule, &one, BPF_NOEXIST);
}

SEC("cgroup/connect4")
int deny_connect4(struct bpf_sock_addr *ctx)
{
	struct v4_rule rule = { .addr = ctx->user_ip4, .port = ctx->user_port };
	__u32 addr[4] = { ctx->user_ip4 };
	struct v6_rule counted = {};
	int verdict = 1;

	__builtin_memcpy(counted.addr, addr, sizeof(addr));
	if (bpf_map_lookup_elem(&denied_v4, &rule)) {
		counted.port = rule.port;
		verdict = 0;
	} else {
		rule.port = 0;
		if (bpf_map_lookup_elem(&denied_v4, &rule))
			verdict = 0;
	}
	if (!verdict)
		count(&counted);
	report(ctx, addr, verdict);
	return verdict;
}

SEC("cgroup/connect6")
int deny_connect6(struct bpf_sock_addr *ctx)
{
	struct v6_rule rule = {};
	__u32 addr[4];
	int verdict = 1;

	addr[0] = ctx->user_ip6[0];
	addr[1] = ctx->user_ip6[1];
	addr[2] = ctx->user_ip6[2];
	addr[3] = ctx->user_ip6[3];
	__builtin_memcpy(rule.addr, addr, sizeof(addr));
	rule.port = ctx->user_port;
	if (bpf_map_lookup_elem(&denied_v6, &rule)) {
		verdict = 0;
	} else {
		rule.port = 0;
		if (bpf_map_lookup_elem(&denied_v6, &rule))
			verdict = 0;
	}
	if (!verdict)
		count(&rule);
	report(ctx, addr, verdict);
	return verdict;
}

/* A policy loader as a syscall program (5.14): user space hands it a rule
 * as its context through BPF_PROG_TEST_RUN, the way light skeletons load
 * maps, and it writes the rule into denied_v4 from inside the kernel. */
struct rule_args {
	__be32 addr;
	__be16 port;	/* 0: any */
	__u16 pad;
};

SEC("syscall")
__not_loaded("<5.14", "BPF_PROG_TYPE_SYSCALL|program type|syscall")
int add_v4_rule(struct rule_args *args)
{
	struct v4_rule rule = { .addr = args->addr, .port = args->port };
	__u8 one = 1;

	return bpf_map_update_elem(&denied_v4, &rule, &one, BPF_ANY);
}

char LICENSE[] SEC("license") = "GPL";
