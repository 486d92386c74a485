//! Kernel versions and ranges as expectations write them: `<5.17`,
//! `>=6.1`, `5.10..6.1` (end excluded), `6.1`, `all`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion(pub u32, pub u32);

impl KernelVersion {
    /// `"6.12"`, `"6.12.107+deb13-cloud-amd64"` -> 6.12.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self(major, minor))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelRange {
    /// Inclusive.
    pub from: Option<KernelVersion>,
    /// Exclusive.
    pub to: Option<KernelVersion>,
}

impl KernelRange {
    pub const ALL: Self = Self {
        from: None,
        to: None,
    };

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let version = |v: &str| {
            KernelVersion::parse(v.trim())
                .ok_or_else(|| format!("`{v}` is not a kernel version like 6.1"))
        };
        if s == "all" || s == "*" {
            return Ok(Self::ALL);
        }
        if let Some(v) = s.strip_prefix(">=") {
            return Ok(Self {
                from: Some(version(v)?),
                to: None,
            });
        }
        if let Some(v) = s.strip_prefix('<') {
            return Ok(Self {
                from: None,
                to: Some(version(v)?),
            });
        }
        if let Some((a, b)) = s.split_once("..") {
            return Ok(Self {
                from: Some(version(a)?),
                to: Some(version(b)?),
            });
        }
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            let v = version(s)?;
            return Ok(Self {
                from: Some(v),
                to: Some(KernelVersion(v.0, v.1 + 1)),
            });
        }
        Err(format!(
            "`{s}` is not a kernel range: use all, 6.1, >=5.17, <5.17 or 5.10..6.1"
        ))
    }

    pub fn contains(&self, v: KernelVersion) -> bool {
        self.from.is_none_or(|f| v >= f) && self.to.is_none_or(|t| v < t)
    }
}

impl fmt::Display for KernelRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.from, self.to) {
            (None, None) => f.write_str("all kernels"),
            (Some(a), None) => write!(f, ">={a}"),
            (None, Some(b)) => write!(f, "<{b}"),
            (Some(a), Some(b)) if b == KernelVersion(a.0, a.1 + 1) => write!(f, "{a}"),
            (Some(a), Some(b)) => write!(f, "{a}..{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let v = |s| KernelVersion::parse(s).unwrap();
        assert_eq!(v("6.12.107+deb13-cloud-amd64"), KernelVersion(6, 12));
        let before = KernelRange::parse("<5.17").unwrap();
        assert!(
            before.contains(v("5.10")) && !before.contains(v("5.17")) && !before.contains(v("6.1"))
        );
        let since = KernelRange::parse(">=5.17").unwrap();
        assert!(since.contains(v("6.1")) && since.contains(v("7.2")) && !since.contains(v("5.10")));
        let span = KernelRange::parse("5.10..6.12").unwrap();
        assert!(span.contains(v("6.1")) && !span.contains(v("6.12")));
        let one = KernelRange::parse("6.1").unwrap();
        assert!(one.contains(v("6.1.0-50")) && !one.contains(v("6.12")));
        assert_eq!(one.to_string(), "6.1");
        assert!(KernelRange::parse("all").unwrap().contains(v("4.19")));
        assert!(
            KernelRange::parse("soon")
                .unwrap_err()
                .contains("not a kernel range")
        );
    }
}
