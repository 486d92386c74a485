//! A diagnosis as a compiler would print it: plain text, no colours.
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

use std::fmt::{self, Display, Formatter};

use crate::diagnosis::{Diagnosis, Insn, SourceLocation};

impl Display for Diagnosis {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let head = format!("error[{}]: ", self.cause.id());
        let mut message = self.message.lines();
        writeln!(f, "{head}{}", message.next().unwrap_or_default())?;
        for line in message {
            writeln!(f, "{:width$}{line}", "", width = head.len())?;
        }
        // The gutter fits the line number, as rustc's does.
        let line_no = self
            .source
            .as_ref()
            .and_then(|s| s.line)
            .map(|l| l.to_string());
        let gutter = " ".repeat(line_no.as_ref().map_or(1, String::len) + 1);
        if let Some(source) = &self.source {
            write_source(f, source, line_no.as_deref(), &gutter)?;
        }
        if let Some(insn) = &self.insn {
            writeln!(f, "{gutter}= insn {}", insn_text(insn))?;
        }
        if let Some(state) = &self.state {
            writeln!(f, "{gutter}= state: {state}")?;
        }
        for step in &self.trace {
            write!(f, "{gutter}= from: {} (insn {}", step.note, step.insn.index)?;
            if let Some(line) = step.source.as_ref().and_then(|s| s.line) {
                write!(f, ", line {line}")?;
            }
            writeln!(f, ")")?;
        }
        if let Some(because) = &self.because {
            writeln!(f, "{gutter}= because: {because}")?;
        }
        if let Some(origin) = &self.origin {
            write!(f, "{gutter}= origin: insn {}", insn_text(&origin.insn))?;
            if let Some(source) = &origin.source {
                write!(f, ", at {}", where_text(source))?;
            }
            writeln!(f)?;
        }
        writeln!(f, "{gutter}= note: {}", self.title())?;
        write!(f, "{gutter}= help: {}", self.fix())
    }
}

fn write_source(
    f: &mut Formatter<'_>,
    source: &SourceLocation,
    line_no: Option<&str>,
    gutter: &str,
) -> fmt::Result {
    if let Some(file) = &source.file {
        let mut at = file.clone();
        for n in [source.line, source.column].into_iter().map_while(|n| n) {
            at.push_str(&format!(":{n}"));
        }
        writeln!(f, "{}--> {at}", &gutter[1..])?;
    }
    writeln!(f, "{gutter}|")?;
    writeln!(
        f,
        "{:>width$} | {}",
        line_no.unwrap_or(""),
        source.text,
        width = gutter.len() - 1
    )?;
    match source.caret {
        Some(at) => writeln!(f, "{gutter}| {:at$}^", ""),
        None => writeln!(f, "{gutter}|"),
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
