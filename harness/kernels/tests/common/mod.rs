//! A fake Debian mirror served from a local HTTP server, and builders for
//! the files it serves (.deb, Packages.xz, InRelease, bzImage).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of these helpers"
)]

pub mod registry;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness_events::{Event, EventSink};
use harness_kernels::{LockedKernel, Mirror, PinnedPackage};
use sha2::{Digest, Sha256};

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    hits: HashMap<String, usize>,
    delay: Duration,
}

/// A mirror at `http://127.0.0.1:<port>/debian`, serving what was `put`.
pub struct FakeMirror {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeMirror {
    pub fn start() -> FakeMirror {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let url = format!(
            "http://{}/debian",
            listener.local_addr().expect("local address")
        );
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        // Lives until the test process exits.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeMirror { url, state }
    }

    pub fn mirror(&self) -> Mirror {
        Mirror::from_url(&self.url).expect("valid local URL")
    }

    /// Serves `bytes` at `path` (relative to the mirror root).
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .expect("state")
            .files
            .insert(path.to_owned(), bytes);
    }

    pub fn remove(&self, path: &str) {
        self.state.lock().expect("state").files.remove(path);
    }

    /// How many requests asked for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .expect("state")
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Delays every response, to keep a download in flight.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().expect("state").delay = delay;
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let path = target.strip_prefix("/debian/").unwrap_or(target).to_owned();
    let (body, delay) = {
        let mut state = state.lock().expect("state");
        *state.hits.entry(path.clone()).or_default() += 1;
        (state.files.get(&path).cloned(), state.delay)
    };
    std::thread::sleep(delay);
    let mut stream = stream;
    let response = match body {
        Some(body) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(&body);
            r
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
                .to_vec()
        }
    };
    // The client may have hung up; nothing to do about it here.
    let _ = stream.write_all(&response);
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn xz(bytes: &[u8]) -> Vec<u8> {
    liblzma::encode_all(bytes, 1).expect("xz")
}

/// A tar with `./`-prefixed names, as dpkg-deb writes them.
pub fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, *data).expect("append to tar");
    }
    builder.into_inner().expect("finish tar")
}

/// A .deb whose data.tar.xz holds `files`.
pub fn deb(files: &[(&str, &[u8])]) -> Vec<u8> {
    let members = [
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.xz",
            xz(&tar(&[("./control", b"Package: linux-image\n")])),
        ),
        ("data.tar.xz", xz(&tar(files))),
    ];
    let mut builder = ar::Builder::new(Vec::new());
    for (name, data) in members {
        let header = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
        builder
            .append(&header, data.as_slice())
            .expect("append to ar");
    }
    builder.into_inner().expect("finish ar")
}

/// A bzImage-shaped buffer carrying `version` in its setup header, padded
/// with varied bytes so that corruption is detectable anywhere.
pub fn bzimage(version: &str) -> Vec<u8> {
    let mut image: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    image[0x202..0x206].copy_from_slice(b"HdrS");
    // 4 setup sectors after the boot sector, the rest is "kernel code": the
    // header promises exactly the buffer's size.
    image[0x1f1] = 4;
    let code = (image.len() as u32 - 5 * 512) / 16;
    image[0x1f4..0x1f8].copy_from_slice(&code.to_le_bytes());
    let pointer: u16 = 0x3000;
    image[0x20E..0x210].copy_from_slice(&pointer.to_le_bytes());
    let at = usize::from(pointer) + 0x200;
    image[at..at + version.len()].copy_from_slice(version.as_bytes());
    image[at + version.len()] = 0;
    image
}

/// A packaged kernel of some line: the .deb and the lock entry pinning it.
pub struct FakeKernel {
    pub deb: Vec<u8>,
    pub bzimage: Vec<u8>,
    pub config: Option<Vec<u8>>,
    pub locked: LockedKernel,
    /// The .deb of the package holding the config, where the kernel's lacks it.
    pub config_deb: Option<Vec<u8>>,
}

impl FakeKernel {
    /// The pinned config package (panics for a kernel that has none).
    pub fn config_package(&self) -> &PinnedPackage {
        self.locked
            .config_package
            .as_ref()
            .expect("a split kernel with a config package")
    }
}

/// A 6.1 image package as bookworm ships it (kernel and config in /boot).
pub fn kernel_6_1(abi: u32, version: &str) -> FakeKernel {
    let release = format!("6.1.0-{abi}-cloud-amd64");
    let package = format!("linux-image-{release}-unsigned");
    let bzimage = bzimage(&format!(
        "{release} (debian-kernel@lists.debian.org) #1 SMP Debian {version}"
    ));
    let config = format!("# {release}\nCONFIG_BPF=y\n").into_bytes();
    let deb = deb(&[
        (
            &format!("./lib/modules/{release}/modules.order"),
            b"kernel/x.ko\n",
        ),
        (
            &format!("./boot/System.map-{release}"),
            b"ffffffff81000000 T _text\n",
        ),
        (&format!("./boot/vmlinuz-{release}"), &bzimage),
        (&format!("./boot/config-{release}"), &config),
        (
            &format!("./usr/share/doc/{package}/changelog.Debian.gz"),
            b"...",
        ),
    ]);
    let locked = LockedKernel {
        line: harness_protocol::KernelVersion::new(6, 1),
        suite: "bookworm".to_owned(),
        filename: format!("pool/main/l/linux-signed-amd64/{package}_{version}_amd64.deb"),
        size: deb.len() as u64,
        sha256: sha256_hex(&deb),
        package,
        version: version.to_owned(),
        release,
        config_package: None,
    };
    FakeKernel {
        deb,
        bzimage,
        config: Some(config),
        locked,
        config_deb: None,
    }
}

/// A 7.2 binary package as sid ships it (kernel under /usr/lib/modules, no
/// config), with the `linux-base-*` package holding its config pinned.
pub fn kernel_7_2(abi: &str, version: &str) -> FakeKernel {
    let release = format!("7.2.{abi}-cloud-amd64");
    let package = format!("linux-binary-{release}");
    let bzimage = bzimage(&format!(
        "{release} (debian-kernel@lists.debian.org) #1 SMP Debian {version}"
    ));
    let kernel_deb = deb(&[(&format!("./usr/lib/modules/{release}/vmlinuz"), &bzimage)]);
    let config = format!("# {release}\nCONFIG_BPF=y\nCONFIG_HZ=1000\n").into_bytes();
    let base = format!("linux-base-{release}");
    let config_deb = deb(&[
        (
            &format!("./usr/lib/modules/{release}/System.map"),
            b"map" as &[u8],
        ),
        (&format!("./usr/lib/modules/{release}/config"), &config),
        (
            &format!("./usr/lib/modules/{release}/modules.order"),
            b"x.ko\n",
        ),
        (&format!("./usr/share/doc/{base}/copyright"), b"GPL-2"),
    ]);
    let config_package = PinnedPackage {
        filename: format!("pool/main/l/linux/{base}_{version}_amd64.deb"),
        size: config_deb.len() as u64,
        sha256: sha256_hex(&config_deb),
        package: base,
        version: version.to_owned(),
    };
    let locked = LockedKernel {
        line: harness_protocol::KernelVersion::new(7, 2),
        suite: "sid".to_owned(),
        filename: format!("pool/main/l/linux-signed-amd64/{package}_{version}_amd64.deb"),
        size: kernel_deb.len() as u64,
        sha256: sha256_hex(&kernel_deb),
        package,
        version: version.to_owned(),
        release,
        config_package: Some(config_package),
    };
    FakeKernel {
        deb: kernel_deb,
        bzimage,
        config: Some(config),
        locked,
        config_deb: Some(config_deb),
    }
}

/// A Packages stanza for `k`.
pub fn stanza(k: &LockedKernel) -> String {
    package_stanza(&PinnedPackage {
        package: k.package.clone(),
        version: k.version.clone(),
        filename: k.filename.clone(),
        size: k.size,
        sha256: k.sha256.clone(),
    })
}

/// A Packages stanza for `p`.
pub fn package_stanza(p: &PinnedPackage) -> String {
    format!(
        "Package: {}\nSource: linux\nVersion: {}\nInstalled-Size: 1\nDescription: Linux kernel\n A continuation.\n\
         Filename: {}\nSize: {}\nSHA256: {}\n",
        p.package, p.version, p.filename, p.size, p.sha256
    )
}

/// An unsigned (fake-signed) InRelease for `suite` listing `packages_xz`.
pub fn inrelease(suite: &str, packages_xz: &[u8]) -> Vec<u8> {
    format!(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nCodename: {suite}\nMD5Sum:\n \
         00000000000000000000000000000000 {size} main/binary-amd64/Packages.xz\nSHA256:\n \
         {sha} {size} main/binary-amd64/Packages.xz\n-----BEGIN PGP SIGNATURE-----\n\nZmFrZQ==\n\
         -----END PGP SIGNATURE-----\n",
        size = packages_xz.len(),
        sha = sha256_hex(packages_xz),
    )
    .into_bytes()
}

/// Records the download events and notes it is told.
#[derive(Default)]
pub struct Recorder {
    pub starts: Mutex<Vec<(String, u64)>>,
    pub advanced: Mutex<u64>,
    pub finishes: Mutex<usize>,
    pub notes: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("notes").clone()
    }
}

impl EventSink for Recorder {
    fn event(&self, event: Event) {
        match event {
            Event::DownloadStarted { what, total_bytes } => self
                .starts
                .lock()
                .expect("starts")
                .push((what, total_bytes)),
            Event::DownloadAdvanced { bytes } => *self.advanced.lock().expect("advanced") += bytes,
            Event::DownloadFinished => *self.finishes.lock().expect("finishes") += 1,
            Event::Note { message } => self.notes.lock().expect("notes").push(message),
            other => panic!("the cache sent an unexpected event: {other:?}"),
        }
    }
}
