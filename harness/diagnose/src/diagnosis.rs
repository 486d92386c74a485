//! From a parsed log to a [`Diagnosis`].

use serde::{Serialize, Serializer};

use crate::{
    category::Category,
    cause::{self, Cause},
    explanation::KernelExplanation,
    log::{Line, LineKind, Log, SourceNote, StateAt, StateLine},
    state,
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
    /// What the kernel itself said about the rejection (7.3 on, for most
    /// causes); `None` for older kernels.
    pub kernel_explanation: Option<KernelExplanation>,
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
    /// Kernel notes carry no column; kept for BTF line info, which has one.
    pub column: Option<u32>,
    /// The line as the kernel printed it, leading blanks removed.
    pub text: String,
}

/// An earlier instruction that explains the failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub insn: Insn,
    pub source: Option<SourceLocation>,
}

/// What the caller knows about the program besides its log. All optional;
/// more (BTF line info) will join.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Evidence<'a> {
    pub source: Option<SourceFile<'a>>,
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
            kernel_explanation: KernelExplanation::from_lines(log.explanation_lines()),
        };
        if !found.cause.at_instruction() {
            return Some(diagnosis);
        }
        // Everything the walk printed before it stopped.
        let walk = &log.lines()[..range.start];
        diagnosis.insn = failing_insn(walk, found.insn);
        diagnosis.source = last_note(walk).map(|n| locate(n, evidence));
        diagnosis.state = current_state(&log.lines()[range.end..])
            .or_else(|| state::state_at_end(walk, diagnosis.insn.as_ref().map(|i| i.index)));
        diagnosis.origin = found.origin.and_then(|index| origin(walk, index, evidence));
        Some(diagnosis)
    }

    pub fn title(&self) -> &'static str {
        self.cause.title()
    }

    pub fn fix(&self) -> &'static str {
        self.cause.fix()
    }
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

fn locate(note: SourceNote<'_>, evidence: &Evidence<'_>) -> SourceLocation {
    let mut location = SourceLocation {
        file: note.file.map(str::to_owned),
        line: note.line,
        column: None,
        text: note.text.to_owned(),
    };
    if location.line.is_none()
        && let Some(source) = evidence.source
        && let Some(line) = unique_line(source.text, note.text)
    {
        location.file = Some(source.name.to_owned());
        location.line = Some(line);
    }
    location
}

/// The 1-based number of the only line of `source` that reads `text`;
/// `None` when there are none or several (`}`, `return 0;`).
fn unique_line(source: &str, text: &str) -> Option<u32> {
    let text = text.trim();
    let mut found = source
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim() == text)
        .map(|(i, _)| i + 1);
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    u32::try_from(first).ok()
}

/// Instruction `index` as last walked, with its source note.
fn origin(walk: &[Line<'_>], index: usize, evidence: &Evidence<'_>) -> Option<Origin> {
    let at = walk
        .iter()
        .rposition(|line| matches!(line.kind, LineKind::Insn(i) if i.index == index))?;
    Some(Origin {
        insn: insn_of(&walk[at])?,
        source: last_note(&walk[..at]).map(|n| locate(n, evidence)),
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
            origin: &'a Option<Origin>,
            fix: &'static str,
            kernel_explanation: &'a Option<KernelExplanation>,
        }
        Json {
            cause: self.cause,
            category: self.cause.category(),
            title: self.title(),
            message: &self.message,
            insn: &self.insn,
            source: &self.source,
            state: &self.state,
            origin: &self.origin,
            fix: self.fix(),
            kernel_explanation: &self.kernel_explanation,
        }
        .serialize(serializer)
    }
}
