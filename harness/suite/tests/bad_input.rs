//! Bad input stops the run with one clear message; nothing is damaged.

mod common;

use std::fs;

use common::{failures, no_interrupt, options, project_copy};
use harness_project::PrepareError;
use harness_suite::{Project, SuiteError, TestJudgement};

fn test(project: &Project, kernels: &str) -> Result<TestJudgement, SuiteError> {
    harness_suite::test(
        project,
        &options(kernels),
        &harness_events::Silent,
        &no_interrupt(),
    )
}

#[test]
fn case_file_mistakes_are_all_reported_with_file_line_and_column() {
    let (_tmp, project) = project_copy();
    fs::write(
        project.cases_dirs[0].join("mistakes.toml"),
        r#"object = "xdp_firewall"

[[case]]
name = "missing program"
program = "xdp_firewal"
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }

[[case]]
name = "unknown map and return value"
program = "xdp_firewall"
maps.deny = [{ key = "10.0.0.1", value = 1 }]
packet.ipv4 = { src = "10.0.0.1", dst = "10.0.0.2" }
expect.return = "TC_ACT_SHOT"
"#,
    )
    .unwrap();
    let snapshots_before: Vec<_> = fs::read_dir(&project.snapshots_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let err = test(&project, "6.1").unwrap_err();
    let SuiteError::Prepare(PrepareError::Cases(errors)) = &err else {
        panic!("{err}")
    };
    assert_eq!(errors.len(), 3, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("mistakes.toml:5:11")
            && text.contains(
                "no program `xdp_firewal` in object `xdp_firewall`; its programs are xdp_firewall"
            ),
        "{text}"
    );
    assert!(
        text.contains("mistakes.toml:11:6")
            && text.contains("no map `deny`")
            && text.contains("its maps are")
            && text.contains("deny_v4")
            && text.contains("stats"),
        "{text}"
    );
    assert!(
        text.contains("mistakes.toml:13:17")
            && text.contains("expected one of XDP_ABORTED, XDP_DROP"),
        "{text}"
    );
    assert!(text.contains("nothing was run"), "{text}");
    let snapshots_after: Vec<_> = fs::read_dir(&project.snapshots_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(snapshots_before, snapshots_after);
}

#[test]
fn malformed_toml_points_at_the_spot() {
    let (_tmp, project) = project_copy();
    fs::write(
        project.cases_dirs[0].join("broken.toml"),
        "object = \"xdp_firewall\"\n[[case]\nname = \"x\"\n",
    )
    .unwrap();
    let text = test(&project, "6.1").unwrap_err().to_string();
    assert!(text.contains("broken.toml:2:"), "{text}");
}

#[test]
fn a_case_file_for_a_missing_object_lists_the_objects() {
    let (_tmp, project) = project_copy();
    fs::write(
        project.cases_dirs[0].join("ghost.toml"),
        "object = \"ghost\"\n[[case]]\nname = \"x\"\ndata = \"00\"\n",
    )
    .unwrap();
    let text = test(&project, "6.1").unwrap_err().to_string();
    assert!(
        text.contains("ghost.toml:1:10")
            && text.contains("no object `ghost`")
            && text
                .contains("objects are cgroup_egress, dns_filter, flow_hash, tc_lb, xdp_firewall"),
        "{text}"
    );
}

#[test]
fn a_program_the_verifier_rejects_is_reported_with_its_log() {
    let (_tmp, project) = project_copy();
    common::add_unchecked_program(&project);
    let report = test(&project, "host").unwrap();
    assert!(!report.ok());
    let k = &report.kernels[0];
    let programs = common::program_count(&project);
    assert_eq!((k.programs_accepted, k.programs), (programs - 1, programs));
    let failure = failures(&report.findings)
        .into_iter()
        .find(|f| f.contains("unchecked/unchecked"))
        .expect("the rejection is reported");
    assert!(
        failure.contains("Permission denied (errno 13)"),
        "{failure}"
    );
    assert!(failure.contains("invalid access to packet"), "{failure}");
    // The diagnosis: cause, C line and fix instead of a log tail.
    assert!(
        failure.contains("error[packet-bounds]")
            && failure.contains("unchecked.bpf.c:5")
            && failure.contains("return *(unsigned char *)(long)ctx->data;"),
        "{failure}"
    );
    assert!(
        failure.contains("verifier/unchecked/unchecked.log"),
        "{failure}"
    );
    // The other program's cases still ran.
    assert_eq!(k.passed, common::case_count(&project));
}
