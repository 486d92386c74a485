//! A diagnosis as a compiler would print it: plain text through
//! [`Display`], or with colours through [`Diagnosis::styled`] (ANSI codes a
//! caller's terminal writer, such as anstream, strips where colour is off).
//!
//! ```text
//! error[null-deref]: R0 invalid mem access 'map_value_or_null'
//!   --> diag_null_deref.bpf.c:20
//!    |
//! 20 | *count += 1;
//!    |
//!    = insn 7: r1 = *(u64 *)(r0 +0)
//!    = state: R0=map_value_or_null(id=1,map=rx_packets,ks=4,vs=8) R10=fp0 fp-8=mmmm????
//!    = note: a pointer that may be NULL is dereferenced
//!    = help: check the pointer right after the helper that returned it ...
//! ```
//!
//! On 7.3, the kernel's own explanation follows, marked as its words:
//!
//! ```text
//! kernel (7.3): Register Type Safety: Invalid dereference
//!   reason: R0 may be NULL here (a nullable map value pointer). ...
//!   at count_rx_queue @ diag_null_deref.bpf.c:20:9
//!      20 |         *count += 1;
//!         = error: invalid dereference of R0 (a nullable map value pointer)
//!         = insn 7: (79) r1 = *(u64 *)(r0 +0)
//!   causal path:
//!   1. count_rx_queue @ diag_null_deref.bpf.c:19:10
//!      19 |         count = bpf_map_lookup_elem(&rx_packets, &queue);
//!         = update: R0 changed from uninitialized value to nullable map value ...
//!         = insn 6: (85) call bpf_map_lookup_elem#1
//!   suggestion: Add a NULL check before the access ...
//! ```

use std::fmt::{self, Display, Formatter};

use anstyle::{AnsiColor, Style};

use crate::{
    complexity::Complexity,
    diagnosis::{Diagnosis, Insn, SourceLocation},
    explanation::{KernelExplanation, KernelSite},
};

/// The styles of the parts of a rendering, rustc's choices.
#[derive(Clone, Copy)]
struct Palette {
    error: Style,
    message: Style,
    gutter: Style,
    label: Style,
    help: Style,
    kernel: Style,
}

const PLAIN: Palette = Palette {
    error: Style::new(),
    message: Style::new(),
    gutter: Style::new(),
    label: Style::new(),
    help: Style::new(),
    kernel: Style::new(),
};

const COLOUR: Palette = Palette {
    error: AnsiColor::Red.on_default().bold(),
    message: Style::new().bold(),
    gutter: AnsiColor::Blue.on_default().bold(),
    label: AnsiColor::Yellow.on_default().bold(),
    help: AnsiColor::Green.on_default().bold(),
    kernel: AnsiColor::Cyan.on_default().bold(),
};

/// `text` in `style`; nothing added for a plain style.
fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// A diagnosis rendered with colours ([`Diagnosis::styled`]).
pub struct Styled<'a>(&'a Diagnosis);

impl Diagnosis {
    /// The rendering of [`Display`] with colours, as ANSI escape codes.
    pub fn styled(&self) -> Styled<'_> {
        Styled(self)
    }
}

impl Display for Styled<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        render(self.0, f, COLOUR)
    }
}

impl Display for Diagnosis {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        render(self, f, PLAIN)
    }
}

fn render(d: &Diagnosis, f: &mut Formatter<'_>, p: Palette) -> fmt::Result {
    {
        let this = d;
        let head = format!("error[{}]: ", this.cause.id());
        let mut message = this.message.lines();
        writeln!(
            f,
            "{}{}",
            paint(p.error, &head),
            paint(p.message, message.next().unwrap_or_default())
        )?;
        for line in message {
            writeln!(
                f,
                "{:width$}{}",
                "",
                paint(p.message, line),
                width = head.len()
            )?;
        }
        // The gutter fits the line number, as rustc's does.
        let line_no = this
            .source
            .as_ref()
            .and_then(|s| s.line)
            .map(|l| l.to_string());
        let width = line_no.as_ref().map_or(1, String::len) + 1;
        let gutter = " ".repeat(width);
        if let Some(source) = &this.source {
            write_source(f, source, line_no.as_deref(), width, p)?;
        }
        // `= label: text`, the label in its style.
        let eq = paint(p.gutter, "=");
        let gutter = format!("{gutter}{eq}");
        if let Some(insn) = &this.insn {
            writeln!(f, "{gutter} insn {}", insn_text(insn))?;
        }
        if let Some(state) = &this.state {
            writeln!(f, "{gutter} {} {state}", paint(p.label, "state:"))?;
        }
        for step in &this.trace {
            write!(
                f,
                "{gutter} {} {} (insn {}",
                paint(p.label, "from:"),
                step.note,
                step.insn.index
            )?;
            if let Some(line) = step.source.as_ref().and_then(|s| s.line) {
                write!(f, ", line {line}")?;
            }
            writeln!(f, ")")?;
        }
        if let Some(because) = &this.because {
            writeln!(f, "{gutter} {} {because}", paint(p.label, "because:"))?;
        }
        if let Some(origin) = &this.origin {
            write!(
                f,
                "{gutter} {} insn {}",
                paint(p.label, "origin:"),
                insn_text(&origin.insn)
            )?;
            if let Some(source) = &origin.source {
                write!(f, ", at {}", where_text(source))?;
            }
            writeln!(f)?;
        }
        if let Some(c) = &this.complexity {
            write_complexity(f, c, &gutter, p)?;
        }
        for gap in &this.gaps {
            writeln!(f, "{gutter} {} {gap}", paint(p.label, "unknown:"))?;
        }
        writeln!(f, "{gutter} {} {}", paint(p.label, "note:"), this.title())?;
        write!(f, "{gutter} {} {}", paint(p.help, "help:"), this.fix())?;
        if let Some(explanation) = &this.kernel_explanation {
            let text = explanation.to_string();
            let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
            write!(f, "\n{}", paint(p.kernel, head))?;
            if !rest.is_empty() {
                write!(f, "\n{rest}")?;
            }
        }
        Ok(())
    }
}

/// The walk's totals, the hottest lines and the loops, one `=` line each.
fn write_complexity(
    f: &mut Formatter<'_>,
    c: &Complexity,
    gutter: &str,
    p: Palette,
) -> fmt::Result {
    if let Some(processed) = c.processed {
        write!(
            f,
            "{gutter} {} {processed} instructions processed",
            paint(p.label, "walk:")
        )?;
        if let Some(limit) = c.limit {
            write!(f, " (limit {limit})")?;
        }
        if let (Some(total), Some(peak), Some(per)) =
            (c.total_states, c.peak_states, c.max_states_per_insn)
        {
            write!(
                f,
                ", {total} states (at most {peak} at once, {per} at one instruction)"
            )?;
        }
        writeln!(f)?;
    }
    if c.stack_depths.len() > 1 || c.stack_depths.iter().any(|d| *d > 0) {
        let frames: Vec<String> = c.stack_depths.iter().map(u64::to_string).collect();
        writeln!(
            f,
            "{gutter} {} {} bytes by frame, main first ({} in all)",
            paint(p.label, "stack:"),
            frames.join(" + "),
            c.stack_depths.iter().sum::<u64>()
        )?;
    }
    for hot in &c.hottest {
        writeln!(
            f,
            "{gutter} {} {} ({:.0}% of {} logged instructions): {}",
            paint(p.label, "hot:"),
            hot.location,
            100.0 * hot.insns as f64 / c.logged_insns.max(1) as f64,
            c.logged_insns,
            hot.text
        )?;
    }
    for l in &c.loops {
        write!(
            f,
            "{gutter} {} insn {} jumps back to {}, walked {} times",
            paint(p.label, "loop:"),
            l.from,
            l.to,
            l.walked
        )?;
        match &l.text {
            Some(text) => writeln!(f, ": {text}")?,
            None => writeln!(f)?,
        }
    }
    if let Some(note) = &c.note {
        writeln!(f, "{gutter} {} {note}", paint(p.label, "walk:"))?;
    }
    Ok(())
}

impl Display for KernelExplanation {
    /// The kernel's words, shortened to the marked lines of each site.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "kernel (7.3): {}", self.category_name)?;
        if !self.problem.is_empty() {
            write!(f, ": {}", self.problem)?;
        }
        if let Some(reason) = &self.reason {
            write!(f, "\n  reason: {reason}")?;
        }
        if let Some(at) = &self.at {
            write!(f, "\n  at")?;
            write_site(f, at)?;
        }
        if !self.causal_path.is_empty() {
            write!(f, "\n  causal path:")?;
            for (i, event) in self.causal_path.iter().enumerate() {
                write!(f, "\n  {}.", i + 1)?;
                write_site(f, event)?;
            }
        }
        if let Some(suggestion) = &self.suggestion {
            write!(f, "\n  suggestion: {suggestion}")?;
        }
        Ok(())
    }
}

/// ` func @ file:line:col`, then the marked source line and the note.
fn write_site(f: &mut Formatter<'_>, site: &KernelSite) -> fmt::Result {
    if let Some(at) = &site.location {
        write!(f, " {} @ {}:{}", at.function, at.file, at.line)?;
        if let Some(column) = at.column {
            write!(f, ":{column}")?;
        }
    }
    let marked = site.source_context.iter().find(|c| c.marked);
    if let Some(line) = marked {
        write!(f, "\n     {:>3} | {}", line.number, line.text)?;
    }
    if let Some(note) = &site.note {
        if note.kind.is_empty() {
            write!(f, "\n         = {}", note.text)?;
        } else {
            write!(f, "\n         = {}: {}", note.kind, note.text)?;
        }
    }
    if let Some(insn) = site.instruction_context.iter().find(|c| c.marked) {
        write!(f, "\n         = insn {}: {}", insn.number, insn.text)?;
    }
    Ok(())
}

fn write_source(
    f: &mut Formatter<'_>,
    source: &SourceLocation,
    line_no: Option<&str>,
    width: usize,
    p: Palette,
) -> fmt::Result {
    let blank = " ".repeat(width);
    let bar = paint(p.gutter, "|");
    if let Some(file) = &source.file {
        let mut at = file.clone();
        for n in [source.line, source.column].into_iter().map_while(|n| n) {
            at.push_str(&format!(":{n}"));
        }
        writeln!(f, "{}{} {at}", &blank[1..], paint(p.gutter, "-->"))?;
    }
    writeln!(f, "{blank}{bar}")?;
    let number = format!("{:>w$}", line_no.unwrap_or(""), w = width - 1);
    writeln!(f, "{} {bar} {}", paint(p.gutter, &number), source.text)?;
    match source.caret {
        Some(at) => writeln!(f, "{blank}{bar} {:at$}{}", "", paint(p.error, "^")),
        None => writeln!(f, "{blank}{bar}"),
    }
}

fn insn_text(insn: &Insn) -> String {
    if insn.text.is_empty() {
        insn.index.to_string()
    } else {
        format!("{}: {}", insn.index, insn.text)
    }
}

/// `prog.bpf.c:23: e = bpf_ringbuf_reserve(...)`, or the text alone.
fn where_text(source: &SourceLocation) -> String {
    match (&source.file, source.line) {
        (Some(file), Some(line)) => format!("{file}:{line}: {}", source.text),
        _ => source.text.clone(),
    }
}
