//! Debian version comparison, as `dpkg --compare-versions` does it
//! (deb-version(7): `[epoch:]upstream[-revision]`, `~` sorts before everything).

use std::cmp::Ordering;

/// Compares two Debian package versions the way dpkg does.
pub fn compare_debian_versions(a: &str, b: &str) -> Ordering {
    let (a_epoch, a_upstream, a_revision) = split_version(a.trim());
    let (b_epoch, b_upstream, b_revision) = split_version(b.trim());
    compare_numbers(a_epoch, b_epoch)
        .then_with(|| compare_fragment(a_upstream, b_upstream))
        .then_with(|| compare_fragment(a_revision, b_revision))
}

/// Splits `epoch:upstream-revision`; a missing epoch is 0, a missing revision empty.
fn split_version(v: &str) -> (&str, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (epoch, rest)
        }
        _ => ("0", v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// Compares digit strings of any length by value, without overflowing.
fn compare_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// dpkg's weight of a character in a non-digit run: `~` < end of string <
/// letters < everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternate non-digit runs (by weight) and digit runs (by value).
fn compare_fragment(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while a.get(i).is_some_and(|c| !c.is_ascii_digit())
            || b.get(j).is_some_and(|c| !c.is_ascii_digit())
        {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            // Equal weights mean neither side is at its end here (only the end weighs 0
            // among non-digits), so both can advance.
            i += 1;
            j += 1;
        }
        let a_start = i;
        while a.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let b_start = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        // Both slices are ASCII digits, so these are valid UTF-8.
        let a_num = std::str::from_utf8(&a[a_start..i]).unwrap_or("");
        let b_num = std::str::from_utf8(&b[b_start..j]).unwrap_or("");
        let ordering = compare_numbers(a_num, b_num);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn compares_like_dpkg() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-0", Equal),
            ("0:1.2", "1.2", Equal),
            ("1.2-3", "1.2-03", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0.0", Less),
            ("1.0", "1.0+deb13u1", Less),
            ("1:0.1", "2.0", Greater),
            ("2:1", "10:1", Less),
            ("1.0-1~bpo12+1", "1.0-1", Less),
            ("6.1.158-1", "6.1.170-1", Less),
            ("6.1.170-1", "6.1.170-2", Less),
            ("6.12.107-1", "6.12.9-1", Greater),
            ("7.2.13-1", "7.2.13-1~exp1", Greater),
            ("1.2.3-1.1", "1.2.3-1", Greater),
            (
                "99999999999999999999999",
                "99999999999999999999998",
                Greater,
            ),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_debian_versions(a, b), expected, "{a} vs {b}");
            assert_eq!(
                compare_debian_versions(b, a),
                expected.reverse(),
                "{b} vs {a}"
            );
        }
    }

    #[test]
    fn tilde_sorts_before_everything() {
        // The ordering from deb-version(7).
        let ordered = ["~~", "~~a", "~", "", "a"];
        for pair in ordered.windows(2) {
            assert_eq!(
                compare_debian_versions(&format!("1{}", pair[0]), &format!("1{}", pair[1])),
                Less,
                "{pair:?}"
            );
        }
    }

    #[test]
    fn odd_input_does_not_panic() {
        for v in ["", ":", "-", "a:b", "1:", ":1", "--", "1.0-", "é-ü"] {
            assert_eq!(compare_debian_versions(v, v), Equal, "{v:?}");
            let _ = compare_debian_versions(v, "1.0");
        }
    }
}
