//! Parsing and diagnosing take any text without panicking: logs cut
//! anywhere, mangled, or not logs at all.

use std::{fs, path::PathBuf};

use harness_diagnose::{Evidence, KernelExplanation, Log, diagnose, diagnose_with};
use proptest::prelude::*;

fn real_logs() -> Vec<String> {
    let root: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata"].iter().collect();
    let mut logs = Vec::new();
    for dir in fs::read_dir(&root).expect("testdata") {
        let dir = dir.expect("entry").path();
        for file in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "log") {
                logs.push(fs::read_to_string(&path).expect("a log"));
            }
        }
    }
    assert!(logs.len() >= 100, "testdata holds {} logs", logs.len());
    logs
}

/// Everything the crate offers, exercised on `text`.
fn exercise(text: &str) {
    let log = Log::parse(text);
    let _ = log.error_lines().count();
    let _ = log.explanation_lines().count();
    if let Some(e) = KernelExplanation::parse(text) {
        let _ = e.to_string();
        let _ = serde_json::to_string(&e).expect("serialisable");
    }
    let source = "int f(void)\n{\n\treturn 0;\n}\n";
    for d in [
        diagnose(text),
        diagnose_with(text, &Evidence::default().with_source("f.c", source)),
    ]
    .into_iter()
    .flatten()
    {
        let _ = d.to_string();
        let _ = serde_json::to_string(&d).expect("serialisable");
    }
}

proptest! {
    #[test]
    fn any_text(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn log_shaped_lines(lines in proptest::collection::vec(
        r"(\d{1,25}: \([0-9a-f]{2}\) [ -~]{0,40}|; [ -~]{0,30}( @ [a-z.]{0,8}:\d{0,12})?|from \d{1,22} to \d{0,22}:[ -~]{0,20}|[ R0-9=_a-z(),;.-]{0,40}|infinite loop detected at insn \d{1,25}|Unreleased reference id=\d{1,3} alloc_insn=\d{1,25})",
        0..40,
    )) {
        exercise(&lines.join("\n"));
    }

    /// 7.3's explanation block, with its sections and context lines in any
    /// order and shape.
    #[test]
    fn explanation_shaped_lines(lines in proptest::collection::vec(
        r"(Verification failed: [ -~]{0,30}|Reason:|At:|Causal path:|Suggestion:|Whatever:|  [ -~]{0,40}|  [a-z_]{0,8} @ [a-z.]{0,8}:\d{0,12}(:\d{0,12})?|  (>>>)? {0,3}\d{0,12} \| [ -~]{0,20}|         \|( {0,9}\^--)? [a-z]{0,8}:? [ -~]{0,20}|  (Source|Instruction) context:|)",
        0..40,
    )) {
        let text = format!("R0 invalid mem access 'scalar'\n\nVerification failed: Memory Safety: X\n{}", lines.join("\n"));
        exercise(&text);
        prop_assert!(KernelExplanation::parse(&text).is_some());
    }
}

#[test]
fn real_logs_cut_and_spliced_anywhere() {
    let logs = real_logs();
    for log in &logs {
        let ends: Vec<usize> = (0..=log.len())
            .filter(|i| log.is_char_boundary(*i))
            .collect();
        for &end in ends.iter().step_by(13) {
            exercise(&log[..end]);
            exercise(&log[end..]);
        }
    }
    // The end of one log after the beginning of another.
    for pair in logs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        exercise(&format!("{}{}", &a[..half(a)], &b[half(b)..]));
    }
}

fn half(s: &str) -> usize {
    (0..=s.len() / 2)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0)
}
