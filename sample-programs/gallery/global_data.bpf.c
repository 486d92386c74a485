// SPDX-License-Identifier: GPL-2.0
/* Feature: global variables (libbpf >= 0.0.6, kernel >= 5.2): .data
 * (initialised), .rodata (`const volatile`, set by the loader or a
 * skeleton before load and then frozen, so the verifier prunes on it),
 * .bss (zeroed), and a custom data section SEC(".data.custom")
 * (libbpf >= 0.6 makes one map per `.data.*`/`.rodata.*` section).
 * A socket filter with the shape libbpf-bootstrap's `minimal` example
 * gives configuration and counters.
 *
 * Expected: accepted on every kernel of the matrix (5.10 on). With the
 * default .rodata (snap_len = 0) the branch that trims is dead and the
 * verifier never walks it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* .rodata: set before load; 0 keeps whole packets. */
const volatile __u32 snap_len = 0;
const volatile __u32 only_protocol = 0;

/* .data */
__u64 sample_every = 1;

/* .bss */
__u64 seen;
__u64 kept;

/* Its own map, named after the section. */
__u64 trimmed SEC(".data.custom") = 0;

SEC("socket")
int snap(struct __sk_buff *skb)
{
	seen++;
	if (only_protocol && skb->protocol != only_protocol)
		return 0;
	if (sample_every > 1 && seen % sample_every)
		return 0;
	kept++;
	if (snap_len && skb->len > snap_len) {
		trimmed++;
		return snap_len;
	}
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
