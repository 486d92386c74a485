//! Kernels from OCI images and plain URLs, against a fake registry and a
//! fake mirror on 127.0.0.1: resolution through an index, pinning, the
//! anonymous token exchange, verification of every manifest and blob,
//! atomic placement, and the errors users see.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::registry::{
    DigestHeader, FakeRegistry, Format, Layer, OCI_INDEX, OCI_LAYER_TAR, OCI_LAYER_ZSTD,
    OCI_MANIFEST, Pushed, SERVICE, gzip_layer, symlink_tar,
};
use common::{FakeMirror, Recorder, bzimage, sha256_hex};
use harness_kernels::{
    DigestSource, FetchError, FetchedKernel, OciReference, Sha256Digest, fetch_kernel, fetch_url,
    resolve,
};

const REPOSITORY: &str = "cilium/ci-kernels";

/// A ci-kernels image as published: an index with an amd64 and an arm64
/// image, each a single gzip layer with the kernel and a module.
struct Published {
    index: String,
    amd64: Pushed,
    kernel: Vec<u8>,
}

fn publish(registry: &FakeRegistry, tag: &str, version: &str) -> Published {
    let kernel = bzimage(&format!("{version} amd64"));
    let amd64 = registry.push_image(
        REPOSITORY,
        None,
        Format::Oci,
        "amd64",
        &[gzip_layer(&[
            ("boot/vmlinuz", &kernel),
            ("usr/lib/modules/bpf_testmod.ko", b"module"),
        ])],
    );
    let arm64 = registry.push_image(
        REPOSITORY,
        None,
        Format::Oci,
        "arm64",
        &[gzip_layer(&[(
            "boot/vmlinuz",
            &bzimage(&format!("{version} arm64")),
        )])],
    );
    let index = registry.push_index(REPOSITORY, tag, &[(&arm64, "arm64"), (&amd64, "amd64")]);
    Published {
        index,
        amd64,
        kernel,
    }
}

fn digest(s: &str) -> Sha256Digest {
    s.parse().expect("a sha256 digest")
}

fn fetch(
    reference: &OciReference,
    pinned: Option<&str>,
    dest: &Path,
) -> Result<FetchedKernel, FetchError> {
    let pinned = pinned.map(digest);
    fetch_kernel(reference, pinned.as_ref(), dest, &Recorder::default())
}

/// The names in `dir`, sorted: what a fetch left there.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A fresh directory and the kernel path in it.
fn destination() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let dest = dir.path().join("vmlinuz");
    (dir, dest)
}

#[test]
fn a_tag_resolves_through_the_index_to_the_amd64_kernel() {
    let registry = FakeRegistry::start();
    let published = publish(&registry, "6.1", "6.1.90");
    let reference = registry.reference("cilium/ci-kernels:6.1");

    let image = resolve(&reference).expect("resolve");
    assert_eq!(image.manifest_digest, digest(&published.index));
    assert_eq!(image.image_manifest_digest, digest(&published.amd64.digest));
    let layers: Vec<String> = image.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(layers, published.amd64.layer_digests);
    assert_eq!(
        image.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let (dir, dest) = destination();
    let events = Recorder::default();
    let fetched = fetch_kernel(&reference, None, &dest, &events).expect("fetch");
    assert_eq!(fs::read(&dest).expect("read kernel"), published.kernel);
    assert_eq!(fetched.image_sha256.hex(), sha256_hex(&published.kernel));
    assert_eq!(fetched.size, published.kernel.len() as u64);
    assert_eq!(fetched.manifest_digest, image.manifest_digest);
    assert_eq!(fetched.image_manifest_digest, image.image_manifest_digest);
    assert_eq!(fetched.path, dest);
    assert_eq!(files_in(dir.path()), ["vmlinuz"]);
    let mode = fs::metadata(&dest).expect("metadata").permissions().mode();
    assert_eq!(mode & 0o777, 0o644);

    let starts = events.starts.lock().expect("starts").clone();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0].0, format!("{reference} layer 1/1"));
    assert_eq!(*events.finishes.lock().expect("finishes"), 1);
    assert_eq!(
        *events.advanced.lock().expect("advanced"),
        image.layers[0].size
    );
}

#[test]
fn a_pinned_digest_fetches_that_image_even_after_the_tag_moved() {
    let registry = FakeRegistry::start();
    let old = publish(&registry, "6.1", "6.1.90");
    let new = publish(&registry, "6.1", "6.1.91");
    let reference = registry.reference("cilium/ci-kernels:6.1");
    let (_dir, dest) = destination();

    let before = registry.requests().len();
    let fetched = fetch(&reference, Some(&old.index), &dest).expect("pinned fetch");
    assert_eq!(fs::read(&dest).expect("read kernel"), old.kernel);
    assert_eq!(fetched.manifest_digest, digest(&old.index));
    let targets: Vec<String> = registry.requests()[before..]
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert!(
        targets.contains(&format!("/v2/{REPOSITORY}/manifests/{}", old.index)),
        "{targets:?}"
    );
    assert!(
        !targets.iter().any(|t| t.ends_with("/manifests/6.1")),
        "a pinned fetch does not ask for the tag: {targets:?}"
    );

    let fetched = fetch(&reference, None, &dest).expect("fetch the tag");
    assert_eq!(fs::read(&dest).expect("read kernel"), new.kernel);
    assert_eq!(fetched.manifest_digest, digest(&new.index));

    let by_digest = registry.reference(&format!("{REPOSITORY}@{}", old.index));
    fetch(&by_digest, None, &dest).expect("fetch by digest");
    assert_eq!(fs::read(&dest).expect("read kernel"), old.kernel);
}

#[test]
fn a_pin_that_contradicts_the_reference_is_refused_before_asking_the_registry() {
    let registry = FakeRegistry::start();
    let published = publish(&registry, "6.1", "6.1.90");
    let reference = registry.reference(&format!("{REPOSITORY}:6.1@{}", published.index));
    let other = format!("sha256:{}", sha256_hex(b"other"));
    let (dir, dest) = destination();
    let before = registry.requests().len();

    let error = fetch(&reference, Some(&other), &dest).expect_err("conflicting pins");
    assert!(matches!(error, FetchError::PinConflict { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&published.index), "{message}");
    assert!(message.contains(&other), "{message}");
    assert_eq!(registry.requests().len(), before);
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn manifests_that_do_not_match_their_digest_are_refused() {
    let registry = FakeRegistry::start();
    let published = publish(&registry, "6.1", "6.1.90");
    let tampered = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let (dir, dest) = destination();

    // Served under the pinned digest: the pin catches it.
    let pinned = format!("sha256:{}", sha256_hex(b"the image that was pinned"));
    registry.put_manifest(REPOSITORY, &pinned, OCI_INDEX, tampered.to_vec());
    registry.set_digest_header(DigestHeader::Absent);
    let reference = registry.reference("cilium/ci-kernels:6.1");
    let error = fetch(&reference, Some(&pinned), &dest).expect_err("tampered manifest");
    let FetchError::ManifestDigestMismatch {
        said_by,
        expected,
        actual,
        ..
    } = &error
    else {
        panic!("expected a manifest digest mismatch, got: {error}");
    };
    assert_eq!(*said_by, DigestSource::Pinned);
    assert_eq!(expected.to_string(), pinned);
    assert_eq!(actual.hex(), sha256_hex(tampered));
    let message = error.to_string();
    assert!(message.contains(&pinned), "{message}");
    assert!(message.contains(&sha256_hex(tampered)), "{message}");

    // The index's entry catches a wrong image manifest.
    registry.put_manifest(
        REPOSITORY,
        &published.amd64.digest,
        OCI_MANIFEST,
        tampered.to_vec(),
    );
    let error = fetch(&reference, None, &dest).expect_err("tampered image manifest");
    assert!(
        matches!(
            error,
            FetchError::ManifestDigestMismatch {
                said_by: DigestSource::Index,
                ..
            }
        ),
        "{error}"
    );

    // The registry's own digest header is checked too.
    registry.set_digest_header(DigestHeader::Wrong);
    let error = fetch(&reference, None, &dest).expect_err("wrong digest header");
    assert!(
        matches!(
            error,
            FetchError::ManifestDigestMismatch {
                said_by: DigestSource::Header,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[test]
fn a_corrupt_layer_is_refused_and_leaves_dest_as_it_was() {
    let registry = FakeRegistry::start();
    let published = publish(&registry, "6.1", "6.1.90");
    let layer = &published.amd64.layer_digests[0];
    registry.corrupt_blob(layer);
    let reference = registry.reference("cilium/ci-kernels:6.1");

    // A kernel fetched before stays as it was.
    let (dir, dest) = destination();
    fs::write(&dest, b"the previous kernel").expect("write previous kernel");
    let error = fetch(&reference, None, &dest).expect_err("corrupt layer");
    let FetchError::BlobDigestMismatch {
        expected, actual, ..
    } = &error
    else {
        panic!("expected a blob digest mismatch, got: {error}");
    };
    assert_eq!(expected.to_string(), *layer);
    assert_ne!(actual, expected);
    let message = error.to_string();
    assert!(message.contains(layer), "{message}");
    assert!(message.contains(&actual.to_string()), "{message}");
    assert!(
        message.contains(&format!("layer 1/1 of {reference}")),
        "{message}"
    );
    assert_eq!(
        fs::read(&dest).expect("read previous kernel"),
        b"the previous kernel"
    );
    assert_eq!(files_in(dir.path()), ["vmlinuz"]);

    // Nothing at all where there was nothing.
    let (dir, dest) = destination();
    fetch(&reference, None, &dest).expect_err("corrupt layer");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[test]
fn an_unknown_tag_says_to_check_the_tag() {
    let registry = FakeRegistry::start();
    publish(&registry, "6.1", "6.1.90");
    let reference = registry.reference("cilium/ci-kernels:9.99");
    let (dir, dest) = destination();

    let error = fetch(&reference, None, &dest).expect_err("unknown tag");
    assert!(matches!(error, FetchError::NotFound { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "reference {reference} not found in registry {}: check the tag",
            registry.host
        )),
        "{message}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn an_image_without_the_kernel_lists_what_it_holds() {
    let registry = FakeRegistry::start();
    let names: Vec<String> = (0..12).map(|i| format!("etc/file{i:02}")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), b"x" as &[u8])).collect();
    registry.push_image(
        REPOSITORY,
        Some("empty"),
        Format::Oci,
        "amd64",
        &[gzip_layer(&files)],
    );
    let reference = registry.reference("cilium/ci-kernels:empty");
    let (dir, dest) = destination();

    let error = fetch(&reference, None, &dest).expect_err("no kernel");
    assert!(matches!(error, FetchError::NoKernel { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("has no boot/vmlinuz;"), "{message}");
    for listed in &names[..10] {
        assert!(message.contains(&format!("/{listed}")), "{message}");
    }
    assert!(!message.contains("/etc/file10"), "{message}");
    assert!(message.contains("and 2 more"), "{message}");
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn later_layers_win_in_docker_images_with_plain_tar_layers() {
    let registry = FakeRegistry::start();
    let old = bzimage("old");
    let new = bzimage("new");
    registry.push_image(
        REPOSITORY,
        Some("layered"),
        Format::Docker,
        "amd64",
        &[
            gzip_layer(&[("boot/vmlinuz", &old)]),
            Layer {
                media_type: OCI_LAYER_TAR,
                bytes: common::tar(&[("./boot/vmlinuz", &new)]),
            },
        ],
    );
    let (_dir, dest) = destination();
    let fetched = fetch(
        &registry.reference("cilium/ci-kernels:layered"),
        None,
        &dest,
    )
    .expect("fetch");
    assert_eq!(fs::read(&dest).expect("read kernel"), new);
    assert_eq!(fetched.image_sha256.hex(), sha256_hex(&new));
}

#[test]
fn a_whiteout_in_a_later_layer_deletes_the_kernel() {
    let registry = FakeRegistry::start();
    registry.push_image(
        REPOSITORY,
        Some("deleted"),
        Format::Oci,
        "amd64",
        &[
            gzip_layer(&[("boot/vmlinuz", &bzimage("old"))]),
            gzip_layer(&[("boot/.wh.vmlinuz", b"")]),
        ],
    );
    let (_dir, dest) = destination();
    let error = fetch(
        &registry.reference("cilium/ci-kernels:deleted"),
        None,
        &dest,
    )
    .expect_err("deleted kernel");
    assert!(
        error.to_string().contains("(a layer deletes it)"),
        "{error}"
    );
    assert!(!dest.exists());
}

#[test]
fn images_for_other_platforms_are_refused() {
    let registry = FakeRegistry::start();
    let layer = || gzip_layer(&[("boot/vmlinuz", b"arm kernel" as &[u8])]);
    registry.push_image(REPOSITORY, Some("arm"), Format::Oci, "arm64", &[layer()]);
    let (_dir, dest) = destination();
    let error =
        fetch(&registry.reference("cilium/ci-kernels:arm"), None, &dest).expect_err("arm64");
    assert!(matches!(error, FetchError::WrongPlatform { .. }), "{error}");
    assert!(
        error.to_string().contains("built for linux/arm64"),
        "{error}"
    );

    let arm64 = registry.push_image(REPOSITORY, None, Format::Oci, "arm64", &[layer()]);
    registry.push_index(REPOSITORY, "arm-index", &[(&arm64, "arm64")]);
    let error = fetch(
        &registry.reference("cilium/ci-kernels:arm-index"),
        None,
        &dest,
    )
    .expect_err("arm64 index");
    assert!(matches!(error, FetchError::NoPlatform { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("its index lists linux/arm64, unknown/unknown"),
        "{error}"
    );
    assert!(!dest.exists());
}

#[test]
fn a_registry_that_wants_a_token_gets_an_anonymous_one() {
    let registry = FakeRegistry::start();
    registry.require_token("t0k3n");
    let published = publish(&registry, "6.1", "6.1.90");
    let (_dir, dest) = destination();

    fetch(&registry.reference("cilium/ci-kernels:6.1"), None, &dest).expect("fetch");
    assert_eq!(fs::read(&dest).expect("read kernel"), published.kernel);

    let requests = registry.requests();
    let tokens: Vec<_> = requests
        .iter()
        .filter(|r| r.target.starts_with("/token?"))
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "one token serves the whole fetch: {requests:?}"
    );
    let query = tokens[0].decoded_target();
    assert!(
        query.contains(&format!("scope=repository:{REPOSITORY}:pull")),
        "{query}"
    );
    assert!(query.contains(&format!("service={SERVICE}")), "{query}");
    assert_eq!(requests[0].authorization, None);
    let api: Vec<_> = requests
        .iter()
        .filter(|r| r.target.starts_with("/v2/"))
        .collect();
    assert!(api.len() >= 4, "{requests:?}");
    // Every API request after the challenge carries the token.
    for request in &api[1..] {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer t0k3n"),
            "{request:?}"
        );
    }
}

#[test]
fn a_refused_token_is_an_auth_error() {
    let registry = FakeRegistry::start();
    registry.require_token("right");
    registry.issue_token("wrong");
    publish(&registry, "6.1", "6.1.90");
    let reference = registry.reference("cilium/ci-kernels:6.1");
    let (dir, dest) = destination();

    let error = fetch(&reference, None, &dest).expect_err("refused token");
    assert!(matches!(error, FetchError::Auth { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "registry {} refused access to {reference}",
            registry.host
        )),
        "{message}"
    );
    assert!(message.contains("UNAUTHORIZED"), "{message}");
    assert!(message.contains("the image must be public"), "{message}");
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn an_unreachable_registry_names_the_reference() {
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let reference: OciReference = format!("127.0.0.1:{port}/{REPOSITORY}:6.1")
        .parse()
        .expect("reference");
    let (dir, dest) = destination();

    let error = fetch(&reference, None, &dest).expect_err("unreachable");
    assert!(matches!(error, FetchError::Unreachable { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot reach registry 127.0.0.1:{port} for {reference}"
        )),
        "{message}"
    );
    assert!(
        message.contains("check the registry host and port"),
        "{message}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn zstd_layers_are_refused_naming_the_media_type() {
    let registry = FakeRegistry::start();
    registry.push_image(
        REPOSITORY,
        Some("zstd"),
        Format::Oci,
        "amd64",
        &[Layer {
            media_type: OCI_LAYER_ZSTD,
            bytes: b"(\xb5/\xfd not really zstd".to_vec(),
        }],
    );
    let (dir, dest) = destination();
    let error =
        fetch(&registry.reference("cilium/ci-kernels:zstd"), None, &dest).expect_err("zstd");
    assert!(
        matches!(error, FetchError::UnsupportedLayer { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(OCI_LAYER_ZSTD), "{message}");
    assert!(message.contains("compression=gzip"), "{message}");
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn a_kernel_that_is_a_symlink_is_refused() {
    let registry = FakeRegistry::start();
    registry.push_image(
        REPOSITORY,
        Some("link"),
        Format::Oci,
        "amd64",
        &[Layer {
            media_type: OCI_LAYER_TAR,
            bytes: symlink_tar("boot/vmlinuz", "vmlinuz-6.1.90"),
        }],
    );
    let (_dir, dest) = destination();
    let error =
        fetch(&registry.reference("cilium/ci-kernels:link"), None, &dest).expect_err("symlink");
    assert!(
        matches!(error, FetchError::KernelNotAFile { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("is a symbolic link to vmlinuz-6.1.90"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Plain URLs and files
// ---------------------------------------------------------------------------

#[test]
fn a_url_is_downloaded_and_verified() {
    let mirror = FakeMirror::start();
    let image = bzimage("6.6.0-custom");
    mirror.put("kernels/bzImage", image.clone());
    let url = format!("{}/kernels/bzImage", mirror.url);
    let (dir, dest) = destination();
    let events = Recorder::default();

    let expected = Sha256Digest::of(&image);
    let fetched = fetch_url(&url, &expected, &dest, &events).expect("fetch");
    assert_eq!(fs::read(&dest).expect("read kernel"), image);
    assert_eq!(fetched.sha256, expected);
    assert_eq!(fetched.size, image.len() as u64);
    assert_eq!(fetched.path, dest);
    assert_eq!(files_in(dir.path()), ["vmlinuz"]);
    let starts = events.starts.lock().expect("starts").clone();
    assert_eq!(starts, [(url, image.len() as u64)]);
    assert_eq!(
        *events.advanced.lock().expect("advanced"),
        image.len() as u64
    );
}

#[test]
fn a_url_with_another_sha256_is_refused_and_leaves_dest_as_it_was() {
    let mirror = FakeMirror::start();
    let image = bzimage("6.6.0-custom");
    mirror.put("bzImage", image.clone());
    let url = format!("{}/bzImage", mirror.url);
    let (dir, dest) = destination();
    fs::write(&dest, b"the previous kernel").expect("write previous kernel");

    let pinned = Sha256Digest::of(b"the image that was pinned");
    let error = fetch_url(&url, &pinned, &dest, &Recorder::default()).expect_err("mismatch");
    assert!(
        matches!(error, FetchError::UrlChecksumMismatch { .. }),
        "{error}"
    );
    let message = error.to_string();
    let actual = sha256_hex(&image);
    assert!(message.contains(&url), "{message}");
    assert!(message.contains(&pinned.hex()), "{message}");
    assert!(
        message.contains(&format!("update the pinned sha256 to {actual}")),
        "{message}"
    );
    assert_eq!(
        fs::read(&dest).expect("read previous kernel"),
        b"the previous kernel"
    );
    assert_eq!(files_in(dir.path()), ["vmlinuz"]);

    let error = fetch_url(
        &format!("{}/missing", mirror.url),
        &pinned,
        &dest,
        &Recorder::default(),
    )
    .expect_err("404");
    assert!(
        matches!(error, FetchError::UrlStatus { status: 404, .. }),
        "{error}"
    );
    assert_eq!(files_in(dir.path()), ["vmlinuz"]);
}

#[test]
fn a_path_or_file_url_is_copied_and_verified() {
    let source_dir = tempfile::tempdir().expect("temporary directory");
    let source = source_dir.path().join("my bzImage");
    let image = bzimage("6.6.0-local");
    fs::write(&source, &image).expect("write source");
    let expected = Sha256Digest::of(&image);
    let (dir, dest) = destination();

    let by_path = source.to_str().expect("UTF-8 path");
    let fetched = fetch_url(by_path, &expected, &dest, &Recorder::default()).expect("path");
    assert_eq!(fs::read(&dest).expect("read kernel"), image);
    assert_eq!(fetched.size, image.len() as u64);

    fs::remove_file(&dest).expect("remove");
    let url = format!("file://{}", by_path.replace(' ', "%20"));
    fetch_url(&url, &expected, &dest, &Recorder::default()).expect("file URL");
    assert_eq!(fs::read(&dest).expect("read kernel"), image);
    assert_eq!(files_in(dir.path()), ["vmlinuz"]);

    let missing = source_dir.path().join("missing");
    let error = fetch_url(
        missing.to_str().expect("UTF-8 path"),
        &expected,
        &dest,
        &Recorder::default(),
    )
    .expect_err("missing file");
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );

    let error = fetch_url(
        by_path,
        &Sha256Digest::of(b"other"),
        &dest,
        &Recorder::default(),
    )
    .expect_err("mismatch");
    assert!(
        matches!(error, FetchError::UrlChecksumMismatch { .. }),
        "{error}"
    );
    assert_eq!(files_in(dir.path()), ["vmlinuz"]);
}
