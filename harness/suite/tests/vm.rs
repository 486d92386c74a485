//! The spine end to end on real kernels: build, boot, run, judge, snapshot.

mod common;

use std::{fs, time::Duration};

use common::{failures, project_copy, test};

#[test]
fn two_kernels_run_every_case_and_match_the_committed_snapshots() {
    let (_tmp, project) = project_copy();
    let (cases, programs) = (
        common::case_count(&project),
        common::program_count(&project),
    );
    let report = test(&project, "6.1,6.12");
    assert!(report.ok(), "{}", harness_report::test_report(&report));
    assert_eq!(report.kernels.len(), 2);
    for (k, line) in report.kernels.iter().zip(["6.1", "6.12"]) {
        assert_eq!(k.label, line);
        assert!(k.release.starts_with(line), "{} booted {}", line, k.release);
        assert_eq!((k.programs_accepted, k.programs), (programs, programs));
        // Every case runs on 6.1 and 6.12: the only optional feature (an XDP
        // context) arrived in 5.13.
        assert_eq!((k.passed, k.failed, k.skipped), (cases, 0, 0));
        assert_eq!((k.snapshots_new, k.snapshots_changed), (0, 0));
        assert!(k.snapshots_matched >= 5);
        assert!(k.boot.is_some());
    }
    // The full verifier log of every program lands on disk (at level 1 the
    // kernel keeps only the statistics of an accepted program).
    let log = fs::read_to_string(
        project
            .results_dir
            .join("6.1/verifier/xdp_firewall/xdp_firewall.log"),
    )
    .unwrap();
    assert!(
        log.contains("processed ")
            && log.contains("insns (limit 1000000)")
            && log.contains("stack depth"),
        "{log}"
    );
}

#[test]
fn a_wrong_expectation_fails_the_run_and_says_where_and_why() {
    let (_tmp, project) = project_copy();
    let total = common::case_count(&project);
    let cases = project.cases_dirs[0].join("xdp_firewall.toml");
    let text = fs::read_to_string(&cases).unwrap();
    // The first case expects XDP_DROP; claim the packet passes instead.
    fs::write(
        &cases,
        text.replacen(
            "expect.return = \"XDP_DROP\"",
            "expect.return = \"XDP_PASS\"",
            1,
        ),
    )
    .unwrap();
    let report = test(&project, "6.1");
    assert!(!report.ok());
    assert_eq!(
        (report.kernels[0].passed, report.kernels[0].failed),
        (total - 1, 1)
    );
    let failure = failures(&report.findings)
        .into_iter()
        .find(|f| f.contains("source in a denied IPv4 CIDR is dropped"))
        .expect("the failing case is reported");
    assert!(
        failure.contains("xdp_firewall.toml:7 `source in a denied IPv4 CIDR is dropped`"),
        "{failure}"
    );
    assert!(
        failure.contains("line 13: return value: expected XDP_PASS (2), got XDP_DROP (1)"),
        "{failure}"
    );
}

#[test]
fn a_changed_program_shows_as_a_snapshot_diff() {
    let (_tmp, project) = project_copy();
    let total = common::case_count(&project);
    let src = project
        .root
        .join("sample-programs")
        .join("xdp_firewall.bpf.c");
    let text = fs::read_to_string(&src).unwrap();
    // An extra check that never fires: same verdicts, more instructions for
    // the verifier to walk.
    let changed = text.replacen(
        "\tcfg = bpf_map_lookup_elem(&config, &zero);\n",
        "\tcfg = bpf_map_lookup_elem(&config, &zero);\n\tif (cfg && cfg->trusted_ifindex == 0xffffffff)\n\t\treturn XDP_ABORTED;\n",
        1,
    );
    assert_ne!(changed, text, "the edit applies");
    fs::write(&src, changed).unwrap();
    let report = test(&project, "6.1");
    assert!(!report.ok());
    assert_eq!(report.kernels[0].passed, total);
    assert!(
        report.kernels[0].snapshots_changed >= 1,
        "{}",
        harness_report::test_report(&report)
    );
    assert!(
        report
            .snapshot_notes
            .iter()
            .any(|n| n.name == "verifier__xdp_firewall__xdp_firewall"
                && n.to_string().contains("+processed")),
        "{:?}",
        report.snapshot_notes
    );
    // CI mode: nothing pending was written into the project.
    assert!(
        !fs::read_dir(&project.snapshots_dir).unwrap().any(|e| e
            .unwrap()
            .path()
            .to_string_lossy()
            .ends_with(".new"))
    );
}

#[test]
fn the_host_runs_the_same_cases_without_attaching_anything() {
    let (_tmp, project) = project_copy();
    let (cases, programs) = (
        common::case_count(&project),
        common::program_count(&project),
    );
    let report = test(&project, "host");
    let k = &report.kernels[0];
    assert_eq!(k.label, "host");
    assert_eq!(
        (k.programs_accepted, k.passed, k.failed),
        (programs, cases, 0),
        "{}",
        harness_report::test_report(&report)
    );
}

#[test]
fn a_custom_bzimage_is_keyed_by_its_version_line() {
    let image = common::kernel("6.1");
    let (tmp, project) = project_copy();
    let custom = tmp.path().join("my-kernel");
    fs::copy(&image, &custom).unwrap();
    let targets = harness_suite::resolve_targets(
        &project,
        &harness_kernels::parse_kernel_list(custom.to_str().unwrap()).unwrap(),
        None,
        &harness_events::Silent,
    )
    .unwrap();
    let t = &targets[0];
    assert_eq!(t.label, "my-kernel");
    assert_eq!(t.line(), "6.1");
    assert!(t.release.starts_with("6.1.0-"), "{}", t.release);
    assert_eq!(t.bzimage(), Some(custom.as_path()));
    let report = test(&project, custom.to_str().unwrap());
    assert!(report.ok(), "{}", harness_report::test_report(&report));

    // Two images of one name, or an image named like a line, never share
    // an output directory.
    for dir in ["a", "b"] {
        fs::create_dir(tmp.path().join(dir)).unwrap();
        fs::copy(&image, tmp.path().join(dir).join("6.12")).unwrap();
    }
    let list = format!(
        "6.12,{},{}",
        tmp.path().join("a/6.12").display(),
        tmp.path().join("b/6.12").display()
    );
    let labels: Vec<String> = harness_suite::resolve_targets(
        &project,
        &harness_kernels::parse_kernel_list(&list).unwrap(),
        None,
        &harness_events::Silent,
    )
    .unwrap()
    .into_iter()
    .map(|t| t.label)
    .collect();
    assert_eq!(labels, ["6.12", "6.12-2", "6.12-3"]);
}

#[test]
fn a_kernel_that_hangs_keeps_every_record_it_sent() {
    let (_tmp, project) = project_copy();
    let prepared = common::prepare(&project);
    let first = &prepared.objects[0];
    let first_cases = prepared
        .cases
        .iter()
        .filter(|c| c.object == first.name)
        .count();
    assert!(
        first_cases >= 3,
        "the first object has cases to cut between"
    );
    // hello, the probes, the first object's programs, two of its cases.
    let sent = 1 + prepared.probes.len() + first.info.file.programs().len() + 2;
    let mut opts = common::options("6.1");
    opts.run.init_args = vec![
        harness_protocol::INIT_MODE_HANG_AFTER.into(),
        sent.to_string(),
    ];
    opts.run.timeout = Duration::from_secs(25);
    let report = common::test_with(&project, &opts);
    let k = &report.kernels[0];
    assert!(
        k.error
            .as_deref()
            .unwrap()
            .contains("did not finish within 25s"),
        "{k:?}"
    );
    assert_eq!((k.passed, k.failed), (2, 1), "{k:?}");
    assert_eq!(k.not_run, prepared.cases.len() - 3);
    let running = report
        .findings
        .iter()
        .find(|f| f.kind == harness_judge::FindingKind::NoResult { running: true })
        .unwrap();
    let third = prepared
        .cases
        .iter()
        .filter(|c| c.object == first.name)
        .nth(2)
        .unwrap();
    assert!(running.to_string().contains(&third.name), "{running}");
    // What arrived is on disk too, with the console.
    let dir = project.results_dir.join("6.1");
    let records = fs::read_to_string(dir.join("records.jsonl")).unwrap();
    assert_eq!(records.lines().count(), sent);
    assert!(fs::read_to_string(dir.join("console.log")).is_ok());
    let rendered = harness_report::plain(&harness_report::test_report(&report));
    assert!(
        rendered.contains(&format!("2 passed, 1 failed, {} not run", k.not_run)),
        "{rendered}"
    );
}

mod single_vm {
    use super::*;
    use harness_vm::{Accel, Initramfs, VmConfig, VmError};

    fn config(initramfs: &std::path::Path, init_args: &[&str], timeout: Duration) -> VmConfig {
        VmConfig {
            qemu: "qemu-system-x86_64".into(),
            kernel: common::kernel("6.1"),
            initramfs: initramfs.to_owned(),
            accel: Accel::Tcg,
            memory_mb: 512,
            cpus: 1,
            cmdline_extra: Vec::new(),
            init_args: init_args.iter().map(|s| (*s).to_owned()).collect(),
            timeout,
            interrupt: None,
            debugcon: true,
            shared_memory: true,
        }
    }

    #[test]
    fn a_kernel_panic_fails_with_the_console_tail_not_a_timeout() {
        // An initramfs without /init: the kernel panics ("No working init found").
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("empty.cpio");
        Initramfs::new().dir("/dev").write_to(&path).unwrap();
        let err = harness_vm::run(&config(&path, &[], Duration::from_secs(240)), &mut |_| {})
            .unwrap_err();
        match err {
            VmError::KernelPanic { marker, tail, .. } => {
                assert_eq!(marker, "Kernel panic - not syncing");
                assert!(tail.contains("Kernel panic"), "{tail}");
            }
            other => panic!("expected a panic, got {other}"),
        }
    }

    /// An initramfs with the real runner and the sample plan.
    fn runner_initramfs(project: &harness_suite::Project, name: &str) -> std::path::PathBuf {
        let prepared = common::prepare(project);
        let runner = harness_suite::build_runner(&harness_events::Silent).unwrap();
        let fs_image = harness_matrix::guest_initramfs(&prepared.plan(), &runner).unwrap();
        let path = project.results_dir.join(name);
        fs::create_dir_all(&project.results_dir).unwrap();
        fs_image.write_to(&path).unwrap();
        path
    }

    #[test]
    fn records_take_shared_memory_else_the_debug_console_else_the_uart() {
        let (_tmp, project) = project_copy();
        let path = runner_initramfs(&project, "probe.cpio");
        for (shared_memory, debugcon, port) in [
            (true, true, harness_protocol::SHARED_MEMORY_PORT),
            (false, true, "debugcon"),
            (false, false, "ttyS1"),
        ] {
            let mut cfg = config(
                &path,
                &[harness_protocol::INIT_MODE_PROBE],
                Duration::from_secs(120),
            );
            cfg.shared_memory = shared_memory;
            cfg.debugcon = debugcon;
            let out = harness_vm::run(&cfg, &mut |_| {}).unwrap();
            match out.records.as_slice() {
                [
                    harness_protocol::Record::Hello(hello),
                    harness_protocol::Record::Done(done),
                ] => {
                    assert_eq!(hello.results_port, port);
                    assert_eq!(done.error, None);
                }
                other => panic!("expected hello and done, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_image_that_does_not_boot_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        // Half a kernel: QEMU loads what is there and the guest never speaks.
        let image = fs::read(common::kernel("6.1")).unwrap();
        let half = tmp.path().join("half-bzImage");
        fs::write(&half, &image[..image.len() / 2]).unwrap();
        let initramfs = tmp.path().join("empty.cpio");
        Initramfs::new().dir("/dev").write_to(&initramfs).unwrap();
        let mut cfg = config(&initramfs, &[], Duration::from_secs(60));
        cfg.kernel = half.clone();
        match harness_vm::run(&cfg, &mut |_| {}) {
            Err(e @ VmError::NoBoot { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains(&format!("{} did not boot", half.display()))
                        && text.contains("complete x86_64 bzImage"),
                    "{text}"
                );
            }
            other => panic!("expected NoBoot, got {other:?}"),
        }
        // Resolution refuses it before any VM boots.
        let err = harness_suite::resolve_targets(
            &harness_suite::Project::at(&common::workspace(), &common::workspace().join("target")),
            &harness_kernels::parse_kernel_list(half.to_str().unwrap()).unwrap(),
            None,
            &harness_events::Silent,
        )
        .unwrap_err();
        assert!(err.to_string().contains("is truncated"), "{err}");
    }

    #[test]
    fn a_hung_guest_is_killed_at_the_timeout() {
        let (_tmp, project) = project_copy();
        let path = runner_initramfs(&project, "hang.cpio");
        let mut hello = false;
        let err = harness_vm::run(
            &config(
                &path,
                &[harness_protocol::INIT_MODE_HANG],
                Duration::from_secs(45),
            ),
            &mut |r| {
                hello |= matches!(r, harness_protocol::Record::Hello(_));
            },
        )
        .unwrap_err();
        assert!(matches!(err, VmError::Timeout { .. }), "{err}");
        assert!(hello, "the guest booted and said hello before hanging");
    }
}

#[test]
fn a_renamed_case_leaves_its_old_snapshot_named() {
    let (_tmp, project) = project_copy();
    let cases = project.cases_dirs[0].join("tc_lb.toml");
    let text = fs::read_to_string(&cases).unwrap();
    let first = text
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned();
    fs::write(&cases, text.replacen(&first, "a brand new name", 1)).unwrap();
    let report = test(&project, "host");
    let notes: Vec<String> = report
        .snapshot_notes
        .iter()
        .map(ToString::to_string)
        .collect();
    // Snapshot names are the case names in snake case.
    let mut slug = String::new();
    for c in first.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let old = format!(
        "snapshot case__tc_lb__{} is produced",
        slug.trim_matches('_')
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(&old) && n.contains("no case or program any more: remove")),
        "{old} in {notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("case__tc_lb__a_brand_new_name") && n.contains("is new")),
        "{notes:?}"
    );
    // Per-kernel verifier snapshots of kernels that did not run are left alone.
    assert!(
        !notes
            .iter()
            .any(|n| n.contains("verifier__") && n.contains("no case or program")),
        "{notes:?}"
    );
}

#[test]
fn a_case_without_maps_in_its_snapshot_still_snapshots_what_it_returned() {
    let (_tmp, project) = project_copy();
    fs::write(
        project.cases_dirs[0].join("quiet.toml"),
        "object = \"tc_lb\"\nprogram = \"tc_lb\"\n\n[[case]]\nname = \"asserts nothing\"\nsnapshot_maps = false\npacket.ipv4 = { src = \"10.0.0.1\", dst = \"10.0.0.2\" }\npacket.udp = { src = 1, dst = 2 }\n",
    )
    .unwrap();
    let mut opts = common::options("host");
    opts.snapshots = harness_suite::UpdateMode::New;
    let report = common::test_with(&project, &opts);
    // A new snapshot fails the run until it is reviewed: nothing passes
    // without something being checked.
    assert!(!report.ok());
    assert_eq!(
        report.kernels[0].snapshots_new, 1,
        "{:?}",
        report.snapshot_notes
    );
    let pending = project
        .snapshots_dir
        .join("case__quiet__asserts_nothing.snap.new");
    let text = fs::read_to_string(&pending).unwrap();
    assert!(
        text.contains("return: TC_ACT_OK (0)") && text.contains("output packet: unchanged"),
        "{text}"
    );
    assert!(!text.contains("maps after the run"), "{text}");
}

/// A live case: the exec monitor attached inside the VM. A step that
/// hangs fails its own case at the deadline and the next case still runs;
/// on the host the same cases are skipped, saying why.
#[test]
fn a_hung_live_step_fails_its_case_alone_and_the_host_never_attaches() {
    let (_tmp, project) = project_copy();
    fs::copy(
        common::workspace().join("sample-programs/security/exec_monitor.bpf.c"),
        project
            .root
            .join("sample-programs")
            .join("exec_monitor.bpf.c"),
    )
    .unwrap();
    fs::write(
        project.cases_dirs[0].join("live.toml"),
        r#"object = "exec_monitor"
program = "on_exec"

[[case]]
name = "hangs"
timeout_ms = 1500
snapshot_maps = false
steps = [{ exec = ["/bin/true"] }, { sleep_ms = 600000 }]

[[case]]
name = "runs after the hang"
snapshot_maps = false
events = { map = "events", type = "exec_event" }
steps = [{ exec = ["/bin/echo", "hi"], expect.exit = 0 }]
expect.events = [{ comm = "echo", filename = "/bin/echo" }]
"#,
    )
    .unwrap();
    let mut opts = common::options("6.1,host");
    opts.snapshots = harness_suite::UpdateMode::New;
    let report = common::test_with(&project, &opts);
    let failures = failures(&report.findings);
    let live: Vec<&String> = failures
        .iter()
        .filter(|f| f.contains("live.toml"))
        .collect();
    assert_eq!(live.len(), 1, "{failures:#?}");
    assert!(
        live[0].contains("`hangs` on 6.1")
            && live[0]
                .contains("step 2 (sleep 600000 ms): did not finish before the case's timeout"),
        "{}",
        live[0]
    );
    let vm = &report.kernels[0];
    assert_eq!((vm.label.as_str(), vm.failed), ("6.1", 1));
    let pending = fs::read_to_string(
        project
            .snapshots_dir
            .join("case__live__runs_after_the_hang.snap.new"),
    )
    .unwrap();
    assert!(
        pending.contains("1. exec /bin/echo hi: ok, exit status 0")
            && pending.contains(r#"comm: "echo", filename: "/bin/echo", args: "/bin/echo\0hi""#),
        "{pending}"
    );
    let host = &report.kernels[1];
    assert_eq!(host.label, "host");
    assert_eq!(host.failed, 0, "{failures:#?}");
    let skips: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.kernel == "host" && f.to_string().contains("live.toml"))
        .map(ToString::to_string)
        .collect();
    assert_eq!(skips.len(), 2, "{skips:#?}");
    assert!(
        skips
            .iter()
            .all(|s| s.contains("runs only inside a test VM, never on the host's kernel")),
        "{skips:#?}"
    );
}
