//! `cargo xtask` as a user runs it: real binary, real kernels, real exit
//! codes.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn xtask(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args)
        .current_dir(workspace())
        .env("INSTA_UPDATE", "no")
        .env_remove("HARNESS_ACCEL");
    cmd
}

fn run(args: &[&str]) -> Output {
    xtask(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn an_unknown_kernel_line_lists_the_lines_and_how_to_pass_an_image() {
    let out = run(&["test", "--kernel", "5.15"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("5.15 is not in Debian's archive"), "{t}");
    assert!(
        t.contains("5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie), 7.2 (sid)"),
        "{t}"
    );
    assert!(t.contains("--kernel /path/to/bzImage"), "{t}");
}

#[test]
fn kernels_list_shows_the_four_pinned_lines() {
    let out = run(&["kernels", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    for (line, suite) in [
        ("5.10", "bullseye"),
        ("6.1", "bookworm"),
        ("6.12", "trixie"),
        ("7.2", "sid"),
    ] {
        assert!(
            t.lines()
                .any(|l| l.trim_start().starts_with(line) && l.contains(suite)),
            "{line} missing:\n{t}"
        );
    }
}

/// `[[case]]` headers in the project's case files.
fn case_count() -> usize {
    fs::read_dir(workspace().join("testcases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("Cargo.toml"))
        .map(|p| {
            fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| l.trim() == "[[case]]")
                .count()
        })
        .sum()
}

#[test]
fn the_main_job_on_two_kernels_passes_with_a_summary() {
    let out = run(&["test", "--kernel", "6.1,6.12"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let n = case_count();
    let row = format!("{n} passed, 0 failed");
    let table: Vec<&str> = t.lines().filter(|l| l.contains('┆')).collect();
    assert!(
        table
            .iter()
            .any(|l| l.contains(" 6.1 ") && l.contains(&row) && l.contains(" ok ")),
        "{t}"
    );
    assert!(
        table
            .iter()
            .any(|l| l.contains(" 6.12 ") && l.contains(&row) && l.contains(" ok ")),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "test result: ok. 2 kernels, {} cases passed, 0 failed",
            2 * n
        )),
        "{t}"
    );
}

#[test]
fn build_only_recompiles_what_changed() {
    let first = run(&["build"]);
    assert!(first.status.success(), "{}", text(&first));
    let again = run(&["build"]);
    let t = text(&again);
    assert!(t.contains("Fresh") && !t.contains("Compiled"), "{t}");
}

fn child_pids(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
        if after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
            == Some(parent)
        {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn ctrl_c_stops_qemu_and_removes_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = xtask(&["test", "--kernel", "6.1"])
        .env("TMPDIR", tmp.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("Running") {
            break;
        }
        line.clear();
    }
    assert!(line.contains("Running 6.1"), "never started a VM:\n{seen}");
    // Wait until QEMU is our child, then interrupt as a terminal would.
    let deadline = Instant::now() + Duration::from_secs(30);
    let qemu = loop {
        let q: Vec<u32> = child_pids(child.id())
            .into_iter()
            .filter(|p| {
                fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with("qemu"))
            })
            .collect();
        if !q.is_empty() || Instant::now() > deadline {
            break q;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!qemu.is_empty(), "QEMU did not start");
    assert!(fs::read_dir(tmp.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("harness-vm-")
    }));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    for pid in qemu {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "QEMU {pid} outlived the harness"
        );
    }
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}
