//! Feature probes: ask the kernel by trying, never by version number.

use std::io;

use aya_obj::generated::{bpf_insn, bpf_map_type};

use crate::{
    log::{LogOptions, with_log},
    sys::{self, ProgLoadAttrs},
};

/// Outcome of a probe: `Ok(true)` available, `Ok(false)` not available,
/// `Err` when the kernel's answer settles nothing (e.g. missing privileges).
pub type ProbeResult = Result<bool, ProbeError>;

/// Why a probe settled nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("unknown map type {0}")]
    UnknownMapType(u32),
    #[error("{0}")]
    Aya(String),
    #[error("probe load failed: {0}")]
    Load(io::Error),
    #[error("probe load failed without a log: {0}")]
    LoadWithoutLog(io::Error),
    #[error("loading a probe program of type {prog_type}: {error}")]
    LoadForTestRun { prog_type: u32, error: io::Error },
    #[error("test run with a context: {0}")]
    TestRun(io::Error),
}

/// Can a map of `map_type` be created?
pub fn map_type(map_type: u32) -> ProbeResult {
    let ty = bpf_map_type::try_from(map_type).map_err(|_| ProbeError::UnknownMapType(map_type))?;
    let ty = aya::maps::MapType::try_from(ty).map_err(|e| ProbeError::Aya(e.to_string()))?;
    aya::sys::is_map_supported(ty).map_err(|e| ProbeError::Aya(e.to_string()))
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    let mut i = bpf_insn {
        code,
        _bitfield_align_1: [],
        _bitfield_1: Default::default(),
        off,
        imm,
    };
    i.set_dst_reg(dst);
    i.set_src_reg(src);
    i
}

const MOV64_IMM: u8 = 0xb7;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;

/// A GPL program of `prog_type` with no BTF and no attach target.
fn probe_attrs(prog_type: u32, insns: &[bpf_insn]) -> ProgLoadAttrs<'_> {
    ProgLoadAttrs {
        name: "harness_probe",
        prog_type,
        expected_attach_type: 0,
        attach_btf_id: 0,
        flags: 0,
        insns,
        license: c"GPL",
        kern_version: aya::util::KernelVersion::current().map_or(0, |v| v.code()),
        btf_fd: None,
        func_info: &[],
        func_info_cnt: 0,
        func_info_rec_size: 0,
        line_info: &[],
        line_info_cnt: 0,
        line_info_rec_size: 0,
    }
}

fn try_load(prog_type: u32, insns: &[bpf_insn]) -> (io::Result<()>, String) {
    let attrs = probe_attrs(prog_type, insns);
    let opts = LogOptions {
        level: 1,
        initial_size: 64 << 10,
        max_size: 1 << 20,
        ..LogOptions::default()
    };
    let (res, log) = with_log(opts, |level, buf| sys::prog_load(&attrs, level, buf));
    (res.map(drop), log.text)
}

/// Can a program of `prog_type` be loaded? (A trivial `return 0`.)
pub fn prog_type(prog_type: u32) -> ProbeResult {
    let prog = [insn(MOV64_IMM, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)];
    match try_load(prog_type, &prog) {
        (Ok(()), _) => Ok(true),
        // The verifier ran, so the kernel knows the type.
        (Err(_), log) if !log.trim().is_empty() => Ok(true),
        // Unknown types are refused before verification, without a log.
        // (Types that need an attach target look the same; probe those with
        // a real program instead.)
        (Err(e), _) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        (Err(e), _) => Err(ProbeError::Load(e)),
    }
}

/// Can a program of `prog_type` call helper number `helper`?
pub fn helper(prog_type: u32, helper: u32) -> ProbeResult {
    let prog = [
        insn(CALL, 0, 0, 0, helper as i32),
        insn(MOV64_IMM, 0, 0, 0, 0),
        insn(EXIT, 0, 0, 0, 0),
    ];
    match try_load(prog_type, &prog) {
        (Ok(()), _) => Ok(true),
        // The verifier names unknown or forbidden helpers explicitly; any
        // other complaint (bad arguments) means the helper exists.
        (Err(_), log) if log.contains("invalid func") || log.contains("unknown func") => Ok(false),
        (Err(_), log) if !log.is_empty() => Ok(true),
        (Err(e), _) => Err(ProbeError::LoadWithoutLog(e)),
    }
}

/// Does `BPF_PROG_TEST_RUN` accept a context for `prog_type`? Runs a trivial
/// program on a minimal frame with a zeroed context (for XDP, `data_end` set
/// to the frame's size, as the kernel requires).
pub fn test_run_ctx(prog_type: u32) -> ProbeResult {
    use aya_obj::generated::bpf_prog_type::*;
    let prog = [insn(MOV64_IMM, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)];
    let (fd, _) = sys::prog_load(&probe_attrs(prog_type, &prog), 0, &mut []);
    let fd = fd.map_err(|error| ProbeError::LoadForTestRun { prog_type, error })?;
    let data = [0u8; 64];
    let mut ctx = if prog_type == BPF_PROG_TYPE_XDP as u32 {
        vec![0u8; 24]
    } else {
        vec![0u8; 192]
    };
    if prog_type == BPF_PROG_TYPE_XDP as u32 {
        ctx[4..8].copy_from_slice(&(data.len() as u32).to_ne_bytes());
    }
    let input = crate::TestRunInput {
        data: &data,
        ctx: Some(&ctx),
        data_out_size: 128,
        ..Default::default()
    };
    match crate::test_run(std::os::fd::AsFd::as_fd(&fd), &input) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(ProbeError::TestRun(e)),
    }
}
