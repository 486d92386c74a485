//! `update` against a fake mirror: index verification and picking the
//! newest package per line, then the whole path from lock file to bzImage.

mod common;

fn v(line: &str) -> harness_protocol::KernelVersion {
    line.parse().expect("a line")
}

use common::{FakeMirror, inrelease, kernel_6_1, kernel_7_2, package_stanza, stanza, xz};
use harness_kernels::{
    Cache, KernelError, LockFile, SignatureCheck, UpdateOptions, bzimage_version, update,
};

const UNSIGNED: UpdateOptions<'static> = UpdateOptions {
    signature: SignatureCheck::Skip,
    events: &harness_events::Silent,
};

/// Serves `packages` (a Packages file) as `suite`'s index.
fn publish(mirror: &FakeMirror, suite: &str, packages: &str) {
    let packages_xz = xz(packages.as_bytes());
    mirror.put(
        &format!("dists/{suite}/InRelease"),
        inrelease(suite, &packages_xz),
    );
    mirror.put(
        &format!("dists/{suite}/main/binary-amd64/Packages.xz"),
        packages_xz,
    );
}

fn unrelated() -> &'static str {
    "Package: hello\nVersion: 2.10-3\nFilename: pool/main/h/hello/hello_2.10-3_amd64.deb\nSize: 5\nSHA256: 00\n"
}

#[test]
fn pins_the_newest_image_package_of_each_line() {
    let mirror = FakeMirror::start();
    let old = kernel_6_1(47, "6.1.158-1");
    let new = kernel_6_1(50, "6.1.170-1");
    let mut debug = kernel_6_1(51, "6.1.999-1").locked;
    debug.package = "linux-image-6.1.0-51-cloud-amd64-dbg".to_owned();
    let bookworm = [
        stanza(&old.locked),
        unrelated().to_owned(),
        stanza(&new.locked),
        stanza(&debug),
    ]
    .join("\n");
    publish(&mirror, "bookworm", &bookworm);

    let sid_kernel = kernel_7_2("13+deb14", "7.2.13-1");
    let mut meta = sid_kernel.locked.clone();
    meta.package = "linux-image-7.2.13+deb14-cloud-amd64".to_owned();
    // Config packages of an older upload and of another flavour are not it.
    let base = sid_kernel.config_package();
    let older_base = kernel_7_2("12+deb14", "7.2.12-1");
    let mut rt_base = base.clone();
    rt_base.package = "linux-base-7.2.13+deb14-rt-amd64".to_owned();
    rt_base.sha256 = "f".repeat(64);
    publish(
        &mirror,
        "sid",
        &[
            package_stanza(base),
            stanza(&meta),
            package_stanza(older_base.config_package()),
            stanza(&sid_kernel.locked),
            package_stanza(&rt_base),
        ]
        .join("\n"),
    );

    let result =
        update(&mirror.mirror(), &[v("7.2"), v("6.1"), v("7.2")], &UNSIGNED).expect("update");
    // The split 7.2 package gets its config package pinned, the classic 6.1
    // one, which carries its config, none.
    assert_eq!(
        result.lock.kernels,
        [new.locked.clone(), sid_kernel.locked.clone()]
    );
    assert_eq!(result.lock.kernels[0].config_package, None);
    assert_eq!(result.lock.kernels[1].config_package.as_ref(), Some(base));
    assert_eq!(result.notes.len(), 2, "{:?}", result.notes);
    for note in &result.notes {
        assert!(
            note.contains("/InRelease was not checked: signature checking was turned off"),
            "{note}"
        );
    }
    assert_eq!(mirror.hits("dists/bookworm/InRelease"), 1);
    assert_eq!(mirror.hits("dists/sid/main/binary-amd64/Packages.xz"), 1);
    assert_eq!(
        mirror.hits("dists/trixie/InRelease"),
        0,
        "only the asked-for suites are read"
    );
}

#[test]
fn from_update_to_bzimage() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    publish(&mirror, "bookworm", &stanza(&k.locked));
    mirror.put(&k.locked.filename, k.deb.clone());

    let dir = tempfile::tempdir().expect("temp dir");
    let lock_path = dir.path().join("kernels.lock");
    update(&mirror.mirror(), &[v("6.1")], &UNSIGNED)
        .expect("update")
        .lock
        .save(&lock_path)
        .expect("save");
    let lock = LockFile::load(&lock_path).expect("load");
    let locked = lock.require(v("6.1"), &lock_path).expect("6.1 pinned");
    let image = Cache::new(dir.path().join("cache"))
        .kernel(locked, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel");
    let version = bzimage_version(&image.bzimage).expect("version");
    assert_eq!(
        version,
        "6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP Debian 6.1.170-1"
    );
}

#[test]
fn from_update_to_the_config_of_a_split_kernel() {
    let mirror = FakeMirror::start();
    let k = kernel_7_2("13+deb14", "7.2.13-1");
    let base = k.config_package();
    publish(
        &mirror,
        "sid",
        &[stanza(&k.locked), package_stanza(base)].join("\n"),
    );
    mirror.put(&k.locked.filename, k.deb.clone());
    mirror.put(&base.filename, k.config_deb.clone().expect("config deb"));

    let dir = tempfile::tempdir().expect("temp dir");
    let lock_path = dir.path().join("kernels.lock");
    update(&mirror.mirror(), &[v("7.2")], &UNSIGNED)
        .expect("update")
        .lock
        .save(&lock_path)
        .expect("save");
    let text = std::fs::read_to_string(&lock_path).expect("lock text");
    assert!(
        text.contains(&format!(
            "[kernel.config_package]\npackage = \"{}\"\nversion = \"7.2.13-1\"\nfilename = \"{}\"\nsize = {}\nsha256 = \"{}\"\n",
            base.package, base.filename, base.size, base.sha256
        )),
        "{text}"
    );
    let lock = LockFile::load(&lock_path).expect("load");
    let locked = lock.require(v("7.2"), &lock_path).expect("7.2 pinned");
    let image = Cache::new(dir.path().join("cache"))
        .kernel(locked, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel");
    let config = std::fs::read(image.config.expect("a config")).expect("read config");
    assert_eq!(Some(config), k.config);
}

#[test]
fn a_split_kernel_without_its_config_package_is_not_pinned() {
    let mirror = FakeMirror::start();
    let k = kernel_7_2("13+deb14", "7.2.13-1");
    let older = kernel_7_2("13+deb14", "7.2.13-0.1");
    publish(
        &mirror,
        "sid",
        &[stanza(&k.locked), package_stanza(older.config_package())].join("\n"),
    );
    let err = update(&mirror.mirror(), &[v("7.2")], &UNSIGNED).expect_err("no config package");
    assert!(
        matches!(err, KernelError::NoConfigPackage { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "no package linux-base-7.2.13+deb14-cloud-amd64 7.2.13-1 in {}/dists/sid/main/binary-amd64/Packages.xz",
            mirror.url
        )) && msg.contains("linux-binary-7.2.13+deb14-cloud-amd64 7.2.13-1 of line 7.2 needs for its build config")
            && msg.contains("found only 7.2.13-0.1"),
        "{msg}"
    );
}

#[test]
fn a_packages_file_that_does_not_match_inrelease_is_rejected() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    publish(&mirror, "bookworm", &stanza(&k.locked));
    // A mirror (or attacker) swaps the index but not the signed InRelease.
    let mut evil = k.locked.clone();
    evil.sha256 = "e".repeat(64);
    let swapped = xz(stanza(&evil).as_bytes());
    mirror.put(
        "dists/bookworm/main/binary-amd64/Packages.xz",
        swapped.clone(),
    );

    let err = update(&mirror.mirror(), &[v("6.1")], &UNSIGNED).expect_err("swapped index");
    assert!(
        matches!(err, KernelError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "{}/dists/bookworm/main/binary-amd64/Packages.xz",
            mirror.url
        )),
        "{msg}"
    );
    assert!(msg.contains(&common::sha256_hex(&swapped)), "{msg}");
}

#[test]
fn broken_indexes_are_explained() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");

    // InRelease for the wrong suite.
    let packages_xz = xz(stanza(&k.locked).as_bytes());
    mirror.put(
        "dists/bookworm/InRelease",
        inrelease("trixie", &packages_xz),
    );
    mirror.put(
        "dists/bookworm/main/binary-amd64/Packages.xz",
        packages_xz.clone(),
    );
    let msg = update(&mirror.mirror(), &[v("6.1")], &UNSIGNED)
        .expect_err("wrong suite")
        .to_string();
    assert!(
        msg.contains("dists/bookworm/InRelease")
            && msg.contains("it is for `trixie`, not `bookworm`"),
        "{msg}"
    );

    // InRelease without an entry for Packages.xz.
    let text = String::from_utf8(inrelease("bookworm", &packages_xz)).expect("utf-8");
    let without = text.replace(
        "main/binary-amd64/Packages.xz",
        "main/binary-arm64/Packages.xz",
    );
    mirror.put("dists/bookworm/InRelease", without.into_bytes());
    let msg = update(&mirror.mirror(), &[v("6.1")], &UNSIGNED)
        .expect_err("no entry")
        .to_string();
    assert!(
        msg.contains("lists no SHA256 for main/binary-amd64/Packages.xz"),
        "{msg}"
    );

    // Not a clearsigned file at all (e.g. a captive portal page).
    mirror.put("dists/bookworm/InRelease", b"<html>login</html>".to_vec());
    let err = update(&mirror.mirror(), &[v("6.1")], &UNSIGNED).expect_err("html");
    assert!(matches!(err, KernelError::BadIndex { .. }), "{err:?}");

    // No InRelease: not a Debian mirror.
    mirror.remove("dists/bookworm/InRelease");
    let err = update(&mirror.mirror(), &[v("6.1")], &UNSIGNED).expect_err("404");
    assert!(
        matches!(err, KernelError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("dists/bookworm/InRelease"),
        "{err}"
    );
}

#[test]
fn a_suite_without_the_lines_package_says_what_was_looked_for() {
    let mirror = FakeMirror::start();
    publish(&mirror, "trixie", unrelated());
    let err = update(&mirror.mirror(), &[v("6.12")], &UNSIGNED).expect_err("no 6.12 package");
    let msg = err.to_string();
    assert!(msg.contains("no package for kernel line 6.12"), "{msg}");
    assert!(
        msg.contains("linux-image-6.12.*-cloud-amd64-unsigned"),
        "{msg}"
    );
    assert!(
        msg.contains("dists/trixie/main/binary-amd64/Packages.xz"),
        "{msg}"
    );
}

#[test]
fn unknown_lines_fail_before_any_download() {
    let mirror = FakeMirror::start();
    let err = update(&mirror.mirror(), &[v("6.1"), v("5.15")], &UNSIGNED).expect_err("5.15");
    assert!(
        matches!(&err, KernelError::UnknownLine { line } if line == "5.15"),
        "{err:?}"
    );
    assert_eq!(mirror.hits("dists/bookworm/InRelease"), 0);
}

#[test]
fn fake_signatures_fail_when_gpgv_can_check_them() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    publish(&mirror, "bookworm", &stanza(&k.locked));
    let options = UpdateOptions {
        signature: SignatureCheck::IfAvailable,
        events: &harness_events::Silent,
    };
    let result = update(&mirror.mirror(), &[v("6.1")], &options);
    let can_check = std::path::Path::new("/usr/share/keyrings/debian-archive-keyring.gpg")
        .is_file()
        && std::process::Command::new("gpgv")
            .arg("--version")
            .output()
            .is_ok();
    if can_check {
        let err = result.expect_err("the fake signature must not pass");
        assert!(matches!(err, KernelError::BadSignature { .. }), "{err:?}");
        assert!(
            err.to_string().contains("dists/bookworm/InRelease"),
            "{err}"
        );
    } else {
        let notes = result.expect("unchecked, not failed").notes;
        assert!(
            notes.iter().any(|n| n.contains("was not checked")),
            "{notes:?}"
        );
    }
}
