//! Installing what a machine lacks, with a stand-in apt-get on PATH: one
//! event pair per step, apt's chatter in the setup log and never on the
//! terminal, and a failed step's error naming the log and quoting its end.
//! (One test: it changes the process's PATH and cache directory.)

use std::{fs, os::unix::fs::PermissionsExt as _};

use harness_events::{Event, Recorder};
use harness_setup::Requirement;

const FAKE_APT: &str = r#"#!/bin/sh
echo "Reading package lists... (fake apt-get $*)"
i=0
while [ $i -lt 300 ]; do echo "Unpacking fake-$i"; i=$((i+1)); done
case "$*" in
  *install*fail-me*) echo "E: Unable to locate package fail-me" >&2; exit 100 ;;
esac
exit 0
"#;

#[test]
fn each_step_is_one_line_and_apt_talks_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("apt-get"), FAKE_APT).unwrap();
    fs::set_permissions(bin.join("apt-get"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&path));
    // SAFETY: this test binary has one test; nothing else reads the
    // environment meanwhile.
    unsafe {
        std::env::set_var("PATH", std::env::join_paths(paths).unwrap());
        std::env::set_var("HARNESS_CACHE_DIR", dir.path().join("cache"));
    }
    let log = harness_setup::setup_log();
    assert!(
        log.starts_with(dir.path().join("cache")),
        "{}",
        log.display()
    );

    let events = Recorder::new();
    let wanted = [Requirement {
        what: "clang (compiles BPF programs)",
        package: "clang",
    }];
    harness_setup::install(&wanted, &events).unwrap();
    let steps: Vec<Event> = events.events();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(
        steps[0],
        Event::Installing {
            what: "clang".into(),
            why: "clang (compiles BPF programs)".into()
        }
    );
    assert!(matches!(&steps[1], Event::Installed { what, .. } if what == "clang"));
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("$ apt-get install -y -q --no-install-recommends clang"));
    assert!(
        text.contains("Unpacking fake-299"),
        "apt's output is in the log"
    );

    // A package apt cannot find: the install fails, the package lists are
    // fetched, it fails again; the error names the log and quotes its end.
    let events = Recorder::new();
    let missing = [Requirement {
        what: "something apt does not have",
        package: "fail-me",
    }];
    let e = harness_setup::install(&missing, &events)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&log.display().to_string()), "{e}");
    assert!(e.contains("E: Unable to locate package fail-me"), "{e}");
    assert!(
        e.contains("apt-get install --no-install-recommends fail-me"),
        "{e}"
    );
    let whats: Vec<String> = events
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Installing { what, .. } => format!("start {what}"),
            Event::Installed { what, .. } => format!("done {what}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        whats,
        [
            "start fail-me",
            "start package lists",
            "done package lists",
            "start fail-me"
        ]
    );
}
