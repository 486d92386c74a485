//! Progress and status of a run as typed events.
//!
//! Library crates never write to the terminal: they hand an [`Event`] to the
//! [`EventSink`] their caller gave them, and the front end (the CLI's
//! terminal renderer, a CI log, a test's recorder) decides what to show and
//! how. The events say what happened in words of the domain, never in
//! pre-formatted text meant for one screen.

use std::{path::PathBuf, sync::Mutex, time::Duration};

/// One thing worth telling the user while a run is under way.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// clang compiled (or recompiled) a BPF source.
    Compiled { source: PathBuf },
    /// The static in-VM runner is being built (cargo decides whether
    /// anything changed).
    BuildingRunner,
    /// A toolchain component is being installed for the runner.
    InstallingTarget { target: String },
    /// A requested kernel resolved to an image.
    KernelResolved { label: String, origin: String },
    /// A download of `total_bytes` named `what` starts.
    DownloadStarted { what: String, total_bytes: u64 },
    /// `bytes` more bytes of the current download arrived.
    DownloadAdvanced { bytes: u64 },
    /// The current download ended, successfully or not.
    DownloadFinished,
    /// KVM or TCG was chosen; `fallback` when KVM was wanted but unusable.
    AccelChosen {
        accel: String,
        reason: String,
        fallback: bool,
    },
    /// A kernel starts running the plan (`accel` is `None` on the host).
    Running {
        target: String,
        accel: Option<String>,
    },
    /// A kernel finished the plan.
    Finished {
        target: String,
        total: Duration,
        boot: Option<Duration>,
    },
    /// A kernel could not run the plan; the report says why in full.
    Failed { target: String, error: String },
    /// A benchmark starts measuring something.
    Measuring { what: String },
    /// A step of installing what the machine lacks starts: `what` (the
    /// packages, or the package lists) and `why` (what needs them).
    Installing { what: String, why: String },
    /// That step ended well after `took`.
    Installed {
        what: String,
        why: String,
        took: Duration,
    },
    /// Something the user should know that is not a failure (a corrupt cache
    /// file that will be fetched again, a lock another run holds, ...).
    Note { message: String },
    /// Something that may make results worse or slower.
    Warning { message: String },
}

/// Receives events; implementations must be cheap and never fail.
pub trait EventSink: Send + Sync {
    fn event(&self, event: Event);
}

/// Drops every event (benchmarks, tests that do not look).
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl EventSink for Silent {
    fn event(&self, _: Event) {}
}

/// Keeps every event, for tests that check what a run reported.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl EventSink for Recorder {
    fn event(&self, event: Event) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_keeps_events_in_order_and_silence_keeps_none() {
        let recorder = Recorder::new();
        let sinks: [&dyn EventSink; 2] = [&Silent, &recorder];
        for sink in sinks {
            sink.event(Event::BuildingRunner);
            sink.event(Event::Note {
                message: "cache refreshed".into(),
            });
        }
        assert_eq!(
            recorder.events(),
            [
                Event::BuildingRunner,
                Event::Note {
                    message: "cache refreshed".into()
                }
            ]
        );
    }
}
