//! `BPF_PROG_TEST_RUN`: runs a loaded program on a crafted input, without
//! attaching it anywhere. This is the only way the harness runs programs on
//! the host kernel.

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
};

use aya_obj::generated::bpf_cmd;

use crate::sys::{bpf, zeroed_attr};

#[derive(Clone, Debug, Default)]
pub struct TestRunInput<'a> {
    pub data: &'a [u8],
    pub ctx: Option<&'a [u8]>,
    /// Room for the output packet. Grown automatically when the kernel says
    /// the output did not fit.
    pub data_out_size: usize,
    pub ctx_out_size: usize,
    /// 0 and 1 both mean one run.
    pub repeat: u32,
    pub flags: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRunOutput {
    pub retval: u32,
    pub data_out: Vec<u8>,
    pub ctx_out: Option<Vec<u8>>,
    /// Average per repetition, as measured by the kernel.
    pub duration_ns: u32,
}

pub fn test_run(prog: BorrowedFd<'_>, input: &TestRunInput<'_>) -> io::Result<TestRunOutput> {
    let mut data_out = vec![0u8; input.data_out_size];
    let mut ctx_out = vec![0u8; input.ctx_out_size];
    loop {
        let mut attr = zeroed_attr();
        // SAFETY: writing plain integer fields of the PROG_TEST_RUN member.
        let t = unsafe { &mut attr.test };
        t.prog_fd = prog.as_raw_fd() as u32;
        // No pointer at all without data: raw_tp, tracing and syscall
        // programs refuse any (an empty slice's pointer is not NULL).
        if !input.data.is_empty() {
            t.data_in = input.data.as_ptr() as u64;
            t.data_size_in = input.data.len() as u32;
        }
        if !data_out.is_empty() {
            t.data_out = data_out.as_mut_ptr() as u64;
            t.data_size_out = data_out.len() as u32;
        }
        if let Some(ctx) = input.ctx {
            t.ctx_in = ctx.as_ptr() as u64;
            t.ctx_size_in = ctx.len() as u32;
        }
        if !ctx_out.is_empty() {
            t.ctx_out = ctx_out.as_mut_ptr() as u64;
            t.ctx_size_out = ctx_out.len() as u32;
        }
        t.repeat = input.repeat;
        t.flags = input.flags;
        let res = bpf(bpf_cmd::BPF_PROG_TEST_RUN, &mut attr);
        // SAFETY: reading back fields the kernel wrote.
        let t = unsafe { attr.test };
        match res {
            // The output did not fit: the kernel reports the size it needed.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC)
                    && (t.data_size_out as usize > data_out.len()
                        || t.ctx_size_out as usize > ctx_out.len()) =>
            {
                data_out.resize(data_out.len().max(t.data_size_out as usize), 0);
                ctx_out.resize(ctx_out.len().max(t.ctx_size_out as usize), 0);
            }
            Err(e) => return Err(e),
            Ok(_) => {
                data_out.truncate(t.data_size_out as usize);
                let ctx_out = (input.ctx_out_size > 0).then(|| {
                    ctx_out.truncate(t.ctx_size_out as usize);
                    ctx_out
                });
                return Ok(TestRunOutput {
                    retval: t.retval,
                    data_out,
                    ctx_out,
                    duration_ns: t.duration,
                });
            }
        }
    }
}
