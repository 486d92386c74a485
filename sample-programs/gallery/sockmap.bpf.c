// SPDX-License-Identifier: GPL-2.0
/* Feature: SOCKMAP and SOCKHASH with the programs that run on them:
 * sk_skb/stream_parser and sk_skb/stream_verdict (4.14) redirecting
 * received data between sockets, and sk_msg (4.17) steering what a
 * socket sends. A sockmap proxy in the style of Cilium's socket-level
 * load balancing and the kernel's sockmap samples: connections are keyed
 * by their 4-tuple in the SOCKHASH, proxied pairs by index in the SOCKMAP.
 *
 * Expected: every program accepted on every kernel of the matrix (5.10
 * on); sk_skb and sk_msg programs are attached to a map, not a hook, so
 * loading needs no live socket.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct sock_key {
	__u32 sip4;
	__u32 dip4;
	__u32 sport;
	__u32 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} proxy_pair SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct sock_key);
	__type(value, __u64);
} connections SEC(".maps");

/* The whole skb is one message: no framing. */
SEC("sk_skb/stream_parser")
int parse(struct __sk_buff *skb)
{
	return skb->len;
}

/* Data received on one side of the pair is sent out of the other. */
SEC("sk_skb/stream_verdict")
int verdict(struct __sk_buff *skb)
{
	__u32 peer = skb->local_port == 10000 ? 1 : 0;

	return bpf_sk_redirect_map(skb, &proxy_pair, peer, 0);
}

/* A message sent to a local peer skips the TCP/IP stack. */
SEC("sk_msg")
int redirect_local(struct sk_msg_md *msg)
{
	struct sock_key peer = {
		.sip4 = msg->remote_ip4,
		.dip4 = msg->local_ip4,
		.sport = msg->remote_port,
		.dport = msg->local_port,
	};

	if (msg->family != 2 /* AF_INET */)
		return SK_PASS;
	bpf_msg_redirect_hash(msg, &connections, &peer, BPF_F_INGRESS);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
