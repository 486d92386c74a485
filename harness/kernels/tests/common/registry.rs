//! A fake OCI registry served from a local HTTP server (the distribution
//! API's manifest and blob GETs, optionally behind an anonymous bearer
//! token from its own `/token`), and builders for the images it serves.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use flate2::Compression;
use flate2::write::GzEncoder;
use harness_kernels::OciReference;
use serde_json::json;

use super::sha256_hex;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The `service` the registry's bearer challenge names.
pub const SERVICE: &str = "fake-registry";

/// A layer blob and its media type.
pub struct Layer {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A gzip-compressed tar layer holding `files`.
pub fn gzip_layer(files: &[(&str, &[u8])]) -> Layer {
    Layer {
        media_type: OCI_LAYER_GZIP,
        bytes: gzip(&super::tar(files)),
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A tar holding one symbolic link.
pub fn symlink_tar(path: &str, target: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder
        .append_link(&mut header, path, target)
        .expect("append a link");
    builder.into_inner().expect("finish tar")
}

/// How an image manifest and its config are written.
#[derive(Clone, Copy)]
pub enum Format {
    Oci,
    Docker,
}

/// An image manifest pushed to the registry.
pub struct Pushed {
    /// `sha256:...` of the manifest.
    pub digest: String,
    pub media_type: &'static str,
    pub size: usize,
    pub layer_digests: Vec<String>,
}

/// Whether manifest responses carry `Docker-Content-Digest`, and which.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DigestHeader {
    Right,
    Wrong,
    Absent,
}

/// One request the registry received.
#[derive(Clone, Debug)]
pub struct Request {
    /// The request target, with its query.
    pub target: String,
    pub authorization: Option<String>,
}

impl Request {
    /// The target with `%xx` escapes decoded.
    pub fn decoded_target(&self) -> String {
        let bytes = self.target.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escaped = self
                .target
                .get(i + 1..i + 3)
                .filter(|_| bytes[i] == b'%')
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escaped {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

struct State {
    /// Keyed by repository and tag or digest.
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    /// Blobs served with one byte changed.
    corrupt: HashSet<String>,
    /// The token `/v2/` demands, if any.
    required_token: Option<String>,
    /// The token `/token` hands out (the required one unless set).
    issued_token: Option<String>,
    digest_header: DigestHeader,
    requests: Vec<Request>,
}

/// A registry at `127.0.0.1:<port>`, serving what was pushed.
pub struct FakeRegistry {
    /// `127.0.0.1:<port>`, the registry part of references.
    pub host: String,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let host = listener.local_addr().expect("local address").to_string();
        let state = Arc::new(Mutex::new(State {
            manifests: HashMap::new(),
            blobs: HashMap::new(),
            corrupt: HashSet::new(),
            required_token: None,
            issued_token: None,
            digest_header: DigestHeader::Right,
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let realm = format!("http://{host}/token");
        // Lives until the test process exits.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                let realm = realm.clone();
                std::thread::spawn(move || serve(stream, &state, &realm));
            }
        });
        FakeRegistry { host, state }
    }

    /// `rest` (`repository:tag`, `repository@sha256:...`) in this registry.
    pub fn reference(&self, rest: &str) -> OciReference {
        format!("{}/{rest}", self.host)
            .parse()
            .expect("a valid reference")
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("registry state")
    }

    /// Stores a blob; returns its digest.
    pub fn put_blob(&self, bytes: Vec<u8>) -> String {
        let digest = format!("sha256:{}", sha256_hex(&bytes));
        self.state().blobs.insert(digest.clone(), bytes);
        digest
    }

    /// Serves `bytes` as the manifest `name` (a tag or a digest) of `repository`.
    pub fn put_manifest(&self, repository: &str, name: &str, media_type: &str, bytes: Vec<u8>) {
        self.state().manifests.insert(
            (repository.to_owned(), name.to_owned()),
            (media_type.to_owned(), bytes),
        );
    }

    /// Stores `manifest` under its digest and, if given, `tag`; returns the digest.
    fn push_manifest(
        &self,
        repository: &str,
        tag: Option<&str>,
        media_type: &str,
        manifest: &serde_json::Value,
    ) -> (String, usize) {
        let bytes = serde_json::to_vec_pretty(manifest).expect("manifest JSON");
        let digest = format!("sha256:{}", sha256_hex(&bytes));
        let size = bytes.len();
        if let Some(tag) = tag {
            self.put_manifest(repository, tag, media_type, bytes.clone());
        }
        self.put_manifest(repository, &digest, media_type, bytes);
        (digest, size)
    }

    /// Pushes an image for `architecture` (linux) with `layers`, bottom first.
    pub fn push_image(
        &self,
        repository: &str,
        tag: Option<&str>,
        format: Format,
        architecture: &str,
        layers: &[Layer],
    ) -> Pushed {
        let (manifest_type, config_type) = match format {
            Format::Oci => (OCI_MANIFEST, OCI_CONFIG),
            Format::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG),
        };
        let config = serde_json::to_vec(&json!({
            "architecture": architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .expect("config JSON");
        let config_size = config.len();
        let config_digest = self.put_blob(config);
        let mut layer_digests = Vec::new();
        let mut descriptors = Vec::new();
        for layer in layers {
            let digest = self.put_blob(layer.bytes.clone());
            descriptors.push(json!({
                "mediaType": layer.media_type,
                "digest": digest,
                "size": layer.bytes.len(),
            }));
            layer_digests.push(digest);
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
            "layers": descriptors,
        });
        let (digest, size) = self.push_manifest(repository, tag, manifest_type, &manifest);
        Pushed {
            digest,
            media_type: manifest_type,
            size,
            layer_digests,
        }
    }

    /// Pushes an index of `images` (each with its architecture) and, as
    /// buildx does, an attestation entry; returns its digest.
    pub fn push_index(&self, repository: &str, tag: &str, images: &[(&Pushed, &str)]) -> String {
        let mut entries: Vec<serde_json::Value> = images
            .iter()
            .map(|(image, architecture)| {
                json!({
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "size": image.size,
                    "platform": {"architecture": architecture, "os": "linux"},
                })
            })
            .collect();
        entries.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": format!("sha256:{}", sha256_hex(b"attestation")),
            "size": 11,
            "platform": {"architecture": "unknown", "os": "unknown"},
        }));
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
        self.push_manifest(repository, Some(tag), OCI_INDEX, &index)
            .0
    }

    /// From now on `/v2/` demands `Authorization: Bearer <token>`, which
    /// `/token` hands out.
    pub fn require_token(&self, token: &str) {
        self.state().required_token = Some(token.to_owned());
    }

    /// Makes `/token` hand out `token` instead of the one `/v2/` demands.
    pub fn issue_token(&self, token: &str) {
        self.state().issued_token = Some(token.to_owned());
    }

    /// Serves the blob `digest` with one byte changed.
    pub fn corrupt_blob(&self, digest: &str) {
        self.state().corrupt.insert(digest.to_owned());
    }

    pub fn set_digest_header(&self, header: DigestHeader) {
        self.state().digest_header = header;
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, realm: &str) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(value.trim().to_owned());
                }
            }
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let response = {
        let mut state = state.lock().expect("registry state");
        state.requests.push(Request {
            target: target.clone(),
            authorization: authorization.clone(),
        });
        respond(&state, &target, authorization.as_deref(), realm)
    };
    let mut stream = stream;
    // The client may have hung up; nothing to do about it here.
    let _ = stream.write_all(&response);
}

fn respond(state: &State, target: &str, authorization: Option<&str>, realm: &str) -> Vec<u8> {
    if target.starts_with("/token?") {
        let token = state
            .issued_token
            .as_ref()
            .or(state.required_token.as_ref());
        return match token {
            Some(token) => http(
                "200 OK",
                &[("Content-Type", "application/json")],
                json!({"token": token}).to_string().as_bytes(),
            ),
            None => error("404 Not Found", &[], "NOT_FOUND", "no token service"),
        };
    }
    let Some(path) = target.strip_prefix("/v2/") else {
        return error("404 Not Found", &[], "NOT_FOUND", "not an API path");
    };
    let (repository, kind, name) = if let Some((repository, name)) = path.rsplit_once("/manifests/")
    {
        (repository, "manifest", name)
    } else if let Some((repository, name)) = path.rsplit_once("/blobs/") {
        (repository, "blob", name)
    } else {
        return error("404 Not Found", &[], "NOT_FOUND", "not an API path");
    };
    if let Some(token) = &state.required_token
        && authorization != Some(format!("Bearer {token}").as_str())
    {
        let challenge = format!(
            r#"Bearer realm="{realm}",service="{SERVICE}",scope="repository:{repository}:pull""#
        );
        return error(
            "401 Unauthorized",
            &[("WWW-Authenticate", &challenge)],
            "UNAUTHORIZED",
            "authentication required",
        );
    }
    if kind == "blob" {
        return match state.blobs.get(name) {
            Some(bytes) => {
                let mut bytes = bytes.clone();
                if state.corrupt.contains(name) {
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0xff;
                }
                http(
                    "200 OK",
                    &[("Content-Type", "application/octet-stream")],
                    &bytes,
                )
            }
            None => error(
                "404 Not Found",
                &[],
                "BLOB_UNKNOWN",
                "blob unknown to registry",
            ),
        };
    }
    match state
        .manifests
        .get(&(repository.to_owned(), name.to_owned()))
    {
        Some((media_type, bytes)) => {
            let digest = match state.digest_header {
                DigestHeader::Right => Some(format!("sha256:{}", sha256_hex(bytes))),
                DigestHeader::Wrong => Some(format!("sha256:{}", sha256_hex(b"something else"))),
                DigestHeader::Absent => None,
            };
            let mut headers = vec![("Content-Type", media_type.as_str())];
            if let Some(digest) = &digest {
                headers.push(("Docker-Content-Digest", digest));
            }
            http("200 OK", &headers, bytes)
        }
        None => error("404 Not Found", &[], "MANIFEST_UNKNOWN", "manifest unknown"),
    }
}

fn error(status: &str, headers: &[(&str, &str)], code: &str, message: &str) -> Vec<u8> {
    let body = json!({"errors": [{"code": code, "message": message}]}).to_string();
    let mut headers = headers.to_vec();
    headers.push(("Content-Type", "application/json"));
    http(status, &headers, body.as_bytes())
}

fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut response = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut response = response.into_bytes();
    response.extend_from_slice(body);
    response
}
