//! `Cache::kernel` against a fake mirror: download, verification, atomic
//! placement, corruption recovery and concurrent use.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{FakeKernel, FakeMirror, Recorder, kernel_6_1, kernel_7_2};
use harness_kernels::{Cache, CacheStatus, KernelError, bzimage_version};

/// Serves the kernel's .deb and, if it has one, its config package.
fn serve(mirror: &FakeMirror, k: &FakeKernel) {
    mirror.put(&k.locked.filename, k.deb.clone());
    if let (Some(package), Some(deb)) = (&k.locked.config_package, &k.config_deb) {
        mirror.put(&package.filename, deb.clone());
    }
}

fn deb_path(cache: &Cache, k: &FakeKernel) -> PathBuf {
    cache
        .root()
        .join("debs")
        .join(format!("{}.deb", k.locked.sha256))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn downloads_verifies_and_unpacks_once() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    serve(&mirror, &k);
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path().join("cache"));
    assert_eq!(cache.status(&k.locked), CacheStatus::Missing);

    let progress = Recorder::default();
    let image = cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("kernel");
    assert_eq!(image.line.to_string(), "6.1");
    assert_eq!(image.release, "6.1.0-50-cloud-amd64");
    assert_eq!(image.package_version, "6.1.170-1");
    assert_eq!(std::fs::read(&image.bzimage).expect("bzImage"), k.bzimage);
    let config = image.config.as_ref().expect("6.1 ships a config");
    assert_eq!(
        &std::fs::read(config).expect("config"),
        k.config.as_ref().expect("config")
    );
    let version = bzimage_version(&image.bzimage).expect("version");
    assert!(
        version.starts_with("6.1.0-50-cloud-amd64 (debian-kernel@"),
        "{version}"
    );
    // A cache shared by a team's or CI's group: readable by all of it.
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    };
    let kernel_dir = image.bzimage.parent().expect("the kernel's directory");
    assert_eq!(mode(kernel_dir), 0o755);
    assert_eq!(mode(&image.bzimage), 0o644);
    assert_eq!(mode(config), 0o644);
    let deb = dir
        .path()
        .join(format!("cache/debs/{}.deb", k.locked.sha256));
    assert_eq!(mode(&deb), 0o644);

    // Progress saw one download of the pinned size, all of it.
    let starts = progress.starts.lock().expect("starts").clone();
    assert_eq!(
        starts,
        [(format!("{} 6.1.170-1", k.locked.package), k.locked.size)]
    );
    assert_eq!(*progress.advanced.lock().expect("advanced"), k.locked.size);
    assert_eq!(*progress.finishes.lock().expect("finishes"), 1);
    assert!(progress.notes().is_empty(), "{:?}", progress.notes());

    // The download landed under its final name only; no temporary files remain.
    assert_eq!(
        files_in(&cache.root().join("debs")),
        [format!("{}.deb", k.locked.sha256)]
    );
    assert_eq!(
        files_in(&cache.root().join("kernels")),
        [k.locked.sha256.as_str()]
    );
    assert_eq!(cache.status(&k.locked), CacheStatus::Unpacked);

    // A second use downloads nothing.
    let again = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("cached kernel");
    assert_eq!(again, image);
    assert_eq!(mirror.hits(&k.locked.filename), 1);
}

#[test]
fn status_reports_downloaded_when_only_the_deb_is_there() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    serve(&mirror, &k);
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path());
    cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel");
    std::fs::remove_dir_all(cache.root().join("kernels").join(&k.locked.sha256))
        .expect("remove unpacked");
    assert_eq!(cache.status(&k.locked), CacheStatus::Downloaded);

    // Unpacking again uses the cached .deb.
    let image = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("re-unpack");
    assert_eq!(std::fs::read(image.bzimage).expect("bzImage"), k.bzimage);
    assert_eq!(mirror.hits(&k.locked.filename), 1);
}

#[test]
fn sid_kernels_get_their_config_from_the_pinned_config_package() {
    let mirror = FakeMirror::start();
    let k = kernel_7_2("13+deb14", "7.2.13-1");
    serve(&mirror, &k);
    let base = k.config_package();
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path());
    let progress = Recorder::default();
    let image = cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("kernel");
    assert_eq!(image.release, "7.2.13+deb14-cloud-amd64");
    assert_eq!(std::fs::read(&image.bzimage).expect("bzImage"), k.bzimage);
    let config = image.config.as_ref().expect("the config package's config");
    assert_eq!(config, &image.bzimage.with_file_name("config"));
    assert_eq!(
        &std::fs::read(config).expect("config"),
        k.config.as_ref().expect("config")
    );
    // Both packages were downloaded once, shown as such, and are kept verified.
    let starts = progress.starts.lock().expect("starts").clone();
    assert_eq!(
        starts,
        [
            (format!("{} 7.2.13-1", k.locked.package), k.locked.size),
            (format!("{} 7.2.13-1", base.package), base.size),
        ]
    );
    assert!(progress.notes().is_empty(), "{:?}", progress.notes());
    let mut debs = vec![
        format!("{}.deb", k.locked.sha256),
        format!("{}.deb", base.sha256),
    ];
    debs.sort();
    assert_eq!(files_in(&cache.root().join("debs")), debs);
    assert_eq!(
        files_in(&cache.root().join("kernels")),
        [k.locked.sha256.as_str()]
    );
    assert_eq!(
        files_in(&cache.root().join("kernels").join(&k.locked.sha256)),
        ["config", "manifest.json", "vmlinuz"]
    );
    assert_eq!(cache.status(&k.locked), CacheStatus::Unpacked);

    let again = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("cached");
    assert_eq!(again, image);
    assert_eq!(mirror.hits(&k.locked.filename), 1);
    assert_eq!(mirror.hits(&base.filename), 1);

    // A damaged config is found by the hash the manifest records, and is
    // extracted again from the cached package: nothing is downloaded.
    std::fs::write(config, b"CONFIG_").expect("truncate config");
    let progress = Recorder::default();
    cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("repaired");
    assert!(
        progress
            .notes()
            .iter()
            .any(|n| n.contains("config has sha256")),
        "{:?}",
        progress.notes()
    );
    assert_eq!(
        &std::fs::read(config).expect("config"),
        k.config.as_ref().expect("config")
    );
    assert_eq!(mirror.hits(&k.locked.filename), 1);
    assert_eq!(mirror.hits(&base.filename), 1);
}

#[test]
fn a_config_package_with_the_wrong_sha256_is_an_error_naming_it() {
    let mirror = FakeMirror::start();
    let k = kernel_7_2("13+deb14", "7.2.13-1");
    let base = k.config_package().clone();
    mirror.put(&k.locked.filename, k.deb.clone());
    let mut tampered = k.config_deb.clone().expect("config deb");
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x55;
    mirror.put(&base.filename, tampered.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path());

    let err = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect_err("tampered config package");
    assert!(
        matches!(err, KernelError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "{}/{} (linux-base-7.2.13+deb14-cloud-amd64 7.2.13-1) is corrupt",
            mirror.url, base.filename
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&base.sha256) && msg.contains(&common::sha256_hex(&tampered)),
        "{msg}"
    );
    // The kernel is not unpacked without its config; its verified .deb is kept.
    assert_eq!(
        files_in(&cache.root().join("debs")),
        [format!("{}.deb", k.locked.sha256)]
    );
    assert!(files_in(&cache.root().join("kernels")).is_empty());
    assert_eq!(cache.status(&k.locked), CacheStatus::Downloaded);

    // Gone from the mirror: the message names the config package.
    mirror.remove(&base.filename);
    let msg = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect_err("404")
        .to_string();
    assert!(
        msg.contains("the pinned package linux-base-7.2.13+deb14-cloud-amd64 7.2.13-1 is no longer on the mirror"),
        "{msg}"
    );

    // A config package without the config is an error naming it.
    let empty = common::deb(&[("./usr/share/doc/linux-base/copyright", b"GPL-2")]);
    let mut wrong = k.locked.clone();
    let wrong_base = wrong.config_package.as_mut().expect("pinned");
    wrong_base.size = empty.len() as u64;
    wrong_base.sha256 = common::sha256_hex(&empty);
    mirror.put(&wrong_base.filename, empty);
    let err = cache
        .kernel(&wrong, &mirror.mirror(), &harness_events::Silent)
        .expect_err("no config in it");
    assert!(matches!(err, KernelError::BadDeb { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("(package linux-base-7.2.13+deb14-cloud-amd64)")
            && msg.contains("has no build config of 7.2.13+deb14-cloud-amd64"),
        "{msg}"
    );

    // Once the mirror serves the right file, all is well, and the kernel
    // was downloaded only once.
    serve(&mirror, &k);
    let image = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel");
    assert!(image.config.is_some());
    assert_eq!(mirror.hits(&k.locked.filename), 1);
}

#[test]
fn a_kernel_cached_before_its_config_package_was_pinned_gains_its_config() {
    let mirror = FakeMirror::start();
    let k = kernel_7_2("13+deb14", "7.2.13-1");
    serve(&mirror, &k);
    let base = k.config_package().clone();
    let mut old_pin = k.locked.clone();
    old_pin.config_package = None;
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path());

    // Cached as before config packages: no config, and a manifest without
    // the field that says where the config came from.
    let old = cache
        .kernel(&old_pin, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel without config");
    assert_eq!(old.config, None);
    assert_eq!(mirror.hits(&base.filename), 0);
    let kernel_dir = cache.root().join("kernels").join(&k.locked.sha256);
    let manifest_path = kernel_dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    let fields = manifest.as_object_mut().expect("an object");
    fields.remove("config_deb_sha256").expect("written today");
    assert_eq!(fields["config_sha256"], serde_json::Value::Null);
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    assert_eq!(cache.status(&old_pin), CacheStatus::Unpacked);
    use std::os::unix::fs::MetadataExt as _;
    let vmlinuz_inode = std::fs::metadata(&old.bzimage).expect("vmlinuz").ino();

    // The lock file now pins the config package: the entry is not complete.
    assert_eq!(cache.status(&k.locked), CacheStatus::Downloaded);
    let progress = Recorder::default();
    let image = cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("kernel with config");
    let config = image.config.as_ref().expect("config added");
    assert_eq!(
        &std::fs::read(config).expect("config"),
        k.config.as_ref().expect("config")
    );
    assert_eq!(image.bzimage, old.bzimage);
    let notes = progress.notes();
    assert_eq!(
        notes,
        [format!(
            "cached kernel {} 7.2.13-1 has no build config; fetching it from {} 7.2.13-1",
            k.locked.package, base.package
        )]
    );
    // Only the config package was downloaded; the kernel was left in place.
    let starts = progress.starts.lock().expect("starts").clone();
    assert_eq!(starts, [(format!("{} 7.2.13-1", base.package), base.size)]);
    assert_eq!(mirror.hits(&k.locked.filename), 1);
    assert_eq!(mirror.hits(&base.filename), 1);
    assert_eq!(
        std::fs::metadata(&image.bzimage).expect("vmlinuz").ino(),
        vmlinuz_inode
    );
    assert_eq!(std::fs::read(&image.bzimage).expect("bzImage"), k.bzimage);
    // No temporary directory is left, and the config is shared like the rest.
    assert_eq!(
        files_in(&cache.root().join("kernels")),
        [k.locked.sha256.as_str()]
    );
    assert_eq!(
        files_in(&kernel_dir),
        ["config", "manifest.json", "vmlinuz"]
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(config)
            .expect("config")
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    assert_eq!(cache.status(&k.locked), CacheStatus::Unpacked);

    // From now on it is an ordinary cached kernel.
    let progress = Recorder::default();
    let again = cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("cached");
    assert_eq!(again, image);
    assert!(progress.notes().is_empty(), "{:?}", progress.notes());
    assert_eq!(mirror.hits(&base.filename), 1);

    // A lock file that no longer pins the config package gets no stale config.
    let image = cache
        .kernel(&old_pin, &mirror.mirror(), &harness_events::Silent)
        .expect("unpinned again");
    assert_eq!(image.config, None);
    assert_eq!(files_in(&kernel_dir), ["manifest.json", "vmlinuz"]);
    assert_eq!(cache.status(&old_pin), CacheStatus::Unpacked);
    assert_eq!(cache.status(&k.locked), CacheStatus::Downloaded);
    assert_eq!(mirror.hits(&k.locked.filename), 1);
}

#[test]
fn a_corrupt_unpacked_kernel_is_noted_and_unpacked_again() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    serve(&mirror, &k);
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path());
    let image = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel");

    let mut bytes = std::fs::read(&image.bzimage).expect("read");
    bytes[40_000] ^= 0xff;
    std::fs::write(&image.bzimage, &bytes).expect("flip a byte");

    let progress = Recorder::default();
    let repaired = cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("repaired");
    assert_eq!(std::fs::read(&repaired.bzimage).expect("read"), k.bzimage);
    let notes = progress.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("was corrupt") && notes[0].contains("vmlinuz has sha256"),
        "{notes:?}"
    );
    assert!(notes[0].ends_with("fetching it again"), "{notes:?}");
    // The intact .deb was reused, not downloaded again.
    assert_eq!(mirror.hits(&k.locked.filename), 1);

    // A truncated config is caught too.
    let config = repaired.config.expect("config");
    std::fs::write(&config, b"CONFIG_").expect("truncate config");
    let progress = Recorder::default();
    cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("repaired again");
    assert!(
        progress
            .notes()
            .iter()
            .any(|n| n.contains("config has sha256")),
        "{:?}",
        progress.notes()
    );
    assert_eq!(
        std::fs::read(&config).expect("config"),
        k.config.expect("config")
    );
}

#[test]
fn a_corrupt_deb_is_noted_and_downloaded_again_when_it_must_be_unpacked() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    serve(&mirror, &k);
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path());
    cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel");
    let deb = deb_path(&cache, &k);

    // While the unpacked kernel is intact, the .deb is not even looked at.
    let mut bytes = std::fs::read(&deb).expect("read deb");
    bytes[100] ^= 0x01;
    std::fs::write(&deb, &bytes).expect("flip a byte");
    let progress = Recorder::default();
    cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("kernel");
    assert!(progress.notes().is_empty(), "{:?}", progress.notes());
    assert_eq!(mirror.hits(&k.locked.filename), 1);

    // Once it must be unpacked, the flipped byte is found and the .deb fetched again.
    std::fs::remove_dir_all(cache.root().join("kernels").join(&k.locked.sha256))
        .expect("remove unpacked");
    let progress = Recorder::default();
    let image = cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("re-fetched");
    let notes = progress.notes();
    assert!(
        notes.len() == 1 && notes[0].contains("cached package") && notes[0].contains("was corrupt"),
        "{notes:?}"
    );
    assert!(notes[0].contains(".deb has sha256"), "{notes:?}");
    assert_eq!(mirror.hits(&k.locked.filename), 2);
    assert_eq!(std::fs::read(&deb).expect("deb"), k.deb);
    assert_eq!(std::fs::read(image.bzimage).expect("bzImage"), k.bzimage);

    // A truncated .deb is caught by its size.
    std::fs::write(&deb, &k.deb[..k.deb.len() / 2]).expect("truncate");
    std::fs::remove_dir_all(cache.root().join("kernels").join(&k.locked.sha256))
        .expect("remove unpacked");
    assert_eq!(cache.status(&k.locked), CacheStatus::Missing);
    let progress = Recorder::default();
    cache
        .kernel(&k.locked, &mirror.mirror(), &progress)
        .expect("re-fetched");
    assert!(
        progress
            .notes()
            .iter()
            .any(|n| n.contains("bytes, expected")),
        "{:?}",
        progress.notes()
    );
    assert_eq!(mirror.hits(&k.locked.filename), 3);
}

#[test]
fn stale_temporary_files_are_never_used_and_get_removed() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    serve(&mirror, &k);
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path());
    let debs = cache.root().join("debs");
    let kernels = cache.root().join("kernels");
    std::fs::create_dir_all(&debs).expect("debs");
    std::fs::create_dir_all(kernels.join(format!("{}.unpack-crashed", k.locked.sha256)))
        .expect("unpack dir");
    // Even a complete, correct leftover is not trusted: it has no verified name.
    std::fs::write(
        debs.join(format!("{}.deb.part-4242-0", k.locked.sha256)),
        &k.deb,
    )
    .expect("part");
    let other = debs.join(format!("{}.deb.part-1-0", "ab".repeat(32)));
    std::fs::write(&other, b"another kernel's download in progress").expect("other part");

    cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel");
    assert_eq!(mirror.hits(&k.locked.filename), 1);
    assert_eq!(
        files_in(&debs),
        [
            format!("{}.deb", k.locked.sha256),
            format!("{}.deb.part-1-0", "ab".repeat(32))
        ]
    );
    assert_eq!(files_in(&kernels), [k.locked.sha256.as_str()]);
}

#[test]
fn a_download_with_the_wrong_content_is_discarded_with_both_hashes() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    let mut tampered = k.deb.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x55;
    mirror.put(&k.locked.filename, tampered.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path());

    let err = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect_err("tampered");
    let msg = err.to_string();
    assert!(
        matches!(err, KernelError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    assert!(
        msg.contains(&format!("{}/{}", mirror.url, k.locked.filename)),
        "{msg}"
    );
    assert!(
        msg.contains(&k.locked.sha256) && msg.contains(&common::sha256_hex(&tampered)),
        "{msg}"
    );
    assert!(
        files_in(&cache.root().join("debs")).is_empty(),
        "the temporary file is deleted"
    );
    assert_eq!(cache.status(&k.locked), CacheStatus::Missing);

    // Too long: stops reading and reports the size.
    let mut longer = k.deb.clone();
    longer.extend_from_slice(&[0; 200_000]);
    mirror.put(&k.locked.filename, longer);
    let err = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect_err("too long");
    let KernelError::ChecksumMismatch {
        expected_size,
        actual_size,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(expected_size, k.locked.size);
    assert!(
        actual_size > expected_size && actual_size < expected_size + 200_000,
        "{actual_size}"
    );
    assert!(files_in(&cache.root().join("debs")).is_empty());

    // Too short.
    mirror.put(&k.locked.filename, k.deb[..10].to_vec());
    let err = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect_err("too short");
    assert!(err.to_string().contains("got 10 bytes"), "{err}");

    // Once the mirror serves the right file, all is well.
    serve(&mirror, &k);
    cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect("kernel");
}

#[test]
fn a_pinned_package_gone_from_the_mirror_says_to_update() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(47, "6.1.158-1");
    let dir = tempfile::tempdir().expect("temp dir");
    let err = Cache::new(dir.path())
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect_err("404");
    assert!(
        matches!(err, KernelError::PinnedPackageGone { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("linux-image-6.1.0-47-cloud-amd64-unsigned 6.1.158-1"),
        "{msg}"
    );
    assert!(
        msg.contains("no longer on the mirror") && msg.contains("run `kernels update`"),
        "{msg}"
    );
}

#[test]
fn a_dead_mirror_is_an_error_naming_the_url() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mirror =
        harness_kernels::Mirror::from_url(&format!("http://127.0.0.1:{port}/debian")).expect("url");
    let k = kernel_6_1(50, "6.1.170-1");
    let dir = tempfile::tempdir().expect("temp dir");
    let err = Cache::new(dir.path())
        .kernel(&k.locked, &mirror, &harness_events::Silent)
        .expect_err("refused");
    assert!(matches!(err, KernelError::Http { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("http://127.0.0.1:{port}/debian/pool/")),
        "{err}"
    );
}

#[test]
fn bad_pins_are_rejected_before_touching_the_disk() {
    let mirror = FakeMirror::start();
    let mut k = kernel_6_1(50, "6.1.170-1");
    k.locked.sha256 = "../../outside".to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::new(dir.path().join("cache"));
    let err = cache
        .kernel(&k.locked, &mirror.mirror(), &harness_events::Silent)
        .expect_err("bad sha");
    assert!(matches!(err, KernelError::BadPin { .. }), "{err:?}");
    assert!(!cache.root().exists());
    assert_eq!(cache.status(&k.locked), CacheStatus::Missing);
}

#[test]
fn concurrent_runs_download_once_and_both_get_the_kernel() {
    let mirror = FakeMirror::start();
    let k = kernel_6_1(50, "6.1.170-1");
    serve(&mirror, &k);
    mirror.set_delay(Duration::from_millis(500));
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_owned();

    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            let progress = Recorder::default();
            let image = Cache::new(&root).kernel(&k.locked, &mirror.mirror(), &progress);
            (image, progress.notes())
        });
        // Start the second run only once the first one's download is in flight,
        // so that it certainly finds the lock taken.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while mirror.hits(&k.locked.filename) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first download never started"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let second = scope.spawn(|| {
            let progress = Recorder::default();
            let image = Cache::new(&root).kernel(&k.locked, &mirror.mirror(), &progress);
            (image, progress.notes())
        });
        let (first_image, first_notes) = first.join().expect("first thread");
        let (second_image, second_notes) = second.join().expect("second thread");
        let first_image = first_image.expect("first run");
        let second_image = second_image.expect("second run");
        assert_eq!(first_image, second_image);
        assert_eq!(
            std::fs::read(&second_image.bzimage).expect("bzImage"),
            k.bzimage
        );
        assert!(first_notes.is_empty(), "{first_notes:?}");
        assert_eq!(second_notes.len(), 1, "{second_notes:?}");
        assert!(
            second_notes[0].starts_with("waiting for another run"),
            "{second_notes:?}"
        );
    });
    assert_eq!(mirror.hits(&k.locked.filename), 1);
}
