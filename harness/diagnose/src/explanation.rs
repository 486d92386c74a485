//! Linux 7.3's own explanation of a rejection (`kernel/bpf/diagnostics.c`),
//! printed after the classic error line at log levels 1 and 2:
//!
//! ```text
//! Verification failed: Register Type Safety: Invalid dereference
//!
//! Reason:
//!   R0 may be NULL here (a nullable map value pointer). ...
//!
//! At:
//!   count_rx_queue @ diag_null_deref.bpf.c:20:9
//!   Source context:
//!       19 |         count = bpf_map_lookup_elem(&rx_packets, &queue);
//!   >>> 20 |         *count += 1;
//!          |         ^-- error: invalid dereference of R0 (a nullable map value pointer)
//!   Instruction context:
//!   >>>  7 | (79) r1 = *(u64 *)(r0 +0)
//!
//! Causal path:
//!   count_rx_queue @ diag_null_deref.bpf.c:19:10
//!   Source context: ...
//!          |         ^-- update: R0 changed from uninitialized value to ...
//!   Instruction context: ...
//!
//! Suggestion:
//!   Add a NULL check before the access ...
//! ```
//!
//! Everything is optional: a block cut off anywhere, or with sections this
//! parser does not know, gives what could be read.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::{
    category::Category,
    log::{EXPLANATION_SECTIONS, EXPLANATION_START},
};

/// The kernel's explanation, in its own words.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelExplanation {
    /// The class of the header; `None` when the kernel names one this crate
    /// does not know (the text is in `category_name`).
    pub category: Option<Category>,
    /// The class as printed: `Register Type Safety`.
    pub category_name: String,
    /// What went wrong: `Invalid dereference`.
    pub problem: String,
    /// The `Reason:` text, its lines joined by spaces.
    pub reason: Option<String>,
    /// Where the verifier stopped (`At:`).
    pub at: Option<KernelSite>,
    /// How the failing value got there (`Causal path:`), oldest first.
    pub causal_path: Vec<KernelSite>,
    /// The `Suggestion:` text, its lines joined by spaces.
    pub suggestion: Option<String>,
}

/// A place in the program the kernel points at: the failure, or one event
/// of the causal path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KernelSite {
    /// `func @ file:line:col`; `None` when the line was missing or unreadable.
    pub location: Option<KernelLocation>,
    /// The C lines around it, `>>>` marking this one.
    pub source_context: Vec<ContextLine>,
    /// The note under the marked line (`^-- error: ...`, `^-- update: ...`).
    pub note: Option<SiteNote>,
    /// The instructions around it, `>>>` marking this one.
    pub instruction_context: Vec<ContextLine>,
}

/// `count_rx_queue @ diag_null_deref.bpf.c:20:9`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelLocation {
    pub function: String,
    pub file: String,
    pub line: u32,
    pub column: Option<u32>,
}

/// One line of a source or instruction context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContextLine {
    /// The C line number, or the instruction index.
    pub number: u32,
    /// As printed after `| `: C with the kernel's indentation, `...` for a
    /// line it left out, or `(79) r1 = *(u64 *)(r0 +0)`.
    pub text: String,
    /// Whether the kernel marked it with `>>>`.
    pub marked: bool,
}

/// The caret note of a site: `error: invalid dereference of R0 ...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteNote {
    /// The word before the colon: `error`, `update`, `branch`, `acquired`.
    pub kind: String,
    /// The rest, its wrapped lines joined by spaces.
    pub text: String,
}

static LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\S+) @ (\S+?):(\d+)(?::(\d+))?$").expect("valid regex"));

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Reason,
    At,
    CausalPath,
    Suggestion,
    Unknown,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    None,
    Source,
    Instruction,
}

impl KernelExplanation {
    /// Reads the first explanation block among `lines` (a whole log, or the
    /// block alone, one line per item); `None` when there is no
    /// `Verification failed:` header.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut lines = lines.into_iter().map(|l| l.trim_end());
        let header = lines.find_map(|l| l.strip_prefix(EXPLANATION_START))?;
        let (category_name, problem) = header.split_once(": ").unwrap_or((header, ""));
        let mut explanation = KernelExplanation {
            category: Category::from_kernel(category_name),
            category_name: category_name.trim().to_owned(),
            problem: problem.trim().to_owned(),
            ..Default::default()
        };
        let mut reader = Reader::default();
        for line in lines {
            if line.is_empty() {
                reader.blank(&mut explanation);
                continue;
            }
            if !line.starts_with(' ') {
                if EXPLANATION_SECTIONS.contains(&line) {
                    reader.section(&mut explanation, line);
                    continue;
                }
                // The block is over.
                break;
            }
            reader.content(&mut explanation, line);
        }
        reader.finish(&mut explanation);
        Some(explanation)
    }

    /// [`KernelExplanation::from_lines`] over a text.
    pub fn parse(text: &str) -> Option<Self> {
        Self::from_lines(text.lines())
    }
}

/// The parser's position in the block.
struct Reader {
    section: Section,
    text: Vec<String>,
    site: Option<KernelSite>,
    context: Context,
    /// Whether the last context line read was a note or its continuation.
    in_note: bool,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            section: Section::Unknown,
            text: Vec::new(),
            site: None,
            context: Context::None,
            in_note: false,
        }
    }
}

impl Reader {
    fn section(&mut self, out: &mut KernelExplanation, heading: &str) {
        self.finish(out);
        self.section = match heading {
            "Reason:" => Section::Reason,
            "At:" => Section::At,
            "Causal path:" => Section::CausalPath,
            "Suggestion:" => Section::Suggestion,
            _ => Section::Unknown,
        };
    }

    /// A blank line ends an event of the causal path.
    fn blank(&mut self, out: &mut KernelExplanation) {
        if self.section == Section::CausalPath {
            self.end_site(out);
        }
    }

    fn content(&mut self, out: &mut KernelExplanation, line: &str) {
        match self.section {
            Section::Reason | Section::Suggestion => self.text.push(line.trim().to_owned()),
            Section::At | Section::CausalPath => self.site_line(out, line),
            Section::Unknown => {}
        }
    }

    fn site_line(&mut self, out: &mut KernelExplanation, line: &str) {
        let trimmed = line.trim();
        if trimmed == "Source context:" {
            self.context = Context::Source;
            self.in_note = false;
            return;
        }
        if trimmed == "Instruction context:" {
            self.context = Context::Instruction;
            self.in_note = false;
            return;
        }
        if let Some(caps) = LOCATION.captures(trimmed)
            && !line.contains('|')
        {
            // A new event of the causal path starts with its location, even
            // without a blank line before it.
            if self.section == Section::CausalPath
                && self.site.as_ref().is_some_and(|s| s.location.is_some())
            {
                self.end_site(out);
            }
            let number = |i: usize| caps.get(i).and_then(|m| m.as_str().parse().ok());
            let site = self.site.get_or_insert_with(KernelSite::default);
            site.location = number(3).map(|line| KernelLocation {
                function: caps[1].to_owned(),
                file: caps[2].to_owned(),
                line,
                column: number(4),
            });
            self.context = Context::None;
            self.in_note = false;
            return;
        }
        let Some((left, right)) = line.split_once('|') else {
            return;
        };
        let right = right.strip_prefix(' ').unwrap_or(right);
        let left = left.trim();
        let (marked, number) = match left.strip_prefix(">>>") {
            Some(rest) => (true, rest.trim()),
            None => (false, left),
        };
        let site = self.site.get_or_insert_with(KernelSite::default);
        if number.is_empty() && !marked {
            // Under a source line: the caret and its note, or the note's
            // continuation.
            let text = right.trim();
            if let Some(note) = text.strip_prefix("^--") {
                let note = note.trim();
                let (kind, text) = note.split_once(':').unwrap_or(("", note));
                site.note = Some(SiteNote {
                    kind: kind.trim().to_owned(),
                    text: text.trim().to_owned(),
                });
                self.in_note = true;
            } else if self.in_note
                && !text.is_empty()
                && let Some(note) = site.note.as_mut()
            {
                note.text.push(' ');
                note.text.push_str(text);
            }
            return;
        }
        self.in_note = false;
        let Ok(number) = number.parse() else {
            return;
        };
        let context = ContextLine {
            number,
            text: right.to_owned(),
            marked,
        };
        match self.context {
            Context::Source => site.source_context.push(context),
            Context::Instruction => site.instruction_context.push(context),
            Context::None => {}
        }
    }

    fn end_site(&mut self, out: &mut KernelExplanation) {
        self.context = Context::None;
        self.in_note = false;
        let Some(site) = self.site.take() else {
            return;
        };
        match self.section {
            Section::At => {
                out.at.get_or_insert(site);
            }
            Section::CausalPath => out.causal_path.push(site),
            _ => {}
        }
    }

    /// Closes the section being read.
    fn finish(&mut self, out: &mut KernelExplanation) {
        self.end_site(out);
        let text = std::mem::take(&mut self.text).join(" ");
        let text = (!text.is_empty()).then_some(text);
        match self.section {
            Section::Reason => out.reason = out.reason.take().or(text),
            Section::Suggestion => out.suggestion = out.suggestion.take().or(text),
            _ => {}
        }
        self.section = Section::Unknown;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "\
Verification failed: Register Type Safety: Invalid dereference

Reason:
  R0 may be NULL here (a nullable map value pointer). The program could dereference NULL on this
  path, so the verifier cannot prove this access is safe.

At:
  count_rx_queue @ diag_null_deref.bpf.c:20:9
  Source context:
      18 | ...
  >>> 20 |         *count += 1;
         |         ^-- error: invalid dereference of R0 (a nullable map value pointer)
      21 |         return XDP_PASS;
  Instruction context:
       6 | (85) call bpf_map_lookup_elem#1
  >>>  7 | (79) r1 = *(u64 *)(r0 +0)

Causal path:
  count_rx_queue @ diag_null_deref.bpf.c:19:10
  Source context:
  >>> 19 |         count = bpf_map_lookup_elem(&rx_packets, &queue);
         |         ^-- update: R0 changed from uninitialized value to nullable map value from
         |             rx_packets at offset 0
      20 |         *count += 1;
  Instruction context:
  >>>  6 | (85) call bpf_map_lookup_elem#1

  count_rx_queue @ diag_null_deref.bpf.c:22:6
  Source context:
  >>> 22 |         if (x)
         |         ^-- branch: took the false branch of this conditional, goto not followed

Suggestion:
  Add a NULL check before the access and dereference the pointer only on the non-NULL path.

verification time 1239 usec
";

    #[test]
    fn reads_every_section() {
        let e = KernelExplanation::parse(BLOCK).expect("a block");
        assert_eq!(e.category, Some(Category::RegisterType));
        assert_eq!(e.category_name, "Register Type Safety");
        assert_eq!(e.problem, "Invalid dereference");
        assert_eq!(
            e.reason.as_deref(),
            Some(
                "R0 may be NULL here (a nullable map value pointer). The program could dereference \
                 NULL on this path, so the verifier cannot prove this access is safe."
            )
        );
        let at = e.at.expect("At");
        assert_eq!(
            at.location,
            Some(KernelLocation {
                function: "count_rx_queue".into(),
                file: "diag_null_deref.bpf.c".into(),
                line: 20,
                column: Some(9),
            })
        );
        assert_eq!(at.source_context.len(), 3);
        assert_eq!(
            at.source_context[1],
            ContextLine {
                number: 20,
                text: "        *count += 1;".into(),
                marked: true
            }
        );
        assert_eq!(at.source_context[0].text, "...");
        assert_eq!(
            at.note,
            Some(SiteNote {
                kind: "error".into(),
                text: "invalid dereference of R0 (a nullable map value pointer)".into()
            })
        );
        assert_eq!(
            at.instruction_context
                .iter()
                .map(|c| (c.number, c.marked))
                .collect::<Vec<_>>(),
            [(6, false), (7, true)]
        );
        assert_eq!(e.causal_path.len(), 2);
        let first = &e.causal_path[0];
        assert_eq!(first.location.as_ref().map(|l| l.line), Some(19));
        assert_eq!(
            first.note.as_ref().map(|n| n.text.as_str()),
            Some(
                "R0 changed from uninitialized value to nullable map value from rx_packets at offset 0"
            )
        );
        assert_eq!(first.instruction_context[0].number, 6);
        let second = &e.causal_path[1];
        assert_eq!(
            second.note.as_ref().map(|n| n.kind.as_str()),
            Some("branch")
        );
        assert!(second.instruction_context.is_empty());
        assert_eq!(
            e.suggestion.as_deref(),
            Some(
                "Add a NULL check before the access and dereference the pointer only on the non-NULL path."
            )
        );
    }

    #[test]
    fn no_header_no_explanation() {
        assert_eq!(
            KernelExplanation::parse("R0 invalid mem access 'scalar'\n"),
            None
        );
        assert_eq!(KernelExplanation::parse("Reason:\n  because\n"), None);
    }

    #[test]
    fn a_cut_or_odd_block_gives_what_it_has() {
        let cut = &BLOCK[..BLOCK.find("  Instruction context").expect("in block")];
        let e = KernelExplanation::parse(cut).expect("a block");
        assert!(e.reason.is_some());
        assert_eq!(e.at.as_ref().map(|a| a.source_context.len()), Some(3));
        assert!(e.causal_path.is_empty());
        assert_eq!(e.suggestion, None);

        let e = KernelExplanation::parse("Verification failed: Something New\n").expect("header");
        assert_eq!(e.category, None);
        assert_eq!(e.category_name, "Something New");
        assert_eq!(e.problem, "");

        let odd = "Verification failed: Memory Safety: Access outside bounds\nAt:\n  f @ x.c\n  \
                   >>> notanumber | text\n         |   continuation without a note\nWhatever:\n  more\n";
        let e = KernelExplanation::parse(odd).expect("header");
        assert_eq!(e.category, Some(Category::Memory));
        let at = e.at.expect("a site, if an empty one");
        assert_eq!(at.location, None);
        assert!(at.source_context.is_empty());
        assert_eq!(at.note, None);
    }
}
