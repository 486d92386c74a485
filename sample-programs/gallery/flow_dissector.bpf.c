// SPDX-License-Identifier: GPL-2.0
/* Feature: a BPF flow dissector (4.20), which replaces the kernel's own
 * for a network namespace: it fills the struct bpf_flow_keys the kernel
 * hands it. BPF_PROG_TEST_RUN runs it on a crafted frame and returns the
 * keys as its output. IPv4 only, without options; TCP and UDP ports.
 *
 * Expected: accepted on 5.10 on.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* clang records a struct only pointed to from a context as a forward
 * declaration: naming it here puts its layout in BTF for the case's
 * expect.flow_keys. */
const struct bpf_flow_keys *unused_flow_keys __attribute__((unused));

/* A header at a variable offset: in the linear data when it is there
 * (always, under BPF_PROG_TEST_RUN, which has no skb to copy from), else
 * copied into `copy`. The offset is bounded first, or the verifier cannot
 * tell that `data + off` stays a packet pointer. */
static __always_inline void *header(struct __sk_buff *skb, __u16 off, __u16 size, void *copy)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *hdr;

	if (off > 0xffff - size)
		return 0;
	hdr = data + off;
	if ((void *)(hdr + size) <= end)
		return hdr;
	if (bpf_skb_load_bytes(skb, off, copy, size))
		return 0;
	return copy;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;
	struct iphdr ip_copy, *ip;
	__u16 ports_copy[2], *ports;

	if (keys->n_proto != bpf_htons(ETH_P_IP))
		return BPF_DROP;
	/* The network header starts where the kernel says: after Ethernet. */
	ip = header(skb, keys->nhoff, sizeof(*ip), &ip_copy);
	if (!ip || ip->ihl != 5)
		return BPF_DROP;
	keys->addr_proto = bpf_htons(ETH_P_IP);
	keys->ipv4_src = ip->saddr;
	keys->ipv4_dst = ip->daddr;
	keys->ip_proto = ip->protocol;
	keys->is_frag = !!(ip->frag_off & bpf_htons(0x3fff));
	keys->thoff = keys->nhoff + sizeof(*ip);
	if (keys->is_frag || (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return BPF_OK;
	ports = header(skb, keys->thoff, sizeof(ports_copy), ports_copy);
	if (!ports)
		return BPF_DROP;
	keys->sport = ports[0];
	keys->dport = ports[1];
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
