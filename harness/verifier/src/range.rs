//! Kernel ranges as expectations write them: `<5.17`, `>=6.1`, `5.10..6.1`
//! (end excluded), `6.1`, `all`.

use std::fmt;

use harness_protocol::KernelVersion;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelRange {
    /// Inclusive.
    pub from: Option<KernelVersion>,
    /// Exclusive.
    pub to: Option<KernelVersion>,
}

/// Why a text is not a kernel range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("{0}")]
    Version(#[from] harness_protocol::NotAVersion),
    #[error("`{0}` is not a kernel range: use all, 6.1, >=5.17, <5.17 or 5.10..6.1")]
    Syntax(String),
}

impl KernelRange {
    pub const ALL: Self = Self {
        from: None,
        to: None,
    };

    pub fn parse(s: &str) -> Result<Self, RangeError> {
        let s = s.trim();
        let version = |v: &str| v.trim().parse::<KernelVersion>();
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
                to: Some(v.next_minor()),
            });
        }
        Err(RangeError::Syntax(s.to_owned()))
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
            (Some(a), Some(b)) if b == a.next_minor() => write!(f, "{a}"),
            (Some(a), Some(b)) => write!(f, "{a}..{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let v = |s: &str| KernelVersion::from_release(s).unwrap();
        assert_eq!(v("6.12.107+deb13-cloud-amd64"), KernelVersion::new(6, 12));
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
                .to_string()
                .contains("not a kernel range")
        );
        assert_eq!(
            KernelRange::parse(">=6.x").unwrap_err().to_string(),
            "`6.x` is not a kernel version like 6.1"
        );
    }

    #[test]
    fn every_form_reads_back_as_written() {
        let v = |s: &str| s.parse::<KernelVersion>().unwrap();
        for (text, shown) in [
            ("all", "all kernels"),
            (" * ", "all kernels"),
            (">=5.17", ">=5.17"),
            ("<5.17", "<5.17"),
            ("6.1", "6.1"),
            ("5.10..6.12", "5.10..6.12"),
            // A span of one minor is that minor.
            ("6.1..6.2", "6.1"),
        ] {
            assert_eq!(KernelRange::parse(text).unwrap().to_string(), shown);
        }
        let star = KernelRange::parse("*").unwrap();
        assert_eq!(star, KernelRange::ALL);
        assert!(star.contains(v("4.19")) && star.contains(v("7.2")));
        // The end of a span is excluded, its start included.
        let span = KernelRange::parse("5.10..6.12").unwrap();
        assert!(span.contains(v("5.10")) && span.contains(v("6.11")));
        assert!(!span.contains(v("5.9")) && !span.contains(v("6.12")));
    }
}
