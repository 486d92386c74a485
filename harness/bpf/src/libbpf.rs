//! A thin owner of libbpf's `bpf_object`, and libbpf's messages captured per
//! call instead of printed.
//!
//! libbpf is the reference loader: section names, CO-RE, maps of maps, prog
//! array initialisation, global data, externs and kfuncs behave here exactly
//! as they do in the projects whose programs we test. Everything unsafe
//! about it stays in this file.

use std::{
    cell::RefCell,
    ffi::{CStr, CString, c_char, c_int, c_void},
    io,
    os::fd::{BorrowedFd, OwnedFd},
    ptr::NonNull,
    sync::Once,
};

use libbpf_sys as sys;

thread_local! {
    /// libbpf's warnings since the last [`take_messages`], when capturing.
    static MESSAGES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

unsafe extern "C" {
    // libc's, with libbpf's spelling of `va_list` (a pointer on x86_64).
    fn vsnprintf(
        s: *mut c_char,
        n: usize,
        format: *const c_char,
        ap: *mut sys::__va_list_tag,
    ) -> c_int;
}

unsafe extern "C" fn print(
    level: sys::libbpf_print_level,
    format: *const c_char,
    ap: *mut sys::__va_list_tag,
) -> c_int {
    if level == sys::LIBBPF_DEBUG {
        return 0;
    }
    let mut buf = [0 as c_char; 4096];
    // SAFETY: libbpf hands us a valid format and its arguments; vsnprintf
    // writes at most `buf.len()` bytes, NUL included.
    let n = unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), format, ap) };
    if n < 0 {
        return n;
    }
    // SAFETY: vsnprintf NUL-terminated `buf`.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    let text = text
        .trim_end()
        .strip_prefix("libbpf: ")
        .unwrap_or(text.trim_end());
    MESSAGES.with(|m| {
        if let Some(messages) = m.borrow_mut().as_mut() {
            messages.push(text.to_owned());
        }
    });
    n
}

/// Starts capturing libbpf's messages on this thread (nothing is printed:
/// libbpf writes to stderr by default, which inside a VM is the console).
fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `print` has the signature libbpf expects and is 'static.
        unsafe { sys::libbpf_set_print(Some(print)) };
    });
    MESSAGES.with(|m| *m.borrow_mut() = Some(Vec::new()));
}

/// libbpf's warnings since [`capture`].
pub(crate) fn take_messages() -> Vec<String> {
    MESSAGES.with(|m| m.borrow_mut().take().unwrap_or_default())
}

/// A libbpf call that failed: its errno and what libbpf said on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub errno: i32,
    pub messages: Vec<String>,
}

impl Failure {
    fn new(ret: c_int) -> Self {
        Self {
            errno: ret.saturating_neg(),
            messages: take_messages(),
        }
    }

    /// The errno as an error; libbpf's own codes (4000 and up, e.g.
    /// "Invalid ELF format") in libbpf's words.
    pub(crate) fn error(&self) -> io::Error {
        if self.errno < 4000 {
            return io::Error::from_raw_os_error(self.errno);
        }
        let mut buf = [0 as c_char; 256];
        // SAFETY: libbpf writes at most `buf.len()` bytes, NUL-terminated.
        unsafe { sys::libbpf_strerror(self.errno, buf.as_mut_ptr(), buf.len() as _) };
        // SAFETY: NUL-terminated above.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
        io::Error::other(format!("{text} (libbpf error {})", self.errno))
    }
}

/// An opened (and maybe loaded) `bpf_object`. Closing it closes every fd
/// libbpf made: callers keep what they need with [`dup`].
pub(crate) struct Object {
    ptr: NonNull<sys::bpf_object>,
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: we own the object; nothing borrowed from it outlives self.
        unsafe { sys::bpf_object__close(self.ptr.as_ptr()) }
    }
}

/// One program of an [`Object`].
#[derive(Clone, Copy)]
pub(crate) struct Program(NonNull<sys::bpf_program>);

/// One map of an [`Object`].
#[derive(Clone, Copy)]
pub(crate) struct Map(NonNull<sys::bpf_map>);

fn string(s: *const c_char) -> String {
    if s.is_null() {
        return String::new();
    }
    // SAFETY: libbpf returns NUL-terminated strings it owns.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

impl Object {
    /// Parses `data` (no syscalls). `name` becomes the prefix of global
    /// data maps' kernel names, as libbpf derives it from a file name.
    pub(crate) fn open(data: &[u8], name: &str) -> Result<Self, Failure> {
        capture();
        let name = CString::new(name.replace('\0', "")).expect("NULs removed");
        let opts = sys::bpf_object_open_opts {
            sz: size_of::<sys::bpf_object_open_opts>() as _,
            object_name: name.as_ptr(),
            ..Default::default()
        };
        // SAFETY: `data` and `opts` are valid for the call; libbpf copies
        // what it keeps.
        let ptr =
            unsafe { sys::bpf_object__open_mem(data.as_ptr().cast(), data.len() as _, &opts) };
        match NonNull::new(ptr) {
            Some(ptr) => {
                take_messages();
                Ok(Self { ptr })
            }
            None => Err(Failure::new(
                -io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EINVAL),
            )),
        }
    }

    pub(crate) fn programs(&self) -> Vec<Program> {
        let mut out = Vec::new();
        let mut prev: *mut sys::bpf_program = std::ptr::null_mut();
        loop {
            // SAFETY: iterating the object's own program table.
            prev = unsafe { sys::bpf_object__next_program(self.ptr.as_ptr(), prev) };
            match NonNull::new(prev) {
                Some(p) => out.push(Program(p)),
                None => return out,
            }
        }
    }

    pub(crate) fn maps(&self) -> Vec<Map> {
        let mut out = Vec::new();
        let mut prev: *mut sys::bpf_map = std::ptr::null_mut();
        loop {
            // SAFETY: iterating the object's own map table.
            prev = unsafe { sys::bpf_object__next_map(self.ptr.as_ptr(), prev) };
            match NonNull::new(prev) {
                Some(m) => out.push(Map(m)),
                None => return out,
            }
        }
    }

    /// Creates maps, loads BTF, applies relocations and loads every program
    /// whose autoload is set. libbpf undoes everything when this fails.
    pub(crate) fn load(&mut self) -> Result<(), Failure> {
        capture();
        // SAFETY: the object is open and not yet loaded.
        let ret = unsafe { sys::bpf_object__load(self.ptr.as_ptr()) };
        if ret == 0 {
            take_messages();
            Ok(())
        } else {
            Err(Failure::new(ret))
        }
    }
}

impl Program {
    pub(crate) fn name(self) -> String {
        // SAFETY: valid program of a live object.
        string(unsafe { sys::bpf_program__name(self.0.as_ptr()) })
    }

    pub(crate) fn section(self) -> String {
        // SAFETY: as above.
        string(unsafe { sys::bpf_program__section_name(self.0.as_ptr()) })
    }

    pub(crate) fn prog_type(self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::bpf_program__type(self.0.as_ptr()) }
    }

    pub(crate) fn expected_attach_type(self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::bpf_program__expected_attach_type(self.0.as_ptr()) }
    }

    pub(crate) fn flags(self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::bpf_program__flags(self.0.as_ptr()) }
    }

    /// Instructions after libbpf's relocations (subprograms appended once
    /// the object is loaded): veristat's "program size".
    pub(crate) fn insn_cnt(self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::bpf_program__insn_cnt(self.0.as_ptr()) as u32 }
    }

    pub(crate) fn set_autoload(self, on: bool) {
        // SAFETY: as above; only fails once loaded, which callers avoid.
        unsafe { sys::bpf_program__set_autoload(self.0.as_ptr(), on) };
    }

    pub(crate) fn set_kind(self, prog_type: u32, expected_attach_type: u32, flags: u32) {
        // SAFETY: as above, before load.
        unsafe {
            sys::bpf_program__set_type(self.0.as_ptr(), prog_type);
            sys::bpf_program__set_expected_attach_type(self.0.as_ptr(), expected_attach_type);
            sys::bpf_program__set_flags(self.0.as_ptr(), flags);
        }
    }

    /// The verifier log goes to `buf` at `level` (0: no log).
    ///
    /// # Safety
    /// `buf` must stay valid and unmoved until the object is loaded or closed.
    pub(crate) unsafe fn set_log(self, level: u32, buf: &mut [u8]) {
        // SAFETY: the caller keeps `buf` alive across the load.
        unsafe {
            if level == 0 || buf.is_empty() {
                sys::bpf_program__set_log_buf(self.0.as_ptr(), std::ptr::null_mut(), 0);
            } else {
                buf[0] = 0;
                sys::bpf_program__set_log_buf(
                    self.0.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len() as _,
                );
            }
            sys::bpf_program__set_log_level(self.0.as_ptr(), level);
        }
    }

    /// A descriptor of our own for the loaded program, which outlives the
    /// object. `None` when it is not loaded.
    pub(crate) fn dup_fd(self) -> Option<io::Result<OwnedFd>> {
        // SAFETY: as above.
        let fd = unsafe { sys::bpf_program__fd(self.0.as_ptr()) };
        dup(fd)
    }
}

impl Map {
    /// The name users write: `.rodata`, `.bss`, `.data.custom` for global
    /// data (libbpf's kernel name carries an object prefix), else the
    /// declared name.
    pub(crate) fn name(self) -> String {
        // SAFETY: valid map of a live object.
        let name = string(unsafe { sys::bpf_map__name(self.0.as_ptr()) });
        if self.is_internal()
            && !name.starts_with('.')
            && let Some(i) = name.find('.')
        {
            return name[i..].to_owned();
        }
        name
    }

    pub(crate) fn is_internal(self) -> bool {
        // SAFETY: as above.
        unsafe { sys::bpf_map__is_internal(self.0.as_ptr()) }
    }

    pub(crate) fn map_type(self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::bpf_map__type(self.0.as_ptr()) }
    }

    pub(crate) fn key_size(self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::bpf_map__key_size(self.0.as_ptr()) }
    }

    pub(crate) fn value_size(self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::bpf_map__value_size(self.0.as_ptr()) }
    }

    pub(crate) fn max_entries(self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::bpf_map__max_entries(self.0.as_ptr()) }
    }

    pub(crate) fn set_max_entries(self, n: u32) {
        // SAFETY: as above, before load.
        unsafe { sys::bpf_map__set_max_entries(self.0.as_ptr(), n) };
    }

    /// Never pin: a harness must not touch bpffs state it did not create.
    pub(crate) fn unpin(self) {
        // SAFETY: as above, before load.
        unsafe { sys::bpf_map__set_pin_path(self.0.as_ptr(), std::ptr::null()) };
    }

    pub(crate) fn btf_type_ids(self) -> (u32, u32) {
        // SAFETY: as above.
        unsafe {
            (
                sys::bpf_map__btf_key_type_id(self.0.as_ptr()),
                sys::bpf_map__btf_value_type_id(self.0.as_ptr()),
            )
        }
    }

    /// Contents of a global data section before load.
    pub(crate) fn initial_value(self) -> Vec<u8> {
        let mut size: usize = 0;
        // SAFETY: as above; libbpf returns a buffer of `size` bytes or NULL.
        let ptr = unsafe { sys::bpf_map__initial_value(self.0.as_ptr(), (&raw mut size).cast()) };
        if ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: libbpf says `ptr` holds `size` bytes.
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), size) }.to_vec()
    }

    /// A descriptor of our own for the created map. `None` before load.
    pub(crate) fn dup_fd(self) -> Option<io::Result<OwnedFd>> {
        // SAFETY: as above.
        let fd = unsafe { sys::bpf_map__fd(self.0.as_ptr()) };
        dup(fd)
    }
}

/// A descriptor of our own for something libbpf owns, so it outlives the
/// object (the kernel keeps programs and maps alive while any fd is open).
fn dup(fd: c_int) -> Option<io::Result<OwnedFd>> {
    // SAFETY: libbpf's fd is open while the object lives (we are inside a
    // method of one of its parts), and we only clone it.
    (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned())
}

/// libbpf's name of a program type (`sched_cls`, `xdp`, `tracing`, ...).
pub(crate) fn prog_type_name(prog_type: u32) -> Option<&'static str> {
    // SAFETY: returns a pointer into a static table, or NULL.
    let s = unsafe { sys::libbpf_bpf_prog_type_str(prog_type) };
    if s.is_null() {
        return None;
    }
    // SAFETY: static NUL-terminated strings.
    unsafe { CStr::from_ptr(s) }.to_str().ok()
}

/// A program attached to its hook; destroying the link detaches it. Only
/// links made here exist, so nothing the harness did not create is ever
/// detached.
pub(crate) struct Link(NonNull<sys::bpf_link>);

impl Drop for Link {
    fn drop(&mut self) {
        // SAFETY: we own the link.
        unsafe { sys::bpf_link__destroy(self.0.as_ptr()) };
    }
}

/// A failed libbpf call: its errno and what libbpf printed meanwhile.
fn failed_link(ptr: *mut sys::bpf_link) -> Result<Link, (io::Error, Vec<String>)> {
    match NonNull::new(ptr) {
        Some(ptr) => {
            take_messages();
            Ok(Link(ptr))
        }
        None => Err((io::Error::last_os_error(), take_messages())),
    }
}

impl Program {
    /// Attaches as libbpf does for the section name (kprobe, tracepoint,
    /// tp_btf, fentry, lsm, ...).
    pub(crate) fn attach(self) -> Result<Link, (io::Error, Vec<String>)> {
        capture();
        // SAFETY: the program belongs to a loaded object that outlives this call.
        failed_link(unsafe { sys::bpf_program__attach(self.0.as_ptr()) })
    }

    /// Attaches a cgroup program to the cgroup open as `cgroup`.
    pub(crate) fn attach_cgroup(
        self,
        cgroup: BorrowedFd<'_>,
    ) -> Result<Link, (io::Error, Vec<String>)> {
        use std::os::fd::AsRawFd as _;
        capture();
        // SAFETY: as above; the fd is open for the call.
        failed_link(unsafe { sys::bpf_program__attach_cgroup(self.0.as_ptr(), cgroup.as_raw_fd()) })
    }
}

/// A consumer of one `BPF_MAP_TYPE_RINGBUF`, collecting every record.
pub(crate) struct RingBuffer {
    ptr: NonNull<sys::ring_buffer>,
    /// Where the callback appends; boxed so its address is stable (the
    /// Vec itself moves with the struct). Freed after `ptr` (field order),
    /// which holds a pointer to it.
    #[expect(clippy::box_collection, reason = "the callback needs a stable address")]
    records: Box<Vec<Vec<u8>>>,
}

unsafe extern "C" fn on_record(ctx: *mut c_void, data: *mut c_void, size: sys::size_t) -> c_int {
    // SAFETY: `ctx` is the `records` box of the RingBuffer being consumed
    // (exclusively borrowed by `consume`), `data` holds `size` bytes.
    unsafe {
        let records = &mut *ctx.cast::<Vec<Vec<u8>>>();
        records.push(std::slice::from_raw_parts(data.cast::<u8>(), size as usize).to_vec());
    }
    0
}

impl RingBuffer {
    pub(crate) fn new(map: BorrowedFd<'_>) -> io::Result<Self> {
        use std::os::fd::AsRawFd as _;
        capture();
        let mut records: Box<Vec<Vec<u8>>> = Box::default();
        let ctx: *mut Vec<Vec<u8>> = &raw mut *records;
        // SAFETY: the map fd is open for the call (libbpf mmaps the map,
        // which stays valid after); `ctx` lives as long as the ring buffer.
        let ptr = unsafe {
            sys::ring_buffer__new(
                map.as_raw_fd(),
                Some(on_record),
                ctx.cast(),
                std::ptr::null(),
            )
        };
        take_messages();
        match NonNull::new(ptr) {
            Some(ptr) => Ok(Self { ptr, records }),
            None => Err(io::Error::last_os_error()),
        }
    }

    /// Every record committed since the last call, oldest first.
    pub(crate) fn consume(&mut self) -> io::Result<Vec<Vec<u8>>> {
        // SAFETY: we own the ring buffer; the callback only touches `records`.
        let n = unsafe { sys::ring_buffer__consume(self.ptr.as_ptr()) };
        if n < 0 {
            return Err(io::Error::from_raw_os_error(-n));
        }
        Ok(std::mem::take(&mut *self.records))
    }

    /// Readable when records are waiting.
    pub(crate) fn epoll_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the epoll fd lives as long as the ring buffer.
        unsafe { BorrowedFd::borrow_raw(sys::ring_buffer__epoll_fd(self.ptr.as_ptr())) }
    }
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        // SAFETY: we own it; nothing else holds it.
        unsafe { sys::ring_buffer__free(self.ptr.as_ptr()) };
    }
}

/// What a perf buffer's callbacks collect.
#[derive(Default)]
struct PerfSink {
    records: Vec<Vec<u8>>,
    lost: u64,
}

/// A consumer of one `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (one perf ring per
/// CPU), collecting every sample and counting the ones the kernel lost.
pub(crate) struct PerfBuffer {
    ptr: NonNull<sys::perf_buffer>,
    /// Boxed for a stable address; freed after `ptr` (field order).
    sink: Box<PerfSink>,
}

unsafe extern "C" fn on_sample(ctx: *mut c_void, _cpu: c_int, data: *mut c_void, size: sys::__u32) {
    // SAFETY: `ctx` is the sink of the PerfBuffer being consumed (exclusively
    // borrowed by `consume`), `data` holds `size` bytes.
    unsafe {
        let sink = &mut *ctx.cast::<PerfSink>();
        sink.records
            .push(std::slice::from_raw_parts(data.cast::<u8>(), size as usize).to_vec());
    }
}

unsafe extern "C" fn on_lost(ctx: *mut c_void, _cpu: c_int, count: sys::__u64) {
    // SAFETY: as above.
    unsafe { (*ctx.cast::<PerfSink>()).lost += count };
}

impl PerfBuffer {
    /// `pages` per CPU (a power of two).
    pub(crate) fn new(map: BorrowedFd<'_>, pages: usize) -> io::Result<Self> {
        use std::os::fd::AsRawFd as _;
        capture();
        let mut sink: Box<PerfSink> = Box::default();
        let ctx: *mut PerfSink = &raw mut *sink;
        // SAFETY: the map fd is open for the call; `ctx` lives as long as
        // the perf buffer.
        let ptr = unsafe {
            sys::perf_buffer__new(
                map.as_raw_fd(),
                pages as _,
                Some(on_sample),
                Some(on_lost),
                ctx.cast(),
                std::ptr::null(),
            )
        };
        take_messages();
        match NonNull::new(ptr) {
            Some(ptr) => Ok(Self { ptr, sink }),
            None => Err(io::Error::last_os_error()),
        }
    }

    /// Samples since the last call, and how many the kernel lost meanwhile.
    pub(crate) fn consume(&mut self) -> io::Result<(Vec<Vec<u8>>, u64)> {
        // SAFETY: we own the perf buffer; the callbacks only touch `sink`.
        let n = unsafe { sys::perf_buffer__consume(self.ptr.as_ptr()) };
        if n < 0 {
            return Err(io::Error::from_raw_os_error(-n));
        }
        let sink = std::mem::take(&mut *self.sink);
        Ok((sink.records, sink.lost))
    }

    pub(crate) fn epoll_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the epoll fd lives as long as the perf buffer.
        unsafe { BorrowedFd::borrow_raw(sys::perf_buffer__epoll_fd(self.ptr.as_ptr())) }
    }
}

impl Drop for PerfBuffer {
    fn drop(&mut self) {
        // SAFETY: we own it.
        unsafe { sys::perf_buffer__free(self.ptr.as_ptr()) };
    }
}
