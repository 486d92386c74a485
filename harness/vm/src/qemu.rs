//! One QEMU run: spawn, watch the console, read records, enforce limits.

use std::{
    io::{self, BufRead as _, BufReader, Read},
    os::unix::{net::UnixListener, process::CommandExt as _},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use harness_protocol::Record;

use crate::Accel;

/// What to boot and how.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// `qemu-system-x86_64` or a path to it.
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub accel: Accel,
    pub memory_mb: u32,
    pub cpus: u32,
    /// Appended to the harness's own kernel command line.
    pub cmdline_extra: Vec<String>,
    /// Arguments for the guest's init (passed after `--`).
    pub init_args: Vec<String>,
    /// Wall-clock limit for the whole VM, boot included.
    pub timeout: Duration,
    /// Set by a Ctrl-C handler: the VM is killed and the run ends promptly.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Give the guest QEMU's ISA debug console for its records (fast); without
    /// it the guest falls back to the second UART.
    pub debugcon: bool,
    /// Give the guest memory shared with the host for its records (an
    /// `ivshmem-plain` device: no exit to QEMU per byte), which it prefers
    /// to the debug console.
    pub shared_memory: bool,
}

impl VmConfig {
    /// The kernel command line: console on the first UART (records go to the
    /// debug console or the second UART); fail fast (`panic=-1` + `-no-reboot` make QEMU exit on panic,
    /// `oops=panic` turns an oops into one); the BPF LSM enabled for security
    /// programs.
    pub fn cmdline(&self) -> String {
        let mut words = vec![
            "console=ttyS0",
            "quiet",
            "panic=-1",
            "oops=panic",
            "lsm=lockdown,capability,bpf",
            "random.trust_cpu=on",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        words.extend(self.cmdline_extra.iter().cloned());
        if !self.init_args.is_empty() {
            words.push("--".to_owned());
            words.extend(self.init_args.iter().cloned());
        }
        words.join(" ")
    }

    fn command(&self, channel: &Channel) -> Command {
        let results_socket = &channel.socket;
        let mut cmd = Command::new(&self.qemu);
        cmd.args([
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
            "-display",
            "none",
        ]);
        match self.accel {
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => cmd.args(["-accel", "tcg", "-cpu", "max"]),
        };
        cmd.arg("-m").arg(self.memory_mb.to_string());
        cmd.arg("-smp").arg(self.cpus.to_string());
        cmd.arg("-kernel").arg(&self.kernel);
        cmd.arg("-initrd").arg(&self.initramfs);
        cmd.arg("-append").arg(self.cmdline());
        cmd.args([
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
        ]);
        // Records arrive on the ISA debug console (no interrupts, a whole
        // record per `rep outsb`) or, where the guest cannot use it, the
        // second UART; both feed the one socket.
        cmd.arg("-chardev").arg(format!(
            "socket,id=results,path={},mux=on",
            results_socket.display()
        ));
        cmd.args(["-serial", "chardev:results"]);
        if self.debugcon {
            cmd.args(["-device", "isa-debugcon,iobase=0xe9,chardev=results"]);
        }
        if let Some(memory) = &channel.memory {
            cmd.arg("-object").arg(format!(
                "memory-backend-file,id=results-mem,mem-path={},size={},share=on",
                memory.display(),
                crate::shared::SIZE
            ));
            cmd.arg("-device")
                .arg(format!("{SHARED_MEMORY_DEVICE},memdev=results-mem"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe. If the harness dies without
        // cleaning up (SIGKILL), the kernel kills QEMU too: no orphans.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }
}

/// A VM that ran to completion with a complete record stream.
#[derive(Clone, Debug)]
pub struct VmOutcome {
    pub records: Vec<Record>,
    pub console: String,
    /// From spawn to the guest's hello record (kernel boot + init start).
    pub boot_time: Duration,
    /// From spawn to QEMU's exit.
    pub total_time: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{qemu} not found: install QEMU (Debian/Ubuntu: `apt-get install qemu-system-x86`)")]
    QemuMissing { qemu: String },
    #[error("could not start {qemu}: {error}")]
    Spawn { qemu: String, error: io::Error },
    #[error("setting up the VM: {0}")]
    Setup(io::Error),
    #[error("the kernel panicked or oopsed: {marker}\n--- console (last lines) ---\n{tail}")]
    KernelPanic {
        marker: String,
        tail: String,
        console: String,
    },
    #[error("the VM did not finish within {}s (hang?); killed it\n--- console (last lines) ---\n{tail}", timeout.as_secs())]
    Timeout {
        timeout: Duration,
        tail: String,
        console: String,
    },
    #[error("interrupted; QEMU was stopped")]
    Interrupted,
    #[error("QEMU failed ({status}): {stderr}\n--- console (last lines) ---\n{tail}")]
    Qemu {
        status: String,
        stderr: String,
        tail: String,
        console: String,
    },
    #[error(
        "the guest's record stream ended without a `done` record ({records} records, QEMU {status}){}\n--- console (last lines) ---\n{tail}",
        stderr_suffix(stderr)
    )]
    Incomplete {
        records: usize,
        status: String,
        stderr: String,
        tail: String,
        console: String,
    },
    /// Silence: no console line, no record. The kernel never started.
    #[error(
        "{} did not boot: QEMU ended ({status}) before the kernel printed anything{}; is it a complete x86_64 bzImage?",
        kernel.display(),
        stderr_suffix(stderr)
    )]
    NoBoot {
        kernel: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("the guest sent a malformed record: {line:?}: {error}")]
    Protocol { line: String, error: String },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; QEMU said: {}", stderr.trim())
    }
}

impl VmError {
    /// QEMU's own error output, where there is any (used to detect a broken KVM).
    pub fn qemu_stderr(&self) -> Option<&str> {
        match self {
            Self::Qemu { stderr, .. }
            | Self::Incomplete { stderr, .. }
            | Self::NoBoot { stderr, .. } => Some(stderr),
            _ => None,
        }
    }

    /// The whole console, where there is one.
    pub fn console(&self) -> Option<&str> {
        match self {
            Self::KernelPanic { console, .. }
            | Self::Timeout { console, .. }
            | Self::Qemu { console, .. }
            | Self::Incomplete { console, .. } => Some(console),
            _ => None,
        }
    }
}

/// Console lines that mean the kernel is going down (or is wedged).
const PANIC_MARKERS: &[&str] = &[
    "Kernel panic - not syncing",
    "BUG: kernel NULL pointer dereference",
    "BUG: unable to handle",
    "general protection fault",
    "Oops: ",
    "watchdog: BUG: soft lockup",
    "rcu: INFO: rcu_preempt detected stalls",
    "rcu: INFO: rcu_sched detected stalls",
    "kernel BUG at",
];

/// After a panic marker, how long to keep reading for the backtrace.
const PANIC_GRACE: Duration = Duration::from_secs(2);
const TAIL_LINES: usize = 40;

pub fn console_tail(console: &str) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

enum Event {
    Console(String),
    Stderr(String),
    Record(Result<Record, (String, String)>),
}

fn spawn_line_reader(
    reader: impl Read + Send + 'static,
    tx: mpsc::Sender<Event>,
    wrap: fn(String) -> Event,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\r', '\n'])
                        .to_owned();
                    if tx.send(wrap(line)).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Kills QEMU when dropped, so every early return leaves no process behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Where the guest's records arrive: a private directory holding the
/// socket QEMU connects the results port to and, when the VM has shared
/// memory, the file behind it; the directory goes when this drops.
struct Channel {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    listener: UnixListener,
    memory: Option<PathBuf>,
}

fn results_channel(cfg: &VmConfig) -> Result<Channel, VmError> {
    let dir = tempfile::Builder::new()
        .prefix(&crate::leftovers::own_prefix(crate::TEMP_DIR_KIND))
        .tempdir()
        .map_err(VmError::Setup)?;
    let socket = dir.path().join("results.sock");
    let listener = UnixListener::bind(&socket).map_err(VmError::Setup)?;
    let memory = if cfg.shared_memory {
        let path = dir.path().join("results.mem");
        crate::shared::create(&path).map_err(VmError::Setup)?;
        Some(path)
    } else {
        None
    };
    Ok(Channel {
        _dir: dir,
        socket,
        listener,
        memory,
    })
}

/// Hands each record of a stream to the run's loop.
fn forward(reader: impl Read, results: mpsc::Sender<Event>) {
    for rec in harness_protocol::RecordReader::new(reader) {
        let rec = rec.map_err(|e| match e {
            harness_protocol::StreamError::Malformed { line, error } => (line, error),
            corrupt @ harness_protocol::StreamError::Corrupt(_) => {
                (String::new(), corrupt.to_string())
            }
        });
        if results.send(Event::Record(rec)).is_err() {
            return;
        }
    }
}

fn spawn(cfg: &VmConfig, cmd: &mut Command) -> Result<Child, VmError> {
    cmd.spawn().map_err(|error| {
        let qemu = cfg.qemu.display().to_string();
        if error.kind() == io::ErrorKind::NotFound {
            VmError::QemuMissing { qemu }
        } else {
            VmError::Spawn { qemu, error }
        }
    })
}

/// Boots the VM and returns its records, calling `on_record` as each arrives.
pub fn run(cfg: &VmConfig, on_record: &mut dyn FnMut(&Record)) -> Result<VmOutcome, VmError> {
    without_shared_memory_if_missing(cfg, |cfg| run_once(cfg, on_record))
}

/// Runs `f`, and once more without shared memory when QEMU refused to
/// start and does not have the `ivshmem-plain` device (a QEMU built
/// without it): the guest then sends its records over the debug console.
/// Asked only after a failure, so a working QEMU pays nothing.
fn without_shared_memory_if_missing<T>(
    cfg: &VmConfig,
    mut f: impl FnMut(&VmConfig) -> Result<T, VmError>,
) -> Result<T, VmError> {
    match f(cfg) {
        Err(VmError::NoBoot { .. } | VmError::Qemu { .. })
            if cfg.shared_memory && !qemu_has_device(&cfg.qemu, SHARED_MEMORY_DEVICE) =>
        {
            f(&VmConfig {
                shared_memory: false,
                ..cfg.clone()
            })
        }
        other => other,
    }
}

const SHARED_MEMORY_DEVICE: &str = "ivshmem-plain";

/// Whether `qemu` has the device model `name` (`-device help` lists it).
pub fn qemu_has_device(qemu: &std::path::Path, name: &str) -> bool {
    let wanted = format!("name \"{name}\"");
    Command::new(qemu)
        .args(["-device", "help"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(&wanted))
}

fn run_once(cfg: &VmConfig, on_record: &mut dyn FnMut(&Record)) -> Result<VmOutcome, VmError> {
    let channel = results_channel(cfg)?;
    let listener = &channel.listener;
    listener.set_nonblocking(true).map_err(VmError::Setup)?;
    // Tells the shared-memory reader that QEMU is gone, however the run ends.
    let finished = crate::shared::Finish(Arc::default());

    let start = Instant::now();
    let mut child = spawn(cfg, &mut cfg.command(&channel))?;
    let (tx, rx) = mpsc::channel();
    if let Some(memory) = &channel.memory {
        let reader = crate::shared::SharedReader::open(memory, finished.0.clone())
            .map_err(VmError::Setup)?;
        let results = tx.clone();
        thread::spawn(move || forward(reader, results));
    }
    spawn_line_reader(
        child.stdout.take().expect("piped"),
        tx.clone(),
        Event::Console,
    );
    spawn_line_reader(
        child.stderr.take().expect("piped"),
        tx.clone(),
        Event::Stderr,
    );
    let mut guard = Guard(child);

    let mut console = String::new();
    let mut stderr = String::new();
    let mut records = Vec::new();
    let mut boot_time = None;
    let mut panic: Option<(String, Instant)> = None;
    let mut results_tx = Some(tx);
    let mut exited: Option<(ExitStatus, Instant)> = None;

    let status = loop {
        if let Some(results) = results_tx.as_ref() {
            match listener.accept() {
                Ok((stream, _)) => {
                    let results = results.clone();
                    // QEMU closes the socket when it exits: then whatever
                    // the guest published in shared memory is all there is
                    // (waiting for the loop to notice the exit cost 50 ms).
                    let finish = crate::shared::Finish(finished.0.clone());
                    thread::spawn(move || {
                        forward(stream, results);
                        drop(finish);
                    });
                    results_tx = None;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(VmError::Setup(e)),
            }
        }

        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Event::Console(line)) => {
                if panic.is_none()
                    && let Some(marker) = PANIC_MARKERS.iter().find(|m| line.contains(**m))
                {
                    panic = Some(((*marker).to_owned(), Instant::now()));
                }
                console.push_str(&line);
                console.push('\n');
            }
            Ok(Event::Stderr(line)) => {
                stderr.push_str(&line);
                stderr.push('\n');
            }
            Ok(Event::Record(Ok(record))) => {
                if matches!(record, Record::Hello(_)) {
                    boot_time.get_or_insert_with(|| start.elapsed());
                }
                on_record(&record);
                records.push(record);
            }
            Ok(Event::Record(Err((line, error)))) => return Err(VmError::Protocol { line, error }),
            // All readers are gone: QEMU exited and its output is drained.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break exited.map(|(s, _)| s);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }

        if interrupted(cfg) {
            return Err(VmError::Interrupted);
        }
        if let Some((marker, at)) = &panic
            && at.elapsed() > PANIC_GRACE
        {
            return Err(VmError::KernelPanic {
                marker: marker.clone(),
                tail: console_tail(&console),
                console,
            });
        }
        if start.elapsed() > cfg.timeout {
            return Err(VmError::Timeout {
                timeout: cfg.timeout,
                tail: console_tail(&console),
                console,
            });
        }
        if exited.is_none()
            && let Ok(Some(status)) = guard.0.try_wait()
        {
            // The results socket may never have been accepted (QEMU failed
            // early); stop waiting for it so the channel can disconnect.
            results_tx = None;
            finished.0.store(true, Ordering::Release);
            exited = Some((status, Instant::now()));
        }
        // Reader threads end at EOF, which follows QEMU's exit promptly; do
        // not wait forever on a descendant that kept a pipe open.
        if let Some((status, at)) = exited
            && at.elapsed() > Duration::from_secs(2)
        {
            break Some(status);
        }
    };
    let total_time = start.elapsed();
    let status = match status {
        Some(s) => s,
        None => guard.0.wait().map_err(VmError::Setup)?,
    };
    // Ctrl-C at a terminal reaches QEMU too, which then exits "terminating
    // on signal 2" before we look at the flag: that is an interruption, not
    // a failed VM.
    if interrupted(cfg) {
        return Err(VmError::Interrupted);
    }

    if let Some((marker, _)) = panic {
        return Err(VmError::KernelPanic {
            marker,
            tail: console_tail(&console),
            console,
        });
    }
    let done = matches!(records.last(), Some(Record::Done(_)));
    if !done && records.is_empty() && console.trim().is_empty() {
        return Err(VmError::NoBoot {
            kernel: cfg.kernel.clone(),
            status: describe(status),
            stderr: stderr.trim().to_owned(),
        });
    }
    if !done {
        let status_text = describe(status);
        if records.is_empty() && !status.success() {
            return Err(VmError::Qemu {
                status: status_text,
                stderr: stderr.trim().to_owned(),
                tail: console_tail(&console),
                console,
            });
        }
        return Err(VmError::Incomplete {
            records: records.len(),
            status: status_text,
            stderr: stderr.trim().to_owned(),
            tail: console_tail(&console),
            console,
        });
    }
    Ok(VmOutcome {
        records,
        console,
        boot_time: boot_time.unwrap_or(total_time),
        total_time,
    })
}

fn interrupted(cfg: &VmConfig) -> bool {
    cfg.interrupt
        .as_ref()
        .is_some_and(|i| i.load(Ordering::Relaxed))
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// Boots the VM and waits for QEMU to exit, without reading records: the
/// bare-boot baseline (the guest's init powers off at once). Returns the time
/// from spawn to exit.
pub fn time_boot(cfg: &VmConfig) -> Result<Duration, VmError> {
    without_shared_memory_if_missing(cfg, time_boot_once)
}

fn time_boot_once(cfg: &VmConfig) -> Result<Duration, VmError> {
    let channel = results_channel(cfg)?;
    let start = Instant::now();
    let mut cmd = cfg.command(&channel);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = spawn(cfg, &mut cmd)?;
    let mut guard = Guard(child);
    loop {
        if let Some(status) = guard.0.try_wait().map_err(VmError::Setup)? {
            let elapsed = start.elapsed();
            drop(channel);
            if !status.success() {
                let mut stderr = String::new();
                if let Some(mut e) = guard.0.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                return Err(VmError::Qemu {
                    status: describe(status),
                    stderr,
                    tail: String::new(),
                    console: String::new(),
                });
            }
            return Ok(elapsed);
        }
        if start.elapsed() > cfg.timeout {
            return Err(VmError::Timeout {
                timeout: cfg.timeout,
                tail: String::new(),
                console: String::new(),
            });
        }
        if interrupted(cfg) {
            return Err(VmError::Interrupted);
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Identifies the QEMU binary `qemu` runs (path on PATH, size, mtime), so a
/// remembered version is dropped when QEMU is upgraded.
fn binary_identity(qemu: &std::path::Path) -> Option<String> {
    let path = if qemu.components().count() > 1 {
        qemu.to_owned()
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(qemu))
            .find(|p| p.is_file())?
    };
    let meta = std::fs::metadata(&path).ok()?;
    Some(format!(
        "{} {} {:?}",
        path.display(),
        meta.len(),
        meta.modified().ok()
    ))
}

/// `qemu-system-x86_64 --version`, first line; asked once per process and
/// QEMU binary (starting QEMU costs ~0.1 s).
pub fn qemu_version(qemu: &std::path::Path) -> Result<String, VmError> {
    static SEEN: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let id = binary_identity(qemu);
    if let Some(id) = &id
        && let Some((_, v)) = SEEN
            .lock()
            .expect("unpoisoned")
            .iter()
            .find(|(k, _)| k == id)
    {
        return Ok(v.clone());
    }
    let out = Command::new(qemu).arg("--version").output().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            VmError::QemuMissing {
                qemu: qemu.display().to_string(),
            }
        } else {
            VmError::Spawn {
                qemu: qemu.display().to_string(),
                error: e,
            }
        }
    })?;
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if let Some(id) = id {
        SEEN.lock().expect("unpoisoned").push((id, version.clone()));
    }
    Ok(version)
}

/// QEMU's release, as `--version` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct QemuVersion {
    pub major: u32,
    pub minor: u32,
}

impl QemuVersion {
    /// Below this, TCG crashes guests at random when QEMU threads are
    /// time-sliced (double faults and general protection faults in early
    /// boot: 3 to 7 boots in 32 with QEMU 7.2, none in 72 with 10.0).
    pub const RELIABLE_TCG: Self = Self { major: 8, minor: 0 };

    /// "QEMU emulator version 7.2.22 (Debian ...)" -> 7.2.
    pub fn parse(text: &str) -> Option<Self> {
        let v = text.split("version ").nth(1)?.split_whitespace().next()?;
        let mut parts = v.split('.');
        Some(Self {
            major: parts.next()?.parse().ok()?,
            minor: parts.next()?.parse().ok()?,
        })
    }

    /// The installed QEMU's release; `None` when it is missing or says
    /// something else.
    pub fn of(qemu: &std::path::Path) -> Option<Self> {
        Self::parse(&qemu_version(qemu).ok()?)
    }
}

impl std::fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn reads_qemu_versions() {
        assert_eq!(
            QemuVersion::parse("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"),
            Some(QemuVersion { major: 7, minor: 2 })
        );
        let ten = QemuVersion::parse("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\n");
        assert_eq!(
            ten,
            Some(QemuVersion {
                major: 10,
                minor: 0
            })
        );
        assert_eq!(QemuVersion::parse("garbage"), None);
        assert!(QemuVersion { major: 7, minor: 2 } < QemuVersion::RELIABLE_TCG);
        assert!(ten.unwrap() >= QemuVersion::RELIABLE_TCG);
        assert_eq!(ten.unwrap().to_string(), "10.0");
    }
}

#[cfg(test)]
mod shared_memory_fallback_tests {
    use super::*;

    /// A QEMU that refuses ivshmem-plain unless `-device help` lists it,
    /// boots nothing, and logs how it was called.
    fn fake_qemu(dir: &std::path::Path, lists_ivshmem: bool) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt as _;
        let log = dir.join("calls.log");
        let qemu = dir.join("qemu-system-x86_64");
        let listed = if lists_ivshmem {
            "echo 'name \"ivshmem-plain\", bus PCI'"
        } else {
            "true"
        };
        std::fs::write(
            &qemu,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\ncase \"$*\" in\n  '-device help') echo 'name \"isa-debugcon\", bus ISA'; {listed}; exit 0 ;;\n  *ivshmem-plain*) echo \"'ivshmem-plain' is not a valid device model name\" >&2; exit 1 ;;\nesac\nexit 1\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
        (qemu, log)
    }

    fn config(qemu: PathBuf) -> VmConfig {
        VmConfig {
            qemu,
            kernel: "/nonexistent/bzImage".into(),
            initramfs: "/nonexistent/initramfs".into(),
            accel: Accel::Tcg,
            memory_mb: 512,
            cpus: 1,
            cmdline_extra: Vec::new(),
            init_args: Vec::new(),
            timeout: Duration::from_secs(20),
            interrupt: None,
            debugcon: true,
            shared_memory: true,
        }
    }

    #[test]
    fn a_qemu_without_ivshmem_runs_the_vm_again_without_shared_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (qemu, log) = fake_qemu(dir.path(), false);
        // The fake never boots anything: both attempts fail.
        assert!(run(&config(qemu), &mut |_| {}).is_err());
        let calls = std::fs::read_to_string(&log).unwrap();
        let calls: Vec<&str> = calls.lines().collect();
        assert_eq!(calls.len(), 3, "{calls:#?}");
        assert!(calls[0].contains("ivshmem-plain,memdev=results-mem"));
        assert_eq!(calls[1], "-device help");
        assert!(!calls[2].contains("ivshmem") && calls[2].contains("isa-debugcon"));
    }

    #[test]
    fn a_qemu_with_ivshmem_is_not_run_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (qemu, log) = fake_qemu(dir.path(), true);
        assert!(qemu_has_device(&qemu, "ivshmem-plain"));
        assert!(!qemu_has_device(&qemu, "virtio-vsock-pci"));
        std::fs::remove_file(&log).unwrap();
        // It fails for another reason (the fake boots nothing): no retry.
        assert!(time_boot(&config(qemu)).is_err());
        let calls = std::fs::read_to_string(&log).unwrap();
        let calls: Vec<&str> = calls.lines().collect();
        assert_eq!(calls.len(), 2, "{calls:#?}");
        assert_eq!(calls[1], "-device help");
    }
}
