//! Which Debian mirror to download from: given explicitly, from
//! `HARNESS_DEBIAN_MIRROR`, or from the machine's apt configuration.
//! No mirror host is ever built in.

use std::path::{Path, PathBuf};

use crate::apt::{AptSource, parse_deb822, parse_one_line, pick_debian_mirror};
use crate::error::KernelError;

/// The environment variable naming the mirror when no flag does.
pub const MIRROR_ENV: &str = "HARNESS_DEBIAN_MIRROR";

const APT_DIR: &str = "/etc/apt";

/// A Debian mirror's base URL (the directory holding `dists/` and `pool/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    url: String,
    origin: String,
}

impl Mirror {
    /// Finds the mirror: `explicit` (a `--debian-mirror` flag), else
    /// `HARNESS_DEBIAN_MIRROR`, else the first Debian `deb` source in
    /// `/etc/apt`.
    pub fn resolve(explicit: Option<&str>) -> Result<Mirror, KernelError> {
        let env = std::env::var(MIRROR_ENV).ok();
        resolve_from(explicit, env.as_deref(), Path::new(APT_DIR))
    }

    /// A mirror at `url` (`http://` or `https://`; a trailing slash is dropped).
    pub fn from_url(url: &str) -> Result<Mirror, KernelError> {
        Self::with_origin(url, "the given URL")
    }

    fn with_origin(url: &str, origin: &str) -> Result<Mirror, KernelError> {
        let trimmed = url.trim().trim_end_matches('/');
        let host = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("https://"));
        if host.is_none_or(str::is_empty) {
            return Err(KernelError::BadMirrorUrl {
                url: url.to_owned(),
                origin: origin.to_owned(),
            });
        }
        Ok(Mirror {
            url: trimmed.to_owned(),
            origin: origin.to_owned(),
        })
    }

    /// The base URL, without trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the URL came from (the flag, the variable, or an apt file), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The URL of `path` (relative to the mirror root).
    pub(crate) fn join(&self, path: &str) -> String {
        format!("{}/{}", self.url, path.trim_start_matches('/'))
    }
}

/// [`Mirror::resolve`] with the environment and apt directory passed in.
fn resolve_from(
    explicit: Option<&str>,
    env: Option<&str>,
    apt_dir: &Path,
) -> Result<Mirror, KernelError> {
    if let Some(url) = explicit {
        return Mirror::with_origin(url, "--debian-mirror");
    }
    if let Some(url) = env.filter(|u| !u.trim().is_empty()) {
        return Mirror::with_origin(url, MIRROR_ENV);
    }
    let mut files_read = Vec::new();
    for file in apt_source_files(apt_dir) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let sources: Vec<AptSource> = if file.extension().is_some_and(|e| e == "sources") {
            parse_deb822(&text)
        } else {
            parse_one_line(&text)
        };
        if let Some(url) = pick_debian_mirror(&sources) {
            return Mirror::with_origin(&url, &file.display().to_string());
        }
        files_read.push(file);
    }
    Err(KernelError::NoMirror {
        apt_dir: apt_dir.to_owned(),
        files_read,
    })
}

/// apt's source files in the order apt reads them: `sources.list`, then
/// `sources.list.d/*.list` and `*.sources` by name. Other suffixes
/// (`.disabled`, `.save`, ...) are not sources.
fn apt_source_files(apt_dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let main = apt_dir.join("sources.list");
    if main.is_file() {
        files.push(main);
    }
    if let Ok(entries) = std::fs::read_dir(apt_dir.join("sources.list.d")) {
        let mut parts: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        parts.sort();
        files.extend(parts);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn explicit_beats_env_beats_apt() {
        let apt = tempfile::tempdir().expect("temp dir");
        write(
            apt.path(),
            "sources.list",
            "deb http://apt.example/debian bookworm main\n",
        );

        let m = resolve_from(
            Some("https://flag.example/debian/"),
            Some("http://env.example/debian"),
            apt.path(),
        )
        .expect("explicit");
        assert_eq!(
            (m.url(), m.origin()),
            ("https://flag.example/debian", "--debian-mirror")
        );

        let m = resolve_from(None, Some("http://env.example/debian"), apt.path()).expect("env");
        assert_eq!(
            (m.url(), m.origin()),
            ("http://env.example/debian", MIRROR_ENV)
        );

        let m = resolve_from(None, Some(" "), apt.path()).expect("empty env is unset");
        assert_eq!(m.url(), "http://apt.example/debian");
        assert_eq!(
            m.origin(),
            apt.path().join("sources.list").display().to_string()
        );
    }

    #[test]
    fn reads_sources_list_d_and_ignores_other_suffixes() {
        let apt = tempfile::tempdir().expect("temp dir");
        write(
            apt.path(),
            "sources.list.d/a.list.disabled-by-farm",
            "deb http://disabled.example/debian sid main\n",
        );
        write(
            apt.path(),
            "sources.list.d/google.list",
            "deb https://packages.cloud.google.com/apt cloud-sdk main\n",
        );
        write(
            apt.path(),
            "sources.list.d/debian.sources",
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie\nComponents: main\n",
        );
        let m = resolve_from(None, None, apt.path()).expect("found");
        assert_eq!(m.url(), "http://mirror.example/debian");
        assert!(m.origin().ends_with("debian.sources"), "{}", m.origin());
    }

    #[test]
    fn no_debian_source_names_the_files_and_the_fix() {
        let apt = tempfile::tempdir().expect("temp dir");
        write(
            apt.path(),
            "sources.list",
            "deb http://archive.ubuntu.com/ubuntu noble main\n",
        );
        write(
            apt.path(),
            "sources.list.d/x.sources.disabled",
            "Types: deb\nURIs: http://d.example/debian\nSuites: sid\n",
        );
        let err = resolve_from(None, None, apt.path()).expect_err("ubuntu only");
        let msg = err.to_string();
        assert!(msg.starts_with("no Debian mirror found"), "{msg}");
        assert!(
            msg.contains(&apt.path().join("sources.list").display().to_string()),
            "{msg}"
        );
        assert!(!msg.contains("x.sources.disabled"), "{msg}");
        assert!(
            msg.contains("--debian-mirror URL") && msg.contains("HARNESS_DEBIAN_MIRROR"),
            "{msg}"
        );

        let empty = tempfile::tempdir().expect("temp dir");
        let msg = resolve_from(None, None, empty.path())
            .expect_err("nothing")
            .to_string();
        assert!(msg.contains("no source files found under"), "{msg}");
    }

    #[test]
    fn bad_urls_are_rejected_with_their_origin() {
        let apt = tempfile::tempdir().expect("temp dir");
        let err =
            resolve_from(None, Some("ftp://old.example/debian"), apt.path()).expect_err("ftp");
        let msg = err.to_string();
        assert!(
            msg.contains("ftp://old.example/debian") && msg.contains(MIRROR_ENV),
            "{msg}"
        );
        assert!(Mirror::from_url("deb.debian.org/debian").is_err());
        assert!(Mirror::from_url("https://").is_err());
        let m = Mirror::from_url("http://127.0.0.1:8080/debian//").expect("valid");
        assert_eq!(
            m.join("/pool/main/x.deb"),
            "http://127.0.0.1:8080/debian/pool/main/x.deb"
        );
    }
}
