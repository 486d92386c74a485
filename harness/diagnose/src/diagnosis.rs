//! From a parsed log to a [`Diagnosis`].

use std::collections::HashMap;

use serde::{Serialize, Serializer};

use crate::{
    category::Category,
    cause::{self, Cause},
    complexity::{self, Complexity},
    explanation::KernelExplanation,
    log::{Line, LineKind, Log, SourceNote, StateAt, StateLine},
    state,
    trace::{self, StepKind},
};

/// Why a program was rejected, where, and what usually fixes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub cause: Cause,
    /// The kernel's error line(s), verbatim, joined by newlines.
    pub message: String,
    /// The instruction the verifier stopped at. `None` when the message is
    /// about the whole program (stack size) or the log printed none.
    pub insn: Option<Insn>,
    /// The C line of that instruction: the source note in force where the
    /// walk stopped. The kernel prints a note only when the line changes,
    /// counting notes it printed on paths whose log it then discarded (level
    /// 1), so a resumed path may show an earlier line than its own.
    pub source: Option<SourceLocation>,
    /// Registers and stack the verifier knew of before that instruction, as
    /// it prints them (liveness marks dropped); `None` when the log does not
    /// tell (5.10 prints few states at level 1).
    pub state: Option<String>,
    /// Where the value at fault came from: for a leaked reference, the call
    /// that acquired it.
    pub origin: Option<Origin>,
    /// How the register at fault got its value, oldest step first: the
    /// instruction that made it, then copies, spills and fills.
    pub trace: Vec<TraceStep>,
    /// The unsafe state in words, from the trace ("R0 may be NULL: it is
    /// the result of bpf_map_lookup_elem() at line 19, not checked").
    pub because: Option<String>,
    /// What the kernel itself said about the rejection (7.3 on, for most
    /// causes); `None` for older kernels.
    pub kernel_explanation: Option<KernelExplanation>,
    /// For a rejection about size or complexity: where the instructions
    /// went.
    pub complexity: Option<Complexity>,
    /// What this diagnosis could not know, and why.
    pub gaps: Vec<Gap>,
}

/// Something a diagnosis lacks because its inputs did not tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gap {
    /// No C line: the log has no source notes and no line info placed the
    /// instruction.
    Source,
    /// No register state was printed for the failing instruction.
    State,
    /// The kernel cut the log off at its buffer's end.
    TruncatedLog,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Source => {
                "the C line: the log has no source notes and no line info placed the instruction \
                 (build with -g; for a saved log, pass --object)"
            }
            Self::State => {
                "the register state: the log printed none at that instruction \
                 (level 1 prints states only at branches on older kernels; level 2 prints them all)"
            }
            Self::TruncatedLog => {
                "the end of the walk: the kernel cut the log off at its buffer's size, \
                 so later instructions and states are missing"
            }
        })
    }
}

/// One step of a [`Diagnosis::trace`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    pub insn: Insn,
    pub source: Option<SourceLocation>,
    #[serde(flatten)]
    pub step: StepKind,
    /// The step in words.
    pub note: String,
}

/// An instruction of the program, as the verifier printed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Insn {
    pub index: usize,
    /// Its disassembly (`r1 = *(u64 *)(r0 +0)`); empty if the log did not print it.
    pub text: String,
}

/// A line of C source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    /// File name as BTF has it (a basename). Kernels before 6.9 print no
    /// file or line; they are then found in the source the caller gave, if any.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// From the object's line info; kernel notes carry none.
    pub column: Option<u32>,
    /// The line as the kernel printed it, leading blanks removed.
    pub text: String,
    /// Where in `text` the column points (in characters), for the caret.
    #[serde(skip)]
    pub caret: Option<usize>,
}

/// An earlier instruction that explains the failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub insn: Insn,
    pub source: Option<SourceLocation>,
}

/// What the caller knows about the program besides its log. All optional.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Evidence<'a> {
    pub source: Option<SourceFile<'a>>,
    /// The object's line info (`.BTF.ext`): every C line clang recorded,
    /// with its file, column and text.
    pub lines: &'a [LineRecord],
    /// How many instructions the program's own function has: records'
    /// `insn` numbers apply below it (subprograms follow, numbered by
    /// where the loader put them).
    pub main_insns: Option<usize>,
    /// The kernel reported the log cut short (its buffer was full).
    pub log_truncated: bool,
}

/// One line-info record of the object: where an instruction's C code is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRecord {
    /// The instruction of the program it starts at, as the verifier numbers
    /// them, where the caller could tell (records of the program's own
    /// function); `None` for other records.
    pub insn: Option<usize>,
    /// The file as clang named it (may be a path).
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub text: String,
}

/// A C source file of the program.
#[derive(Clone, Copy, Debug)]
pub struct SourceFile<'a> {
    /// How to name it in a diagnosis (`prog.bpf.c`).
    pub name: &'a str,
    pub text: &'a str,
}

impl<'a> Evidence<'a> {
    /// Lets a diagnosis find the line number of a source note that has none
    /// (kernels before 6.9), by its text.
    pub fn with_source(mut self, name: &'a str, text: &'a str) -> Self {
        self.source = Some(SourceFile { name, text });
        self
    }

    /// Lets a diagnosis place a source note exactly, column included, from
    /// the object's line info: the kernel prints a note's text (and from
    /// 6.9 its file and line), never its column.
    pub fn with_lines(mut self, lines: &'a [LineRecord]) -> Self {
        self.lines = lines;
        self
    }

    /// Lets a diagnosis place an instruction by its number, through the
    /// line records that carry one: exact where the kernel's notes are not
    /// (a note printed on a path the level-1 log discarded).
    pub fn with_main_insns(mut self, insns: usize) -> Self {
        self.main_insns = Some(insns);
        self
    }

    /// The log was cut short by the kernel: a diagnosis says what it may miss.
    pub fn with_truncated_log(mut self, truncated: bool) -> Self {
        self.log_truncated = truncated;
        self
    }
}

/// Diagnoses a rejected program's verifier log; `None` when the log holds
/// no error message (the program was accepted, or the log was cut off
/// before the message).
pub fn diagnose(log: &str) -> Option<Diagnosis> {
    diagnose_with(log, &Evidence::default())
}

/// [`diagnose`], with what else is known about the program.
pub fn diagnose_with(log: &str, evidence: &Evidence<'_>) -> Option<Diagnosis> {
    Diagnosis::from_log(&Log::parse(log), evidence)
}

impl Diagnosis {
    pub fn from_log(log: &Log<'_>, evidence: &Evidence<'_>) -> Option<Self> {
        let range = log.error_range();
        if range.is_empty() {
            return None;
        }
        let message: Vec<&str> = log.error_lines().collect();
        let found = cause::classify(message.iter().copied());
        let mut diagnosis = Self {
            cause: found.cause,
            message: message.join("\n"),
            insn: None,
            source: None,
            state: None,
            origin: None,
            trace: Vec::new(),
            because: None,
            kernel_explanation: KernelExplanation::from_lines(log.explanation_lines()),
            complexity: found
                .cause
                .is_about_complexity()
                .then(|| complexity::complexity(log.lines(), found.cause.is_walk_limit())),
            gaps: if evidence.log_truncated {
                vec![Gap::TruncatedLog]
            } else {
                Vec::new()
            },
        };
        if !found.cause.at_instruction() {
            // Found before or after the walk: only the message can say
            // which instruction (`unreachable insn 5`).
            diagnosis.insn = found.insn.map(|index| Insn {
                index,
                text: String::new(),
            });
            return Some(diagnosis);
        }
        // Everything the walk printed before it stopped.
        let walk = &log.lines()[..range.start];
        diagnosis.insn = failing_insn(walk, found.insn);
        diagnosis.source = diagnosis
            .insn
            .as_ref()
            .and_then(|i| locate_insn(i.index, evidence))
            .or_else(|| last_note(walk).map(|n| locate(walk, n, evidence)));
        diagnosis.state = current_state(&log.lines()[range.end..])
            .or_else(|| state::state_at_end(walk, diagnosis.insn.as_ref().map(|i| i.index)));
        diagnosis.origin = found.origin.and_then(|index| origin(walk, index, evidence));
        if let Some(register) = register_at_fault(found.cause, &message) {
            diagnosis.trace = trace::trace(walk, register)
                .into_iter()
                .filter_map(|s| {
                    Some(TraceStep {
                        insn: insn_of(&walk[s.at])?,
                        source: last_note(&walk[..s.at])
                            .map(|n| locate(&walk[..s.at], n, evidence)),
                        note: s.what.describe(),
                        step: s.what,
                    })
                })
                .collect();
            diagnosis.because = because(found.cause, register, &message, &diagnosis.trace);
        }
        if diagnosis.insn.is_some() {
            if diagnosis.source.is_none() {
                diagnosis.gaps.push(Gap::Source);
            }
            if diagnosis.state.is_none() {
                diagnosis.gaps.push(Gap::State);
            }
        }
        Some(diagnosis)
    }

    pub fn title(&self) -> &'static str {
        self.cause.title()
    }

    /// Where the value at fault came from, as steps: the trace, or for a
    /// leaked reference the acquiring call.
    pub fn origin_steps(&self) -> Vec<TraceStep> {
        if !self.trace.is_empty() {
            return self.trace.clone();
        }
        self.origin
            .iter()
            .map(|o| TraceStep {
                insn: o.insn.clone(),
                source: o.source.clone(),
                step: StepKind::Other { register: 0 },
                note: "the reference is acquired here".into(),
            })
            .collect()
    }

    pub fn fix(&self) -> &'static str {
        self.cause.fix()
    }
}

/// The register whose value the message is about, for causes where that
/// value is the mistake.
fn register_at_fault(cause: Cause, message: &[&str]) -> Option<u8> {
    static REGISTER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\bR(\d+)\b").expect("valid regex"));
    match cause {
        Cause::ReturnRange => Some(0),
        Cause::NullDeref | Cause::ScalarDeref | Cause::PacketBounds | Cause::MapValueBounds => {
            message
                .iter()
                .find_map(|line| REGISTER.captures(line)?[1].parse().ok())
        }
        _ => None,
    }
}

/// The unsafe state in words, from the message's numbers or where the
/// trace found the value's maker.
fn because(cause: Cause, register: u8, message: &[&str], trace: &[TraceStep]) -> Option<String> {
    static PACKET: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"off=(-?\d+) size=(\d+), R\d+\(id=\d+,off=(-?\d+),r=(\d+)\)")
            .expect("valid regex")
    });
    if cause == Cause::PacketBounds
        && let Some(c) = message.first().and_then(|m| PACKET.captures(m))
    {
        let n = |i: usize| c[i].parse::<i64>().unwrap_or_default();
        return Some(format!(
            "the access needs bytes up to {} past the packet pointer R{register}, but only {} \
             were proven to lie before data_end",
            n(1) + n(2),
            n(4)
        ));
    }
    static MAP_VALUE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"value_size=(\d+) off=(-?\d+) size=(\d+)").expect("valid regex")
    });
    if cause == Cause::MapValueBounds
        && let Some(c) = message.first().and_then(|m| MAP_VALUE.captures(m))
    {
        let n = |i: usize| c[i].parse::<i64>().unwrap_or_default();
        return Some(format!(
            "the access may cover bytes {} to {} of a {}-byte value: the offset (often a \
             variable index) is not bounded tightly enough",
            n(2),
            n(2) + n(3) - 1,
            n(1)
        ));
    }
    let root = trace.first()?;
    let at = root.source.as_ref().and_then(|s| s.line).map_or_else(
        || format!("insn {}", root.insn.index),
        |l| format!("line {l}"),
    );
    Some(match (cause, &root.step) {
        (Cause::NullDeref, StepKind::Call { function, .. }) => format!(
            "R{register} may be NULL: it is the result of {function}() at {at}, \
             not checked for NULL before this use"
        ),
        (Cause::ScalarDeref, StepKind::Load { .. }) => format!(
            "R{register} is a number, not a pointer the verifier can follow: it was read \
             from memory at {at}"
        ),
        (Cause::ScalarDeref, StepKind::Constant { value, .. }) => {
            format!("R{register} is the number {value}, set at {at}, not a pointer")
        }
        (Cause::ReturnRange, StepKind::Constant { value, .. }) => {
            format!("R0 is {value}, set at {at}, and returned")
        }
        (_, step) => format!("{} (at {at})", step.describe()),
    })
}

/// The `cur state:` some messages come with (infinite loops, from 6.12):
/// the state at the failing instruction, printed by the kernel itself.
fn current_state(after_message: &[Line<'_>]) -> Option<String> {
    after_message.iter().find_map(|line| match line.kind {
        LineKind::State(StateLine {
            at: StateAt::Named("cur state"),
            text,
        }) => state::render_state(text),
        _ => None,
    })
}

/// The instruction the message names, else the last one walked.
fn failing_insn(walk: &[Line<'_>], named: Option<usize>) -> Option<Insn> {
    let Some(index) = named else {
        return walk.iter().rev().find_map(insn_of);
    };
    let printed = walk
        .iter()
        .rev()
        .filter_map(insn_of)
        .find(|i| i.index == index);
    Some(printed.unwrap_or(Insn {
        index,
        text: String::new(),
    }))
}

fn insn_of(line: &Line<'_>) -> Option<Insn> {
    match line.kind {
        LineKind::Insn(insn) => Some(Insn {
            index: insn.index,
            text: insn.text.to_owned(),
        }),
        _ => None,
    }
}

/// The source note in force at the end of `lines`: the kernel prints one
/// only when the line changes, so the last one printed still applies.
fn last_note<'a>(lines: &[Line<'a>]) -> Option<SourceNote<'a>> {
    lines.iter().rev().find_map(|line| match line.kind {
        LineKind::Source(note) if note.is_meaningful() => Some(note),
        _ => None,
    })
}

/// Where line info puts instruction `index` of the program's own function:
/// the record that starts at it or last before it.
fn locate_insn(index: usize, evidence: &Evidence<'_>) -> Option<SourceLocation> {
    if index >= evidence.main_insns? {
        return None;
    }
    let record = evidence
        .lines
        .iter()
        .filter(|r| r.line > 0 && r.insn.is_some_and(|i| i <= index))
        .max_by_key(|r| r.insn)?;
    let text = record.text.trim();
    let indent = record
        .text
        .chars()
        .take_while(|c| c.is_whitespace())
        .count();
    Some(SourceLocation {
        file: Some(base_name(&record.file).to_owned()),
        line: Some(record.line),
        column: Some(record.column).filter(|c| *c > 0),
        text: text.to_owned(),
        caret: (record.column as usize)
            .checked_sub(1 + indent)
            .filter(|c| *c < text.chars().count()),
    })
}

/// Where `note`, the last meaningful note of `walk`, is in the C source.
fn locate(walk: &[Line<'_>], note: SourceNote<'_>, evidence: &Evidence<'_>) -> SourceLocation {
    let mut location = SourceLocation {
        file: note.file.map(str::to_owned),
        line: note.line,
        column: None,
        text: note.text.to_owned(),
        caret: None,
    };
    if let Some(placed) = in_line_info(&note, evidence.lines) {
        location.file = Some(placed.file);
        location.line = Some(placed.line);
        if let Some((column, indent)) = placed.column {
            location.column = Some(column);
            location.caret = (column as usize)
                .checked_sub(1 + indent)
                .filter(|c| *c < location.text.chars().count());
        }
        return location;
    }
    if location.line.is_none()
        && let Some(source) = evidence.source
        && let Some(line) = line_by_text(walk, source.text)
    {
        location.file = Some(source.name.to_owned());
        location.line = Some(line);
    }
    location
}

/// Where line info puts a note: the records of the note's file and line
/// when the kernel printed them, else those whose text is the note's. All
/// must agree on file and line; the column is given when they agree on it
/// too (a line whose instructions start at several columns has none).
fn in_line_info(note: &SourceNote<'_>, lines: &[LineRecord]) -> Option<Placed> {
    let text = note.text.trim();
    let mut found = lines.iter().filter(|r| match (note.file, note.line) {
        (Some(file), Some(line)) => r.line == line && base_name(&r.file) == base_name(file),
        _ => r.text.trim() == text,
    });
    let first = found.next()?;
    let file = base_name(&first.file);
    let mut column = Some(first.column).filter(|c| *c > 0);
    for r in found {
        if r.line != first.line || base_name(&r.file) != file {
            return None;
        }
        if Some(r.column) != column {
            column = None;
        }
    }
    // Columns count the line's indentation, which notes drop.
    let indent = first.text.chars().take_while(|c| c.is_whitespace()).count();
    Some(Placed {
        file: file.to_owned(),
        line: first.line,
        column: column.map(|c| (c, indent)),
    })
}

/// A note placed by line info: file, line, and the column with the
/// indentation of the line it counts from.
struct Placed {
    file: String,
    line: u32,
    column: Option<(u32, usize)>,
}

/// `prog.bpf.c` of `src/bpf/prog.bpf.c`: kernels print base names.
fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The line of the last meaningful note of `walk`, found by its text in
/// `source` (kernels before 6.9 print no line numbers).
///
/// A text that occurs once in the source is that line. One that occurs
/// more than once (`bpf_sk_release(sk);` twice, `return 0;`) is placed by
/// the notes before it: the verifier walks mostly forward, so the note is
/// taken to be the first occurrence after the line of the note before it,
/// or, when the walk went back (a loop), the last occurrence before it.
/// Without a placed note before it, a repeated text has no line.
fn line_by_text(walk: &[Line<'_>], source: &str) -> Option<u32> {
    let mut lines: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, text) in source.lines().enumerate() {
        if let Ok(n) = u32::try_from(i + 1) {
            lines.entry(text.trim()).or_default().push(n);
        }
    }
    let mut previous: Option<u32> = None;
    let mut last: Option<u32> = None;
    for line in walk {
        let LineKind::Source(note) = line.kind else {
            continue;
        };
        if !note.is_meaningful() {
            continue;
        }
        let found = match lines.get(note.text.trim()).map(Vec::as_slice) {
            None | Some([]) => None,
            Some([only]) => Some(*only),
            Some(many) => previous.and_then(|prev| {
                many.iter()
                    .copied()
                    .find(|&n| n > prev)
                    .or_else(|| many.iter().copied().rev().find(|&n| n <= prev))
            }),
        };
        if found.is_some() {
            previous = found;
        }
        last = found;
    }
    last
}

/// Instruction `index` as last walked, with its source note.
fn origin(walk: &[Line<'_>], index: usize, evidence: &Evidence<'_>) -> Option<Origin> {
    let at = walk
        .iter()
        .rposition(|line| matches!(line.kind, LineKind::Insn(i) if i.index == index))?;
    Some(Origin {
        insn: insn_of(&walk[at])?,
        source: locate_insn(index, evidence)
            .or_else(|| last_note(&walk[..at]).map(|n| locate(&walk[..at], n, evidence))),
    })
}

impl Serialize for Diagnosis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Title and fix follow from the cause; they are written out for
        // readers of the JSON.
        #[derive(Serialize)]
        struct Json<'a> {
            cause: Cause,
            category: Option<Category>,
            title: &'static str,
            message: &'a str,
            insn: &'a Option<Insn>,
            source: &'a Option<SourceLocation>,
            state: &'a Option<String>,
            because: &'a Option<String>,
            origin: Vec<TraceStep>,
            fix: &'static str,
            kernel_explanation: &'a Option<KernelExplanation>,
            complexity: &'a Option<Complexity>,
            unknown: Vec<String>,
        }
        Json {
            cause: self.cause,
            category: self.cause.category(),
            title: self.title(),
            message: &self.message,
            insn: &self.insn,
            source: &self.source,
            state: &self.state,
            because: &self.because,
            origin: self.origin_steps(),
            fix: self.fix(),
            kernel_explanation: &self.kernel_explanation,
            complexity: &self.complexity,
            unknown: self.gaps.iter().map(ToString::to_string).collect(),
        }
        .serialize(serializer)
    }
}
