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
    let out = run(&["test", "--kernel", "5.15", "--no-install"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("5.15 is not in Debian's archive"), "{t}");
    assert!(
        t.contains("5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie), 7.2 (sid), 7.3 (experimental)"),
        "{t}"
    );
    assert!(t.contains("--kernel /path/to/bzImage"), "{t}");
    assert!(t.contains("kernels pin 5.15 --oci"), "{t}");
}

#[test]
fn kernels_list_shows_the_five_pinned_lines() {
    let out = run(&["kernels", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    for (line, suite) in [
        ("5.10", "bullseye"),
        ("6.1", "bookworm"),
        ("6.12", "trixie"),
        ("7.2", "sid"),
        ("7.3", "experimental"),
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

/// `xtask test --kernel 6.1` in its own process group, with temporary files
/// in `tmp`, once QEMU runs: the child, its stderr so far, QEMU's pids.
fn start_vm_run(
    tmp: &Path,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStderr>,
    Vec<u32>,
) {
    use std::os::unix::process::CommandExt as _;
    let mut child = xtask(&["test", "--kernel", "6.1"])
        .env("TMPDIR", tmp)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .process_group(0)
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
    // Wait until QEMU is our child.
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
    assert!(fs::read_dir(tmp).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("harness-vm-")
    }));
    (child, stderr, qemu)
}

fn assert_gone(qemu: &[u32]) {
    for pid in qemu {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "QEMU {pid} outlived the harness"
        );
    }
}

#[test]
fn ctrl_c_stops_qemu_and_removes_temporary_files() {
    for whole_group in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut child, mut stderr, qemu) = start_vm_run(tmp.path());
        // A terminal's Ctrl-C reaches the whole group, QEMU included.
        let pid = child.id() as i32;
        let target = if whole_group { -pid } else { pid };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(target), nix::sys::signal::SIGINT)
            .unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{rest}");
        assert!(rest.contains("interrupted"), "{rest}");
        // QEMU's own "terminating on signal 2" is not a failed kernel.
        assert!(!rest.contains("Failed"), "{rest}");
        assert_gone(&qemu);
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "temporary files left behind: {left:?}");
    }
}

#[test]
fn what_a_killed_run_leaves_is_removed_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, _stderr, qemu) = start_vm_run(tmp.path());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    // QEMU dies with its parent (PR_SET_PDEATHSIG).
    std::thread::sleep(Duration::from_millis(500));
    assert_gone(&qemu);
    let killed = format!("harness-vm-{}-", child.id());
    let leftovers = |dir: &Path, prefix: &str| -> Vec<String> {
        fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(leftovers(tmp.path(), &killed).len(), 1);
    let results = workspace().join("target/harness");
    // The run's initramfs, and the VM's copy with its kernel's config.
    let image = format!("initramfs-{}-", child.id());
    assert_eq!(leftovers(&results, &image).len(), 2);

    // Any later run sweeps them (a live run's files are left alone).
    let out = xtask(&["build"]).output().unwrap();
    assert!(out.status.success());
    let out = xtask(&["test", "--kernel", "6.1"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(leftovers(tmp.path(), &killed).is_empty());
    assert!(leftovers(&results, &image).is_empty());
    assert!(
        text(&out).contains("leftovers of runs that were killed"),
        "{}",
        text(&out)
    );
}

#[test]
fn ctrl_c_during_a_stalled_download_ends_the_run_at_once() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    // A mirror that answers with headers and then nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (asked, request) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 20768532\r\n\r\n\x7fELF");
        let _ = asked.send(());
        std::thread::sleep(Duration::from_secs(120));
    });
    let mut child = xtask(&["test", "--kernel", "6.1", "--no-install"])
        .env("HARNESS_CACHE_DIR", tmp.path().join("cache"))
        .env("HARNESS_DEBIAN_MIRROR", format!("http://127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    request
        .recv_timeout(Duration::from_secs(120))
        .expect("the harness asked the mirror for the kernel");
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    // (A cargo building the runner may still hold stderr open: at a
    // terminal it gets the Ctrl-C too.)
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
}

#[test]
fn nonsense_counts_are_refused_before_anything_runs() {
    for args in [
        &["test", "--timeout", "0"][..],
        &["verify", "--jobs", "0"],
        &["bench", "boot", "--runs", "0"],
        &["bench", "cases", "--cases", "0"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("invalid value '0'") && t.contains(args[args.len() - 2]),
            "{args:?}: {t}"
        );
    }
}
