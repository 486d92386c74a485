// SPDX-License-Identifier: GPL-2.0
/* Mistake: the data_end check covers the Ethernet header only, then the
 * program reads the IPv4 protocol byte 9 bytes past it.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("xdp")
__rejected("all", "invalid access to packet, off=23 size=1")
int drop_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if (data + sizeof(*eth) > data_end)
		return XDP_PASS;
	if (ip->protocol == 17)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
