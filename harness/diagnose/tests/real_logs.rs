//! Every log in `testdata/`, as six kernels printed it, diagnosed.
//!
//! Source lines: 5.10 and 6.1 print source notes without `@ file:line`, so
//! on those kernels the line is known only when the C source is given
//! (found by its text); 6.12, 7.2, 7.3 and 6.18 print file and line
//! themselves. 7.3 adds its own explanation after the classic line, which
//! must not change what is read from the classic line.

use std::{fs, path::PathBuf};

use harness_diagnose::{Cause, Diagnosis, Evidence, diagnose, diagnose_with};

const KERNELS: [&str; 6] = ["5.10", "6.1", "6.12", "7.2", "7.3", "6.18"];

fn testdata(dir: &str, file: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", dir, file]
        .iter()
        .collect();
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether this kernel's source notes carry `@ file:line`.
fn prints_lines(kernel: &str) -> bool {
    !matches!(kernel, "5.10" | "6.1")
}

/// What one log must give.
#[derive(Clone, Copy)]
struct Expected<'a> {
    cause: Cause,
    message: &'a str,
    insn: Option<(usize, &'a str)>,
    /// The C line of the failing instruction, with the source given.
    line: Option<u32>,
}

/// Diagnoses `testdata/<dir>/<file>` with and without the C source and
/// checks both against `want`.
fn check(dir: &str, kernel: &str, file: &str, want: Expected<'_>) -> Diagnosis {
    let log = testdata(dir, file);
    let source = testdata(dir, "prog.bpf.c");
    let at = format!("{dir}/{file}");
    let d = diagnose_with(
        &log,
        &Evidence::default().with_source("prog.bpf.c", &source),
    )
    .unwrap_or_else(|| panic!("{at}: no diagnosis"));
    assert_eq!(d.cause, want.cause, "{at}");
    assert_eq!(d.message, want.message, "{at}");
    assert_eq!(d.fix(), want.cause.fix(), "{at}");
    assert_eq!(
        d.insn.as_ref().map(|i| (i.index, i.text.as_str())),
        want.insn,
        "{at}"
    );
    assert_eq!(d.source.as_ref().and_then(|s| s.line), want.line, "{at}");
    if let Some(source) = &d.source {
        let file = if prints_lines(kernel) {
            format!("diag_{dir}.bpf.c")
        } else {
            "prog.bpf.c".to_owned()
        };
        assert_eq!(
            source.file.as_deref(),
            want.line.map(|_| file.as_str()),
            "{at}"
        );
    }
    // Without the source, only the kernel's own notes give a line.
    let bare = diagnose(&log).unwrap_or_else(|| panic!("{at}: no diagnosis"));
    let kernel_line = if prints_lines(kernel) {
        want.line
    } else {
        None
    };
    assert_eq!(
        bare.source.as_ref().and_then(|s| s.line),
        kernel_line,
        "{at}"
    );
    assert_eq!(bare.cause, d.cause, "{at}");
    d
}

fn each_kernel(dir: &str, want: impl Fn(&str) -> Expected<'static>) {
    for kernel in KERNELS {
        check(dir, kernel, &format!("{kernel}.log"), want(kernel));
    }
}

fn each_level2(dir: &str, want: impl Fn(&str) -> Expected<'static>) {
    for kernel in KERNELS {
        check(dir, kernel, &format!("{kernel}.level2.log"), want(kernel));
    }
}

fn null_deref(_: &str) -> Expected<'static> {
    Expected {
        cause: Cause::NullDeref,
        message: "R0 invalid mem access 'map_value_or_null'",
        insn: Some((7, "r1 = *(u64 *)(r0 +0)")),
        line: Some(20),
    }
}

#[test]
fn null_deref_after_map_lookup() {
    each_kernel("null_deref", null_deref);
    each_level2("null_deref", null_deref);
    let d = check("null_deref", "6.12", "6.12.log", null_deref("6.12"));
    assert_eq!(
        d.state.as_deref(),
        Some("R0=map_value_or_null(id=1,map=rx_packets,ks=4,vs=8) R10=fp0 fp-8=mmmm????")
    );
    // 5.10 prints no state at level 1 here.
    let d = check("null_deref", "5.10", "5.10.log", null_deref("5.10"));
    assert_eq!(d.state, None);
}

fn packet_bounds(kernel: &str) -> Expected<'static> {
    Expected {
        cause: Cause::PacketBounds,
        // 7.2 on word the second line as for any other memory region.
        message: if matches!(kernel, "7.2" | "7.3") {
            "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)\n\
             R1 min value is outside of the allowed memory range"
        } else {
            "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)\nR1 offset is outside of the packet"
        },
        insn: Some((1, "r2 = *(u8 *)(r1 +12)")),
        line: Some(14),
    }
}

#[test]
fn packet_read_without_data_end_check() {
    each_kernel("packet_bounds", packet_bounds);
    each_level2("packet_bounds", packet_bounds);
    let d = check("packet_bounds", "6.18", "6.18.log", packet_bounds("6.18"));
    assert_eq!(d.state.as_deref(), Some("R1=pkt(r=0) R10=fp0"));
}

fn ringbuf_leak(kernel: &str) -> Expected<'static> {
    Expected {
        cause: Cause::LeakedReference,
        // 6.13 added a second line; 7.2, 7.3 and 6.18 print it (7.3 with
        // its explanation between the two).
        message: if matches!(kernel, "7.2" | "7.3" | "6.18") {
            "Unreleased reference id=2 alloc_insn=4\nBPF_EXIT instruction in main prog would lead to reference leak"
        } else {
            "Unreleased reference id=2 alloc_insn=4"
        },
        insn: Some((21, "exit")),
        // At level 1 the kernel prints no note for the leaking return: it
        // printed the note of line 33 on the path it then discarded, and
        // does not repeat it. The nearest note is the branch, line 27.
        line: Some(27),
    }
}

#[test]
fn ringbuf_record_leaked_on_one_path() {
    each_kernel("ringbuf_leak", ringbuf_leak);
    // Level 2 keeps every path, and with it the note of the return.
    each_level2("ringbuf_leak", |k| Expected {
        line: Some(33),
        ..ringbuf_leak(k)
    });
    for kernel in KERNELS {
        let d = check(
            "ringbuf_leak",
            kernel,
            &format!("{kernel}.log"),
            ringbuf_leak(kernel),
        );
        let origin = d.origin.expect("the acquiring call");
        assert_eq!(origin.insn.index, 4);
        assert_eq!(origin.insn.text, "call bpf_ringbuf_reserve#131");
        let source = origin.source.expect("a note for the call");
        assert_eq!(
            source.text,
            "e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);"
        );
        assert_eq!(source.line, Some(23));
        assert!(
            d.state.as_deref().is_some_and(|s| s.ends_with("refs=2")),
            "{kernel}: {:?}",
            d.state
        );
    }
}

fn infinite_loop(kernel: &str) -> Expected<'static> {
    // 7.2 on notice the loop one instruction earlier, at the load.
    let (message, insn) = if matches!(kernel, "7.2" | "7.3") {
        (
            "infinite loop detected at insn 8",
            (8, "r1 = *(u32 *)(r0 +0)"),
        )
    } else {
        (
            "infinite loop detected at insn 9",
            (9, "if r1 == 0x0 goto pc-2"),
        )
    };
    Expected {
        cause: Cause::UnboundedLoop,
        message,
        insn: Some(insn),
        line: Some(23),
    }
}

#[test]
fn busy_wait_loop() {
    each_kernel("infinite_loop", infinite_loop);
    each_level2("infinite_loop", infinite_loop);
    // 6.12 on print the state at the loop themselves (`cur state:`).
    let d = check("infinite_loop", "7.2", "7.2.log", infinite_loop("7.2"));
    assert_eq!(
        d.state.as_deref(),
        Some("R0=map_value(map=enabled,ks=4,vs=4) R10=fp0")
    );
    // Older ones stop after instruction 8 ran without printing what it did.
    let d = check("infinite_loop", "6.1", "6.1.log", infinite_loop("6.1"));
    assert_eq!(d.state, None);
}

fn map_value_bounds(_: &str) -> Expected<'static> {
    Expected {
        cause: Cause::MapValueBounds,
        message: "invalid access to map value, value_size=128 off=128 size=8\n\
                  R0 max value is outside of the allowed memory range",
        insn: Some((12, "r1 = *(u64 *)(r0 +0)")),
        line: Some(29),
    }
}

#[test]
fn off_by_one_index_into_map_value() {
    each_kernel("map_value_bounds", map_value_bounds);
    each_level2("map_value_bounds", map_value_bounds);
    let d = check(
        "map_value_bounds",
        "6.1",
        "6.1.log",
        map_value_bounds("6.1"),
    );
    assert_eq!(
        d.state.as_deref(),
        Some(
            "R0=map_value(off=0,ks=4,vs=128,umax=128,var_off=(0x0; 0xf8),s32_max=248,u32_max=248) \
             R6=scalar(umax=128,var_off=(0x0; 0xf8)) R10=fp0 fp-8=0000????"
        )
    );
}

#[test]
fn helper_the_program_type_may_not_call() {
    each_kernel("helper_not_allowed", |kernel| Expected {
        cause: Cause::InvalidHelper,
        // Reworded in 6.10.
        message: if prints_lines(kernel) {
            "program of this type cannot use helper bpf_skb_store_bytes#9"
        } else {
            "unknown func bpf_skb_store_bytes#9"
        },
        insn: Some((9, "call bpf_skb_store_bytes#9")),
        line: Some(12),
    });
}

#[test]
fn gpl_only_helper_without_gpl_license() {
    each_kernel("gpl_only", |_| Expected {
        cause: Cause::GplOnly,
        message: "cannot call GPL-restricted function from non-GPL compatible program",
        insn: Some((8, "call bpf_trace_printk#6")),
        line: Some(16),
    });
}

#[test]
fn socket_filter_reads_skb_data() {
    each_kernel("bad_ctx_access", |_| Expected {
        cause: Cause::BadCtxAccess,
        message: "invalid bpf_context access off=80 size=4",
        insn: Some((1, "r3 = *(u32 *)(r1 +80)")),
        line: Some(14),
    });
}

#[test]
fn cgroup_skb_returns_a_tc_verdict() {
    each_kernel("return_range", |kernel| Expected {
        cause: Cause::ReturnRange,
        // A tnum up to 6.5, a [min, max] range later.
        message: if prints_lines(kernel) {
            "At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]"
        } else {
            "At program exit the register R0 has value (0x2; 0x0) should have been in (0x0; 0x1)"
        },
        insn: Some((4, "exit")),
        line: Some(16),
    });
}

#[test]
fn raw_tracepoint_argument_dereferenced() {
    each_kernel("scalar_deref", |kernel| Expected {
        cause: Cause::ScalarDeref,
        // `inv` became `scalar` in 5.18.
        message: if kernel == "5.10" {
            "R6 invalid mem access 'inv'"
        } else {
            "R6 invalid mem access 'scalar'"
        },
        insn: Some((9, "r1 = *(u64 *)(r6 +112)")),
        line: Some(23),
    });
}

#[test]
fn call_chain_over_512_bytes_of_stack() {
    // Found after a successful walk, whose log level 1 discards: no
    // instruction, source or state to point at.
    each_kernel("stack_too_large", |_| Expected {
        cause: Cause::StackTooLarge,
        message: "combined stack size of 2 calls is 576. Too large",
        insn: None,
        line: None,
    });
}

#[test]
fn uninitialised_key_padding_is_accepted_as_root() {
    // CAP_PERFMON lets every kernel here read uninitialised stack: the
    // program loads, and its log holds only statistics.
    for kernel in KERNELS {
        let log = testdata("uninit_stack_key", &format!("{kernel}.log"));
        assert_eq!(diagnose(&log), None, "{kernel}");
    }
}
