// SPDX-License-Identifier: GPL-2.0
/* Feature: maps of maps with the inner map described in BTF
 * (`__array(values, struct {...})`, libbpf >= 0.2), and an outer map
 * initialised in the object with inner maps it also defines. Per-tenant
 * rate tables in the style of Katran's LRU-per-CPU maps: an
 * ARRAY_OF_MAPS indexed by tenant (two tenants preset), and a
 * HASH_OF_MAPS keyed by ifindex that user space fills at run time.
 *
 * Expected: accepted on every kernel (maps of maps: 4.12; BTF-defined
 * inner maps: any kernel, it is libbpf that creates the inner map first).
 * tenants[0] holds tenant_a and tenants[1] tenant_b after load.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct rate_table {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);	/* source IPv4 address */
	__type(value, __u64);	/* packets */
};

struct rate_table tenant_a SEC(".maps");
struct rate_table tenant_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct rate_table);
} tenants SEC(".maps") = {
	.values = { &tenant_a, &tenant_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 64);
	__type(key, __u32);	/* ifindex */
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, 1);
		__type(key, __u32);
		__type(value, __u64);
	});
} per_interface SEC(".maps");

static __always_inline void bump(void *table, __u32 key)
{
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(table, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(table, &key, &one, BPF_NOEXIST);
}

SEC("tc")
int account(struct __sk_buff *skb)
{
	__u32 tenant = skb->mark & 3, zero = 0, ifindex = skb->ifindex;
	__u32 saddr;
	void *table;

	/* The IPv4 source address, behind a 14-byte Ethernet header. */
	if (bpf_skb_load_bytes(skb, 14 + 12, &saddr, sizeof(saddr)))
		return 0;
	table = bpf_map_lookup_elem(&tenants, &tenant);
	if (table)
		bump(table, saddr);
	table = bpf_map_lookup_elem(&per_interface, &ifindex);
	if (table) {
		__u64 *n = bpf_map_lookup_elem(table, &zero);

		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return 0; /* TC_ACT_OK */
}

char LICENSE[] SEC("license") = "GPL";
