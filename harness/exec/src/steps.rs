//! A case made of steps: test runs, and, inside a test VM, programs
//! attached for the whole case while a workload process performs actions
//! (exec, open, connect, credential changes) and ring-buffer records are
//! collected.
//!
//! The workload is a child process so that its credentials and cgroup are
//! its own and a hung action can be killed without losing the VM: the
//! parent hands it one step at a time over a pipe and waits for each answer
//! with the case's deadline, reading ring buffers meanwhile so a burst does
//! not overflow them.

use std::{
    fs,
    io::{self, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::{AsFd as _, BorrowedFd, OwnedFd},
    path::PathBuf,
    time::{Duration, Instant},
};

use harness_bpf::{EventBuffer, Link, LoadedObject};
use harness_protocol::{
    EventRecord, LostEvents, OpenMode, Step, StepOutput, StepsOutput, StepsPlan, Transport,
};

use crate::case::{Stop, program_fd, stop};
use harness_protocol::CaseStep;

/// Where each case's cgroup is made (cgroup2 is mounted by the runner).
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub(crate) fn run(
    object: &LoadedObject,
    plan: &StepsPlan,
    case_id: &str,
) -> Result<StepsOutput, Stop> {
    let deadline = Instant::now() + Duration::from_millis(u64::from(plan.timeout_ms));
    for file in &plan.files {
        create_file(&file.path, &file.content).map_err(stop(CaseStep::Attach))?;
    }
    // Every live case's workload runs in a cgroup of its own (cgroup
    // programs attach there), so nothing it leaves behind reaches the next.
    let needs_cgroup = plan.is_live();
    let cgroup = if needs_cgroup {
        Some(Cgroup::create(case_id).map_err(stop(CaseStep::Attach))?)
    } else {
        None
    };
    let mut rings = plan
        .ring_buffers
        .iter()
        .map(|name| {
            let map = object
                .map(name)
                .ok_or_else(|| format!("no map `{name}` in the object"))?;
            EventBuffer::new(map).map_err(|e| {
                format!("reading ring buffer `{name}` (is it a BPF_MAP_TYPE_RINGBUF?): {e}")
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(stop(CaseStep::Attach))?;
    let links = plan
        .attach
        .iter()
        .map(|p| object.attach(p, cgroup.as_ref().map(|c| c.dir.as_fd())))
        .collect::<Result<Vec<Link>, _>>()
        .map_err(|e| Stop {
            step: CaseStep::Attach,
            error: e.to_string(),
        })?;

    let mut out = StepsOutput::default();
    let mut workload: Option<Workload> = None;
    let result = (|| {
        for (i, step) in plan.steps.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let output = match step {
                Step::TestRun { program, input } => {
                    let fd = program_fd(object, program).map_err(|e| step_error(i, step, &e))?;
                    StepOutput::TestRun(
                        crate::test_run::run(fd.as_fd(), input)
                            .map_err(|e| step_error(i, step, &e))?,
                    )
                }
                live => {
                    if workload.is_none() {
                        workload = Some(
                            Workload::start(plan, cgroup.as_ref())
                                .map_err(|e| step_error(i, live, &e))?,
                        );
                    }
                    let w = workload.as_mut().expect("started above");
                    w.perform(index, deadline, &mut rings, &mut out.events, &mut out.lost)
                        .map_err(|e| step_error(i, live, &e))?
                }
            };
            drain(&mut rings, index, &mut out.events, &mut out.lost)
                .map_err(|e| step_error(i, step, &e))?;
            out.steps.push(output);
        }
        Ok(())
    })();
    let finished = workload.map(|w| w.finish(deadline));
    let last = u32::try_from(plan.steps.len().saturating_sub(1)).unwrap_or(u32::MAX);
    let drained = drain(&mut rings, last, &mut out.events, &mut out.lost);
    drop(links);
    drop(cgroup);
    result?;
    if let Some(Err(e)) = finished {
        return Err(Stop {
            step: CaseStep::Step,
            error: e,
        });
    }
    drained.map_err(stop(CaseStep::Step))?;
    Ok(out)
}

fn step_error(i: usize, step: &Step, error: &str) -> Stop {
    Stop {
        step: CaseStep::Step,
        error: format!("step {} ({step}): {error}", i + 1),
    }
}

fn drain(
    rings: &mut [EventBuffer],
    step: u32,
    events: &mut Vec<EventRecord>,
    lost: &mut Vec<LostEvents>,
) -> Result<(), String> {
    for ring in rings {
        let (records, dropped) = ring
            .consume()
            .map_err(|e| format!("reading events from `{}`: {e}", ring.map))?;
        if dropped > 0 {
            match lost.iter_mut().find(|l| l.map == ring.map) {
                Some(l) => l.count += dropped,
                None => lost.push(LostEvents {
                    map: ring.map.clone(),
                    count: dropped,
                }),
            }
        }
        events.extend(records.into_iter().map(|data| EventRecord {
            map: ring.map.clone(),
            step,
            data: data.into(),
        }));
    }
    Ok(())
}

fn create_file(path: &str, content: &[u8]) -> Result<(), String> {
    let path = PathBuf::from(path);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    fs::write(&path, content).map_err(|e| format!("creating {}: {e}", path.display()))
}

/// A fresh cgroup for one case, removed afterwards.
struct Cgroup {
    path: PathBuf,
    dir: OwnedFd,
}

impl Cgroup {
    fn create(case_id: &str) -> Result<Self, String> {
        let name: String = case_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(64)
            .collect();
        let path =
            PathBuf::from(CGROUP_ROOT).join(format!("harness-{}-{name}", std::process::id()));
        fs::create_dir(&path).map_err(|e| format!("creating cgroup {}: {e}", path.display()))?;
        let dir =
            fs::File::open(&path).map_err(|e| format!("opening cgroup {}: {e}", path.display()))?;
        Ok(Self {
            path,
            dir: dir.into(),
        })
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Empty once the workload exited; a failure leaves a directory in
        // a VM that is about to power off.
        let _ = fs::remove_dir(&self.path);
    }
}

/// The child process that performs a case's live steps.
struct Workload {
    pid: nix::unistd::Pid,
    commands: Option<fs::File>,
    answers: fs::File,
}

/// A step's answer on the pipe: errno, whether there is an exit status, the status.
const ANSWER_LEN: usize = 12;

impl Workload {
    fn start(plan: &StepsPlan, cgroup: Option<&Cgroup>) -> Result<Self, String> {
        let (cmd_read, cmd_write) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (ans_read, ans_write) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
        let procs = cgroup.map(|c| c.path.join("cgroup.procs"));
        // SAFETY: the runner is single-threaded when it runs cases, so the
        // child may allocate; it leaves with `_exit`, running no destructor
        // of the parent's state.
        match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
            nix::unistd::ForkResult::Child => {
                drop(cmd_write);
                drop(ans_read);
                let code = child(plan, procs, cmd_read.into(), ans_write.into());
                // SAFETY: leaving the child without unwinding the parent's state.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => Ok(Self {
                pid: child,
                commands: Some(cmd_write.into()),
                answers: ans_read.into(),
            }),
        }
    }

    fn perform(
        &mut self,
        index: u32,
        deadline: Instant,
        rings: &mut [EventBuffer],
        events: &mut Vec<EventRecord>,
        lost: &mut Vec<LostEvents>,
    ) -> Result<StepOutput, String> {
        self.commands
            .as_mut()
            .expect("open until finish")
            .write_all(&index.to_le_bytes())
            .map_err(|e| format!("the workload process is gone: {e}"))?;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                self.kill();
                return Err(
                    "did not finish before the case's timeout; the workload was killed".into(),
                );
            }
            let ready = wait_readable(self.answers.as_fd(), rings, remaining)?;
            if ready.0 {
                break;
            }
            if ready.1 {
                drain(rings, index, events, lost)?;
            }
        }
        let mut answer = [0u8; ANSWER_LEN];
        self.answers
            .read_exact(&mut answer)
            .map_err(|e| format!("the workload process died: {e}"))?;
        let word =
            |i: usize| i32::from_le_bytes(answer[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        Ok(StepOutput::Done {
            errno: word(0),
            exit_status: (word(1) != 0).then(|| word(2)),
        })
    }

    /// Lets the workload leave and reaps it.
    fn finish(mut self, deadline: Instant) -> Result<(), String> {
        drop(self.commands.take());
        loop {
            match nix::sys::wait::waitpid(self.pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) => {}
                Ok(_) | Err(_) => return Ok(()),
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err("the workload process did not exit before the case's timeout".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn kill(&self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Waits until `answers` or a ring buffer is readable: (answers, rings).
fn wait_readable(
    answers: BorrowedFd<'_>,
    rings: &[EventBuffer],
    timeout: Duration,
) -> Result<(bool, bool), String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let mut fds = vec![PollFd::new(answers, PollFlags::POLLIN)];
    fds.extend(
        rings
            .iter()
            .map(|r| PollFd::new(r.readiness_fd(), PollFlags::POLLIN)),
    );
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(format!("poll: {e}")),
    }
    let readable = |f: &PollFd<'_>| {
        f.revents().is_some_and(|r| {
            r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        })
    };
    Ok((readable(&fds[0]), fds[1..].iter().any(readable)))
}

/// The workload: joins the case's cgroup, then performs the steps it is
/// told, answering each. Returns its exit code.
fn child(
    plan: &StepsPlan,
    procs: Option<PathBuf>,
    mut commands: fs::File,
    mut answers: fs::File,
) -> i32 {
    if let Some(procs) = procs
        && let Err(e) = fs::write(&procs, "0")
    {
        eprintln!("workload: joining {}: {e}", procs.display());
        return 1;
    }
    let mut index = [0u8; 4];
    while commands.read_exact(&mut index).is_ok() {
        let Some(step) = plan.steps.get(u32::from_le_bytes(index) as usize) else {
            return 2;
        };
        let (errno, status) = perform(step);
        let mut answer = Vec::with_capacity(ANSWER_LEN);
        answer.extend(errno.to_le_bytes());
        answer.extend(i32::from(status.is_some()).to_le_bytes());
        answer.extend(status.unwrap_or(0).to_le_bytes());
        if answers.write_all(&answer).is_err() {
            return 3;
        }
    }
    0
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn result_errno(r: io::Result<()>) -> (i32, Option<i32>) {
    (r.err().map_or(0, |e| errno_of(&e)), None)
}

/// One live step in the workload: (errno, exit status).
fn perform(step: &Step) -> (i32, Option<i32>) {
    match step {
        Step::TestRun { .. } => (libc::EINVAL, None),
        Step::Exec { argv } => {
            let Some((program, args)) = argv.split_first() else {
                return (libc::EINVAL, None);
            };
            match std::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
            {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt as _;
                    let code = status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                    (0, Some(code))
                }
                Err(e) => (errno_of(&e), None),
            }
        }
        Step::Open { path, mode } => {
            let mut options = fs::OpenOptions::new();
            match mode {
                OpenMode::Read => options.read(true),
                OpenMode::Write => options.write(true),
                OpenMode::Create => options.write(true).create(true).truncate(true),
            };
            result_errno(options.open(path).map(drop))
        }
        Step::Connect { transport, address } => {
            let Ok(addr) = address.parse::<SocketAddr>() else {
                return (libc::EINVAL, None);
            };
            result_errno(connect(*transport, addr))
        }
        Step::SetUid { ruid, euid, suid } => {
            // SAFETY: plain system call.
            let r = unsafe { libc::setresuid(*ruid, *euid, *suid) };
            result_errno(if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            })
        }
        Step::SetGid { rgid, egid, sgid } => {
            // SAFETY: plain system call.
            let r = unsafe { libc::setresgid(*rgid, *egid, *sgid) };
            result_errno(if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            })
        }
        Step::Sleep { ms } => {
            std::thread::sleep(Duration::from_millis(u64::from(*ms)));
            (0, None)
        }
    }
}

fn connect(transport: Transport, addr: SocketAddr) -> io::Result<()> {
    match transport {
        Transport::Tcp => {
            // Something must answer an allowed connection on loopback.
            let _listener = if addr.ip().is_loopback() {
                TcpListener::bind(addr).ok()
            } else {
                None
            };
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map(drop)
        }
        Transport::Udp => {
            let local: SocketAddr = if addr.is_ipv4() {
                "0.0.0.0:0".parse().expect("valid")
            } else {
                "[::]:0".parse().expect("valid")
            };
            UdpSocket::bind(local)?.connect(addr)
        }
    }
}
