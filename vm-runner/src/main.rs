//! PID 1 of the test VM, built as a static binary (glibc, crt-static).
//!
//! It mounts what BPF programs expect (proc, sys, bpffs, debugfs, tracefs,
//! cgroup2, securityfs), reads the plan the host put in the initramfs, runs it
//! with `harness-exec`, writes every record as a JSON line to QEMU's debug
//! console (or the second serial port; the kernel console stays on the
//! first), and powers off. The host trusts only a stream that ends in a
//! `done` record.
//!
//! Run outside PID 1 (`vm-runner PLAN.json`), it executes the plan on the
//! current kernel and prints the records to stdout, which helps debugging.

mod port;

use std::{
    fs::{self, OpenOptions},
    io::{self, BufWriter, Write as _},
    path::Path,
    process::ExitCode,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use harness_protocol::{Done, GuestInfo, Plan, Record, RecordWriter, encode_line};
use nix::{
    mount::{MsFlags, mount},
    sys::reboot::{RebootMode, reboot},
};
use port::ResultsPort;

fn main() -> ExitCode {
    if std::process::id() != 1 {
        return run_outside_vm();
    }
    // The kernel hands words after `--` on its command line to init.
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == harness_protocol::INIT_MODE_POWEROFF {
        // Bare-boot baseline for benchmarks: nothing but the boot itself.
        power_off();
    }
    // Whatever happens, PID 1 must not exit: the kernel would panic and the
    // host would see a crash instead of our report.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("vm-runner: {info}");
        // A panic inside `emit` holds the stream mid-record: then the host
        // sees no `done` and shows the console, which has the message.
        if let Ok(mut results) = RESULTS.try_lock()
            && let Some(results) = results.as_mut()
        {
            let _ = results.emit(&Record::Done(Done {
                error: Some(format!("the in-VM runner panicked: {info}")),
                timings: None,
            }));
            let _ = results.get_ref().get_ref().drain();
        }
        power_off();
    }));
    let mounts = mount_filesystems();
    attach_console();
    if mode == harness_protocol::INIT_MODE_HANG {
        if let Ok(port) = open_results() {
            let _ = emit(&Record::Hello(guest_info(mounts, port)));
        }
        loop {
            std::thread::park();
        }
    }
    if mode == harness_protocol::INIT_MODE_HANG_AFTER {
        let n = std::env::args().nth(2).and_then(|n| n.parse().ok());
        HANG_AFTER.store(n.unwrap_or(0), Ordering::Relaxed);
    }
    let outcome = run_as_init(mounts, mode == harness_protocol::INIT_MODE_PROBE);
    if let Err(e) = outcome {
        eprintln!("vm-runner: {e}");
    }
    power_off();
}

fn power_off() -> ! {
    nix::unistd::sync();
    let _ = reboot(RebootMode::RB_POWER_OFF);
    // Only reachable if reboot(2) failed; keep PID 1 alive for the host's timeout.
    loop {
        std::thread::park();
    }
}

/// The initramfs has no /dev/console, so the kernel starts us without
/// stdin/stdout/stderr; once devtmpfs is mounted, attach them to the console
/// so our messages (and panics) reach the host's console log.
fn attach_console() {
    if let Ok(console) = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        let _ = nix::unistd::dup2_stdin(&console);
        let _ = nix::unistd::dup2_stdout(&console);
        let _ = nix::unistd::dup2_stderr(&console);
    }
}

fn mount_filesystems() -> Vec<String> {
    let table: &[(&str, &str, &str)] = &[
        ("devtmpfs", "/dev", "devtmpfs"),
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("bpffs", "/sys/fs/bpf", "bpf"),
        ("debugfs", "/sys/kernel/debug", "debugfs"),
        ("tracefs", "/sys/kernel/tracing", "tracefs"),
        ("cgroup2", "/sys/fs/cgroup", "cgroup2"),
        ("securityfs", "/sys/kernel/security", "securityfs"),
        ("tmpfs", "/tmp", "tmpfs"),
    ];
    table
        .iter()
        .map(|(source, target, fstype)| {
            let _ = fs::create_dir_all(target);
            match mount(
                Some(*source),
                *target,
                Some(*fstype),
                MsFlags::empty(),
                None::<&str>,
            ) {
                Ok(()) => format!("{fstype} on {target}"),
                Err(e) => format!("{fstype} on {target} failed: {e}"),
            }
        })
        .chain([match loopback_up() {
            Ok(()) => "lo up".to_owned(),
            Err(e) => format!("lo up failed: {e}"),
        }])
        .collect()
}

/// Brings the loopback interface up, so live cases can connect to
/// 127.0.0.1 and ::1 as on any machine (the kernel leaves it down).
fn loopback_up() -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // SAFETY: an all-zero ifreq is valid; the name is NUL-terminated.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: the socket is open and `req` outlives both calls.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn guest_info(mounts: Vec<String>, results_port: &str) -> GuestInfo {
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    GuestInfo {
        release: field(|u| u.release()),
        version: field(|u| u.version()),
        machine: field(|u| u.machine()),
        possible_cpus: harness_bpf_cpus(),
        lsm: fs::read_to_string("/sys/kernel/security/lsm")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        mounts,
        results_port: results_port.to_owned(),
    }
}

fn harness_bpf_cpus() -> u32 {
    fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            let last = s.trim().rsplit(['-', ',']).next()?.parse::<u32>().ok()?;
            Some(last + 1)
        })
        .unwrap_or(1)
}

/// The record stream to the host, global so the panic hook can end it.
static RESULTS: Mutex<Option<RecordWriter<BufWriter<ResultsPort>>>> = Mutex::new(None);

/// Opens the stream to the host; returns the port's name.
fn open_results() -> io::Result<&'static str> {
    let port = ResultsPort::open()?;
    let name = port.get_ref().name();
    *RESULTS.lock().unwrap_or_else(PoisonError::into_inner) = Some(RecordWriter::new(port)?);
    Ok(name)
}

/// Records to send before wedging (`hang-after N`); 0: never wedge.
static HANG_AFTER: AtomicUsize = AtomicUsize::new(0);
static SENT: AtomicUsize = AtomicUsize::new(0);

/// Sends one record to the host at once.
fn emit(record: &Record) -> io::Result<()> {
    write(record)?;
    flush()
}

/// Puts one record into the stream; it reaches the host with the next
/// [`flush`].
fn write(record: &Record) -> io::Result<()> {
    let limit = HANG_AFTER.load(Ordering::Relaxed);
    if limit > 0 && SENT.fetch_add(1, Ordering::Relaxed) >= limit {
        // What the host has seen must be exactly the records before.
        let _ = flush();
        loop {
            std::thread::park();
        }
    }
    with_results(|r| r.write(record))
}

fn flush() -> io::Result<()> {
    with_results(RecordWriter::flush)
}

fn with_results(
    f: impl FnOnce(&mut RecordWriter<BufWriter<ResultsPort>>) -> io::Result<()>,
) -> io::Result<()> {
    let mut results = RESULTS.lock().unwrap_or_else(PoisonError::into_inner);
    let results = results
        .as_mut()
        .ok_or_else(|| io::Error::other("the results port is not open"))?;
    f(results)
}

/// The executor's records: written as they come, flushed at each of its
/// checkpoints (before anything that could bring the kernel down), so a
/// crash still leaves every record before it.
struct ToHost;

impl harness_exec::Records for ToHost {
    fn record(&mut self, record: Record) -> io::Result<()> {
        write(&record)
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        flush()
    }
}

fn run_as_init(mounts: Vec<String>, probe_only: bool) -> io::Result<()> {
    let port = open_results()?;
    emit(&Record::Hello(guest_info(mounts, port)))?;
    let (error, timings) = if probe_only {
        (None, None)
    } else {
        match read_plan(Path::new(harness_protocol::GUEST_PLAN_PATH)) {
            Ok(plan) => {
                match harness_exec::execute(&plan, harness_exec::Place::TestVm, &mut ToHost) {
                    Ok(timings) => (None, Some(timings)),
                    Err(e) => (Some(e.to_string()), None),
                }
            }
            Err(e) => (Some(e), None),
        }
    };
    emit(&Record::Done(Done { error, timings }))?;
    // Every byte must have reached QEMU before we power off.
    let results = RESULTS.lock().unwrap_or_else(PoisonError::into_inner);
    match results.as_ref() {
        Some(r) => r.get_ref().get_ref().drain(),
        None => Ok(()),
    }
}

fn read_plan(path: &Path) -> Result<Plan, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

fn run_outside_vm() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!(
            "usage: vm-runner PLAN.json   (as PID 1 it reads {})",
            harness_protocol::GUEST_PLAN_PATH
        );
        return ExitCode::from(2);
    };
    let plan = match read_plan(Path::new(&path)) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("vm-runner: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = harness_exec::execute(&plan, harness_exec::Place::Host, &mut |r| {
        out.write_all(encode_line(&r).as_bytes())
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vm-runner: {e}");
            ExitCode::FAILURE
        }
    }
}
