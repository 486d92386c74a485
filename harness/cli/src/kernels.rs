use crate::ProjectAt;
use std::process::ExitCode;

use harness_kernels::{Cache, CacheStatus, LINES, LockFile, Mirror, UpdateOptions};

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
            let mut lock = LockFile::load(&project.lock_file).unwrap_or(LockFile {
                kernels: Vec::new(),
            });
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
