//! The statistics at the end of a verifier log (requested with log level
//! bit 4), parsed as veristat parses them.

use serde::{Deserialize, Serialize};

/// What the verifier reports about its work on one program.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierStats {
    /// "processed N insns": instructions the verifier walked, revisits included.
    pub insns: u64,
    pub max_states_per_insn: u64,
    pub total_states: u64,
    pub peak_states: u64,
    /// Longest chain of read marks (veristat's "mark_read").
    pub mark_read: u64,
    /// Stack depth of each subprogram ("stack depth 8+16").
    pub stack_depth: Vec<u64>,
    /// "verification time N usec"; varies run to run.
    pub duration_us: Option<u64>,
}

impl VerifierStats {
    /// Parses the statistics lines; `None` when the log has none (the
    /// kernel stopped before verifying, or stats were not requested).
    pub fn parse(log: &str) -> Option<Self> {
        let mut stats = Self::default();
        let mut found = false;
        // 7.3: `subprog 1 (name) static insns_self 29 insns_total 29 stack 320`.
        let mut subprogs: Vec<(usize, u64)> = Vec::new();
        // The statistics come last; like veristat, look at the final lines.
        let lines: Vec<&str> = log.lines().collect();
        for line in lines[lines.len().saturating_sub(100)..].iter().rev() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("verification time ") {
                stats.duration_us = rest.strip_suffix(" usec").and_then(|n| n.parse().ok());
            } else if let Some(rest) = line.strip_prefix("stack depth ") {
                // "8+16", and on 7.2 "8+16 max 24": the depths are the
                // first word, as veristat reads them.
                stats.stack_depth = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .split('+')
                    .filter_map(|n| n.parse().ok())
                    .collect();
            } else if let Some(depth) = subprog_stack(line) {
                subprogs.push(depth);
            } else if let Some(rest) = line.strip_prefix("processed ") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let number_after = |key: &str| {
                    words
                        .iter()
                        .position(|w| *w == key)
                        .and_then(|i| words.get(i + 1))
                        .and_then(|n| n.parse().ok())
                };
                if let Some(insns) = words.first().and_then(|n| n.parse().ok()) {
                    stats.insns = insns;
                    stats.max_states_per_insn = number_after("max_states_per_insn").unwrap_or(0);
                    stats.total_states = number_after("total_states").unwrap_or(0);
                    stats.peak_states = number_after("peak_states").unwrap_or(0);
                    stats.mark_read = number_after("mark_read").unwrap_or(0);
                    found = true;
                }
            }
        }
        // 7.3 prints only the maximum on `stack depth max N` and each
        // subprogram's depth on its own line.
        if stats.stack_depth.is_empty() && !subprogs.is_empty() {
            subprogs.sort_unstable();
            subprogs.dedup_by_key(|(index, _)| *index);
            stats.stack_depth = subprogs.into_iter().map(|(_, depth)| depth).collect();
        }
        found.then_some(stats)
    }

    /// Total stack depth, as veristat sums it.
    pub fn stack(&self) -> u64 {
        self.stack_depth.iter().sum()
    }
}

/// The index and stack depth of a 7.3 subprogram line:
/// `subprog 0 (nf_count) main insns_self 20 insns_total 20 stack 8`.
fn subprog_stack(line: &str) -> Option<(usize, u64)> {
    let rest = line.strip_prefix("subprog ")?;
    let (index, rest) = rest.split_once(' ')?;
    let index = index.parse().ok()?;
    let (_, depth) = rest.rsplit_once(" stack ")?;
    Some((index, depth.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tail_of_a_log() {
        let log = "0: (b7) r0 = 0\n1: (95) exit\nverification time 4608 usec\nstack depth 8+16+0\n\
                   processed 45 insns (limit 1000000) max_states_per_insn 2 total_states 4 peak_states 3 mark_read 1\n";
        let s = VerifierStats::parse(log).unwrap();
        assert_eq!(
            s,
            VerifierStats {
                insns: 45,
                max_states_per_insn: 2,
                total_states: 4,
                peak_states: 3,
                mark_read: 1,
                stack_depth: vec![8, 16, 0],
                duration_us: Some(4608),
            }
        );
        assert_eq!(s.stack(), 24);
    }

    #[test]
    fn linux_7_2_adds_a_maximum_after_the_depths() {
        let log = "verification time 2800 usec\nstack depth 40+0 max 16\ninsns processed 12\n\
                   processed 12 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0\n";
        let s = VerifierStats::parse(log).unwrap();
        assert_eq!(s.stack_depth, [40, 0]);
        assert_eq!(s.insns, 12);
        let one =
            VerifierStats::parse("stack depth 56 max 64\nprocessed 1 insns (limit 1000000)\n");
        assert_eq!(one.unwrap().stack_depth, [56]);
    }

    #[test]
    fn linux_7_3_gives_each_subprograms_depth_on_its_own_line() {
        let log = "verification time 4012 usec\nstack depth max 576\n\
                   subprog 0 (mark_by_payload) main insns_self 17 insns_total 46 stack 256\n\
                   subprog 1 (checksum) static insns_self 29 insns_total 29 stack 320\n\
                   processed 46 insns (limit 1000000) max_states_per_insn 0 total_states 3 peak_states 3 mark_read 0\n";
        let s = VerifierStats::parse(log).unwrap();
        assert_eq!(s.stack_depth, [256, 320]);
        assert_eq!(s.stack(), 576);
        assert_eq!(s.insns, 46);
        assert_eq!(s.total_states, 3);
        // The level-2 listing's `subprog#0 name:` is not one of them.
        let s = VerifierStats::parse(
            "subprog#0 f:\nstack depth max 0\nsubprog 0 (f) main insns_self 7 insns_total 7 stack 8\n\
             processed 7 insns (limit 1000000)\n",
        )
        .unwrap();
        assert_eq!(s.stack_depth, [8]);
        // Without depths anywhere, none.
        let s =
            VerifierStats::parse("stack depth max 0\nprocessed 7 insns (limit 1000000)\n").unwrap();
        assert!(s.stack_depth.is_empty());
    }

    #[test]
    fn a_log_without_statistics_has_none() {
        assert_eq!(VerifierStats::parse("invalid func unknown#181\n"), None);
        assert_eq!(VerifierStats::parse(""), None);
    }

    #[test]
    fn a_rejected_program_still_reports_what_was_processed() {
        let log = "1: (71) r1 = *(u8 *)(r1 +0)\ninvalid access to packet, off=0 size=1, R1(id=0,off=0,r=0)\n\
                   R1 offset is outside of the packet\nprocessed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        assert_eq!(VerifierStats::parse(log).unwrap().insns, 2);
    }
}
