//! Where the value at fault came from, on every kernel's real log: the use-
//! def trace through copies, spills and fills to what made the value.

use std::{fs, path::PathBuf};

use harness_diagnose::{Evidence, StepKind, diagnose_with};

const KERNELS: [&str; 6] = ["5.10", "6.1", "6.12", "7.2", "7.3", "6.18"];

fn testdata(dir: &str, file: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", dir, file]
        .iter()
        .collect();
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every kernel's log of `dir` (levels 1 and 2 where both exist), diagnosed
/// with the C source at hand.
fn each_log(dir: &str, check: impl Fn(&str, harness_diagnose::Diagnosis)) {
    let source = testdata(dir, "prog.bpf.c");
    for kernel in KERNELS {
        for file in [format!("{kernel}.log"), format!("{kernel}.level2.log")] {
            let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", dir, &file]
                .iter()
                .collect();
            let Ok(log) = fs::read_to_string(&path) else {
                continue;
            };
            let at = format!("{dir}/{file}");
            let d = diagnose_with(
                &log,
                &Evidence::default().with_source("prog.bpf.c", &source),
            )
            .unwrap_or_else(|| panic!("{at}: no diagnosis"));
            check(&at, d);
        }
    }
}

#[test]
fn a_null_dereference_traces_back_to_the_lookup() {
    each_log("null_deref", |at, d| {
        let root = d.trace.first().unwrap_or_else(|| panic!("{at}: no trace"));
        assert_eq!(
            root.step,
            StepKind::Call {
                register: 0,
                function: "bpf_map_lookup_elem".into()
            },
            "{at}"
        );
        assert_eq!(root.source.as_ref().and_then(|s| s.line), Some(19), "{at}");
        assert_eq!(
            d.because.as_deref(),
            Some(
                "R0 may be NULL: it is the result of bpf_map_lookup_elem() at line 19, \
                 not checked for NULL before this use"
            ),
            "{at}"
        );
    });
}

#[test]
fn a_scalar_dereference_traces_back_to_the_load_of_the_number() {
    each_log("scalar_deref", |at, d| {
        let root = d.trace.first().unwrap_or_else(|| panic!("{at}: no trace"));
        assert!(
            matches!(root.step, StepKind::Load { .. }),
            "{at}: {:?}",
            d.trace
        );
        assert!(
            d.because
                .as_deref()
                .is_some_and(|b| b.contains("is a number, not a pointer")),
            "{at}: {:?}",
            d.because
        );
    });
}

#[test]
fn a_return_value_out_of_range_traces_back_to_the_constant() {
    each_log("return_range", |at, d| {
        let root = d.trace.first().unwrap_or_else(|| panic!("{at}: no trace"));
        assert!(
            matches!(&root.step, StepKind::Constant { register: 0, .. }),
            "{at}: {:?}",
            d.trace
        );
    });
}

#[test]
fn a_leak_has_no_register_trace_but_its_origin_is_the_acquiring_call() {
    each_log("ringbuf_leak", |at, d| {
        assert!(d.trace.is_empty(), "{at}");
        let steps = d.origin_steps();
        assert_eq!(steps.len(), 1, "{at}");
        assert_eq!(steps[0].insn.text, "call bpf_ringbuf_reserve#131", "{at}");
    });
}

#[test]
fn a_map_value_overrun_says_which_bytes_of_how_many() {
    each_log("map_value_bounds", |at, d| {
        assert_eq!(
            d.because.as_deref(),
            Some(
                "the access may cover bytes 128 to 135 of a 128-byte value: the offset \
                 (often a variable index) is not bounded tightly enough"
            ),
            "{at}"
        );
    });
}
