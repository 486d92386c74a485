//! 7.3's own explanation, read from the real logs in `testdata/`, and our
//! causes' categories checked against the category 7.3 printed.

use std::{fs, path::PathBuf};

use harness_diagnose::{Category, KernelExplanation, LineKind, Log, diagnose};

fn testdata(dir: &str, file: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", dir, file]
        .iter()
        .collect();
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dirs() -> Vec<String> {
    let root: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata"].iter().collect();
    let mut dirs: Vec<String> = fs::read_dir(&root)
        .expect("testdata")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 12, "testdata holds {} programs", dirs.len());
    dirs
}

/// The class 7.3 printed for each rejected program of `testdata/`, `None`
/// where it printed the classic line alone.
fn printed_category(dir: &str) -> Option<Category> {
    match dir {
        "null_deref"
        | "scalar_deref"
        | "kprobe_deref"
        | "modified_ctx"
        | "negative_index"
        | "null_check"
        | "nullable_arith"
        | "pkt_end_arith"
        | "stale_packet_pointer"
        | "uninit_register" => Some(Category::RegisterType),
        "packet_bounds" | "map_value_bounds" | "short_bounds_check" | "unbounded_index" => {
            Some(Category::Memory)
        }
        "ringbuf_leak" | "socket_leak" => Some(Category::ResourceLifetime),
        "double_release" | "key_by_value" | "release_skb_sk" => Some(Category::CallType),
        "call_under_lock" | "lock_at_exit" => Some(Category::ExecutionContext),
        "gpl_only" | "gpl_probe_read" | "helper_not_allowed" | "skb_helper_in_xdp" => {
            Some(Category::Policy)
        }
        _ => None,
    }
}

#[test]
fn our_category_is_the_one_7_3_prints() {
    let mut compared = 0;
    for dir in dirs() {
        let log = testdata(&dir, "7.3.log");
        let Some(d) = diagnose(&log) else {
            // Accepted as root (uninit_stack_key): no rejection, no block.
            assert_eq!(dir, "uninit_stack_key");
            assert!(!log.contains("Verification failed:"), "{dir}");
            continue;
        };
        let printed = d.kernel_explanation.as_ref().map(|e| e.category);
        assert_eq!(printed, printed_category(&dir).map(Some), "{dir}");
        if let Some(Some(category)) = printed {
            assert_eq!(d.cause.category(), Some(category), "{dir}: {}", d.cause);
            compared += 1;
        }
    }
    assert_eq!(compared, 25);
}

#[test]
fn level_2_logs_carry_the_same_explanation() {
    for dir in [
        "infinite_loop",
        "map_value_bounds",
        "null_deref",
        "packet_bounds",
        "ringbuf_leak",
    ] {
        let one = diagnose(&testdata(dir, "7.3.log")).expect("level 1");
        let two = diagnose(&testdata(dir, "7.3.level2.log")).expect("level 2");
        let strip = |e: Option<KernelExplanation>| {
            // Map addresses differ between the two loads.
            e.map(|mut e| {
                for site in e.at.iter_mut().chain(e.causal_path.iter_mut()) {
                    site.instruction_context.clear();
                }
                e
            })
        };
        assert_eq!(
            strip(one.kernel_explanation),
            strip(two.kernel_explanation),
            "{dir}"
        );
        assert_eq!(one.cause, two.cause, "{dir}");
    }
}

#[test]
fn a_null_dereference_as_7_3_explains_it() {
    let d = diagnose(&testdata("null_deref", "7.3.log")).expect("a diagnosis");
    let e = d.kernel_explanation.expect("7.3 explains it");
    assert_eq!(e.category_name, "Register Type Safety");
    assert_eq!(e.problem, "Invalid dereference");
    assert!(
        e.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("R0 may be NULL here") && r.ends_with("is safe.")),
        "{:?}",
        e.reason
    );
    let at = e.at.expect("At");
    let location = at.location.expect("a location");
    assert_eq!(
        (
            location.function.as_str(),
            location.file.as_str(),
            location.line,
            location.column
        ),
        ("count_rx_queue", "diag_null_deref.bpf.c", 20, Some(9))
    );
    // The same C line the harness found from the classic log.
    assert_eq!(d.source.as_ref().and_then(|s| s.line), Some(location.line));
    let marked: Vec<u32> = at
        .source_context
        .iter()
        .filter(|c| c.marked)
        .map(|c| c.number)
        .collect();
    assert_eq!(marked, [20]);
    assert_eq!(
        at.source_context
            .iter()
            .map(|c| c.number)
            .collect::<Vec<_>>(),
        [18, 19, 20, 21, 22]
    );
    let note = at.note.expect("a caret note");
    assert_eq!(note.kind, "error");
    assert_eq!(
        note.text,
        "invalid dereference of R0 (a nullable map value pointer)"
    );
    // The instruction it marks is the one the harness names.
    let insn = at
        .instruction_context
        .iter()
        .find(|c| c.marked)
        .expect("a marked instruction");
    assert_eq!(insn.number, 7);
    assert_eq!(insn.text, "(79) r1 = *(u64 *)(r0 +0)");
    assert_eq!(d.insn.map(|i| i.index), Some(7));

    assert_eq!(e.causal_path.len(), 1);
    let event = &e.causal_path[0];
    assert_eq!(event.location.as_ref().map(|l| l.line), Some(19));
    let note = event.note.as_ref().expect("an update");
    assert_eq!(note.kind, "update");
    assert_eq!(
        note.text,
        "R0 changed from uninitialized value to nullable map value from rx_packets at offset 0"
    );
    assert_eq!(
        e.suggestion.as_deref(),
        Some(
            "Add a NULL check before the access and dereference the pointer only on the non-NULL path."
        )
    );
}

#[test]
fn a_leak_explained_between_the_two_classic_lines() {
    // 7.3 prints its block after `Unreleased reference` and before `BPF_EXIT
    // instruction ... would lead to reference leak`.
    let d = diagnose(&testdata("ringbuf_leak", "7.3.log")).expect("a diagnosis");
    assert_eq!(
        d.message,
        "Unreleased reference id=2 alloc_insn=4\n\
         BPF_EXIT instruction in main prog would lead to reference leak"
    );
    let e = d.kernel_explanation.expect("7.3 explains it");
    assert_eq!(e.category, Some(Category::ResourceLifetime));
    assert_eq!(e.problem, "Unreleased resource");
    let at = e.at.expect("At");
    assert_eq!(at.location.map(|l| l.line), Some(33));
    let kinds: Vec<(&str, Option<u32>)> = e
        .causal_path
        .iter()
        .map(|s| {
            (
                s.note.as_ref().map_or("", |n| n.kind.as_str()),
                s.location.as_ref().map(|l| l.line),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("acquired", Some(23)),
            ("branch", Some(24)),
            ("branch", Some(27))
        ]
    );
    // The acquiring call is the harness's origin too.
    let origin = d.origin.expect("an origin");
    assert_eq!(origin.insn.index, 4);
    assert_eq!(origin.source.and_then(|s| s.line), Some(23));
}

#[test]
fn the_block_is_typed_apart_from_the_walk_and_the_statistics() {
    for dir in dirs() {
        let log = testdata(&dir, "7.3.log");
        let parsed = Log::parse(&log);
        let explained = parsed.explanation_lines().count();
        assert_eq!(explained > 0, log.contains("Verification failed:"), "{dir}");
        for line in parsed.lines() {
            match line.kind {
                // Nothing of the block leaks into other kinds: no `>>>`,
                // section or context line among messages or bookkeeping.
                LineKind::Other(text) | LineKind::Bookkeeping(text) => {
                    assert!(
                        !text.contains(" | ")
                            && !text.starts_with("Reason:")
                            && !text.starts_with("Suggestion:"),
                        "{dir}: {text}"
                    );
                }
                LineKind::Explanation(text) => {
                    assert!(!text.starts_with("verification time"), "{dir}")
                }
                _ => {}
            }
        }
        // 7.3's statistics (`stack depth max N`, `subprog N (...)`) are
        // statistics, not a message.
        let last: Vec<&LineKind<'_>> = parsed
            .lines()
            .iter()
            .rev()
            .take(3)
            .map(|l| &l.kind)
            .collect();
        assert!(
            last.iter().all(|k| matches!(k, LineKind::Stats(_))),
            "{dir}: {last:?}"
        );
    }
}

#[test]
fn renders_the_kernels_words_after_ours() {
    let d = diagnose(&testdata("null_deref", "7.3.log")).expect("a diagnosis");
    let text = d.to_string();
    let ours = text.find("= help:").expect("our fix");
    let kernel = text
        .find("kernel (7.3): Register Type Safety: Invalid dereference")
        .expect("the kernel's header");
    assert!(ours < kernel, "{text}");
    let tail = &text[kernel..];
    for expected in [
        "\n  reason: R0 may be NULL here",
        "\n  at count_rx_queue @ diag_null_deref.bpf.c:20:9\n",
        "\n      20 |         *count += 1;\n",
        "\n         = error: invalid dereference of R0 (a nullable map value pointer)\n         = insn 7: (79) r1 = *(u64 *)(r0 +0)\n",
        "\n  causal path:\n  1. count_rx_queue @ diag_null_deref.bpf.c:19:10\n",
        "\n  suggestion: Add a NULL check",
    ] {
        assert!(tail.contains(expected), "missing {expected:?} in\n{tail}");
    }
    // Older kernels have no such part.
    let old = diagnose(&testdata("null_deref", "7.2.log")).expect("a diagnosis");
    assert!(!old.to_string().contains("kernel (7.3)"));
}

#[test]
fn serialises_the_explanation() {
    let d = diagnose(&testdata("packet_bounds", "7.3.log")).expect("a diagnosis");
    let json = serde_json::to_value(&d).expect("serialisable");
    let e = &json["kernel_explanation"];
    assert_eq!(e["category"], "Memory");
    assert_eq!(e["category_name"], "Memory Safety");
    assert_eq!(e["problem"], "Access outside bounds");
    assert_eq!(
        e["at"]["location"],
        serde_json::json!({
            "function": "drop_arp",
            "file": "diag_packet_bounds.bpf.c",
            "line": 14,
            "column": 11,
        })
    );
    assert_eq!(e["at"]["note"]["kind"], "error");
    assert_eq!(e["causal_path"].as_array().map(Vec::len), Some(1));
    assert_eq!(e["causal_path"][0]["note"]["kind"], "update");
    assert!(
        e["suggestion"]
            .as_str()
            .is_some_and(|s| s.contains("bounds check"))
    );
}

#[test]
fn a_log_cut_inside_the_block_keeps_the_classic_diagnosis() {
    let log = testdata("map_value_bounds", "7.3.log");
    let whole = diagnose(&log).expect("a diagnosis");
    let mut seen_partial = false;
    for section in ["Reason:", "At:", "Causal path:", "Suggestion:"] {
        let at = log.find(section).expect("section");
        for end in [at, at + section.len() + 5] {
            let cut = diagnose(&log[..end]).expect("the classic line is whole");
            assert_eq!(cut.cause, whole.cause, "cut at {end}");
            assert_eq!(cut.message, whole.message, "cut at {end}");
            assert_eq!(cut.insn, whole.insn, "cut at {end}");
            let e = cut.kernel_explanation.expect("the header is whole");
            assert_eq!(e.category, Some(Category::Memory));
            seen_partial |= e.suggestion.is_none();
        }
    }
    assert!(seen_partial);
}

/// The C source of a testdata program: its `prog.bpf.c`, or the rejected
/// gallery's file of that name.
fn source_of(dir: &str) -> (String, String) {
    let own: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", dir, "prog.bpf.c"]
        .iter()
        .collect();
    if let Ok(text) = fs::read_to_string(&own) {
        return ("prog.bpf.c".into(), text);
    }
    let name = format!("{dir}.bpf.c");
    let gallery: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "sample-programs",
        "rejected",
        &name,
    ]
    .iter()
    .collect();
    let text =
        fs::read_to_string(&gallery).unwrap_or_else(|e| panic!("{}: {e}", gallery.display()));
    (name, text)
}

/// Where 7.3 says "At: f @ file:LINE", the older kernels' diagnoses (from
/// their own logs and the C source) name the same line, on every kernel.
#[test]
fn older_kernels_name_the_line_7_3_points_at() {
    let mut compared = 0;
    let mut differs = Vec::new();
    for dir in dirs() {
        let Some(d73) = diagnose(&testdata(&dir, "7.3.log")) else {
            continue;
        };
        let Some(at) = d73
            .kernel_explanation
            .as_ref()
            .and_then(|e| e.at.as_ref())
            .and_then(|a| a.location.as_ref())
        else {
            continue;
        };
        let (name, source) = source_of(&dir);
        for kernel in ["5.10", "6.1", "6.12", "7.2", "6.18"] {
            let log = testdata(&dir, &format!("{kernel}.log"));
            let d = harness_diagnose::diagnose_with(
                &log,
                &harness_diagnose::Evidence::default().with_source(&name, &source),
            )
            .unwrap_or_else(|| panic!("{dir}/{kernel}: no diagnosis"));
            if d.source.as_ref().and_then(|s| s.line) == Some(at.line) {
                compared += 1;
            } else {
                differs.push(format!(
                    "{dir} on {kernel}: ours {:?}, 7.3 {}",
                    d.source.as_ref().and_then(|s| s.line),
                    at.line
                ));
            }
        }
    }
    // Where the lines differ, the kernel's level-1 log no longer holds the
    // failing line's note (it was printed on a path the log discarded):
    // the leaks and the lock held at exit, whose 7.3 line is the `return`.
    for d in &differs {
        assert!(
            ["socket_leak", "lock_at_exit", "ringbuf_leak"]
                .iter()
                .any(|p| d.starts_with(p)),
            "{d}"
        );
    }
    assert!(compared >= 100, "{compared} agree; differ: {differs:#?}");
}
