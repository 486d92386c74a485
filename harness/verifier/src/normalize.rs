//! Makes a verifier log stable run to run without hiding anything the
//! verifier decided: every instruction and state line stays.

/// Replaces what changes between identical loads (timings, kernel addresses,
/// map and program ids) and trims trailing spaces.
pub fn normalize_verifier_log(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    for line in log.lines() {
        // "verification time 1234 usec": wall time, differs every run.
        if line.starts_with("verification time ") {
            continue;
        }
        let line = replace_kernel_addresses(line);
        let line = replace_numbered(&line, "map[id:", "]", "map[id:*]");
        let line = replace_numbered(&line, "prog[id:", "]", "prog[id:*]");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A kernel pointer (`0xffff888003a1c000`, or `0xff1d...` with 5-level
/// paging: 16 hex digits starting `ff`) differs every boot with KASLR and
/// becomes `0x<kernel address>`.
fn replace_kernel_addresses(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let len = tail.chars().take_while(char::is_ascii_hexdigit).count();
        if len == 16 && tail[..2].eq_ignore_ascii_case("ff") {
            out.push_str("0x<kernel address>");
        } else {
            out.push_str(&rest[i..i + 2 + len]);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

fn replace_numbered(line: &str, prefix: &str, suffix: &str, with: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i]);
        let after = &rest[i + prefix.len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(suffix) {
            out.push_str(with);
            rest = &after[digits + suffix.len()..];
        } else {
            out.push_str(prefix);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_instructions_and_drops_what_varies() {
        let log = "func#0 @0\n\
                   0: R1=ctx() R10=fp0   \n\
                   5: (18) r1 = 0xffff8880041e3c00\n\
                   18: (18) r1 = 0xff1dae253ff6c800\n\
                   5: (18) r1 = map[id:17]\n\
                   verification time 4608 usec\n\
                   stack depth 8\n\
                   processed 45 insns (limit 1000000) max_states_per_insn 0 total_states 4 peak_states 4 mark_read 0\n";
        let n = normalize_verifier_log(log);
        assert_eq!(
            n,
            "func#0 @0\n0: R1=ctx() R10=fp0\n5: (18) r1 = 0x<kernel address>\n18: (18) r1 = 0x<kernel address>\n5: (18) r1 = map[id:*]\nstack depth 8\n\
             processed 45 insns (limit 1000000) max_states_per_insn 0 total_states 4 peak_states 4 mark_read 0\n"
        );
    }

    #[test]
    fn small_hex_constants_are_not_addresses() {
        assert_eq!(normalize_verifier_log("r1 = 0xffff\n"), "r1 = 0xffff\n");
        assert_eq!(
            normalize_verifier_log("r2 &= 0xffff00\n"),
            "r2 &= 0xffff00\n"
        );
        // 64-bit constants that are not kernel pointers stay.
        assert_eq!(
            normalize_verifier_log("r1 = 0x7fffffffffffffff\n"),
            "r1 = 0x7fffffffffffffff\n"
        );
    }
}
