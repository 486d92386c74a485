//! Status lines in cargo's style (a right-aligned verb, then the message)
//! and a progress bar for downloads, on stderr.

use std::{io::Write as _, sync::Mutex};

use harness_events::{Event, EventSink};
use indicatif::{ProgressBar, ProgressStyle};

use crate::style::{BAD, OK, WARN, paint};

/// Renders a run's events for a person at a terminal (or a CI log).
#[derive(Debug, Default)]
pub struct Status {
    bar: Mutex<Option<ProgressBar>>,
}

impl Status {
    pub fn new() -> Self {
        Self::default()
    }

    /// `   Compiled xdp_firewall.bpf.c`: green verbs, red for failures,
    /// yellow for warnings.
    pub fn line(&self, verb: &str, message: &str) {
        let style = match verb {
            "Failed" | "Error" => BAD,
            "Warning" => WARN,
            _ => OK,
        };
        let text = format!("{} {message}", paint(style, &format!("{verb:>12}")));
        // A bar on screen is hidden while the line is printed.
        self.with_bar(|bar| match bar {
            Some(bar) => bar.suspend(|| print_line(&text)),
            None => print_line(&text),
        });
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only means another thread panicked mid-update.
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut bar);
    }
}

fn print_line(text: &str) {
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{text}");
}

fn seconds(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl EventSink for Status {
    fn event(&self, event: Event) {
        match event {
            Event::Compiled { source } => self.line("Compiled", &source.display().to_string()),
            Event::BuildingRunner => self.line("Building", "in-VM runner (static)"),
            Event::InstallingTarget { target } => self.line(
                "Installing",
                &format!("the Rust target {target} for the in-VM runner"),
            ),
            Event::KernelResolved { label, origin } => {
                self.line("Kernel", &format!("{label}: {origin}"));
            }
            Event::DownloadStarted { what, total_bytes } => {
                let style = ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                let bar = ProgressBar::new(total_bytes)
                    .with_style(style)
                    .with_message(what);
                self.with_bar(|slot| {
                    if let Some(old) = slot.replace(bar) {
                        old.finish_and_clear();
                    }
                });
            }
            Event::DownloadAdvanced { bytes } => self.with_bar(|slot| {
                if let Some(bar) = slot {
                    bar.inc(bytes);
                }
            }),
            Event::DownloadFinished => self.with_bar(|slot| {
                if let Some(bar) = slot.take() {
                    bar.finish_and_clear();
                }
            }),
            Event::AccelChosen {
                reason, fallback, ..
            } => self.line(if fallback { "Warning" } else { "Accel" }, &reason),
            Event::Running {
                target,
                accel: Some(accel),
            } => self.line("Running", &format!("{target} ({accel})")),
            Event::Running { accel: None, .. } => {
                self.line("Running", "host kernel (load and test_run only)");
            }
            Event::Finished {
                target,
                total,
                boot: Some(boot),
            } => self.line(
                "Finished",
                &format!("{target} in {} (boot {})", seconds(total), seconds(boot)),
            ),
            Event::Finished {
                target,
                total,
                boot: None,
            } => self.line("Finished", &format!("{target} in {}", seconds(total))),
            Event::Failed { target, error } => self.line("Failed", &format!("{target}: {error}")),
            Event::Measuring { what } => self.line("Measuring", &what),
            // A spinner while apt works (at a terminal), then one line.
            Event::Installing { what, why } => {
                let spinner = ProgressBar::new_spinner().with_message(format!(
                    "{} {what} ({why})",
                    paint(OK, &format!("{:>12}", "Installing"))
                ));
                spinner.enable_steady_tick(std::time::Duration::from_millis(120));
                self.with_bar(|slot| {
                    if let Some(old) = slot.replace(spinner) {
                        old.finish_and_clear();
                    }
                });
            }
            Event::Installed { what, why, took } => {
                self.with_bar(|slot| {
                    if let Some(bar) = slot.take() {
                        bar.finish_and_clear();
                    }
                });
                self.line("Installed", &format!("{what} ({why}) in {}", seconds(took)));
            }
            Event::Note { message } => self.line("Note", &message),
            Event::Warning { message } => self.line("Warning", &message),
        }
    }
}
