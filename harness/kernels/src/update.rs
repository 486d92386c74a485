//! `cargo xtask kernels update`: read each suite's verified index and pin the
//! newest image package of each line, with the package holding its build
//! config where the image package lacks it.

use std::io::BufReader;

use sha2::{Digest, Sha256};

use crate::error::KernelError;
use crate::http::Http;
use crate::index::{PackageEntry, release_field, release_sha256, scan_packages, signed_text};
use crate::lines::{KernelLine, find_line};
use crate::lock::{LockFile, LockedKernel, PinnedPackage};
use crate::mirror::Mirror;
use crate::signature::{Checked, SignatureCheck, check_signature};
use crate::version::compare_debian_versions;
use harness_events::{EventSink, Silent};

/// The index of binary packages, relative to `dists/<suite>/`.
const PACKAGES_XZ: &str = "main/binary-amd64/Packages.xz";
/// InRelease files are a few hundred kilobytes; anything far bigger is not one.
const MAX_INRELEASE_BYTES: u64 = 16 << 20;

/// How [`update`] works.
pub struct UpdateOptions<'a> {
    /// Whether to check the `InRelease` signatures.
    pub signature: SignatureCheck,
    /// Where index download progress goes.
    pub events: &'a dyn EventSink,
}

impl Default for UpdateOptions<'_> {
    fn default() -> Self {
        UpdateOptions {
            signature: SignatureCheck::IfAvailable,
            events: &Silent,
        }
    }
}

/// The result of [`update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The newest package of each requested line.
    pub lock: LockFile,
    /// Things the user should know, e.g. that a signature was not checked.
    pub notes: Vec<String>,
}

/// Fetches the index of each requested line's suite, verifies it, and pins
/// the newest image package per line (by Debian version), and, for lines
/// whose image packages lack the build config, the config package of the
/// same release and version from the same index.
pub fn update(
    mirror: &Mirror,
    lines: &[harness_protocol::KernelVersion],
    options: &UpdateOptions<'_>,
) -> Result<Update, KernelError> {
    let mut wanted: Vec<&KernelLine> = Vec::new();
    for line in lines {
        let found = find_line(*line).ok_or_else(|| KernelError::UnknownLine {
            line: line.to_string(),
        })?;
        if !wanted.contains(&found) {
            wanted.push(found);
        }
    }
    let http = Http::new();
    let mut lock = LockFile::default();
    let mut notes = Vec::new();
    let mut suites: Vec<&str> = Vec::new();
    for line in &wanted {
        if !suites.contains(&line.suite) {
            suites.push(line.suite);
        }
    }
    for suite in suites {
        let suite_lines: Vec<&KernelLine> = wanted
            .iter()
            .copied()
            .filter(|l| l.suite == suite)
            .collect();
        let (packages_url, entries) =
            read_index(&http, mirror, suite, &suite_lines, options, &mut notes)?;
        for line in suite_lines {
            let mut kernel =
                newest(line, &entries).ok_or_else(|| KernelError::NoPackageForLine {
                    line: line.line,
                    suite: suite.to_owned(),
                    url: packages_url.clone(),
                    pattern: line.package_pattern(),
                })?;
            kernel.config_package = config_package(line, &kernel, &entries, &packages_url)?;
            lock.insert(kernel);
        }
    }
    Ok(Update { lock, notes })
}

/// The highest-versioned image package of `line` among `entries`.
fn newest(line: &KernelLine, entries: &[PackageEntry]) -> Option<LockedKernel> {
    let (entry, release) = entries
        .iter()
        .filter_map(|e| line.release_of(&e.package).map(|release| (e, release)))
        .max_by(|(a, _), (b, _)| {
            compare_debian_versions(&a.version, &b.version).then_with(|| a.package.cmp(&b.package))
        })?;
    Some(LockedKernel {
        line: line.line,
        suite: line.suite.to_owned(),
        package: entry.package.clone(),
        version: entry.version.clone(),
        filename: entry.filename.clone(),
        size: entry.size,
        sha256: entry.sha256.clone(),
        release,
        config_package: None,
    })
}

/// The package holding `kernel`'s build config, for a line whose image
/// packages lack it: the line's config package of the kernel's release, in
/// exactly the kernel's version (the image package depends on it with `=`).
fn config_package(
    line: &KernelLine,
    kernel: &LockedKernel,
    entries: &[PackageEntry],
    packages_url: &str,
) -> Result<Option<PinnedPackage>, KernelError> {
    let Some(name) = line.config_package_of(&kernel.release) else {
        return Ok(None);
    };
    let candidates: Vec<&PackageEntry> = entries.iter().filter(|e| e.package == name).collect();
    let Some(entry) = candidates.iter().find(|e| e.version == kernel.version) else {
        let found = if candidates.is_empty() {
            "no version of it".to_owned()
        } else {
            let versions: Vec<&str> = candidates.iter().map(|e| e.version.as_str()).collect();
            format!("only {}", versions.join(", "))
        };
        return Err(KernelError::NoConfigPackage {
            line: line.line,
            url: packages_url.to_owned(),
            kernel: format!("{} {}", kernel.package, kernel.version),
            config_package: format!("{name} {}", kernel.version),
            found,
        });
    };
    Ok(Some(PinnedPackage {
        package: entry.package.clone(),
        version: entry.version.clone(),
        filename: entry.filename.clone(),
        size: entry.size,
        sha256: entry.sha256.clone(),
    }))
}

/// Downloads and verifies `InRelease` and `Packages.xz` of `suite`, and
/// returns the Packages URL and the stanzas of the lines' image and config
/// packages.
fn read_index(
    http: &Http,
    mirror: &Mirror,
    suite: &str,
    lines: &[&KernelLine],
    options: &UpdateOptions<'_>,
    notes: &mut Vec<String>,
) -> Result<(String, Vec<PackageEntry>), KernelError> {
    let events = options.events;
    let inrelease_url = mirror.join(&format!("dists/{suite}/InRelease"));
    let inrelease = http
        .get_bytes(
            &inrelease_url,
            &format!("{suite} InRelease"),
            MAX_INRELEASE_BYTES,
            events,
        )
        .map_err(|e| e.into_kernel_error(&inrelease_url))?;
    if let Checked::NotChecked(why) =
        check_signature(&inrelease, &inrelease_url, options.signature)?
    {
        notes.push(format!(
            "the signature of {inrelease_url} was not checked: {why}"
        ));
    }
    let bad_index = |url: &str, message: String| KernelError::BadIndex {
        url: url.to_owned(),
        message,
    };
    let release = signed_text(&String::from_utf8_lossy(&inrelease))
        .map_err(|m| bad_index(&inrelease_url, m))?;
    if let Err(message) = check_suite(&release, suite) {
        return Err(bad_index(&inrelease_url, message));
    }
    let (expected_sha256, expected_size) =
        release_sha256(&release, PACKAGES_XZ).ok_or_else(|| {
            bad_index(
                &inrelease_url,
                format!("it lists no SHA256 for {PACKAGES_XZ}"),
            )
        })?;

    let packages_url = mirror.join(&format!("dists/{suite}/{PACKAGES_XZ}"));
    let xz = http
        .get_bytes(
            &packages_url,
            &format!("{suite} Packages.xz"),
            expected_size,
            events,
        )
        .map_err(|e| e.into_kernel_error(&packages_url))?;
    let actual_sha256 = hex::encode(Sha256::digest(&xz));
    if xz.len() as u64 != expected_size || actual_sha256 != expected_sha256 {
        return Err(KernelError::ChecksumMismatch {
            what: format!("the {suite} index"),
            url: packages_url,
            expected_size,
            actual_size: xz.len() as u64,
            expected_sha256,
            actual_sha256,
        });
    }
    let decoder = BufReader::new(liblzma::read::XzDecoder::new_multi_decoder(xz.as_slice()));
    let entries = scan_packages(decoder, |name| {
        lines
            .iter()
            .any(|l| l.release_of(name).is_some() || l.is_config_package(name))
    })
    .map_err(|m| bad_index(&packages_url, m))?;
    Ok((packages_url, entries))
}

/// Whether the Release text is that of `suite`, named by its codename
/// (`sid`, `trixie`) or by its suite name: experimental's codename is
/// `rc-buggy`, so a line there names the suite `experimental`.
fn check_suite(release: &str, suite: &str) -> Result<(), String> {
    let codename = release_field(release, "Codename");
    let suite_name = release_field(release, "Suite");
    if codename == Some(suite) || suite_name == Some(suite) {
        return Ok(());
    }
    let found = match (codename, suite_name) {
        (Some(c), Some(s)) => format!("`{c}` (suite `{s}`)"),
        (Some(c), None) => format!("`{c}`"),
        (None, Some(s)) => format!("suite `{s}`"),
        (None, None) => "no Codename or Suite".to_owned(),
    };
    Err(format!("it is for {found}, not `{suite}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(package: &str, version: &str) -> PackageEntry {
        PackageEntry {
            package: package.to_owned(),
            version: version.to_owned(),
            filename: format!("pool/main/l/linux/{package}_{version}_amd64.deb"),
            size: 10,
            sha256: "0".repeat(64),
        }
    }

    #[test]
    fn the_config_package_must_have_the_kernels_version() {
        let line = find_line(harness_protocol::KernelVersion::new(7, 2)).expect("7.2");
        let kernel = entry("linux-binary-7.2.13+deb14-cloud-amd64", "7.2.13-1");
        let base = |version| entry("linux-base-7.2.13+deb14-cloud-amd64", version);
        let locked = newest(line, std::slice::from_ref(&kernel)).expect("found");
        assert_eq!(locked.config_package, None, "newest pins the kernel only");

        let entries = [
            kernel.clone(),
            base("7.2.12-1"),
            base("7.2.13-1"),
            base("7.2.14-1"),
        ];
        let pinned = config_package(line, &locked, &entries, "u")
            .expect("found")
            .expect("7.2 has a config package");
        assert_eq!(pinned.version, "7.2.13-1");
        assert_eq!(pinned.filename, base("7.2.13-1").filename);

        let entries = [kernel.clone(), base("7.2.12-1")];
        let msg = config_package(line, &locked, &entries, "https://m/Packages.xz")
            .expect_err("wrong version")
            .to_string();
        assert!(
            msg.contains(
                "no package linux-base-7.2.13+deb14-cloud-amd64 7.2.13-1 in https://m/Packages.xz"
            ) && msg.contains("found only 7.2.12-1"),
            "{msg}"
        );
        let msg = config_package(line, &locked, &[kernel], "u")
            .expect_err("absent")
            .to_string();
        assert!(msg.contains("found no version of it"), "{msg}");

        let classic = find_line(harness_protocol::KernelVersion::new(6, 1)).expect("6.1");
        let k61 = entry("linux-image-6.1.0-50-cloud-amd64-unsigned", "6.1.170-1");
        let locked = newest(classic, std::slice::from_ref(&k61)).expect("found");
        assert_eq!(
            config_package(classic, &locked, &[k61], "u").expect("ok"),
            None
        );
    }

    #[test]
    fn a_suite_is_recognised_by_codename_or_suite_name() {
        let sid = "Origin: Debian\nSuite: unstable\nCodename: sid\n";
        let experimental = "Origin: Debian\nSuite: experimental\nCodename: rc-buggy\n";
        assert_eq!(check_suite(sid, "sid"), Ok(()));
        assert_eq!(check_suite(experimental, "experimental"), Ok(()));
        assert_eq!(check_suite(experimental, "rc-buggy"), Ok(()));
        assert_eq!(
            check_suite(sid, "experimental"),
            Err("it is for `sid` (suite `unstable`), not `experimental`".to_owned())
        );
        assert_eq!(
            check_suite("Origin: Debian\n", "sid"),
            Err("it is for no Codename or Suite, not `sid`".to_owned())
        );
    }

    #[test]
    fn an_experimental_release_candidate_is_pinned_with_its_config_package() {
        let line = find_line(harness_protocol::KernelVersion::new(7, 3)).expect("7.3");
        let rc = |package: &str, version: &str| PackageEntry {
            filename: format!("pool/main/l/linux-signed-amd64/{package}_{version}_amd64.deb"),
            ..entry(package, version)
        };
        let entries = [
            rc("linux-binary-7.3-cloud-amd64", "7.3~rc6-1~exp1"),
            rc("linux-binary-7.3-cloud-amd64", "7.3~rc7-1~exp1"),
            rc("linux-binary-7.3-rt-amd64", "7.3~rc7-1~exp1"),
            rc("linux-binary-7.3-amd64", "7.3~rc7-1~exp1"),
            entry("linux-base-7.3-cloud-amd64", "7.3~rc6-1~exp1"),
            entry("linux-base-7.3-cloud-amd64", "7.3~rc7-1~exp1"),
            entry("linux-base-7.3-rt-amd64", "7.3~rc7-1~exp1"),
        ];
        let mut locked = newest(line, &entries).expect("found");
        assert_eq!(locked.package, "linux-binary-7.3-cloud-amd64");
        assert_eq!(locked.version, "7.3~rc7-1~exp1");
        assert_eq!(locked.release, "7.3-cloud-amd64");
        assert_eq!(locked.suite, "experimental");
        locked.config_package = config_package(line, &locked, &entries, "u").expect("found");
        let config = locked.config_package.expect("7.3 has a config package");
        assert_eq!(config.package, "linux-base-7.3-cloud-amd64");
        assert_eq!(config.version, "7.3~rc7-1~exp1");
    }

    #[test]
    fn newest_picks_the_highest_debian_version_of_the_line() {
        let line = find_line(harness_protocol::KernelVersion::new(6, 1)).expect("6.1");
        let entries = [
            entry("linux-image-6.1.0-47-cloud-amd64-unsigned", "6.1.158-1"),
            entry("linux-image-6.1.0-50-cloud-amd64-unsigned", "6.1.170-1"),
            entry(
                "linux-image-6.1.0-50-cloud-amd64-unsigned",
                "6.1.170-1~deb12u1",
            ),
            entry("linux-image-6.1.0-9-cloud-amd64-unsigned", "6.1.27-1"),
            entry("linux-image-6.1.0-99-cloud-amd64-dbg", "6.1.999-1"),
        ];
        let locked = newest(line, &entries).expect("found");
        assert_eq!(locked.version, "6.1.170-1");
        assert_eq!(locked.release, "6.1.0-50-cloud-amd64");
        assert_eq!(locked.suite, "bookworm");
        assert_eq!(
            newest(
                find_line(harness_protocol::KernelVersion::new(6, 12)).expect("6.12"),
                &entries
            ),
            None
        );
    }
}
