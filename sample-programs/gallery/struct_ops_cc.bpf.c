// SPDX-License-Identifier: GPL-2.0
/* Feature: struct_ops (5.6): a TCP congestion control written in BPF.
 * The SEC(".struct_ops") variable is a BPF_MAP_TYPE_STRUCT_OPS map whose
 * function pointers name SEC("struct_ops/...") programs; libbpf loads
 * each program with attach_btf_id = tcp_congestion_ops and the member's
 * index, then fills the map from the kernel's BTF layout of the struct.
 * A NewReno-like algorithm, in the style of the kernel's bpf_dctcp and
 * bpf_cubic selftests but simpler.
 *
 * Expected: accepted on 5.10 on where the kernel has BTF and the
 * bpf_tcp_ca struct_ops (CONFIG_BPF_JIT, x86-64). The trampolines are
 * made only when the map is updated (registered), which the harness never
 * does, so the programs load even where fentry programs are refused.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define TCP_INFINITE_SSTHRESH 0x7fffffff

static __always_inline struct tcp_sock *tcp_sk(const struct sock *sk)
{
	return (struct tcp_sock *)sk;
}

SEC("struct_ops/gallery_init")
void BPF_PROG(gallery_init, struct sock *sk)
{
	tcp_sk(sk)->snd_ssthresh = TCP_INFINITE_SSTHRESH;
}

SEC("struct_ops/gallery_ssthresh")
u32 BPF_PROG(gallery_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	u32 half = tp->snd_cwnd >> 1;

	return half > 2 ? half : 2;
}

SEC("struct_ops/gallery_cong_avoid")
void BPF_PROG(gallery_cong_avoid, struct sock *sk, u32 ack, u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (tp->snd_cwnd < tp->snd_ssthresh) {
		/* Slow start: one segment per segment acked. */
		tp->snd_cwnd += acked;
		return;
	}
	/* Congestion avoidance: one segment per window. */
	tp->snd_cwnd_cnt += acked;
	if (tp->snd_cwnd_cnt >= tp->snd_cwnd) {
		tp->snd_cwnd_cnt -= tp->snd_cwnd;
		tp->snd_cwnd++;
	}
}

SEC("struct_ops/gallery_undo_cwnd")
u32 BPF_PROG(gallery_undo_cwnd, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	return tp->snd_cwnd > tp->prior_cwnd ? tp->snd_cwnd : tp->prior_cwnd;
}

SEC(".struct_ops")
struct tcp_congestion_ops gallery_reno = {
	.init = (void *)gallery_init,
	.ssthresh = (void *)gallery_ssthresh,
	.cong_avoid = (void *)gallery_cong_avoid,
	.undo_cwnd = (void *)gallery_undo_cwnd,
	.name = "gallery_reno",
};

char LICENSE[] SEC("license") = "GPL";
