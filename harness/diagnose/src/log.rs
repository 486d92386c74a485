//! A verifier log as typed lines.
//!
//! The grammar follows what kernels 5.10 to 7.3 print at log levels 1 and 2,
//! with or without the statistics of level 4. Anything not recognised is
//! [`LineKind::Other`]: error messages are among those, so the parser never
//! needs to know them. 7.3's own explanation of a rejection (from
//! `Verification failed:` to the end of its indented sections) is
//! [`LineKind::Explanation`], read by [`crate::KernelExplanation`].

use std::sync::LazyLock;

use regex::Regex;

/// A verifier log split into typed lines. Parsing never fails: every input,
/// cut off or not a log at all, gives some lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log<'a> {
    lines: Vec<Line<'a>>,
}

/// One logical line. Usually a physical line of the log; where the kernel
/// rolled its log back and went on writing on the same line (a branch
/// target's state or source note after a jump), each piece is its own line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based number of the physical line it comes from.
    pub number: usize,
    pub kind: LineKind<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind<'a> {
    /// `12: (61) r1 = *(u32 *)(r6 +0)`, maybe followed by the state after it.
    Insn(InsnLine<'a>),
    /// `; return *(u8 *)ctx->data; @ prog.bpf.c:7`: BTF line info of the
    /// instructions that follow.
    Source(SourceNote<'a>),
    /// `0: R1=ctx() R10=fp0`, `from 4 to 7: ...`: registers and stack.
    State(StateLine<'a>),
    /// How the verifier works rather than what it found: `func#0 @0`,
    /// `Validating f() func#1...`, precision tracking, pruning (`8: safe`),
    /// the listings and liveness tables of level 2.
    Bookkeeping(&'a str),
    /// `verification time`, `stack depth`, `processed N insns ...`, and 7.3's
    /// `subprog 0 (name) main insns_self ...`.
    Stats(&'a str),
    /// A line of 7.3's explanation block (`Verification failed: ...`,
    /// `Reason:`, its indented text, the blank lines between sections), as
    /// printed.
    Explanation(&'a str),
    Blank,
    /// The last line, when the log does not end with a newline: the kernel
    /// ends every line with one, so the log was cut off there.
    Partial(&'a str),
    /// Anything else, the kernel's error messages among them.
    Other(&'a str),
}

/// An instruction the verifier walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsnLine<'a> {
    /// Instruction index (an `ld_imm64` takes two).
    pub index: usize,
    pub opcode: u8,
    /// The disassembly, e.g. `r1 = *(u32 *)(r6 +0)` or `call bpf_map_lookup_elem#1`.
    pub text: &'a str,
    /// The registers and stack slots it changed, as printed after `;`
    /// (kernels from about 5.17, level 1): `Some("")` for a bare `;`,
    /// `None` when nothing was printed.
    pub state: Option<&'a str>,
}

/// A source line from the program's BTF line info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceNote<'a> {
    /// The C line as the kernel printed it (leading blanks removed).
    pub text: &'a str,
    /// File and line, printed since 6.9; older kernels print the text alone.
    pub file: Option<&'a str>,
    pub line: Option<u32>,
}

impl SourceNote<'_> {
    /// Whether the note names a C line: compiler-made code has an empty
    /// note, or line 0.
    pub fn is_meaningful(&self) -> bool {
        !self.text.trim().is_empty() && self.line != Some(0)
    }
}

/// The verifier's view of registers and stack at some point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateLine<'a> {
    pub at: StateAt<'a>,
    /// `R0=map_value(...) R10=fp0 fp-8=mmmm???? refs=2`, as printed.
    pub text: &'a str,
}

/// Where a [`StateLine`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateAt<'a> {
    /// `7: R0=...`: before instruction 7.
    Insn(usize),
    /// `from 4 to 7: R0=...`: a path resumed at a branch target.
    Edge {
        from: usize,
        to: usize,
        speculative: bool,
    },
    /// ` R0=...` on a line of its own (5.10): after the previous instruction.
    Unlabelled,
    /// `cur state: ...`, `old state: ...`: printed with an error.
    Named(&'a str),
}

impl<'a> Log<'a> {
    pub fn parse(text: &'a str) -> Self {
        let mut lines: Vec<Line<'a>> = Vec::new();
        let physical: Vec<&str> = text.lines().collect();
        let cut_off = !text.is_empty() && !text.ends_with('\n');
        let mut in_explanation = false;
        for (i, raw) in physical.iter().enumerate() {
            let number = i + 1;
            in_explanation = if in_explanation {
                is_explanation_body(raw)
            } else {
                raw.starts_with(EXPLANATION_START)
            };
            if in_explanation {
                // The blank line the kernel prints before its header is part
                // of the block.
                if raw.starts_with(EXPLANATION_START)
                    && let Some(last) = lines.last_mut()
                    && last.kind == LineKind::Blank
                {
                    last.kind = LineKind::Explanation("");
                }
                lines.push(Line {
                    number,
                    kind: LineKind::Explanation(raw.trim_end()),
                });
                continue;
            }
            if cut_off && number == physical.len() && !is_stats(raw.trim_end()) {
                lines.push(Line {
                    number,
                    kind: LineKind::Partial(raw),
                });
                continue;
            }
            parse_line(raw, |kind| lines.push(Line { number, kind }));
        }
        Self { lines }
    }

    pub fn lines(&self) -> &[Line<'a>] {
        &self.lines
    }

    /// Where the kernel's error message sits: the last lines of
    /// [`LineKind::Other`] before the statistics, past any trailing
    /// bookkeeping or named states. 7.3's explanation may sit inside the
    /// message (after `Unreleased reference ...`, before `BPF_EXIT
    /// instruction ... would lead to reference leak`): the range then spans
    /// it, and [`Log::error_lines`] skips it. Empty when the log has no
    /// message (an accepted program, or a log cut off before the end).
    pub fn error_range(&self) -> std::ops::Range<usize> {
        let mut end = self.lines.len();
        while end > 0 && is_trailer(&self.lines[end - 1].kind) {
            end -= 1;
        }
        let mut start = end;
        while start > 0
            && matches!(
                self.lines[start - 1].kind,
                LineKind::Other(_) | LineKind::Explanation(_)
            )
        {
            start -= 1;
        }
        // An explanation is never the message itself.
        while start < end && matches!(self.lines[start].kind, LineKind::Explanation(_)) {
            start += 1;
        }
        start..end
    }

    /// The lines of 7.3's explanation block, in order, as printed; empty
    /// for other kernels.
    pub fn explanation_lines(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.lines.iter().filter_map(|l| match l.kind {
            LineKind::Explanation(text) => Some(text),
            _ => None,
        })
    }

    /// The lines of the kernel's error message, in order (see
    /// [`Log::error_range`]).
    pub fn error_lines(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.lines[self.error_range()]
            .iter()
            .filter_map(|l| match l.kind {
                LineKind::Other(text) => Some(text),
                _ => None,
            })
    }
}

/// How 7.3's explanation block starts.
pub(crate) const EXPLANATION_START: &str = "Verification failed: ";

/// The sections of 7.3's explanation block.
pub(crate) const EXPLANATION_SECTIONS: [&str; 4] =
    ["Reason:", "At:", "Causal path:", "Suggestion:"];

/// Whether a line after `Verification failed:` still belongs to the
/// block: blank, a section heading, or indented.
fn is_explanation_body(raw: &str) -> bool {
    let line = raw.trim_end();
    line.is_empty() || line.starts_with("  ") || EXPLANATION_SECTIONS.contains(&line)
}

/// Lines that may follow the error message.
fn is_trailer(kind: &LineKind<'_>) -> bool {
    match kind {
        LineKind::Stats(_)
        | LineKind::Blank
        | LineKind::Bookkeeping(_)
        | LineKind::Explanation(_) => true,
        LineKind::State(state) => matches!(state.at, StateAt::Named(_)),
        LineKind::Partial(text) => is_cut_stats(text),
        _ => false,
    }
}

/// Whether a cut-off line is the start of a statistics line: the message
/// before it is then whole.
fn is_cut_stats(text: &str) -> bool {
    [
        "verification time ",
        "stack depth ",
        "processed ",
        "insns processed ",
        "subprog ",
    ]
    .iter()
    .any(|start| start.starts_with(text) || text.starts_with(start))
}

// A register (`R1=`, `R1_w=`), a stack slot (`fp-8=`), a frame or the held
// references: how every state print starts.
const STATE_START: &str = r"(?:R\d+(?:_[a-zA-Z]+)?=|fp-?\d+(?:_[a-zA-Z]+)?=|frame\d+: |refs=)";

static INSN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d+): \(([0-9a-f]{2})\) (.*)$").expect("valid regex"));
// After a jump, a rolled-back log goes on with the target's state.
static BRANCH_STATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"\s(\d+): ({STATE_START}.*)$")).expect("valid regex"));
static SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s;(?: (.*))?$").expect("valid regex"));
static NOTE_LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.*?) @ ([^:]+):(\d+)$").expect("valid regex"));
static STATE_AT_INSN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^(\d+): ({STATE_START}.*)$")).expect("valid regex"));
static EDGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^from (\d+) to (\d+)( \(speculative execution\))?: ?(.*)$").expect("valid regex")
});
static UNLABELLED_STATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^\s*({STATE_START}.*)$")).expect("valid regex"));
static STATS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:verification time \d+ usec|stack depth [\d+]+(?: max \d+)?|stack depth max \d+|",
        r"insns processed \d+|processed \d+ insns \(limit \d+\).*|",
        // 7.3: one line per subprogram.
        r"subprog \d+ \(.*\) \w+ insns_self \d+ insns_total \d+ stack \d+)$",
    ))
    .expect("valid regex")
});
static BOOKKEEPING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:",
        // Subprograms and their BTF.
        r"func#\d+ @\d+|Validating .*func#\d+|Func#\d+ |arg#\d+ type is not a struct|",
        r"arg#\d+ reference type\('|Unrecognized arg#\d+|reg type unsupported for arg#\d+|",
        // Precision tracking: <=6.1 and >=6.4 wording.
        r"last_idx \d+ first_idx \d+|regs=\S* stack=\S* before \d+: |parent didn't have |",
        r"parent already had |mark_precise: |propagating |",
        // Pruning.
        r"(?:from \d+ to )?\d+: safe$|",
        // Calls between subprograms.
        r"caller:$|callee:$|returning from callee:$|to caller at \d+:$|",
        // Level-2 analyses before the walk (7.x) and their listings.
        r"Live regs before insn:$|topo_order\[|subprog#\d+|stack use/def |SCC |\s+\d",
        // Loaders' wrappers.
        r"|-- (?:BEGIN|END) PROG LOAD LOG --",
        r")",
    ))
    .expect("valid regex")
});

fn is_stats(line: &str) -> bool {
    STATS.is_match(line)
}

/// Types one physical line, giving one or two logical lines to `push`.
fn parse_line<'a>(raw: &'a str, mut push: impl FnMut(LineKind<'a>)) {
    let line = raw.trim_end();
    if line.is_empty() {
        return push(LineKind::Blank);
    }
    if let Some(caps) = INSN.captures(line)
        && let Some(insn) = insn_head(&caps)
    {
        let rest = caps.get(3).map_or("", |m| m.as_str());
        return split_insn(insn, rest, push);
    }
    if let Some(note) = line.strip_prefix(';') {
        return push(LineKind::Source(source_note(note)));
    }
    if is_stats(line) {
        return push(LineKind::Stats(line));
    }
    if BOOKKEEPING.is_match(line) {
        return push(LineKind::Bookkeeping(line));
    }
    if let Some(state) = state_line(line) {
        return push(LineKind::State(state));
    }
    push(LineKind::Other(line))
}

fn insn_head<'a>(caps: &regex::Captures<'a>) -> Option<InsnLine<'a>> {
    Some(InsnLine {
        index: caps.get(1)?.as_str().parse().ok()?,
        opcode: u8::from_str_radix(caps.get(2)?.as_str(), 16).ok()?,
        text: "",
        state: None,
    })
}

/// Separates an instruction from what follows it on the same line: its
/// state after `;`, or, after a jump, what the kernel printed once it had
/// rolled its log back to that jump (the target's state, or a source note).
fn split_insn<'a>(mut insn: InsnLine<'a>, rest: &'a str, mut push: impl FnMut(LineKind<'a>)) {
    let suffix = SUFFIX.captures(rest);
    let branch = BRANCH_STATE.captures(rest);
    let suffix_at = suffix.as_ref().and_then(|c| c.get(0)).map(|m| m.start());
    let branch_at = branch.as_ref().and_then(|c| c.get(0)).map(|m| m.start());
    match (suffix_at, branch_at) {
        (Some(s), b) if b.is_none_or(|b| s < b) => {
            insn.text = rest[..s].trim_end();
            let after = suffix
                .as_ref()
                .and_then(|c| c.get(1))
                .map_or("", |m| m.as_str());
            if after.is_empty() || UNLABELLED_STATE.is_match(after) {
                insn.state = Some(after);
                push(LineKind::Insn(insn));
            } else {
                push(LineKind::Insn(insn));
                push(LineKind::Source(source_note(after)));
            }
        }
        (_, Some(b)) => {
            insn.text = rest[..b].trim_end();
            push(LineKind::Insn(insn));
            let caps = branch.as_ref();
            let target = caps
                .and_then(|c| c.get(1))
                .and_then(|m| m.as_str().parse().ok());
            let text = caps.and_then(|c| c.get(2)).map_or("", |m| m.as_str());
            match target {
                Some(to) => push(LineKind::State(StateLine {
                    at: StateAt::Insn(to),
                    text,
                })),
                None => push(LineKind::Other(&rest[b..])),
            }
        }
        _ => {
            insn.text = rest;
            push(LineKind::Insn(insn));
        }
    }
}

/// `note` is what follows the `;`.
fn source_note(note: &str) -> SourceNote<'_> {
    let note = note.strip_prefix(' ').unwrap_or(note);
    if let Some(caps) = NOTE_LOCATION.captures(note)
        && let (Some(text), Some(file), Some(line)) = (caps.get(1), caps.get(2), caps.get(3))
        && let Ok(line) = line.as_str().parse()
    {
        return SourceNote {
            text: text.as_str().trim(),
            file: Some(file.as_str()),
            line: Some(line),
        };
    }
    SourceNote {
        text: note.trim(),
        file: None,
        line: None,
    }
}

fn state_line(line: &str) -> Option<StateLine<'_>> {
    for name in ["cur state", "old state"] {
        if let Some(text) = line.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
            return Some(StateLine {
                at: StateAt::Named(name),
                text: text.trim(),
            });
        }
    }
    if let Some(caps) = STATE_AT_INSN.captures(line) {
        let index = caps.get(1)?.as_str().parse().ok()?;
        return Some(StateLine {
            at: StateAt::Insn(index),
            text: caps.get(2)?.as_str(),
        });
    }
    if let Some(caps) = EDGE.captures(line) {
        return Some(StateLine {
            at: StateAt::Edge {
                from: caps.get(1)?.as_str().parse().ok()?,
                to: caps.get(2)?.as_str().parse().ok()?,
                speculative: caps.get(3).is_some(),
            },
            text: caps.get(4)?.as_str(),
        });
    }
    let caps = UNLABELLED_STATE.captures(line)?;
    Some(StateLine {
        at: StateAt::Unlabelled,
        text: caps.get(1)?.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(log: &str) -> Vec<LineKind<'_>> {
        Log::parse(log).lines().iter().map(|l| l.kind).collect()
    }

    #[test]
    fn an_instruction_with_its_state() {
        let k = kinds(
            "0: (61) r1 = *(u32 *)(r1 +16)         ; R1_w=scalar(umax=4294967295,var_off=(0x0; 0xffffffff))\n",
        );
        assert_eq!(
            k,
            [LineKind::Insn(InsnLine {
                index: 0,
                opcode: 0x61,
                text: "r1 = *(u32 *)(r1 +16)",
                state: Some("R1_w=scalar(umax=4294967295,var_off=(0x0; 0xffffffff))"),
            })]
        );
    }

    #[test]
    fn a_jump_followed_by_its_targets_state() {
        let k = kinds("12: (15) if r1 == 0x0 goto pc+7 20: R0=scalar(id=3) R10=fp0 refs=2\n");
        assert_eq!(
            k,
            [
                LineKind::Insn(InsnLine {
                    index: 12,
                    opcode: 0x15,
                    text: "if r1 == 0x0 goto pc+7",
                    state: None,
                }),
                LineKind::State(StateLine {
                    at: StateAt::Insn(20),
                    text: "R0=scalar(id=3) R10=fp0 refs=2",
                }),
            ]
        );
    }

    #[test]
    fn a_jump_followed_by_a_source_note() {
        // 7.2 rolls back to the jump and prints the next note on its line.
        let k = kinds("9: (15) if r1 == 0x0 goto pc-2 ; while (!*on) @ prog.bpf.c:23\n");
        assert_eq!(
            k[1],
            LineKind::Source(SourceNote {
                text: "while (!*on)",
                file: Some("prog.bpf.c"),
                line: Some(23),
            })
        );
    }

    #[test]
    fn source_notes_with_and_without_location() {
        assert_eq!(
            kinds(
                "; *count += 1; @ diag_null_deref.bpf.c:20\n; *count += 1;\n;  @ f.bpf.c:0\n; \n"
            ),
            [
                LineKind::Source(SourceNote {
                    text: "*count += 1;",
                    file: Some("diag_null_deref.bpf.c"),
                    line: Some(20),
                }),
                LineKind::Source(SourceNote {
                    text: "*count += 1;",
                    file: None,
                    line: None,
                }),
                LineKind::Source(SourceNote {
                    text: "",
                    file: Some("f.bpf.c"),
                    line: Some(0),
                }),
                LineKind::Source(SourceNote {
                    text: "",
                    file: None,
                    line: None,
                }),
            ]
        );
    }

    #[test]
    fn states_bookkeeping_and_stats() {
        let k = kinds(
            "func#0 @0\n0: R1=ctx() R10=fp0\n R0_w=map_value(id=0,off=0,ks=4,vs=4,imm=0) R10=fp0\n\
             from 9 to 8: R0=map_value(off=0,ks=4,vs=4,imm=0) R1_w=0\nfrom 9 to 11: safe\n\
             regs=2 stack=0 before 1: (b7) r1 = 0\n  4: (85) call bpf_ringbuf_reserve#131\n\
             cur state: R0=map_value(map=enabled,ks=4,vs=4) R10=fp0\nstack depth 8 max 0\ninsns processed 12\n",
        );
        assert!(matches!(k[0], LineKind::Bookkeeping(_)));
        assert!(matches!(
            k[1],
            LineKind::State(StateLine {
                at: StateAt::Insn(0),
                ..
            })
        ));
        assert!(matches!(
            k[2],
            LineKind::State(StateLine {
                at: StateAt::Unlabelled,
                ..
            })
        ));
        assert!(matches!(
            k[3],
            LineKind::State(StateLine {
                at: StateAt::Edge {
                    from: 9,
                    to: 8,
                    speculative: false
                },
                ..
            })
        ));
        assert!(matches!(k[4], LineKind::Bookkeeping(_)));
        assert!(matches!(k[5], LineKind::Bookkeeping(_)));
        assert!(matches!(k[6], LineKind::Bookkeeping(_)));
        assert!(matches!(
            k[7],
            LineKind::State(StateLine {
                at: StateAt::Named("cur state"),
                ..
            })
        ));
        assert!(matches!(k[8], LineKind::Stats(_)));
        assert!(matches!(k[9], LineKind::Stats(_)));
    }

    #[test]
    fn error_messages_are_not_states() {
        assert_eq!(
            kinds("R1 offset is outside of the packet\n"),
            [LineKind::Other("R1 offset is outside of the packet")]
        );
    }

    #[test]
    fn the_error_is_the_last_block_before_the_statistics() {
        let log = Log::parse(
            "1: (71) r2 = *(u8 *)(r1 +12)\ninvalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)\n\
             R1 offset is outside of the packet\nverification time 125 usec\nstack depth 0\n",
        );
        assert_eq!(
            log.error_lines().collect::<Vec<_>>(),
            [
                "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)",
                "R1 offset is outside of the packet"
            ]
        );
    }

    #[test]
    fn a_last_line_without_newline_was_cut_off() {
        let log = Log::parse("0: (b7) r0 = 0\n1: (95) ex");
        assert_eq!(log.lines()[1].kind, LineKind::Partial("1: (95) ex"));
        assert_eq!(log.error_range(), 2..2);
        // Statistics are recognisable whole even without the newline, and
        // a message before cut-off statistics is whole.
        for log in [
            "R0 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
            "R0 !read_ok\nverification time 12 usec\nstack de",
        ] {
            assert_eq!(
                Log::parse(log).error_lines().collect::<Vec<_>>(),
                ["R0 !read_ok"]
            );
        }
        // A cut-off message is not one.
        assert_eq!(Log::parse("R0 invalid mem ac").error_range(), 1..1);
    }
}
