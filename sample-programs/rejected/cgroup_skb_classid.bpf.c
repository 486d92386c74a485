// SPDX-License-Identifier: GPL-2.0
/* Mistake: reading skb->tc_classid in a cgroup_skb program. The field
 * belongs to tc; cgroup programs may not read it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

SEC("cgroup_skb/egress")
__rejected("all", "invalid bpf_context access off=[0-9]+ size=4")
int classid_egress(struct __sk_buff *skb)
{
	if (skb->tc_classid == 0x10001)
		return 0;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
