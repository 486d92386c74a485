//! A kernel's identity as the harness reasons about it: its major.minor.
//!
//! Kernel lines (`6.1`), releases (`uname -r`), expectation ranges
//! (`>=5.17`) and the version that brought a feature all speak in this one
//! type, so a version is parsed once, where it enters, and compared as a
//! value everywhere else.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// The major.minor of a `uname -r` release: `6.1.0-50-cloud-amd64` ->
    /// 6.1, `7.2.13+deb14-cloud-amd64` -> 7.2, `6.8` -> 6.8; `None` when it
    /// does not start with `major.minor` followed by the end, `.`, `-` or `+`.
    pub fn from_release(release: &str) -> Option<Self> {
        let (major, rest) = split_number(release)?;
        let (minor, rest) = split_number(rest.strip_prefix('.')?)?;
        (rest.is_empty() || rest.starts_with(['.', '-', '+'])).then_some(Self { major, minor })
    }

    /// The version right after this one (`6.1` -> `6.2`), the end of a
    /// range that holds one line.
    pub const fn next_minor(self) -> Self {
        Self::new(self.major, self.minor + 1)
    }
}

/// Splits a leading run of ASCII digits (at least one) off `s`, as a number.
fn split_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// Why a text is not a kernel version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAVersion(pub String);

impl fmt::Display for NotAVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a kernel version like 6.1", self.0)
    }
}

impl std::error::Error for NotAVersion {}

impl FromStr for KernelVersion {
    type Err = NotAVersion;

    /// A line as users write it: exactly `major.minor` (`6.1`, `6.12`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || NotAVersion(t.to_owned());
        let (major, minor) = t.split_once('.').ok_or_else(bad)?;
        let number = |n: &str| {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse().ok())
                .flatten()
                .ok_or_else(bad)
        };
        Ok(Self::new(number(major)?, number(minor)?))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_exactly_and_sort_by_number() {
        let v = |s: &str| s.parse::<KernelVersion>().unwrap();
        assert_eq!(v("6.12"), KernelVersion::new(6, 12));
        assert_eq!(v(" 5.10 ").to_string(), "5.10");
        let mut lines = [v("6.12"), v("7.2"), v("6.9"), v("5.10"), v("6.1")];
        lines.sort();
        let shown: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["5.10", "6.1", "6.9", "6.12", "7.2"]);
        for bad in ["", "6", "6.", ".1", "6.x", "6.1.0", "v6.1", "host", "6.-1"] {
            let err = bad.parse::<KernelVersion>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("`{bad}` is not a kernel version like 6.1")
            );
        }
    }

    #[test]
    fn releases_give_their_line() {
        let cases = [
            ("5.10.0-32-cloud-amd64", Some((5, 10))),
            ("6.1.0-50-cloud-amd64", Some((6, 1))),
            ("6.12.107+deb13-cloud-amd64", Some((6, 12))),
            ("7.2.13+deb14-cloud-amd64", Some((7, 2))),
            ("6.18.44-fc-v857", Some((6, 18))),
            ("5.15.0-91-generic", Some((5, 15))),
            ("6.8", Some((6, 8))),
        ];
        for (release, want) in cases {
            assert_eq!(
                KernelVersion::from_release(release),
                want.map(|(a, b)| KernelVersion::new(a, b)),
                "{release}"
            );
        }
        for bad in [
            "", "garbage", "6", "6.", ".1", "6.x", "6.1x", "v6.1", "61-foo",
        ] {
            assert_eq!(KernelVersion::from_release(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn versions_travel_as_text() {
        let v = KernelVersion::new(6, 12);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"6.12\"");
        assert_eq!(
            serde_json::from_str::<KernelVersion>("\"6.12\"").unwrap(),
            v
        );
        assert!(serde_json::from_str::<KernelVersion>("\"six\"").is_err());
        assert_eq!(v.next_minor(), KernelVersion::new(6, 13));
    }
}
