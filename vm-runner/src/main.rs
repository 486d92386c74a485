//! PID 1 of the test VM, built as a static musl binary.
//!
//! It mounts what BPF programs expect (proc, sys, bpffs, debugfs, tracefs,
//! cgroup2, securityfs), reads the plan the host put in the initramfs, runs it
//! with `harness-exec`, writes every record as a JSON line to the second
//! serial port (the kernel console stays on the first), and powers off. The
//! host trusts only a stream that ends in a `done` record.
//!
//! Run outside PID 1 (`vm-runner PLAN.json`), it executes the plan on the
//! current kernel and prints the records to stdout, which helps debugging.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Write as _},
    os::fd::AsFd as _,
    path::Path,
    process::ExitCode,
};

use harness_protocol::{Done, GuestInfo, Plan, Record, encode_line};
use nix::{
    mount::{MsFlags, mount},
    sys::{
        reboot::{RebootMode, reboot},
        termios::{self, SetArg},
    },
};

/// The port the host reads records from (`-serial` #2 in QEMU).
const RESULTS_PORT: &str = "/dev/ttyS1";

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
        if let Ok(mut port) = open_results_port() {
            let _ = port.write_all(
                encode_line(&Record::Done(Done {
                    error: Some(format!("the in-VM runner panicked: {info}")),
                }))
                .as_bytes(),
            );
            let _ = port.flush();
            let _ = termios::tcdrain(port.get_ref().as_fd());
        }
        power_off();
    }));
    let mounts = mount_filesystems();
    attach_console();
    if mode == harness_protocol::INIT_MODE_HANG {
        if let Ok(mut port) = open_results_port() {
            let _ = port.write_all(encode_line(&Record::Hello(guest_info(mounts))).as_bytes());
            let _ = port.flush();
        }
        loop {
            std::thread::park();
        }
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
        .collect()
}

fn open_results_port() -> io::Result<BufWriter<File>> {
    let port = OpenOptions::new().write(true).open(RESULTS_PORT)?;
    // Raw mode: no newline translation, no echo, 8-bit clean.
    let mut attrs = termios::tcgetattr(port.as_fd())?;
    termios::cfmakeraw(&mut attrs);
    termios::tcsetattr(port.as_fd(), SetArg::TCSANOW, &attrs)?;
    Ok(BufWriter::with_capacity(64 << 10, port))
}

fn guest_info(mounts: Vec<String>) -> GuestInfo {
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

fn run_as_init(mounts: Vec<String>, probe_only: bool) -> io::Result<()> {
    let mut port = open_results_port()?;
    let mut emit = |record: Record| -> io::Result<()> {
        port.write_all(encode_line(&record).as_bytes())?;
        // Flush per record so a crash mid-run still leaves complete lines.
        port.flush()
    };
    emit(Record::Hello(guest_info(mounts)))?;

    let error = if probe_only {
        None
    } else {
        match read_plan(Path::new(harness_protocol::GUEST_PLAN_PATH)) {
            Ok(plan) => harness_exec::execute(&plan, &mut emit)
                .err()
                .map(|e| e.to_string()),
            Err(e) => Some(e),
        }
    };
    emit(Record::Done(Done { error }))?;
    // Every byte must have left the UART before we power off.
    termios::tcdrain(port.get_ref().as_fd())?;
    Ok(())
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
    let result = harness_exec::execute(&plan, &mut |r| out.write_all(encode_line(&r).as_bytes()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vm-runner: {e}");
            ExitCode::FAILURE
        }
    }
}
