//! Logs that are cut off, stripped, accepted, unknown or empty; the text and
//! JSON renderings.

use std::{fs, path::PathBuf};

use harness_diagnose::{Cause, LineKind, Log, diagnose};

fn testdata(dir: &str, file: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", dir, file]
        .iter()
        .collect();
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn an_empty_log_has_no_diagnosis() {
    assert_eq!(diagnose(""), None);
    assert_eq!(diagnose("\n\n"), None);
    assert!(Log::parse("").lines().is_empty());
}

#[test]
fn an_accepted_programs_log_has_no_diagnosis() {
    // Level 1 keeps only the statistics of an accepted program.
    let log = testdata("uninit_stack_key", "6.18.log");
    assert_eq!(diagnose(&log), None);
    assert!(
        Log::parse(&log)
            .lines()
            .iter()
            .all(|l| matches!(l.kind, LineKind::Stats(_)))
    );
}

#[test]
fn a_log_cut_before_its_message_has_no_diagnosis() {
    // Before 6.4 a log that overflows keeps its beginning.
    let log = testdata("map_value_bounds", "6.1.log");
    let at = log.find("12: (79)").expect("the failing instruction");
    let message = log
        .find("invalid access to map value")
        .expect("the message");
    for cut in [at, at + 5, message + 10] {
        assert_eq!(diagnose(&log[..cut]), None, "cut at {cut}");
    }
}

#[test]
fn a_log_cut_at_its_start_is_still_diagnosed() {
    // From 6.4 a log that overflows keeps its end, from mid-line.
    let log = testdata("ringbuf_leak", "6.12.log");
    assert!(log.starts_with("0: R1=ctx() R10=fp0\n"));
    let d = diagnose(&log[10..]).expect("a diagnosis");
    assert_eq!(d.cause, Cause::LeakedReference);
    assert_eq!(d.insn.map(|i| i.index), Some(21));
    // Cut after the acquiring call: its origin can no longer be resolved.
    let after_call = log.find("5: (bf)").expect("insn 5");
    let d = diagnose(&log[after_call..]).expect("a diagnosis");
    assert_eq!(d.origin, None);
}

#[test]
fn a_log_without_source_notes_has_no_source() {
    // As from an object built without -g.
    let log: String = testdata("null_deref", "6.12.log")
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(|l| format!("{l}\n"))
        .collect();
    let d = diagnose(&log).expect("a diagnosis");
    assert_eq!(d.cause, Cause::NullDeref);
    assert_eq!(d.source, None);
    assert_eq!(d.insn.map(|i| i.index), Some(7));
    assert!(d.state.is_some());
}

#[test]
fn an_unknown_message_still_gives_instruction_source_and_state() {
    let log = testdata("null_deref", "6.12.log").replace(
        "R0 invalid mem access 'map_value_or_null'",
        "R0 is not something this crate has seen",
    );
    let d = diagnose(&log).expect("a diagnosis");
    assert_eq!(d.cause, Cause::Unknown);
    assert_eq!(d.message, "R0 is not something this crate has seen");
    assert_eq!(
        d.insn.as_ref().map(|i| (i.index, i.text.as_str())),
        Some((7, "r1 = *(u64 *)(r0 +0)"))
    );
    assert_eq!(d.source.as_ref().and_then(|s| s.line), Some(20));
    assert_eq!(d.fix(), Cause::Unknown.fix());
    assert!(
        d.state
            .is_some_and(|s| s.starts_with("R0=map_value_or_null"))
    );
}

#[test]
fn a_message_without_statistics_or_walk() {
    // Level 1 without the statistics bit, and a message with nothing before.
    let d = diagnose("combined stack size of 2 calls is 576. Too large\n").expect("a diagnosis");
    assert_eq!(d.cause, Cause::StackTooLarge);
    let d = diagnose("R1 type=scalar expected=fp\n").expect("a diagnosis");
    assert_eq!(
        (d.cause, d.insn, d.source, d.state),
        (Cause::ArgTypeMismatch, None, None, None)
    );
    let d = diagnose("R1 is not something this crate has seen\n").expect("a diagnosis");
    assert_eq!(
        (d.cause, d.insn, d.source, d.state),
        (Cause::Unknown, None, None, None)
    );
}

#[test]
fn a_message_found_before_the_walk_names_only_its_instruction() {
    // check_cfg() runs before any instruction is walked: the log holds
    // the message alone, and the instruction it names has no text.
    let d = diagnose("unreachable insn 5\n").expect("a diagnosis");
    assert_eq!(d.cause, Cause::UnreachableInsn);
    assert_eq!(d.insn.map(|i| (i.index, i.text)), Some((5, String::new())));
    assert_eq!((d.source, d.state), (None, None));
}

#[test]
fn renders_like_a_compiler_diagnostic() {
    let d = diagnose(&testdata("null_deref", "6.12.log")).expect("a diagnosis");
    assert_eq!(
        d.to_string(),
        "error[null-deref]: R0 invalid mem access 'map_value_or_null'
  --> diag_null_deref.bpf.c:20
   |
20 | *count += 1;
   |
   = insn 7: r1 = *(u64 *)(r0 +0)
   = state: R0=map_value_or_null(id=1,map=rx_packets,ks=4,vs=8) R10=fp0 fp-8=mmmm????
   = from: R0 is the result of bpf_map_lookup_elem() (insn 6, line 19)
   = because: R0 may be NULL: it is the result of bpf_map_lookup_elem() at line 19, \
not checked for NULL before this use
   = note: a pointer that may be NULL is dereferenced
   = help: check the pointer right after the helper that returned it (`if (!p) return ...;`, \
e.g. after bpf_map_lookup_elem()) and use only the checked pointer"
    );
}

#[test]
fn renders_an_origin_and_a_note_without_line() {
    let d = diagnose(&testdata("ringbuf_leak", "6.1.log")).expect("a diagnosis");
    let text = d.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "error[leaked-reference]: Unreleased reference id=2 alloc_insn=4"
    );
    // 6.1 prints no file or line: the source shows without them.
    assert_eq!(lines[1..4], ["  |", "  | if ((__u32)uid_gid == 0)", "  |"]);
    assert_eq!(lines[4], "  = insn 21: exit");
    assert!(lines.contains(
        &"  = origin: insn 4: call bpf_ringbuf_reserve#131, at e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);"
    ));
}

#[test]
fn serialises_with_stable_field_names() {
    let d = diagnose(&testdata("packet_bounds", "6.12.log")).expect("a diagnosis");
    let json = serde_json::to_value(&d).expect("serialisable");
    assert_eq!(
        json,
        serde_json::json!({
            "cause": "packet-bounds",
            "category": "Memory",
            "title": Cause::PacketBounds.title(),
            "message": "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)\nR1 offset is outside of the packet",
            "insn": { "index": 1, "text": "r2 = *(u8 *)(r1 +12)" },
            "source": {
                "file": "diag_packet_bounds.bpf.c",
                "line": 14,
                "column": null,
                "text": "if (eth->h_proto == bpf_htons(ETH_P_ARP))",
            },
            "state": "R1=pkt(r=0) R10=fp0",
            "because": "the access needs bytes up to 13 past the packet pointer R1, \
        but only 0 were proven to lie before data_end",
            "origin": [{
                "insn": { "index": 0, "text": "r1 = *(u32 *)(r1 +0)" },
                "source": {
                    "file": "diag_packet_bounds.bpf.c",
                    "line": 11,
                    "column": null,
                    "text": "void *data = (void *)(long)ctx->data;",
                },
                "kind": "load",
                "register": 1,
                "base": 1,
                "offset": 0,
                "note": "R1 is read from memory at R1+0",
            }],
            "fix": Cause::PacketBounds.fix(),
            "complexity": null,
            "kernel_explanation": null,
            "unknown": [],
        })
    );
}

#[test]
fn the_styled_rendering_is_the_plain_one_with_colours() {
    let strip = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
    for (dir, file) in [("null_deref", "6.12.log"), ("ringbuf_leak", "7.3.log")] {
        let d = diagnose(&testdata(dir, file)).expect("a diagnosis");
        let (plain, styled) = (d.to_string(), d.styled().to_string());
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(
            styled.starts_with('\x1b') && styled.contains("error["),
            "{styled:?}"
        );
        assert_eq!(strip.replace_all(&styled, ""), plain, "{dir}/{file}");
    }
}

/// The gallery's too_complex program on 6.12 and 7.2, as their statistics
/// logs read (a walk this long is not logged line by line).
#[test]
fn a_program_too_large_to_walk_gets_the_walks_totals() {
    for log in [
        "BPF program is too large. Processed 1000001 insn\nverification time 3282010 usec\n\
         stack depth 8\nprocessed 1000001 insns (limit 1000000) max_states_per_insn 15 \
         total_states 24751 peak_states 1069 mark_read 9\n",
        "BPF program is too large. Processed 1000001 insn\nverification time 4769023 usec\n\
         stack depth 8 max 0\ninsns processed 1000001\nprocessed 1000001 insns (limit 1000000) \
         max_states_per_insn 15 total_states 24751 peak_states 94 mark_read 0\n",
    ] {
        let d = diagnose(log).expect("a diagnosis");
        assert_eq!(d.cause, Cause::ProgramTooLarge);
        let c = d.complexity.as_ref().expect("where the instructions went");
        assert_eq!(
            (c.processed, c.limit, c.total_states),
            (Some(1_000_001), Some(1_000_000), Some(24_751))
        );
        assert_eq!(c.stack_depths, vec![8]);
        assert_eq!(c.logged_insns, 0);
        let text = d.to_string();
        assert!(
            text.contains("= walk: 1000001 instructions processed (limit 1000000), 24751 states"),
            "{text}"
        );
        assert!(text.contains("the hottest lines are unknown"), "{text}");
    }
    // Not about complexity: no such section.
    assert_eq!(
        diagnose(&testdata("null_deref", "6.12.log"))
            .unwrap()
            .complexity,
        None
    );
    // The combined stack: each frame's share.
    let d = diagnose(&testdata("stack_too_large", "6.12.log")).unwrap();
    let c = d.complexity.expect("the stack by frame");
    assert!(
        c.stack_depths.len() >= 2 && c.stack_depths.iter().sum::<u64>() > 512,
        "{:?}",
        c.stack_depths
    );
}

#[test]
fn a_diagnosis_says_what_its_inputs_did_not_tell() {
    let log = testdata("packet_bounds", "6.12.log");
    let complete = diagnose(&log).expect("a diagnosis");
    assert!(complete.gaps.is_empty(), "{:?}", complete.gaps);

    // Without source notes nothing places the instruction in C.
    let bare: String = log
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(|l| format!("{l}\n"))
        .collect();
    let d = diagnose(&bare).expect("a diagnosis");
    assert_eq!(d.source, None);
    assert_eq!(d.gaps, [harness_diagnose::Gap::Source]);
    let text = d.to_string();
    assert!(
        text.contains("= unknown: the C line: the log has no source notes"),
        "{text}"
    );
    let json = serde_json::to_value(&d).unwrap();
    assert!(
        json["unknown"][0]
            .as_str()
            .unwrap()
            .starts_with("the C line"),
        "{json}"
    );

    // A log the kernel cut short says so.
    let evidence = harness_diagnose::Evidence::default().with_truncated_log(true);
    let d = harness_diagnose::diagnose_with(&log, &evidence).expect("a diagnosis");
    assert_eq!(d.gaps, [harness_diagnose::Gap::TruncatedLog]);
    assert!(d.to_string().contains("= unknown: the end of the walk"));
}
