//! The test-run action: the program runs once (or `repeat` times) in the
//! kernel on crafted input, through `BPF_PROG_TEST_RUN`.

use std::os::fd::BorrowedFd;

use harness_bpf::TestRunInput;
use harness_protocol::{RunInput, TestRunOutput};

/// The kernel-internal ENOTSUPP (524) leaks to user space from test_run.
const KERNEL_ENOTSUPP: i32 = 524;

pub(crate) fn run(program: BorrowedFd<'_>, input: &RunInput) -> Result<TestRunOutput, String> {
    let out = harness_bpf::test_run(
        program,
        &TestRunInput {
            data: &input.data,
            ctx: input.ctx.as_deref(),
            data_out_size: input.data_out_size as usize,
            ctx_out_size: input.ctx_out_size as usize,
            repeat: input.repeat,
            flags: input.flags,
        },
    )
    .map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(KERNEL_ENOTSUPP | libc::EOPNOTSUPP) => {
                " (this kernel has no BPF_PROG_TEST_RUN for the program's type)"
            }
            Some(libc::EINVAL) => {
                " (the kernel refused the input: packet shorter than 14 bytes, or a context field this program type may not set)"
            }
            _ => "",
        };
        format!("BPF_PROG_TEST_RUN failed: {e}{hint}")
    })?;
    Ok(TestRunOutput {
        retval: out.retval,
        data_out: out.data_out.into(),
        ctx_out: out.ctx_out.map(Into::into),
        duration_ns: out.duration_ns,
    })
}
