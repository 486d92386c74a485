use crate::ProjectAt;
use std::process::ExitCode;

use harness_kernels::{
    Cache, CacheStatus, LINES, LockFile, Mirror, OciReference, PinSource, Sha256Digest,
    UpdateOptions,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Show the pinned kernels and whether they are cached.
    List,
    /// Re-resolve the newest image per line from the mirror and rewrite kernels.lock.
    Update {
        /// Only these lines (comma-separated) [default: all].
        #[arg(long, value_delimiter = ',')]
        line: Vec<harness_protocol::KernelVersion>,
        /// Debian mirror [default: from HARNESS_DEBIAN_MIRROR or apt's configuration].
        #[arg(long)]
        debian_mirror: Option<String>,
    },
    /// Pin a kernel beyond Debian's for a line (`--kernel 5.15`): an OCI image with the kernel at /boot/vmlinuz (cilium/ebpf's ci-kernels), pinned by its manifest digest, or a bzImage URL or path with its sha256. Fetched and checked before the pin is written.
    Pin {
        /// The line it is run as, e.g. 5.15 (the image's own version must match).
        line: harness_protocol::KernelVersion,
        /// REGISTRY/REPOSITORY:TAG (or @sha256:...), e.g. ghcr.io/cilium/ci-kernels:5.15.
        #[arg(long, conflicts_with_all = ["url", "sha256"], required_unless_present = "url")]
        oci: Option<OciReference>,
        /// An http(s) or file:// URL, or a path, of a bzImage.
        #[arg(long, requires = "sha256")]
        url: Option<String>,
        /// The bzImage's sha256 (hex, as sha256sum prints it).
        #[arg(long, value_parser = parse_sha256)]
        sha256: Option<Sha256Digest>,
    },
}

fn parse_sha256(s: &str) -> Result<Sha256Digest, String> {
    Sha256Digest::from_hex(s).map_err(|e| e.to_string())
}

pub fn run(cmd: Command, at: &ProjectAt) -> anyhow::Result<ExitCode> {
    let project = at.project()?;
    match cmd {
        Command::List => {
            let lock = LockFile::load(&project.lock_file)?;
            let cache = Cache::new(Cache::default_root());
            println!(
                "pinned in {} (cache: {})",
                project.relative(&project.lock_file),
                cache.root().display()
            );
            // Columns as wide as their longest entry (`experimental`).
            let width = |f: &dyn Fn(&harness_kernels::LockedKernel) -> usize| {
                lock.kernels.iter().map(f).max().unwrap_or(0)
            };
            let line_w = width(&|k| k.line.to_string().len());
            let suite_w = width(&|k| k.suite.len());
            let package_w = width(&|k| k.package.len());
            let version_w = width(&|k| k.version.len());
            for image in &lock.images {
                let source = image.source().map_or_else(|e| e, |s| s.to_string());
                println!("  {:<line_w$} {source}", image.line.to_string());
            }
            for k in &lock.kernels {
                let status = match cache.status(k) {
                    CacheStatus::Missing => "not downloaded",
                    CacheStatus::Downloaded => "downloaded",
                    CacheStatus::Unpacked => "cached",
                };
                println!(
                    "  {:<line_w$} {:<suite_w$} {:<package_w$} {:<version_w$} {:>6.1} MB  {status}",
                    k.line.to_string(),
                    k.suite,
                    k.package,
                    k.version,
                    k.size as f64 / 1e6
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Pin {
            line,
            oci,
            url,
            sha256,
        } => {
            let source = match (oci, url, sha256) {
                (Some(reference), _, _) => PinSource::Oci(reference),
                (None, Some(url), Some(sha256)) => PinSource::Url { url, sha256 },
                _ => anyhow::bail!("give --oci REF, or --url URL with --sha256 HEX"),
            };
            let status = harness_report::Status::new();
            let cache = Cache::new(Cache::default_root());
            let pinned =
                harness_kernels::pin_image(&project.lock_file, line, source, &cache, &status)?;
            let source = pinned.source().map_or_else(|e| e, |s| s.to_string());
            status.line(
                "Pinned",
                &format!(
                    "{line} {source} in {}",
                    project.relative(&project.lock_file)
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Update {
            line,
            debian_mirror,
        } => {
            let mirror = Mirror::resolve(debian_mirror.as_deref())?;
            let lines: Vec<_> = if line.is_empty() {
                LINES.iter().map(|l| l.line).collect()
            } else {
                line
            };
            let shown: Vec<String> = lines.iter().map(ToString::to_string).collect();
            let status = harness_report::Status::new();
            status.line(
                "Updating",
                &format!(
                    "{} from {} ({})",
                    shown.join(", "),
                    mirror.url(),
                    mirror.origin()
                ),
            );
            let update = harness_kernels::update(
                &mirror,
                &lines,
                &UpdateOptions {
                    events: &status,
                    ..UpdateOptions::default()
                },
            )?;
            for note in &update.notes {
                status.line("Note", note);
            }
            let mut lock = load_or_new(&project.lock_file)?;
            for k in update.lock.kernels {
                let old = lock.get(k.line).map(|o| o.version.clone());
                let msg = match old {
                    Some(v) if v == k.version => {
                        format!("{} {} {} (unchanged)", k.line, k.package, k.version)
                    }
                    Some(v) => format!("{} {} {v} -> {}", k.line, k.package, k.version),
                    None => format!("{} {} {}", k.line, k.package, k.version),
                };
                status.line("Pinned", &msg);
                lock.insert(k);
            }
            lock.save(&project.lock_file)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The lock file, or an empty one when there is none yet (never when it
/// cannot be read: that would drop its pins).
fn load_or_new(path: &std::path::Path) -> anyhow::Result<LockFile> {
    match LockFile::load(path) {
        Ok(lock) => Ok(lock),
        Err(harness_kernels::KernelError::LockMissing { .. }) => Ok(LockFile::default()),
        Err(e) => Err(e.into()),
    }
}
