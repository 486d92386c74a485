//! Placing source notes with the object's line info (`.BTF.ext`): the
//! kernel prints a note's text, from 6.9 its file and line, never a column.

use std::{fs, path::PathBuf};

use harness_diagnose::{Evidence, LineRecord, diagnose_with};

fn testdata(dir: &str, file: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", dir, file]
        .iter()
        .collect();
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn record(file: &str, line: u32, column: u32, text: &str) -> LineRecord {
    LineRecord {
        insn: None,
        file: file.into(),
        line,
        column,
        text: text.into(),
    }
}

/// What clang records for diag_null_deref.bpf.c around the failing line.
fn null_deref_lines() -> Vec<LineRecord> {
    let file = "sample-programs/diag_null_deref.bpf.c";
    vec![
        record(file, 16, 22, "__u32 queue = ctx->rx_queue_index;"),
        record(
            file,
            19,
            10,
            "count = bpf_map_lookup_elem(&rx_packets, &queue);",
        ),
        record(file, 20, 9, "\t*count += 1;"),
        record(file, 20, 9, "\t*count += 1;"),
    ]
}

#[test]
fn a_note_without_location_is_placed_by_its_text_with_its_column() {
    let lines = null_deref_lines();
    // 5.10 prints the note's text only.
    let d = diagnose_with(
        &testdata("null_deref", "5.10.log"),
        &Evidence::default().with_lines(&lines),
    )
    .unwrap();
    let source = d.source.clone().unwrap();
    assert_eq!(
        (source.file.as_deref(), source.line, source.column),
        (Some("diag_null_deref.bpf.c"), Some(20), Some(9))
    );
    assert_eq!(source.text, "*count += 1;");
    // The caret counts the tab the note dropped: column 9 of "\t*count".
    let text = d.to_string();
    assert!(
        text.contains("20 | *count += 1;\n   |        ^\n"),
        "{text}"
    );
}

#[test]
fn a_note_with_file_and_line_gains_the_column() {
    let lines = null_deref_lines();
    let d = diagnose_with(
        &testdata("null_deref", "6.12.log"),
        &Evidence::default().with_lines(&lines),
    )
    .unwrap();
    let source = d.source.unwrap();
    assert_eq!((source.line, source.column), (Some(20), Some(9)));
    // Without line info the kernel's own line stands, with no column.
    let bare = diagnose_with(&testdata("null_deref", "6.12.log"), &Evidence::default()).unwrap();
    assert_eq!(bare.source.unwrap().column, None);
}

#[test]
fn ambiguous_line_info_places_nothing_it_cannot_be_sure_of() {
    // The same text on two lines: no line from line info (and none from a
    // source that is not given).
    let file = "diag_null_deref.bpf.c";
    let twice = vec![
        record(file, 20, 9, "*count += 1;"),
        record(file, 30, 9, "*count += 1;"),
    ];
    let d = diagnose_with(
        &testdata("null_deref", "5.10.log"),
        &Evidence::default().with_lines(&twice),
    )
    .unwrap();
    assert_eq!(d.source.unwrap().line, None);
    // One line whose instructions start at two columns: the line, no column.
    let columns = vec![
        record(file, 20, 9, "*count += 1;"),
        record(file, 20, 2, "*count += 1;"),
    ];
    let d = diagnose_with(
        &testdata("null_deref", "5.10.log"),
        &Evidence::default().with_lines(&columns),
    )
    .unwrap();
    let source = d.source.unwrap();
    assert_eq!((source.line, source.column), (Some(20), None));
}

#[test]
fn numbered_records_place_the_failing_instruction_over_stale_notes() {
    // ringbuf_leak fails at insn 21, the exit; the level-1 log's last note
    // is the branch on line 27, printed before the path went on.
    let file = "diag_ringbuf_leak.bpf.c";
    let numbered = |insn: usize, line: u32, text: &str| LineRecord {
        insn: Some(insn),
        ..record(file, line, 2, text)
    };
    let lines = vec![
        numbered(4, 23, "\te = bpf_ringbuf_reserve(&events, sizeof(*e), 0);"),
        numbered(12, 27, "\tif ((__u32)uid_gid == 0)"),
        numbered(19, 0, ""),
        numbered(20, 33, "}"),
    ];
    let log = testdata("ringbuf_leak", "6.12.log");
    let placed = |evidence: Evidence<'_>| diagnose_with(&log, &evidence).unwrap();
    let d = placed(Evidence::default().with_lines(&lines).with_main_insns(22));
    assert_eq!(d.insn.as_ref().map(|i| i.index), Some(21));
    assert_eq!(d.source.as_ref().and_then(|s| s.line), Some(33));
    // The acquiring call, by its number too.
    let origin = d.origin.as_ref().and_then(|o| o.source.as_ref());
    assert_eq!(origin.and_then(|s| s.line), Some(23));
    // An instruction past the program's own function (a subprogram's) is
    // not placed by number: the notes decide.
    let d = placed(Evidence::default().with_lines(&lines).with_main_insns(21));
    assert_eq!(d.source.as_ref().and_then(|s| s.line), Some(27));
    // Without the length, numbers are not trusted either.
    let d = placed(Evidence::default().with_lines(&lines));
    assert_eq!(d.source.as_ref().and_then(|s| s.line), Some(27));
}
