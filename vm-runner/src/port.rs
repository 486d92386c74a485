//! The channel records travel on to the host.
//!
//! QEMU's ISA debug console (`isa-debugcon`) when the VM has one: a write-only
//! I/O port with no driver, no tty layer and no interrupts, so one
//! `rep outsb` hands a whole record to QEMU. Under TCG that is about three
//! times cheaper per byte than the 16550 UART, whose THRE interrupt fires
//! every 16 bytes. The second UART (`/dev/ttyS1`) stays the fallback: for a
//! host that attaches no debug console, or a kernel locked down against
//! `ioperm`.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    os::fd::AsFd as _,
};

use nix::sys::termios::{self, SetArg};

/// The I/O port QEMU's debug console listens on (`iobase`), which also reads
/// back as its own number when the device is there.
const DEBUGCON_PORT: u16 = 0xe9;

/// The UART the host reads when there is no debug console (`-serial` #2).
const UART: &str = "/dev/ttyS1";

pub enum ResultsPort {
    Debugcon,
    Uart(File),
}

impl ResultsPort {
    pub fn open() -> io::Result<BufWriter<Self>> {
        let port = if debugcon_present() {
            Self::Debugcon
        } else {
            let uart = OpenOptions::new().write(true).open(UART)?;
            // Raw mode: no newline translation, no echo, 8-bit clean.
            let mut attrs = termios::tcgetattr(uart.as_fd())?;
            termios::cfmakeraw(&mut attrs);
            termios::tcsetattr(uart.as_fd(), SetArg::TCSANOW, &attrs)?;
            Self::Uart(uart)
        };
        Ok(BufWriter::with_capacity(64 << 10, port))
    }

    /// The device's name, for the host's records.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Debugcon => "debugcon",
            Self::Uart(_) => "ttyS1",
        }
    }

    /// Waits until every byte written has reached QEMU.
    pub fn drain(&self) -> io::Result<()> {
        match self {
            // Each `out` returns only once QEMU has taken the byte.
            Self::Debugcon => Ok(()),
            Self::Uart(f) => Ok(termios::tcdrain(f.as_fd())?),
        }
    }
}

impl Write for ResultsPort {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Debugcon => {
                outsb(DEBUGCON_PORT, buf);
                Ok(buf.len())
            }
            Self::Uart(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Debugcon => Ok(()),
            Self::Uart(f) => f.flush(),
        }
    }
}

/// Asks the kernel for the debug console's port and checks the device
/// answers on it.
fn debugcon_present() -> bool {
    // SAFETY: ioperm only changes this process's I/O permission bitmap.
    if unsafe { libc::ioperm(u64::from(DEBUGCON_PORT), 1, 1) } != 0 {
        return false;
    }
    let value: u8;
    // SAFETY: the port is ours (ioperm above); reading it has no side effect
    // on the debug console, and an absent device reads as 0xff.
    unsafe {
        std::arch::asm!("in al, dx", in("dx") DEBUGCON_PORT, out("al") value, options(nomem, nostack, preserves_flags));
    }
    value == DEBUGCON_PORT as u8
}

fn outsb(port: u16, buf: &[u8]) {
    // SAFETY: `rep outsb` reads `buf.len()` bytes from `buf` and writes them
    // to a port this process was granted with ioperm.
    unsafe {
        std::arch::asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") buf.as_ptr() => _,
            inout("rcx") buf.len() => _,
            options(nostack, preserves_flags, readonly),
        );
    }
}
