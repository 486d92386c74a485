//! Status lines in cargo's style: a right-aligned verb, then the message.

use std::{
    io::{IsTerminal as _, Write as _},
    sync::atomic::{AtomicBool, Ordering},
};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences status lines (benchmarks run the suite many times).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

fn colored() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `   Compiling xdp_firewall.bpf.c` in green (red for errors) on a terminal.
pub fn status(verb: &str, message: &str) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    let (on, off) = if colored() {
        (
            if verb == "Failed" || verb == "Error" {
                "\x1b[1;31m"
            } else if verb == "Warning" {
                "\x1b[1;33m"
            } else {
                "\x1b[1;32m"
            },
            "\x1b[0m",
        )
    } else {
        ("", "")
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{on}{verb:>12}{off} {message}");
}
