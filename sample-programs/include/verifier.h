/* SPDX-License-Identifier: GPL-2.0 */
/* Expected verifier outcomes, checked by `cargo xtask test` and `verify`.
 *
 *   SEC("xdp")
 *   __rejected("<5.17", "invalid func unknown#181")
 *   __accepted(">=5.17")
 *   int prog(struct xdp_md *ctx) { ... }
 *
 *   SEC("fentry/tcp_v4_connect")
 *   __not_loaded("7.2", "attach target")
 *   int probe(void *ctx) { ... }
 *
 * `__not_loaded` is for programs the harness cannot even hand to the kernel
 * there (an attach target missing from that kernel's BTF, ...); its message
 * is searched for in the reason. Kernel ranges: all, 6.1, >=5.17, <5.17, 5.10..6.1 (end excluded).
 * Messages are regular expressions searched for in the verifier log. The
 * macros become BTF decl tags the harness reads from the object. Without an
 * expectation, a program is expected to be accepted everywhere.
 */
#ifndef SAMPLE_VERIFIER_H
#define SAMPLE_VERIFIER_H

#define __accepted(kernels) __attribute__((btf_decl_tag("harness:accepted:" kernels)))
#define __rejected(kernels, msg) __attribute__((btf_decl_tag("harness:rejected:" kernels ":" msg)))
#define __not_loaded(kernels, msg) __attribute__((btf_decl_tag("harness:not_loaded:" kernels ":" msg)))

#endif
