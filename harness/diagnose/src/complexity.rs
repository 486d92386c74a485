//! Where a program's instructions went, for rejections about its size or
//! complexity: the walk's totals from the statistics, and from the
//! instructions the log holds, the hottest C lines and the loops walked.
//!
//! A level-1 log holds the path that failed (for a loop the verifier could
//! not bound, the loop unrolled along it), a level-2 log every path. A log
//! with only statistics (a walk too long to log) gives the totals alone
//! and says so.

use std::{collections::HashMap, sync::LazyLock};

use regex::Regex;
use serde::Serialize;

use crate::log::{Line, LineKind};

/// The cost of a walk that ran into a limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Complexity {
    /// `processed N insns (limit M)`.
    pub processed: Option<u64>,
    pub limit: Option<u64>,
    pub total_states: Option<u64>,
    pub peak_states: Option<u64>,
    pub max_states_per_insn: Option<u64>,
    /// `stack depth 8+512`: each frame's stack, main first.
    pub stack_depths: Vec<u64>,
    /// Instruction lines in the log: the sample the shares are of.
    pub logged_insns: usize,
    /// The C lines with the most logged instructions, most first (at most 5).
    pub hottest: Vec<HotLine>,
    /// Backward jumps walked, most walked first (at most 3): the loops.
    pub loops: Vec<Loop>,
    /// What the log could not tell.
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HotLine {
    /// `file:line` where the kernel said, else the line's text.
    pub location: String,
    pub text: String,
    /// Of the [`Complexity::logged_insns`].
    pub insns: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Loop {
    /// The jump back, and where it lands.
    pub from: usize,
    pub to: usize,
    /// How many times the log shows it walked.
    pub walked: usize,
    /// The C line of the jump.
    pub text: Option<String>,
}

static PROCESSED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^processed (\d+) insns \(limit (\d+)\)(?: max_states_per_insn (\d+) total_states (\d+) peak_states (\d+))?")
        .expect("valid regex")
});
static STACK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^stack depth ([\d+]+)").expect("valid regex"));
static BACK_JUMP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"goto pc-(\d+)$").expect("valid regex"));

/// The complexity of the walk `lines` record; `walk_limit` when the walk
/// itself ran into a limit (for a stack too large, the walk succeeded and
/// a level-1 log dropped it: no hottest lines are expected).
pub(crate) fn complexity(lines: &[Line<'_>], walk_limit: bool) -> Complexity {
    let mut c = Complexity::default();
    let mut by_line: HashMap<(String, String), usize> = HashMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let mut loops: HashMap<(usize, usize), (usize, Option<String>)> = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in lines {
        match line.kind {
            LineKind::Stats(text) => {
                if let Some(m) = STACK.captures(text) {
                    c.stack_depths = m[1].split('+').filter_map(|d| d.parse().ok()).collect();
                }
                if let Some(m) = PROCESSED.captures(text) {
                    let n = |i: usize| m.get(i).and_then(|g| g.as_str().parse().ok());
                    c.processed = n(1);
                    c.limit = n(2);
                    c.max_states_per_insn = n(3);
                    c.total_states = n(4);
                    c.peak_states = n(5);
                }
            }
            LineKind::Source(note) if note.is_meaningful() => {
                let location = match (note.file, note.line) {
                    (Some(file), Some(line)) => format!("{file}:{line}"),
                    _ => note.text.trim().to_owned(),
                };
                current = Some((location, note.text.trim().to_owned()));
            }
            LineKind::Insn(insn) => {
                c.logged_insns += 1;
                if let Some(key) = &current {
                    let count = by_line.entry(key.clone()).or_insert_with(|| {
                        order.push(key.clone());
                        0
                    });
                    *count += 1;
                }
                if let Some(m) = BACK_JUMP.captures(insn.text)
                    && let Ok(back) = m[1].parse::<usize>()
                {
                    let to = (insn.index + 1).saturating_sub(back);
                    let entry = loops
                        .entry((insn.index, to))
                        .or_insert((0, current.as_ref().map(|(_, t)| t.clone())));
                    entry.0 += 1;
                }
            }
            _ => {}
        }
    }
    let mut hot: Vec<((String, String), usize)> = order
        .into_iter()
        .map(|k| {
            let n = by_line[&k];
            (k, n)
        })
        .collect();
    // Most first; ties in the order the walk met them.
    hot.sort_by_key(|h| std::cmp::Reverse(h.1));
    c.hottest = hot
        .into_iter()
        .take(5)
        .map(|((location, text), insns)| HotLine {
            location,
            text,
            insns,
        })
        .collect();
    let mut walked: Vec<Loop> = loops
        .into_iter()
        .map(|((from, to), (walked, text))| Loop {
            from,
            to,
            walked,
            text,
        })
        .collect();
    walked.sort_by(|a, b| b.walked.cmp(&a.walked).then(a.from.cmp(&b.from)));
    walked.truncate(3);
    c.loops = walked;
    if walk_limit && c.logged_insns == 0 {
        c.note = Some(
            "the log holds no walk (a walk this long is logged with its statistics only): \
             the hottest lines are unknown; the totals are the kernel's"
                .into(),
        );
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Log;

    #[test]
    fn a_loop_unrolled_along_the_path_is_the_hottest_line() {
        let log = "\
; int i = 0; @ p.bpf.c:10
0: (b7) r1 = 0
; sum += i; @ p.bpf.c:12
1: (0f) r2 += r1
2: (07) r1 += 1
3: (a5) if r1 < 0x64 goto pc-3
1: (0f) r2 += r1
2: (07) r1 += 1
3: (a5) if r1 < 0x64 goto pc-3
; return sum; @ p.bpf.c:14
4: (bf) r0 = r2
BPF program is too large. Processed 1000001 insn
stack depth 8+512
processed 1000001 insns (limit 1000000) max_states_per_insn 4 total_states 30 peak_states 7 mark_read 0
";
        let c = complexity(Log::parse(log).lines(), true);
        assert_eq!(
            (
                c.processed,
                c.limit,
                c.total_states,
                c.peak_states,
                c.max_states_per_insn
            ),
            (Some(1_000_001), Some(1_000_000), Some(30), Some(7), Some(4))
        );
        assert_eq!(c.logged_insns, 8);
        assert_eq!(c.stack_depths, vec![8, 512]);
        assert_eq!(c.hottest[0].location, "p.bpf.c:12");
        assert_eq!(c.hottest[0].insns, 6);
        assert_eq!(
            c.loops,
            vec![Loop {
                from: 3,
                to: 1,
                walked: 2,
                text: Some("sum += i;".into())
            }]
        );
        assert_eq!(c.note, None);
    }

    #[test]
    fn statistics_alone_give_the_totals_and_say_what_is_missing() {
        let log = "BPF program is too large. Processed 1000001 insn\nprocessed 1000001 insns (limit 1000000) max_states_per_insn 15 total_states 24751 peak_states 94 mark_read 0\n";
        let c = complexity(Log::parse(log).lines(), true);
        assert_eq!(
            (c.processed, c.total_states),
            (Some(1_000_001), Some(24_751))
        );
        assert!(c.hottest.is_empty() && c.loops.is_empty());
        assert!(
            c.note
                .as_deref()
                .is_some_and(|n| n.contains("hottest lines are unknown"))
        );
    }
}
