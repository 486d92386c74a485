/* SPDX-License-Identifier: GPL-2.0 */
/* What the gallery's programs share beyond libbpf's headers. */
#ifndef GALLERY_H
#define GALLERY_H

/* libbpf >= 1.2 defines bpf_ksym_exists() in bpf_helpers.h; Debian 12's
 * libbpf-dev (1.1) does not. The address of a __weak extern that libbpf
 * could not resolve is 0, and a branch on it is dead code the verifier
 * never walks, so a kfunc call behind it loads on kernels without it. */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

#endif
