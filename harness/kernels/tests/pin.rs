//! Kernels beyond Debian in the lock file: `kernels pin` of an OCI image
//! (a fake registry on 127.0.0.1 publishing ci-kernels-style images) or a
//! URL, then `--kernel 5.15` resolved from the pin into a bootable target,
//! and the mistakes that must never write a pin.

mod common;

use std::{fs, path::Path};

use common::registry::{FakeRegistry, Format, gzip_layer};
use common::{Recorder, bzimage, sha256_hex};
use harness_kernels::{
    Boot, Cache, KernelError, KernelRequest, LockFile, PinSource, Resolver, Sha256Digest, pin_image,
};

fn line(s: &str) -> harness_protocol::KernelVersion {
    s.parse().expect("a line")
}

/// Publishes a one-layer image with a bzImage of `release` under `tag`.
fn publish(registry: &FakeRegistry, tag: &str, release: &str) -> Vec<u8> {
    let kernel = bzimage(&format!("{release} (builder@ci) #1 SMP"));
    registry.push_image(
        "cilium/ci-kernels",
        Some(tag),
        Format::Oci,
        "amd64",
        &[gzip_layer(&[("boot/vmlinuz", &kernel)])],
    );
    kernel
}

fn resolve(
    lock: &Path,
    cache: &Cache,
    kernels: &str,
) -> Result<Vec<harness_kernels::Target>, KernelError> {
    Resolver {
        lock_file: lock,
        mirror: None,
        cache,
        events: &harness_events::Silent,
    }
    .resolve(&harness_kernels::parse_kernel_list(kernels)?)
}

#[test]
fn an_oci_image_is_pinned_by_digest_and_resolved_as_its_line() {
    let registry = FakeRegistry::start();
    let kernel = publish(&registry, "5.15", "5.15.180");
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("kernels.lock");
    let cache = Cache::new(dir.path().join("cache"));
    let reference = registry.reference("cilium/ci-kernels:5.15");

    let pinned = pin_image(
        &lock,
        line("5.15"),
        PinSource::Oci(reference.clone()),
        &cache,
        &Recorder::default(),
    )
    .unwrap();
    let text = fs::read_to_string(&lock).unwrap();
    assert!(
        text.contains("[[image]]") && text.contains("line = \"5.15\""),
        "{text}"
    );
    let digest = pinned.digest.clone().unwrap();
    assert!(text.contains(&format!("digest = \"{digest}\"")), "{text}");
    assert!(text.contains(&format!("oci = \"{reference}\"")), "{text}");

    // The tag moves on; the pin still gives the pinned kernel.
    publish(&registry, "5.15", "5.15.181");
    let targets = resolve(&lock, &cache, "5.15").unwrap();
    let t = &targets[0];
    assert_eq!((t.label.as_str(), t.line().as_str()), ("5.15", "5.15"));
    assert_eq!(t.release, "5.15.180");
    let Boot::Vm {
        bzimage, origin, ..
    } = &t.boot
    else {
        panic!("a VM target: {t:?}")
    };
    assert_eq!(fs::read(bzimage).unwrap(), kernel);
    assert!(origin.to_string().contains(&digest), "{origin}");

    // Kept when the Debian lines are re-pinned beside it.
    let loaded = LockFile::load(&lock).unwrap();
    assert_eq!(loaded.image(line("5.15")), Some(&pinned));
    loaded.save(&lock).unwrap();
    assert_eq!(LockFile::load(&lock).unwrap().images, [pinned]);
}

#[test]
fn a_url_is_pinned_with_its_sha256_and_a_wrong_one_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("bzImage-6.6");
    let kernel = bzimage("6.6.90 (me@laptop) #1 SMP");
    fs::write(&image, &kernel).unwrap();
    let lock = dir.path().join("kernels.lock");
    let cache = Cache::new(dir.path().join("cache"));
    let url = format!("file://{}", image.display());

    let wrong = Sha256Digest::from_hex(&"0".repeat(64)).unwrap();
    let err = pin_image(
        &lock,
        line("6.6"),
        PinSource::Url {
            url: url.clone(),
            sha256: wrong,
        },
        &cache,
        &Recorder::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&sha256_hex(&kernel)), "{err}");
    assert!(!lock.exists(), "no pin written");

    let right = Sha256Digest::from_hex(&sha256_hex(&kernel)).unwrap();
    pin_image(
        &lock,
        line("6.6"),
        PinSource::Url { url, sha256: right },
        &cache,
        &Recorder::default(),
    )
    .unwrap();
    let t = &resolve(&lock, &cache, "6.6").unwrap()[0];
    assert_eq!((t.label.as_str(), t.release.as_str()), ("6.6", "6.6.90"));
}

#[test]
fn an_image_of_another_line_is_refused_and_unknown_lines_say_how_to_pin() {
    let registry = FakeRegistry::start();
    publish(&registry, "6.1", "6.1.140");
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("kernels.lock");
    let cache = Cache::new(dir.path().join("cache"));
    let err = pin_image(
        &lock,
        line("5.15"),
        PinSource::Oci(registry.reference("cilium/ci-kernels:6.1")),
        &cache,
        &Recorder::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("holds a 6.1 kernel") && err.contains("pin it as 6.1"),
        "{err}"
    );
    assert!(!lock.exists());

    let missing = pin_image(
        &lock,
        line("5.15"),
        PinSource::Oci(registry.reference("cilium/ci-kernels:5.15")),
        &cache,
        &Recorder::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("not found") && missing.contains("5.15"),
        "{missing}"
    );
    assert!(!lock.exists());

    // No lock file and no pin: the line is unknown, and the error says how.
    let unknown = resolve(&lock, &cache, "5.15").unwrap_err().to_string();
    assert!(
        unknown.contains("kernel line 5.15 is not in Debian's archive")
            && unknown.contains("kernels pin 5.15 --oci"),
        "{unknown}"
    );
    // A Debian line without a lock file is a missing lock file.
    assert!(matches!(
        resolve(&lock, &cache, "6.1"),
        Err(KernelError::LockMissing { .. })
    ));
    // Parsing alone accepts the line: only the lock file knows.
    assert_eq!(
        harness_kernels::parse_kernel_list("5.15").unwrap(),
        [KernelRequest::Line(line("5.15"))]
    );
}
