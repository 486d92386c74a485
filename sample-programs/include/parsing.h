/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by the sample programs: headers and small parsing helpers. */
#ifndef SAMPLE_PARSING_H
#define SAMPLE_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* An 802.1Q/802.1ad tag (linux/if_vlan.h is not a UAPI header). */
struct vlan_hdr {
	__be16 h_vlan_tci;
	__be16 h_vlan_encapsulated_proto;
};

/* IPv4 fragment offset and "more fragments" bits of iphdr.frag_off. */
#define IP_OFFSET_MASK 0x1fff
#define IP_MF 0x2000

/* Keys of LPM tries: a prefix length, then the address in network order. */
struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

#endif
