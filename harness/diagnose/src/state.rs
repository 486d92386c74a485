//! The register state known where the walk stopped.
//!
//! Kernels print whole states now and then (`0: R1=ctx() R10=fp0`, a branch
//! target's state, 5.10's state lines) and, since about 5.17, what each
//! instruction changed, after it (`; R0_w=...`). Replaying both in order,
//! and forgetting what an instruction overwrote without saying how, gives
//! what the log tells of the state at the failing instruction, and no more.

use std::sync::LazyLock;

use regex::Regex;

use crate::log::{InsnLine, Line, LineKind, StateAt};

/// The state before the last instruction of `walk`, the one the verifier
/// stopped at, when the log tells it. `failing` is the index of the
/// failing instruction: if the walk's last instruction is another one, it
/// ran and what it did was never printed, so nothing is known.
pub(crate) fn state_at_end(walk: &[Line<'_>], failing: Option<usize>) -> Option<String> {
    let last_insn = walk
        .iter()
        .rposition(|l| matches!(l.kind, LineKind::Insn(_)));
    let mut tracker = Tracker::default();
    for (pos, line) in walk.iter().enumerate() {
        match line.kind {
            LineKind::State(state) if !matches!(state.at, StateAt::Named(_)) => {
                tracker.reset(state.text)
            }
            LineKind::Insn(insn) if Some(pos) != last_insn => tracker.step(&insn),
            // The last one is the failing instruction, which has not run;
            // any other ran without the log saying what it did.
            LineKind::Insn(insn) if failing.is_some_and(|f| f != insn.index) => return None,
            _ => {}
        }
    }
    tracker.render()
}

/// A whole printed state, e.g. `cur state: ...`, rendered the same way.
pub(crate) fn render_state(text: &str) -> Option<String> {
    let mut tracker = Tracker::default();
    tracker.reset(text);
    tracker.render()
}

/// Registers, stack slots and references, as last printed.
#[derive(Debug, Default)]
struct Tracker {
    /// (name without liveness marks, printed value); a value-less entry is
    /// a marker such as `frame1:`.
    entries: Vec<(String, String)>,
    /// Something changed that no print has shown since.
    stale: bool,
}

/// What an instruction changes, as far as its disassembly tells.
enum Effect {
    /// `r1 = ...`, `w1 += ...`: one register.
    Register(String),
    /// A helper or kfunc call: R0 to R5.
    Call,
    /// A call to a helper that may move or resize the packet: R0 to R5,
    /// and every packet pointer, which the verifier turns into a number.
    CallChangingPacket,
    /// A call that releases a reference: R0 to R5, every copy of the
    /// released pointer (which one is not always printed: all referenced
    /// values) and the count of references.
    CallReleasing,
    /// A store through the frame pointer: some stack slot.
    Stack,
    /// The end of a path; the next one starts from a printed state.
    Exit,
    /// A call into a subprogram: a new frame, known only once printed.
    Frame,
    Nothing,
}

/// The helpers that may change packet data (`bpf_helper_changes_pkt_data()`
/// in net/core/filter.c): after them, packet pointers must be loaded and
/// checked again.
const CHANGES_PACKET: &[&str] = &[
    "bpf_skb_store_bytes",
    "bpf_skb_change_head",
    "bpf_skb_change_tail",
    "bpf_skb_pull_data",
    "bpf_skb_change_proto",
    "bpf_skb_vlan_push",
    "bpf_skb_vlan_pop",
    "bpf_skb_adjust_room",
    "bpf_l3_csum_replace",
    "bpf_l4_csum_replace",
    "bpf_clone_redirect",
    "bpf_xdp_adjust_head",
    "bpf_xdp_adjust_meta",
    "bpf_xdp_adjust_tail",
    "bpf_msg_pull_data",
    "bpf_msg_push_data",
    "bpf_msg_pop_data",
    "bpf_lwt_push_encap",
    "bpf_lwt_seg6_store_bytes",
    "bpf_lwt_seg6_adjust_srh",
    "bpf_lwt_seg6_action",
];

/// Whether a helper or kfunc releases a reference (`bpf_sk_release`,
/// `bpf_ringbuf_submit`, `bpf_task_release`, `bpf_obj_drop`, ...).
fn releases(name: &str) -> bool {
    name.contains("release")
        || name.starts_with("bpf_ringbuf_submit")
        || name.starts_with("bpf_ringbuf_discard")
        || name.starts_with("bpf_obj_drop")
}

static WRITES_REGISTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[rw](\d+) ").expect("valid regex"));

fn effect(text: &str) -> Effect {
    if text == "exit" {
        return Effect::Exit;
    }
    if text.starts_with("call pc") {
        return Effect::Frame;
    }
    if let Some(callee) = text.strip_prefix("call ") {
        let name = callee.split('#').next().unwrap_or_default();
        if CHANGES_PACKET.contains(&name) {
            return Effect::CallChangingPacket;
        }
        if releases(name) {
            return Effect::CallReleasing;
        }
        return Effect::Call;
    }
    if text.starts_with('*') && text.contains("(r10 ") {
        return Effect::Stack;
    }
    match WRITES_REGISTER.captures(text).and_then(|c| c.get(1)) {
        Some(n) => Effect::Register(format!("R{}", n.as_str())),
        None => Effect::Nothing,
    }
}

impl Tracker {
    fn reset(&mut self, text: &str) {
        self.entries.clear();
        self.stale = false;
        self.apply(text);
    }

    fn step(&mut self, insn: &InsnLine<'_>) {
        match effect(insn.text) {
            Effect::Register(name) => self.entries.retain(|(n, _)| *n != name),
            Effect::Call => self
                .entries
                .retain(|(n, _)| !matches!(n.as_str(), "R0" | "R1" | "R2" | "R3" | "R4" | "R5")),
            Effect::CallReleasing => self.entries.retain(|(n, v)| {
                !matches!(n.as_str(), "R0" | "R1" | "R2" | "R3" | "R4" | "R5" | "refs")
                    && !v.contains("ref_obj_id=")
            }),
            Effect::CallChangingPacket => self.entries.retain(|(n, v)| {
                !matches!(n.as_str(), "R0" | "R1" | "R2" | "R3" | "R4" | "R5")
                    && !v.starts_with("pkt")
            }),
            Effect::Stack if insn.state.is_none() => self.stale = true,
            Effect::Exit | Effect::Frame => {
                self.entries.clear();
                self.stale = false;
            }
            Effect::Stack | Effect::Nothing => {}
        }
        if let Some(state) = insn.state {
            self.apply(state);
        }
    }

    fn apply(&mut self, text: &str) {
        for token in tokens(text) {
            let (name, value) = match token.split_once('=') {
                Some((name, value)) => (plain_name(name), value),
                None => (token, ""),
            };
            match self.entries.iter_mut().find(|(n, _)| n == name) {
                Some(entry) if !value.is_empty() => entry.1 = value.to_owned(),
                Some(_) => {}
                None => self.entries.push((name.to_owned(), value.to_owned())),
            }
        }
    }

    /// `R0=map_value_or_null(id=1,...) R10=fp0 fp-8=mmmm????`, or `None`
    /// when the log printed no state, or one that no longer holds.
    fn render(&self) -> Option<String> {
        if self.entries.is_empty() || self.stale {
            return None;
        }
        let mut entries: Vec<&(String, String)> = self.entries.iter().collect();
        // Markers tie the entries after them to a frame: keep their order.
        if entries.iter().all(|(_, value)| !value.is_empty()) {
            entries.sort_by_key(|(name, _)| order(name));
        }
        let parts: Vec<String> = entries
            .iter()
            .map(|(name, value)| {
                if value.is_empty() {
                    name.clone()
                } else {
                    format!("{name}={value}")
                }
            })
            .collect();
        Some(parts.join(" "))
    }
}

/// Splits a state print at the spaces outside parentheses
/// (`var_off=(0x0; 0xff)` holds one).
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 => {
                if start < i {
                    out.push(&text[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// `R1_w` → `R1`, `fp-8_rw` → `fp-8`: the liveness marks change from
/// print to print, the slot does not.
fn plain_name(name: &str) -> &str {
    if name.starts_with('R') || name.starts_with("fp") {
        return name.split_once('_').map_or(name, |(plain, _)| plain);
    }
    name
}

/// Registers by number, then stack slots from the frame pointer down, then
/// the rest (`refs`).
fn order(name: &str) -> (u8, i64) {
    if let Some(n) = name.strip_prefix('R').and_then(|n| n.parse().ok()) {
        return (0, n);
    }
    if let Some(off) = name.strip_prefix("fp").and_then(|n| n.parse::<i64>().ok()) {
        return (1, -off);
    }
    (2, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Log;

    fn state(log: &str) -> Option<String> {
        state_at_end(Log::parse(log).lines(), None)
    }

    #[test]
    fn changes_update_the_last_whole_state() {
        let log = "0: R1=ctx() R10=fp0\n\
                   0: (61) r1 = *(u32 *)(r1 +16)         ; R1_w=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))\n\
                   1: (63) *(u32 *)(r10 -4) = r1         ; R1_w=scalar() R10=fp0 fp-8=mmmm????\n\
                   4: (18) r1 = 0xff24d29281fca000       ; R1_w=map_ptr(map=rx_packets,ks=4,vs=8)\n\
                   6: (85) call bpf_map_lookup_elem#1    ; R0_w=map_value_or_null(id=1,map=rx_packets,ks=4,vs=8)\n\
                   7: (79) r1 = *(u64 *)(r0 +0)\n";
        assert_eq!(
            state(log).as_deref(),
            Some("R0=map_value_or_null(id=1,map=rx_packets,ks=4,vs=8) R10=fp0 fp-8=mmmm????")
        );
    }

    #[test]
    fn the_failing_instruction_has_not_run() {
        // A failing call has not clobbered its arguments yet.
        let log = "0: R1=ctx() R2=fp-4 R10=fp0\n9: (85) call bpf_skb_store_bytes#9\n";
        assert_eq!(state(log).as_deref(), Some("R1=ctx() R2=fp-4 R10=fp0"));
    }

    #[test]
    fn a_helper_that_changes_the_packet_invalidates_packet_pointers() {
        let log = "0: R1=ctx() R6=pkt(r=18) R7=pkt_end() R8=map_value(map=m,ks=4,vs=8) R10=fp0 fp-8=pkt(r=18)\n\
                   7: (85) call bpf_xdp_adjust_head#44   ; R0=scalar()\n\
                   12: (73) *(u8 *)(r6 +13) = r1\n";
        assert_eq!(
            state(log).as_deref(),
            Some("R0=scalar() R8=map_value(map=m,ks=4,vs=8) R10=fp0")
        );
        // Other helpers leave them alone.
        let log = log.replace("bpf_xdp_adjust_head#44", "bpf_ktime_get_ns#5");
        assert_eq!(
            state(&log).as_deref(),
            Some(
                "R0=scalar() R6=pkt(r=18) R7=pkt_end() R8=map_value(map=m,ks=4,vs=8) R10=fp0 fp-8=pkt(r=18)"
            )
        );
    }

    #[test]
    fn a_release_forgets_the_released_pointer_and_the_reference_count() {
        // 5.10 prints no changes: after bpf_sk_release() R7 still looked
        // like the socket it no longer is.
        let log = " R0=sock(id=0,ref_obj_id=2,off=0,imm=0) R7=sock(id=0,ref_obj_id=2,off=0,imm=0) R8=inv1 R10=fp0 refs=2\n\
                   17: (bf) r1 = r7\n18: (85) call bpf_sk_release#86\n19: (b7) r6 = 2\n\
                   21: (85) call bpf_sk_release#86\n";
        assert_eq!(state(log).as_deref(), Some("R8=inv1 R10=fp0"));
    }

    #[test]
    fn a_whole_state_replaces_everything() {
        let log = "0: R1=ctx() R10=fp0\n\
                   12: (15) if r1 == 0x0 goto pc+7 20: R10=fp0 refs=2\n20: (95) exit\n";
        assert_eq!(state(log).as_deref(), Some("R10=fp0 refs=2"));
    }

    #[test]
    fn unprinted_writes_are_forgotten() {
        // 5.10 prints no changes: r0 = 0 leaves R0 unknown.
        let log = "from 12 to 20: R0=inv(id=3) R6=mem(id=0,ref_obj_id=2,off=0,imm=0) R10=fp0 refs=2\n\
                   20: (b7) r0 = 0\n21: (95) exit\n";
        assert_eq!(
            state(log).as_deref(),
            Some("R6=mem(id=0,ref_obj_id=2,off=0,imm=0) R10=fp0 refs=2")
        );
        let log =
            " R1=ctx(id=0,off=0,imm=0) R10=fp0\n1: (63) *(u32 *)(r10 -4) = r1\n2: (95) exit\n";
        assert_eq!(state(log), None);
    }

    #[test]
    fn another_failing_instruction_means_unknown() {
        let log =
            "8: R0=map_value(off=0,ks=4,vs=4,imm=0) R1=0 R10=fp0\n8: (61) r1 = *(u32 *)(r0 +0)\n";
        assert_eq!(state_at_end(Log::parse(log).lines(), Some(9)), None);
    }

    #[test]
    fn no_print_no_state() {
        assert_eq!(state("7: (79) r1 = *(u64 *)(r0 +0)\n"), None);
    }
}
