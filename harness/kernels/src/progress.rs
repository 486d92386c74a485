//! Reporting download progress and notes to the user.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

/// Receives progress of downloads and notes about the cache.
pub trait Progress {
    /// A download of `total_bytes` named `what` starts.
    fn start(&self, what: &str, total_bytes: u64);
    /// `bytes` more bytes arrived.
    fn advance(&self, bytes: u64);
    /// The current download ended (successfully or not).
    fn finish(&self);
    /// Something the user should know, e.g. that a cached file was corrupt.
    fn note(&self, msg: &str);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
    fn note(&self, _msg: &str) {}
}

/// A progress bar on stderr (bytes, total, rate, ETA); notes go to stderr as
/// lines. indicatif draws nothing when stderr is not a terminal.
#[derive(Debug, Default)]
pub struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    /// A reporter with no bar showing yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only means another thread panicked mid-update; the bar is still usable.
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut bar);
    }
}

impl Progress for BarProgress {
    fn start(&self, what: &str, total_bytes: u64) {
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = ProgressBar::new(total_bytes)
            .with_style(style)
            .with_message(what.to_owned());
        self.with_bar(|slot| {
            if let Some(old) = slot.replace(bar) {
                old.finish_and_clear();
            }
        });
    }

    fn advance(&self, bytes: u64) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(bytes);
            }
        });
    }

    fn finish(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }

    fn note(&self, msg: &str) {
        // `println` on a hidden bar prints nothing, so suspend the bar and print ourselves.
        self.with_bar(|slot| match slot {
            Some(bar) => bar.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        });
    }
}
