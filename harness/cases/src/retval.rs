//! Return values by name, per program type.

/// `(name, value)` pairs a program type's return value can be written as.
pub fn names(prog_type: &str) -> &'static [(&'static str, i64)] {
    match prog_type {
        "xdp" => &[
            ("XDP_ABORTED", 0),
            ("XDP_DROP", 1),
            ("XDP_PASS", 2),
            ("XDP_TX", 3),
            ("XDP_REDIRECT", 4),
        ],
        "sched_cls" | "sched_act" => &[
            ("TC_ACT_UNSPEC", -1),
            ("TC_ACT_OK", 0),
            ("TC_ACT_RECLASSIFY", 1),
            ("TC_ACT_SHOT", 2),
            ("TC_ACT_PIPE", 3),
            ("TC_ACT_STOLEN", 4),
            ("TC_ACT_QUEUED", 5),
            ("TC_ACT_REPEAT", 6),
            ("TC_ACT_REDIRECT", 7),
            ("TC_ACT_TRAP", 8),
        ],
        // cgroup_skb, cgroup_sock*: 1 lets the packet or call through.
        "cgroup_skb" | "cgroup_sock" | "cgroup_sock_addr" | "cgroup_sockopt" | "cgroup_sysctl"
        | "cgroup_device" => &[("DENY", 0), ("ALLOW", 1)],
        "sk_skb" | "sk_msg" | "sk_lookup" | "sk_reuseport" => &[("SK_DROP", 0), ("SK_PASS", 1)],
        "flow_dissector" => &[("BPF_OK", 0), ("BPF_DROP", 2)],
        _ => &[],
    }
}

/// The name of `value` for `prog_type`, if it has one. `value` is the raw
/// 32-bit return, so TC_ACT_UNSPEC (-1) arrives as `u32::MAX`.
pub fn name_of(prog_type: &str, value: u32) -> Option<&'static str> {
    names(prog_type)
        .iter()
        .find(|(_, v)| *v as u32 == value)
        .map(|(n, _)| *n)
}

/// `XDP_DROP (1)` or `42`.
pub fn describe(prog_type: &str, value: u32) -> String {
    match name_of(prog_type, value) {
        Some(n) => format!("{n} ({})", value as i32),
        None => (value as i32).to_string(),
    }
}

/// A return-value name the program type does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub name: String,
    pub prog_type: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, prog_type) = (&self.name, &self.prog_type);
        let table = names(prog_type);
        if table.is_empty() {
            write!(
                f,
                "`{name}`: {prog_type} programs have no named return values; write a number"
            )
        } else {
            let list: Vec<_> = table.iter().map(|(n, _)| *n).collect();
            write!(
                f,
                "`{name}` is not a return value of {prog_type} programs; expected one of {} or a number",
                list.join(", ")
            )
        }
    }
}

impl std::error::Error for UnknownName {}

/// Resolves a name for `prog_type`; the error lists the valid names.
pub fn resolve(prog_type: &str, name: &str) -> Result<u32, UnknownName> {
    names(prog_type)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v as u32)
        .ok_or_else(|| UnknownName {
            name: name.to_owned(),
            prog_type: prog_type.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_choices() {
        assert_eq!(resolve("xdp", "XDP_DROP"), Ok(1));
        assert_eq!(resolve("sched_cls", "TC_ACT_UNSPEC"), Ok(u32::MAX));
        assert_eq!(describe("sched_cls", u32::MAX), "TC_ACT_UNSPEC (-1)");
        assert_eq!(describe("socket_filter", 64), "64");
        let err = resolve("xdp", "TC_ACT_SHOT").unwrap_err().to_string();
        assert!(
            err.contains("XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT"),
            "{err}"
        );
    }

    #[test]
    fn every_program_type_names_its_return_values() {
        for (prog_type, value, shown) in [
            ("xdp", 3, "XDP_TX (3)"),
            ("sched_cls", 2, "TC_ACT_SHOT (2)"),
            ("sched_act", 7, "TC_ACT_REDIRECT (7)"),
            ("cgroup_skb", 1, "ALLOW (1)"),
            ("cgroup_sock_addr", 0, "DENY (0)"),
            ("sk_skb", 1, "SK_PASS (1)"),
            ("sk_lookup", 0, "SK_DROP (0)"),
            ("flow_dissector", 2, "BPF_DROP (2)"),
            // A value the type has no name for is a number.
            ("xdp", 9, "9"),
        ] {
            assert_eq!(describe(prog_type, value), shown);
        }
        assert_eq!(name_of("xdp", 0), Some("XDP_ABORTED"));
        assert_eq!(
            resolve("socket_filter", "PASS").unwrap_err().to_string(),
            "`PASS`: socket_filter programs have no named return values; write a number"
        );
    }
}
