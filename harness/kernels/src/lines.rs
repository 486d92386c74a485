//! The Debian kernel lines the harness can fetch, and how to recognise their
//! image packages in a suite's index.

use harness_protocol::KernelVersion;

/// One kernel line (major.minor) and where Debian publishes it.
///
/// The image package is named
/// `{package_prefix}{release_prefix}{abi}{release_suffix}{package_suffix}`,
/// and the kernel's `uname -r` is `{release_prefix}{abi}{release_suffix}`,
/// where `abi` changes with every upload (`50`, `107+deb13`, ...), except
/// in experimental's release candidates, which have none (`7.3-cloud-amd64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelLine {
    /// The line, e.g. 6.1.
    pub line: KernelVersion,
    /// The Debian suite (codename) that carries it.
    pub suite: &'static str,
    /// `linux-image-`, or `linux-binary-` where `linux-image-*` is only a meta package.
    pub package_prefix: &'static str,
    /// Start of the release, before the ABI part.
    pub release_prefix: &'static str,
    /// The flavour at the end of the release.
    pub release_suffix: &'static str,
    /// Whether the release has an ABI part between prefix and suffix. Debian's
    /// uploads to a release or to sid do; its release candidates in
    /// experimental are `7.3-cloud-amd64`, and every upload of the line
    /// reuses that one name (the newest version wins).
    pub has_abi: bool,
    /// What follows the release in the package name.
    pub package_suffix: &'static str,
    /// Where the kernel's build config is when the image package lacks it:
    /// the package `{config_package_prefix}{release}` of the same version
    /// (`linux-base-` for the split `linux-binary-*` packages). `None` when
    /// the image package carries `boot/config-<release>` itself.
    pub config_package_prefix: Option<&'static str>,
}

/// The lines Debian carries, oldest first. (There is no 5.15 in Debian.)
pub const LINES: &[KernelLine] = &[
    KernelLine {
        line: KernelVersion::new(5, 10),
        suite: "bullseye",
        package_prefix: "linux-image-",
        release_prefix: "5.10.0-",
        release_suffix: "-cloud-amd64",
        has_abi: true,
        package_suffix: "-unsigned",
        config_package_prefix: None,
    },
    KernelLine {
        line: KernelVersion::new(6, 1),
        suite: "bookworm",
        package_prefix: "linux-image-",
        release_prefix: "6.1.0-",
        release_suffix: "-cloud-amd64",
        has_abi: true,
        package_suffix: "-unsigned",
        config_package_prefix: None,
    },
    KernelLine {
        line: KernelVersion::new(6, 12),
        suite: "trixie",
        package_prefix: "linux-image-",
        release_prefix: "6.12.",
        release_suffix: "-cloud-amd64",
        has_abi: true,
        package_suffix: "-unsigned",
        config_package_prefix: None,
    },
    KernelLine {
        line: KernelVersion::new(7, 2),
        suite: "sid",
        package_prefix: "linux-binary-",
        release_prefix: "7.2.",
        release_suffix: "-cloud-amd64",
        has_abi: true,
        package_suffix: "",
        config_package_prefix: Some("linux-base-"),
    },
    // A release candidate: `linux-binary-7.3-cloud-amd64` 7.3~rc7-1~exp1,
    // its config in `linux-base-7.3-cloud-amd64` of the same version.
    KernelLine {
        line: KernelVersion::new(7, 3),
        suite: "experimental",
        package_prefix: "linux-binary-",
        release_prefix: "7.3",
        release_suffix: "-cloud-amd64",
        has_abi: false,
        package_suffix: "",
        config_package_prefix: Some("linux-base-"),
    },
];

impl KernelLine {
    /// The `uname -r` release of `package` if it is an image package of this
    /// line, e.g. `linux-image-6.1.0-50-cloud-amd64-unsigned` -> `6.1.0-50-cloud-amd64`.
    pub fn release_of(&self, package: &str) -> Option<String> {
        let release = package
            .strip_prefix(self.package_prefix)?
            .strip_suffix(self.package_suffix)?;
        self.is_release(release).then(|| release.to_owned())
    }

    /// The name of the package holding the build config of `release`, when
    /// this line's image packages lack it: `linux-base-7.2.13+deb14-cloud-amd64`.
    pub fn config_package_of(&self, release: &str) -> Option<String> {
        self.config_package_prefix
            .map(|prefix| format!("{prefix}{release}"))
    }

    /// Whether `package` is the config package of some release of this line.
    pub fn is_config_package(&self, package: &str) -> bool {
        self.config_package_prefix
            .and_then(|prefix| package.strip_prefix(prefix))
            .is_some_and(|release| self.is_release(release))
    }

    /// Whether `release` is a `uname -r` of this line's flavour.
    fn is_release(&self, release: &str) -> bool {
        let Some(abi) = release
            .strip_prefix(self.release_prefix)
            .and_then(|r| r.strip_suffix(self.release_suffix))
        else {
            return false;
        };
        if !self.has_abi {
            return abi.is_empty();
        }
        // The ABI part is `50` or `107+deb13`; anything with a dash is another
        // flavour (`-rt`, `-dbg`, ...) that merely shares the prefix.
        abi.starts_with(|c: char| c.is_ascii_digit())
            && abi
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '.' || c == '~')
    }

    /// The package name pattern, for messages: `linux-image-6.1.0-*-cloud-amd64-unsigned`.
    pub fn package_pattern(&self) -> String {
        let abi = if self.has_abi { "*" } else { "" };
        format!(
            "{}{}{abi}{}{}",
            self.package_prefix, self.release_prefix, self.release_suffix, self.package_suffix
        )
    }
}

/// The line `line`, if Debian carries it.
pub fn find_line(line: KernelVersion) -> Option<&'static KernelLine> {
    LINES.iter().find(|l| l.line == line)
}

/// `5.10 (bullseye), 6.1 (bookworm), ...`, for messages.
pub fn lines_summary() -> String {
    let parts: Vec<String> = LINES
        .iter()
        .map(|l| format!("{} ({})", l.line, l.suite))
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_lines_image_package() {
        let cases = [
            (
                "5.10",
                "linux-image-5.10.0-32-cloud-amd64-unsigned",
                "5.10.0-32-cloud-amd64",
            ),
            (
                "6.1",
                "linux-image-6.1.0-50-cloud-amd64-unsigned",
                "6.1.0-50-cloud-amd64",
            ),
            (
                "6.12",
                "linux-image-6.12.107+deb13-cloud-amd64-unsigned",
                "6.12.107+deb13-cloud-amd64",
            ),
            (
                "7.2",
                "linux-binary-7.2.13+deb14-cloud-amd64",
                "7.2.13+deb14-cloud-amd64",
            ),
            ("7.3", "linux-binary-7.3-cloud-amd64", "7.3-cloud-amd64"),
        ];
        for (line, package, release) in cases {
            let l = find_line(line.parse().unwrap()).expect("line exists");
            assert_eq!(l.release_of(package).as_deref(), Some(release), "{package}");
            assert_eq!(
                KernelVersion::from_release(release).map(|v| v.to_string()),
                Some(line.to_owned())
            );
        }
    }

    #[test]
    fn rejects_other_packages() {
        let l61 = find_line(KernelVersion::new(6, 1)).expect("6.1 exists");
        for package in [
            "linux-image-6.1.0-50-cloud-amd64", // signed meta, no -unsigned
            "linux-image-6.1.0-50-cloud-amd64-dbg", // debug symbols
            "linux-image-6.1.0-50-rt-cloud-amd64-unsigned", // other flavour
            "linux-image-6.1.0-50-amd64-unsigned", // generic flavour
            "linux-image-6.1.0--cloud-amd64-unsigned", // empty ABI
            "linux-image-cloud-amd64",          // meta package
            "linux-headers-6.1.0-50-cloud-amd64",
        ] {
            assert_eq!(l61.release_of(package), None, "{package}");
        }
        let l72 = find_line(KernelVersion::new(7, 2)).expect("7.2 exists");
        assert_eq!(l72.release_of("linux-image-7.2.13+deb14-cloud-amd64"), None);
        assert_eq!(
            l72.release_of("linux-binary-7.2.13+deb14-cloud-amd64-dbg"),
            None
        );
        assert_eq!(
            l72.release_of("linux-binary-7.20.1+deb14-cloud-amd64"),
            None
        );
        let l73 = find_line(KernelVersion::new(7, 3)).expect("7.3 exists");
        for package in [
            "linux-binary-7.3-rt-amd64",
            "linux-binary-7.3-amd64",
            "linux-binary-7.3-cloud-amd64-dbg",
            "linux-image-7.3-cloud-amd64", // a meta package in the split scheme
            "linux-binary-7.30-cloud-amd64",
            "linux-binary-7.3.1+deb14-cloud-amd64",
            "linux-binary-7.3-1-cloud-amd64",
        ] {
            assert_eq!(l73.release_of(package), None, "{package}");
        }
    }

    #[test]
    fn only_split_lines_name_a_config_package() {
        for line in ["5.10", "6.1", "6.12"] {
            let l = find_line(line.parse().unwrap()).expect("line exists");
            assert_eq!(l.config_package_of("whatever"), None, "{line}");
            assert!(!l.is_config_package("linux-base-6.1.0-50-cloud-amd64"));
        }
        let l72 = find_line(KernelVersion::new(7, 2)).expect("7.2 exists");
        assert_eq!(
            l72.config_package_of("7.2.13+deb14-cloud-amd64").as_deref(),
            Some("linux-base-7.2.13+deb14-cloud-amd64")
        );
        assert!(l72.is_config_package("linux-base-7.2.13+deb14-cloud-amd64"));
        for other in [
            "linux-base-7.2.13+deb14-rt-amd64",
            "linux-base-7.2.13+deb14-cloud-amd64-dbg",
            "linux-base",
            "linux-binary-7.2.13+deb14-cloud-amd64",
        ] {
            assert!(!l72.is_config_package(other), "{other}");
        }
        let l73 = find_line(KernelVersion::new(7, 3)).expect("7.3 exists");
        assert_eq!(
            l73.config_package_of("7.3-cloud-amd64").as_deref(),
            Some("linux-base-7.3-cloud-amd64")
        );
        assert!(l73.is_config_package("linux-base-7.3-cloud-amd64"));
        assert!(!l73.is_config_package("linux-base-7.3-rt-amd64"));
        assert!(!l73.is_config_package("linux-base-7.2.13+deb14-cloud-amd64"));
    }

    #[test]
    fn package_patterns_show_where_the_abi_goes() {
        let pattern = |l: &str| {
            find_line(l.parse().unwrap())
                .expect("line")
                .package_pattern()
        };
        assert_eq!(pattern("6.1"), "linux-image-6.1.0-*-cloud-amd64-unsigned");
        assert_eq!(pattern("7.2"), "linux-binary-7.2.*-cloud-amd64");
        assert_eq!(pattern("7.3"), "linux-binary-7.3-cloud-amd64");
    }

    #[test]
    fn summary_lists_the_lines_oldest_first() {
        assert_eq!(
            lines_summary(),
            "5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie), 7.2 (sid), 7.3 (experimental)"
        );
        assert!(LINES.windows(2).all(|w| w[0].line < w[1].line));
    }
}
