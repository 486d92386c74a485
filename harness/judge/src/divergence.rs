//! Why a program's verdict differs between kernels: the one thing no kernel
//! can say about itself. From the rows of one program: which kernels
//! accepted and which did not, and, from the rejecting kernel's message,
//! what it lacks (a helper, a kfunc, callbacks, an instruction, an attach
//! target), with the oldest kernel of the run that has it.

use std::sync::LazyLock;

use harness_protocol::KernelVersion;
use regex::Regex;
use serde::Serialize;

use crate::rows::{Row, VerdictKind};

/// A program whose verdict is not the same on every kernel of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub object: String,
    pub program: String,
    /// Kernel labels, in row order.
    pub accepted: Vec<String>,
    pub rejected: Vec<String>,
    pub not_loaded: Vec<String>,
    /// What the kernels that did not accept it lack, where the message
    /// tells: `helper bpf_loop (#181)`.
    pub lacks: Option<String>,
    /// The oldest kernel line of the run that accepts it (`6.1`).
    pub accepted_from: Option<String>,
    /// Some kernel that does not accept it is newer than one that does:
    /// a feature removed, a target renamed, or a verifier regression.
    pub fails_on_newer: bool,
}

impl Divergence {
    /// In words: `5.10 lacks helper #181 (bpf_loop); accepted from 6.1 on`.
    pub fn explain(&self) -> String {
        let failing: Vec<&str> = self
            .rejected
            .iter()
            .chain(&self.not_loaded)
            .map(String::as_str)
            .collect();
        let mut s = match (&self.lacks, self.fails_on_newer) {
            (Some(what), _) => format!("{} lacks {what}", failing.join(", ")),
            (None, false) => format!(
                "{} cannot prove it safe where a newer verifier can",
                failing.join(", ")
            ),
            (None, true) => format!(
                "{} refuses what older kernels accept: a changed kernel interface or a \
                 verifier regression",
                failing.join(", ")
            ),
        };
        match (&self.accepted_from, self.fails_on_newer) {
            (Some(from), false) => s.push_str(&format!("; accepted from {from} on")),
            _ => s.push_str(&format!("; accepted on {}", self.accepted.join(", "))),
        }
        s
    }
}

/// The programs whose verdict differs between the kernels of `rows`, in
/// row order. `helper_name` names a helper by its id (from the host's BTF:
/// ids are UAPI, the same on every kernel).
pub fn divergences(rows: &[Row], helper_name: &dyn Fn(u32) -> Option<String>) -> Vec<Divergence> {
    let mut out: Vec<Divergence> = Vec::new();
    for r in rows {
        let d = match out
            .iter_mut()
            .find(|d| d.object == r.object && d.program == r.program)
        {
            Some(d) => d,
            None => {
                out.push(Divergence {
                    object: r.object.clone(),
                    program: r.program.clone(),
                    accepted: Vec::new(),
                    rejected: Vec::new(),
                    not_loaded: Vec::new(),
                    lacks: None,
                    accepted_from: None,
                    fails_on_newer: false,
                });
                out.last_mut().expect("just pushed")
            }
        };
        match r.verdict {
            VerdictKind::Accepted => d.accepted.push(r.kernel.clone()),
            VerdictKind::Rejected => d.rejected.push(r.kernel.clone()),
            VerdictKind::NotLoaded => d.not_loaded.push(r.kernel.clone()),
        }
        if d.lacks.is_none() && r.verdict != VerdictKind::Accepted {
            d.lacks = lacks(r, helper_name);
        }
    }
    out.retain(|d| !d.accepted.is_empty() && (!d.rejected.is_empty() || !d.not_loaded.is_empty()));
    for d in &mut out {
        let lines = |accepted: bool| -> Vec<KernelVersion> {
            rows.iter()
                .filter(|r| r.object == d.object && r.program == d.program)
                .filter(|r| (r.verdict == VerdictKind::Accepted) == accepted)
                .filter_map(|r| r.line.parse::<KernelVersion>().ok())
                .collect()
        };
        let oldest_accepting = lines(true).into_iter().min();
        d.accepted_from = oldest_accepting.map(|v| v.to_string());
        d.fails_on_newer =
            oldest_accepting.is_some_and(|oldest| lines(false).into_iter().any(|v| v > oldest));
    }
    out
}

static UNKNOWN_FUNC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"unknown func (\w+)#(\d+)").expect("valid regex"));
static INVALID_FUNC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"invalid func unknown#(\d+)").expect("valid regex"));
static TYPE_HELPER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"program of this type cannot use helper (\w+)#(\d+)").expect("valid regex")
});
static KFUNC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"calling kernel function (\w+) is not allowed").expect("valid regex")
});
static ATTACH_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"failed to find kernel BTF type ID of '(\w+)'").expect("valid regex")
});
static KSYM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"extern \((var|func) ksym\) '(\w+)': not found in kernel BTF").expect("valid regex")
});
static PROG_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"does not know (\S+) programs \(BPF_PROG_TYPE (\d+)\)").expect("valid regex")
});
static OPCODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"unknown opcode ([0-9a-f]+)").expect("valid regex"));

/// What a kernel that did not accept `r` lacks, from its message.
fn lacks(r: &Row, helper_name: &dyn Fn(u32) -> Option<String>) -> Option<String> {
    if r.verdict == VerdictKind::NotLoaded {
        let reason = &r.reason;
        return Some(if let Some(c) = ATTACH_TARGET.captures(reason) {
            format!("the attach target {} in its BTF", &c[1])
        } else if let Some(c) = KSYM.captures(reason) {
            let kind = if &c[1] == "func" {
                "kfunc"
            } else {
                "typed kernel variable (ksym)"
            };
            format!("the {kind} {} in its BTF", &c[2])
        } else if let Some(c) = PROG_TYPE.captures(reason) {
            format!("{} programs (BPF_PROG_TYPE {})", &c[1], &c[2])
        } else {
            format!("what loading needs: {reason}")
        });
    }
    let message = r.diagnosis.as_ref()?.message.as_str();
    if let Some(c) = UNKNOWN_FUNC.captures(message) {
        return Some(format!("helper {} (#{})", &c[1], &c[2]));
    }
    if let Some(c) = INVALID_FUNC.captures(message) {
        let id: u32 = c[1].parse().ok()?;
        return Some(match helper_name(id) {
            Some(name) => format!("helper {name} (#{id})"),
            None => format!("helper #{id}"),
        });
    }
    if let Some(c) = TYPE_HELPER.captures(message) {
        return Some(format!(
            "helper {} (#{}) for this program type",
            &c[1], &c[2]
        ));
    }
    if let Some(c) = KFUNC.captures(message) {
        return Some(format!("kfunc {} for this program type", &c[1]));
    }
    if message.contains("number of funcs in func_info doesn't match number of subprogs") {
        return Some(
            "callback functions (bpf_loop, bpf_for_each_map_elem, timers: a subprogram \
             passed as an argument, from 5.13)"
                .into(),
        );
    }
    if let Some(c) = OPCODE.captures(message) {
        return Some(format!(
            "instruction opcode {:#04x} (cpu v4 instructions such as sign extension and signed \
             division need 6.6)",
            u8::from_str_radix(&c[1], 16).ok()?
        ));
    }
    None
}

/// A helper's name by id from the running kernel's BTF
/// (`/sys/kernel/btf/vmlinux`), read once, when first asked; `None` where
/// there is no such BTF or no such helper.
pub fn host_helper_name(id: u32) -> Option<String> {
    static CONSTANTS: std::sync::OnceLock<std::collections::BTreeMap<String, i64>> =
        std::sync::OnceLock::new();
    let constants = CONSTANTS.get_or_init(|| {
        std::fs::read("/sys/kernel/btf/vmlinux")
            .ok()
            .and_then(|bytes| harness_btf_value::ObjectBtf::from_bytes(&bytes).ok())
            .map(|btf| btf.constants().0)
            .unwrap_or_default()
    });
    helper_names(constants)(id)
}

/// The helper names of a BTF's `enum bpf_func_id` (`BPF_FUNC_loop` = 181
/// → `bpf_loop`), as a lookup by id.
pub fn helper_names(
    constants: &std::collections::BTreeMap<String, i64>,
) -> impl Fn(u32) -> Option<String> + '_ {
    move |id| {
        constants
            .iter()
            .find(|(name, value)| name.starts_with("BPF_FUNC_") && **value == i64::from(id))
            .map(|(name, _)| format!("bpf_{}", &name["BPF_FUNC_".len()..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kernel: &str, verdict: VerdictKind, message: Option<&str>) -> Row {
        Row {
            object: "o".into(),
            program: "p".into(),
            kernel: kernel.into(),
            line: kernel.into(),
            verdict,
            diagnosis: message.and_then(|m| {
                harness_diagnose::diagnose(&format!("0: (85) call x\n{m}\n")).map(Box::new)
            }),
            ..Row::default()
        }
    }

    fn none(_: u32) -> Option<String> {
        None
    }

    #[test]
    fn a_helper_the_old_kernel_lacks_is_named_with_the_first_kernel_that_has_it() {
        let rows = [
            row(
                "5.10",
                VerdictKind::Rejected,
                Some("invalid func unknown#181"),
            ),
            row("6.12", VerdictKind::Accepted, None),
            row("6.1", VerdictKind::Accepted, None),
        ];
        let constants = [
            ("BPF_FUNC_loop".to_owned(), 181),
            ("BPF_FUNC_map_lookup_elem".to_owned(), 1),
        ]
        .into_iter()
        .collect();
        let d = divergences(&rows, &helper_names(&constants));
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].accepted.len(), d[0].rejected.clone()),
            (2, vec!["5.10".to_owned()])
        );
        assert_eq!(d[0].accepted_from.as_deref(), Some("6.1"));
        assert_eq!(
            d[0].explain(),
            "5.10 lacks helper bpf_loop (#181); accepted from 6.1 on"
        );
        // Without names, the id.
        assert_eq!(
            divergences(&rows, &none)[0].lacks.as_deref(),
            Some("helper #181")
        );
    }

    #[test]
    fn each_message_names_what_is_missing() {
        let lacking = |message: &str| {
            divergences(
                &[
                    row("5.10", VerdictKind::Rejected, Some(message)),
                    row("6.1", VerdictKind::Accepted, None),
                ],
                &none,
            )[0]
            .lacks
            .clone()
        };
        assert_eq!(
            lacking("unknown func bpf_loop#181").as_deref(),
            Some("helper bpf_loop (#181)")
        );
        assert_eq!(
            lacking("program of this type cannot use helper bpf_skb_store_bytes#9").as_deref(),
            Some("helper bpf_skb_store_bytes (#9) for this program type")
        );
        assert_eq!(
            lacking("calling kernel function bpf_obj_new_impl is not allowed").as_deref(),
            Some("kfunc bpf_obj_new_impl for this program type")
        );
        assert!(
            lacking("number of funcs in func_info doesn't match number of subprogs")
                .unwrap()
                .contains("callback")
        );
        assert!(lacking("unknown opcode d7").unwrap().contains("0xd7"));
        // A rejection whose message names nothing missing: a verifier that proves less.
        let d = divergences(
            &[
                row(
                    "5.10",
                    VerdictKind::Rejected,
                    Some("R0 invalid mem access 'scalar'"),
                ),
                row("6.1", VerdictKind::Accepted, None),
            ],
            &none,
        );
        assert_eq!(d[0].lacks, None);
        assert_eq!(
            d[0].explain(),
            "5.10 cannot prove it safe where a newer verifier can; accepted from 6.1 on"
        );
        let not_loaded = |reason: &str| Row {
            reason: reason.into(),
            ..row("7.2", VerdictKind::NotLoaded, None)
        };
        let explained = |reason: &str| {
            let rows = [
                row("5.10", VerdictKind::Accepted, None),
                row("6.12", VerdictKind::Accepted, None),
                not_loaded(reason),
            ];
            divergences(&rows, &none)[0].explain()
        };
        // A newer kernel failing is not "from 5.10 on".
        assert_eq!(
            explained("prog 'x': failed to find kernel BTF type ID of 'do_unlinkat': -ESRCH"),
            "7.2 lacks the attach target do_unlinkat in its BTF; accepted on 5.10, 6.12"
        );
        assert_eq!(
            explained("extern (var ksym) 'bpf_prog_active': not found in kernel BTF"),
            "7.2 lacks the typed kernel variable (ksym) bpf_prog_active in its BTF; \
             accepted on 5.10, 6.12"
        );
        assert!(
            explained("extern (func ksym) 'bpf_x': not found in kernel BTF")
                .contains("the kfunc bpf_x")
        );
        assert!(
            explained("this kernel does not know netfilter programs (BPF_PROG_TYPE 32)")
                .starts_with("7.2 lacks netfilter programs (BPF_PROG_TYPE 32)")
        );
        assert!(
            explained("something else").starts_with("7.2 lacks what loading needs: something else")
        );
        let regression = divergences(
            &[
                row("6.1", VerdictKind::Accepted, None),
                row("7.2", VerdictKind::Rejected, Some("R0 !read_ok")),
            ],
            &none,
        );
        assert!(regression[0].fails_on_newer);
        assert_eq!(
            regression[0].explain(),
            "7.2 refuses what older kernels accept: a changed kernel interface or a verifier \
             regression; accepted on 6.1"
        );
    }

    #[test]
    fn the_host_btf_names_helpers_by_their_uapi_id() {
        assert_eq!(host_helper_name(1).as_deref(), Some("bpf_map_lookup_elem"));
        assert_eq!(host_helper_name(181).as_deref(), Some("bpf_loop"));
        assert_eq!(host_helper_name(1_000_000), None);
    }

    #[test]
    fn the_same_verdict_everywhere_is_no_divergence() {
        let rows = [
            row("5.10", VerdictKind::Accepted, None),
            row("6.1", VerdictKind::Accepted, None),
        ];
        assert!(divergences(&rows, &none).is_empty());
        let rejected = [
            row("5.10", VerdictKind::Rejected, Some("R0 !read_ok")),
            row("6.1", VerdictKind::Rejected, Some("R0 !read_ok")),
        ];
        assert!(divergences(&rejected, &none).is_empty());
    }
}
