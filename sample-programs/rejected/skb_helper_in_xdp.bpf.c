// SPDX-License-Identifier: GPL-2.0
/* Mistake: bpf_skb_store_bytes() in an XDP program. XDP has no socket
 * buffer; it writes packet bytes through its data pointers.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("xdp")
__rejected("<6.10", "unknown func bpf_skb_store_bytes#9")
__rejected(">=6.10", "program of this type cannot use helper bpf_skb_store_bytes#9")
int clear_tos(struct xdp_md *ctx)
{
	__u8 tos = 0;

	bpf_skb_store_bytes((struct __sk_buff *)ctx, 15, &tos, sizeof(tos), 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
