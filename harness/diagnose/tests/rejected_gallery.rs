//! Every program of `sample-programs/rejected/` (one common mistake each),
//! diagnosed from the logs five kernels wrote for it
//! (`testdata/<program>/<kernel>.log`), with its source from the gallery.
//!
//! The C line is the line of the failing instruction: the kernels from 6.9
//! on print it (`@ null_check.bpf.c:24`); on 5.10 and 6.1 it is found from
//! the note's text in the source, and is unknown without the source.

use std::{fs, path::PathBuf};

use harness_diagnose::{Cause, Diagnosis, Evidence, diagnose, diagnose_with};

const KERNELS: [&str; 6] = ["5.10", "6.1", "6.12", "7.2", "7.3", "6.18"];

fn manifest(parts: &[&str]) -> PathBuf {
    std::iter::once(env!("CARGO_MANIFEST_DIR"))
        .chain(parts.iter().copied())
        .collect()
}

fn read(path: PathBuf) -> String {
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether this kernel's source notes carry `@ file:line`.
fn prints_lines(kernel: &str) -> bool {
    !matches!(kernel, "5.10" | "6.1")
}

/// What the diagnosis of one gallery program must say on every kernel.
struct Expected {
    program: &'static str,
    cause: Cause,
    /// The failing instruction (see [`OTHER_INSN`] for exceptions).
    insn: Option<usize>,
    /// Its C line in `sample-programs/rejected/<program>.bpf.c`.
    line: Option<u32>,
}

/// Where a kernel stops at another instruction than the others.
const OTHER_INSN: &[(&str, &str, usize)] = &[
    // 7.2 and 7.3 see the loop one instruction earlier, at the load of the flag.
    ("busy_wait", "7.2", 8),
    ("busy_wait", "7.3", 8),
];

fn insn_on(want: &Expected, kernel: &str) -> Option<usize> {
    OTHER_INSN
        .iter()
        .find(|(p, k, _)| *p == want.program && *k == kernel)
        .map(|(_, _, insn)| *insn)
        .or(want.insn)
}

fn gallery() -> Vec<Expected> {
    use Cause::*;
    let e = |program, cause, insn, line| Expected {
        program,
        cause,
        insn,
        line,
    };
    vec![
        e("null_check", NullDeref, Some(7), Some(24)),
        e("short_bounds_check", PacketBounds, Some(6), Some(22)),
        e("busy_wait", UnboundedLoop, Some(9), Some(26)),
        // Found after the walk: no instruction, no line.
        e("deep_stack", StackTooLarge, None, None),
        e("uninit_register", UninitRegister, Some(0), Some(17)),
        // The exit both returns share; the kernel printed its note on a
        // path whose log level 1 discards, so the nearest note is the
        // branch the leaking path took (line 21), not the return (22).
        e("socket_leak", LeakedReference, Some(23), Some(21)),
        e("skb_helper_in_xdp", InvalidHelper, Some(7), Some(16)),
        e("gpl_probe_read", GplOnly, Some(7), Some(18)),
        e("cgroup_skb_classid", BadCtxAccess, Some(0), Some(13)),
        e("xdp_ctx_write", BadCtxAccess, Some(2), Some(13)),
        e("rodata_write", ReadonlyMapWrite, Some(5), Some(17)),
        e("misaligned_stack", MisalignedAccess, Some(4), Some(23)),
        e(
            "variable_stack_offset",
            VariableStackAccess,
            Some(21),
            Some(28),
        ),
        e("modified_ctx", ModifiedCtx, Some(7), Some(15)),
        // The exit is the function's closing brace in the line info.
        e("connect_errno", ReturnRange, Some(4), Some(16)),
        // As socket_leak: the branch (31) rather than the return (32).
        e("lock_at_exit", LockHeldAtExit, Some(18), Some(31)),
        e("call_under_lock", CallUnderLock, Some(11), Some(29)),
        e("signed_length", HelperSizeZero, Some(20), Some(31)),
        e("kprobe_deref", ScalarDeref, Some(1), Some(23)),
        e("negative_index", UnboundedPointerMath, Some(14), Some(28)),
        e("key_by_value", ArgTypeMismatch, Some(3), Some(20)),
        e("pkt_end_arith", PointerArithProhibited, Some(2), Some(15)),
        e("stale_packet_pointer", ScalarDeref, Some(12), Some(22)),
        e("unbounded_index", UnboundedMemAccess, Some(12), Some(27)),
        e(
            "cgroup_packet_write",
            PacketWriteNotAllowed,
            Some(6),
            Some(20),
        ),
        // `bpf_sk_release(sk);` is on lines 23 and 25: 5.10 and 6.1 give
        // the text only, placed by the notes before it.
        e("double_release", ArgTypeMismatch, Some(21), Some(25)),
        e("nullable_arith", NullablePointerArith, Some(12), Some(34)),
        e("pointer_half_read", RegisterFillSize, Some(8), Some(27)),
        e("ringbuf_on_perf_array", MapTypeMismatch, Some(8), Some(21)),
        // Worded three ways: 5.10, 6.1 to 6.18, 7.2.
        e("release_skb_sk", ReleaseUnacquired, Some(4), Some(21)),
    ]
}

fn check(want: &Expected, kernel: &str) -> Diagnosis {
    let program = want.program;
    let at = format!("{program} on {kernel}");
    let log = read(manifest(&["testdata", program, &format!("{kernel}.log")]));
    let name = format!("{program}.bpf.c");
    let source = read(manifest(&[
        "..",
        "..",
        "sample-programs",
        "rejected",
        &name,
    ]));
    let d = diagnose_with(&log, &Evidence::default().with_source(&name, &source))
        .unwrap_or_else(|| panic!("{at}: no diagnosis"));
    assert_eq!(d.cause, want.cause, "{at}: {}", d.message);
    assert_eq!(d.fix(), want.cause.fix(), "{at}");
    assert_eq!(
        d.insn.as_ref().map(|i| i.index),
        insn_on(want, kernel),
        "{at}"
    );
    assert_eq!(d.source.as_ref().and_then(|s| s.line), want.line, "{at}");
    if want.line.is_some() {
        let file = d.source.as_ref().and_then(|s| s.file.as_deref());
        assert_eq!(file, Some(name.as_str()), "{at}");
    }
    // Without the source, only the kernel's own notes give a line.
    let bare = diagnose(&log).unwrap_or_else(|| panic!("{at}: no diagnosis"));
    assert_eq!(bare.cause, d.cause, "{at}");
    assert_eq!(
        bare.source.as_ref().and_then(|s| s.line),
        want.line.filter(|_| prints_lines(kernel)),
        "{at}"
    );
    d
}

#[test]
fn every_rejected_program_on_every_kernel() {
    let table = gallery();
    for want in &table {
        for kernel in KERNELS {
            check(want, kernel);
        }
    }
    // Every program of the gallery is in the table, and has its logs.
    let dir = manifest(&["..", "..", "sample-programs", "rejected"]);
    let mut programs: Vec<String> = fs::read_dir(&dir)
        .expect("the rejected gallery")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            Some(name.strip_suffix(".bpf.c")?.to_owned())
        })
        .collect();
    programs.sort();
    let mut listed: Vec<String> = table.iter().map(|w| w.program.to_owned()).collect();
    listed.sort();
    assert_eq!(programs, listed);
    assert!(programs.len() >= 20, "{} programs", programs.len());
}

#[test]
fn the_leaked_socket_points_back_at_its_lookup() {
    let want = gallery()
        .into_iter()
        .find(|w| w.program == "socket_leak")
        .expect("socket_leak");
    for kernel in KERNELS {
        let d = check(&want, kernel);
        let origin = d.origin.expect("the acquiring call");
        assert_eq!(origin.insn.index, 13, "{kernel}");
        assert_eq!(origin.insn.text, "call bpf_sk_lookup_tcp#84", "{kernel}");
        let source = origin.source.expect("its note");
        assert_eq!(source.line, Some(18), "{kernel}");
    }
}

#[test]
fn wordings_that_changed_between_kernels() {
    let message = |program: &str, kernel: &str| {
        let want = gallery()
            .into_iter()
            .find(|w| w.program == program)
            .expect("in the table");
        check(&want, kernel).message
    };
    // One cause, two wordings each: the tests above saw them all classified.
    assert_eq!(
        message("lock_at_exit", "6.12"),
        "bpf_spin_unlock is missing"
    );
    assert_eq!(
        message("lock_at_exit", "7.2"),
        "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region"
    );
    assert_eq!(message("signed_length", "6.1"), "invalid zero-sized read");
    assert_eq!(
        message("signed_length", "6.12"),
        "R4 invalid zero-sized read: u64=[0,4294967295]"
    );
    assert_eq!(
        message("key_by_value", "5.10"),
        "R2 type=inv expected=fp, pkt, pkt_meta, map_value"
    );
    assert_eq!(
        message("misaligned_stack", "7.2"),
        "misaligned stack access off 0+-7 size 4"
    );
    assert_eq!(
        message("skb_helper_in_xdp", "6.1"),
        "unknown func bpf_skb_store_bytes#9"
    );
    assert_eq!(
        message("skb_helper_in_xdp", "6.12"),
        "program of this type cannot use helper bpf_skb_store_bytes#9"
    );
}

#[test]
fn a_packet_pointer_is_gone_after_bpf_xdp_adjust_head() {
    let want = gallery()
        .into_iter()
        .find(|w| w.program == "stale_packet_pointer")
        .expect("stale_packet_pointer");
    for kernel in KERNELS {
        let state = check(&want, kernel).state.expect("a state");
        // The call made R6 a number; the state must not show it as the
        // packet pointer it was before.
        assert!(!state.contains("R6=pkt"), "{kernel}: {state}");
    }
    // 5.10 prints the state after the call itself.
    let d = check(&want, "5.10");
    assert_eq!(d.state.as_deref(), Some("R0=inv1 R6=inv(id=0) R10=fp0"));
}

#[test]
fn a_released_socket_is_not_shown_as_a_socket() {
    let want = gallery()
        .into_iter()
        .find(|w| w.program == "double_release")
        .expect("double_release");
    for kernel in KERNELS {
        let state = check(&want, kernel).state.expect("a state");
        // After the first bpf_sk_release() neither the argument nor its
        // copy in R7 is a socket any more.
        assert!(!state.contains("sock("), "{kernel}: {state}");
        assert!(!state.contains("refs="), "{kernel}: {state}");
    }
}
