//! Thin wrappers over bpf(2). Each returns the kernel's errno untouched so
//! callers can report exactly what the kernel said.

use std::{
    ffi::CStr,
    io, mem,
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
};

use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_insn, bpf_prog_info};

pub(crate) fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i64> {
    loop {
        // SAFETY: `attr` is a valid, fully initialised bpf_attr of the size we pass.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd as libc::c_int,
                std::ptr::from_mut(attr),
                mem::size_of::<bpf_attr>(),
            )
        };
        if ret >= 0 {
            return Ok(ret);
        }
        let err = io::Error::last_os_error();
        // A signal can interrupt a long verification; libbpf retries the same way.
        if err.raw_os_error() != Some(libc::EAGAIN) && err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

fn bpf_fd(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    // SAFETY: the kernel returned a fresh file descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub(crate) fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a plain C union for which all-zero is the documented default.
    unsafe { mem::zeroed() }
}

fn copy_name(dst: &mut [libc::c_char; 16], name: &str) {
    // The kernel accepts alphanumerics, '_' and '.', and at most 15 bytes.
    for (d, s) in dst
        .iter_mut()
        .zip(
            name.bytes()
                .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.'),
        )
        .take(15)
    {
        *d = s as libc::c_char;
    }
}

/// Everything `BPF_PROG_LOAD` takes that the loader fills in.
pub(crate) struct ProgLoadAttrs<'a> {
    pub name: &'a str,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub attach_btf_id: u32,
    pub flags: u32,
    pub insns: &'a [bpf_insn],
    pub license: &'a CStr,
    pub kern_version: u32,
    pub btf_fd: Option<BorrowedFd<'a>>,
    pub func_info: &'a [u8],
    pub func_info_cnt: u32,
    pub func_info_rec_size: u32,
    pub line_info: &'a [u8],
    pub line_info_cnt: u32,
    pub line_info_rec_size: u32,
}

/// Returns the program fd (or the error) and `log_true_size` (0 on kernels
/// before 6.4, which do not report it).
pub(crate) fn prog_load(
    a: &ProgLoadAttrs<'_>,
    log_level: u32,
    log: &mut [u8],
) -> (io::Result<OwnedFd>, u32) {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the PROG_LOAD member of the union.
    let u = unsafe { &mut attr.__bindgen_anon_3 };
    copy_name(&mut u.prog_name, a.name);
    u.prog_type = a.prog_type;
    u.expected_attach_type = a.expected_attach_type;
    u.attach_btf_id = a.attach_btf_id;
    u.prog_flags = a.flags;
    u.insns = a.insns.as_ptr() as u64;
    u.insn_cnt = a.insns.len() as u32;
    u.license = a.license.as_ptr() as u64;
    u.kern_version = a.kern_version;
    if let Some(btf) = a.btf_fd {
        u.prog_btf_fd = btf.as_raw_fd() as u32;
        if a.func_info_rec_size > 0 && a.func_info_cnt > 0 {
            u.func_info = a.func_info.as_ptr() as u64;
            u.func_info_cnt = a.func_info_cnt;
            u.func_info_rec_size = a.func_info_rec_size;
        }
        if a.line_info_rec_size > 0 && a.line_info_cnt > 0 {
            u.line_info = a.line_info.as_ptr() as u64;
            u.line_info_cnt = a.line_info_cnt;
            u.line_info_rec_size = a.line_info_rec_size;
        }
    }
    if !log.is_empty() {
        u.log_level = log_level;
        u.log_buf = log.as_mut_ptr() as u64;
        u.log_size = log.len() as u32;
    }
    let res = bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr);
    // SAFETY: reading back an integer field the kernel may have written.
    let true_size = unsafe { attr.__bindgen_anon_3.log_true_size };
    (res, true_size)
}

pub(crate) fn map_lookup(fd: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the map-element member of the union.
    let u = unsafe { &mut attr.__bindgen_anon_2 };
    u.map_fd = fd.as_raw_fd() as u32;
    u.key = key.as_ptr() as u64;
    u.__bindgen_anon_1.value = value.as_mut_ptr() as u64;
    match bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn map_update(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: as above.
    let u = unsafe { &mut attr.__bindgen_anon_2 };
    u.map_fd = fd.as_raw_fd() as u32;
    u.key = key.as_ptr() as u64;
    u.__bindgen_anon_1.value = value.as_ptr() as u64;
    u.flags = flags;
    bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

pub(crate) fn map_delete(fd: BorrowedFd<'_>, key: &[u8]) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: as above.
    let u = unsafe { &mut attr.__bindgen_anon_2 };
    u.map_fd = fd.as_raw_fd() as u32;
    u.key = key.as_ptr() as u64;
    bpf(bpf_cmd::BPF_MAP_DELETE_ELEM, &mut attr).map(drop)
}

/// `BPF_MAP_UPDATE_BATCH` of `count` keys and values laid out back to back;
/// `Ok(false)` when the kernel has no batch operations for this map type.
pub(crate) fn map_update_batch(
    fd: BorrowedFd<'_>,
    keys: &[u8],
    values: &[u8],
    count: u32,
) -> io::Result<bool> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the batch member of the union.
    let b = unsafe { &mut attr.batch };
    b.map_fd = fd.as_raw_fd() as u32;
    b.keys = keys.as_ptr() as u64;
    b.values = values.as_ptr() as u64;
    b.count = count;
    batch_result(bpf(bpf_cmd::BPF_MAP_UPDATE_BATCH, &mut attr), &attr, count)
}

/// `BPF_MAP_LOOKUP_BATCH` of up to `count` entries from the start; `Ok(false)`
/// when the kernel has no batch operations for this map type or returned
/// fewer than `count`.
pub(crate) fn map_lookup_batch(
    fd: BorrowedFd<'_>,
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> io::Result<bool> {
    let mut attr = zeroed_attr();
    let mut out_batch = [0u8; 8];
    // SAFETY: as above.
    let b = unsafe { &mut attr.batch };
    b.map_fd = fd.as_raw_fd() as u32;
    b.out_batch = out_batch.as_mut_ptr() as u64;
    b.keys = keys.as_mut_ptr() as u64;
    b.values = values.as_mut_ptr() as u64;
    b.count = count;
    match bpf(bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr) {
        // The whole map in one call ends with ENOENT (no more entries).
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => batch_result(Ok(0), &attr, count),
        other => batch_result(other, &attr, count),
    }
}

/// Whether a batch did all `count`: unsupported (`EINVAL` from kernels
/// whose map type has no batch ops, `ENOTSUPP` 524) is `false`, not an
/// error, so callers fall back to one element at a time.
fn batch_result(result: io::Result<i64>, attr: &bpf_attr, count: u32) -> io::Result<bool> {
    match result {
        // SAFETY: the kernel wrote back `count` in the batch member.
        Ok(_) => Ok(unsafe { attr.batch.count } == count),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(524)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Returns false when `key` was the last key (or the map is empty).
pub(crate) fn map_next_key(
    fd: BorrowedFd<'_>,
    key: Option<&[u8]>,
    next: &mut [u8],
) -> io::Result<bool> {
    let mut attr = zeroed_attr();
    // SAFETY: as above.
    let u = unsafe { &mut attr.__bindgen_anon_2 };
    u.map_fd = fd.as_raw_fd() as u32;
    if let Some(key) = key {
        u.key = key.as_ptr() as u64;
    }
    u.__bindgen_anon_1.next_key = next.as_mut_ptr() as u64;
    match bpf(bpf_cmd::BPF_MAP_GET_NEXT_KEY, &mut attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What `BPF_OBJ_GET_INFO_BY_FD` says about a loaded program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    pub prog_type: u32,
    pub tag: [u8; 8],
    pub xlated_len: u32,
    pub jited_len: u32,
    /// 0 on kernels before 5.16.
    pub verified_insns: u32,
    pub nr_map_ids: u32,
}

pub fn prog_info(fd: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    // SAFETY: bpf_prog_info is plain data; zero is a valid value.
    let mut info: bpf_prog_info = unsafe { mem::zeroed() };
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the OBJ_GET_INFO member.
    let u = unsafe { &mut attr.info };
    u.bpf_fd = fd.as_raw_fd() as u32;
    // Older kernels accept a larger struct as long as the tail is zero.
    u.info_len = mem::size_of::<bpf_prog_info>() as u32;
    u.info = std::ptr::from_mut(&mut info) as u64;
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(ProgInfo {
        id: info.id,
        prog_type: info.type_,
        tag: info.tag,
        xlated_len: info.xlated_prog_len,
        jited_len: info.jited_prog_len,
        verified_insns: info.verified_insns,
        nr_map_ids: info.nr_map_ids,
    })
}

/// Number of possible CPUs: the stride of per-CPU map values.
pub fn possible_cpus() -> io::Result<usize> {
    aya::util::nr_cpus().map_err(|(path, e)| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// Names of the programs of `prog_type` loaded on this kernel, by anyone
/// (read-only: each is opened by id for its info and closed again).
pub(crate) fn loaded_programs_of_type(prog_type: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut id = 0u32;
    // SAFETY: plain bpf(2) wrappers with valid pointers to locals.
    while unsafe { libbpf_sys::bpf_prog_get_next_id(id, &mut id) } == 0 {
        // SAFETY: as above.
        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            continue;
        }
        // SAFETY: the kernel gave us this fd; we own and close it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: bpf_prog_info is plain data; zero is a valid value.
        let mut info: libbpf_sys::bpf_prog_info = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: `info` has `len` bytes.
        let ret =
            unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
        if ret == 0 && info.type_ == prog_type {
            let name: Vec<u8> = info
                .name
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8)
                .collect();
            names.push(format!("{} (id {id})", String::from_utf8_lossy(&name)));
        }
    }
    names
}
