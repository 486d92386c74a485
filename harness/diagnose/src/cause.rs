//! Why the verifier said no: stable ids for its messages.
//!
//! Each cause is matched on the kernel's error line, in every wording the
//! kernels from 5.10 to 7.3 use for it (confirmed on real logs in
//! `testdata/` where a program of the galleries triggers it, from
//! `kernel/bpf/verifier.c` otherwise). A message no rule knows is
//! [`Cause::Unknown`].

use std::{fmt, sync::LazyLock};

use regex::Regex;

use crate::category::Category;
use serde::{Serialize, Serializer};

/// The reason for a rejection. The id ([`Cause::id`]) is stable: scripts and
/// snapshots may rely on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// `R0 invalid mem access 'map_value_or_null'`
    NullDeref,
    /// `R6 invalid mem access 'scalar'` (`'inv'` before 5.18)
    ScalarDeref,
    /// `R1 invalid mem access 'map_ptr'`, `'pkt_end'`, `'sock_common'`
    BadPointerDeref,
    /// `invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)`
    PacketBounds,
    /// `invalid access to map value, value_size=128 off=128 size=8`
    MapValueBounds,
    /// `invalid access to map key, key_size=4 off=4 size=4` (6.0 on)
    MapKeyBounds,
    /// `invalid access to memory, mem_size=16 off=16 size=8`
    MemBounds,
    /// `invalid bpf_context access off=80 size=4`
    BadCtxAccess,
    /// `dereference of modified ctx ptr R1 off=8 disallowed`
    ModifiedCtx,
    /// `R0 unbounded memory access, make sure to bounds check any such access`
    UnboundedMemAccess,
    /// `R0 min value is negative, either use unsigned index or do a if (index >=0) check.`
    NegativeIndex,
    /// `math between map_value pointer and register with unbounded min value is not allowed`
    UnboundedPointerMath,
    /// `value -2147483648 makes pkt pointer be out of bounds`
    PointerOutOfBounds,
    /// `R0 pointer arithmetic on map_value_or_null prohibited, null-check it first`
    NullablePointerArith,
    /// `R1 pointer arithmetic on pkt_end prohibited`
    PointerArithProhibited,
    /// `R0 !read_ok`
    UninitRegister,
    /// `invalid indirect read from stack R2 off -8+0 size 8`, `invalid read from stack R2 off -8+0 size 8` (6.14 on)
    UninitStackRead,
    /// `invalid variable-offset write to stack R2 var_off=(0x0; 0xff) off=-64 size=1`
    VariableStackAccess,
    /// `invalid write to stack R1 off=-520 size=8`, `invalid stack off=-520 size=8` (older)
    StackOutOfBounds,
    /// `misaligned stack access off (0x0; 0x0)+0+-7 size 4` (`off 0+-7` on 7.2)
    MisalignedAccess,
    /// `invalid size of register fill`
    RegisterFillSize,
    /// `write into map forbidden, value_size=4 off=0 size=4`
    ReadonlyMapWrite,
    /// `cannot write into packet`
    PacketWriteNotAllowed,
    /// `R2 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value` (`type=inv` before 5.18)
    ArgTypeMismatch,
    /// `Possibly NULL pointer passed to helper arg2` (6.4 on)
    NullableArg,
    /// `R4 min value is negative, either use unsigned or 'var &= const'`
    HelperSizeUnbounded,
    /// `invalid zero-sized read` (up to 6.7), `R4 invalid zero-sized read: u64=[0,4294967295]` (6.8 on)
    HelperSizeZero,
    /// `cannot pass map_type 1 into func bpf_ringbuf_output#130`
    MapTypeMismatch,
    /// `Unreleased reference id=2 alloc_insn=4`
    LeakedReference,
    /// `func bpf_sk_release#86 reference has not been acquired before`
    /// (5.10), `R1 must be referenced when passed to release function`
    /// (6.1 on), `release helper bpf_sk_release expects referenced
    /// PTR_TO_BTF_ID passed to R1` (7.2)
    ReleaseUnacquired,
    /// `bpf_spin_unlock is missing` (up to 6.12), `BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region` (later)
    LockHeldAtExit,
    /// `function calls are not allowed while holding a lock`
    CallUnderLock,
    /// `bpf_rcu_read_unlock is missing` (6.2 on)
    RcuLockHeldAtExit,
    /// `unknown func bpf_skb_store_bytes#9` (up to 6.9), `program of this type cannot use helper bpf_skb_store_bytes#9` (6.10 on)
    InvalidHelper,
    /// `invalid func unknown#181`
    UnknownHelper,
    /// `calling kernel function bpf_task_acquire is not allowed`
    KfuncNotAllowed,
    /// `helper call might sleep in a non-sleepable prog`, `program must be sleepable to call sleepable kfunc bpf_put_file`
    SleepableInNonSleepable,
    /// `cannot call GPL-restricted function from non-GPL compatible program`
    GplOnly,
    /// `R1 leaks addr into map`
    PointerLeak,
    /// `R1 pointer comparison prohibited`
    PointerComparison,
    /// `infinite loop detected at insn 9`
    UnboundedLoop,
    /// `back-edge from insn 9 to 7`
    BackEdge,
    /// `BPF program is too large. Processed 1000001 insn`
    ProgramTooLarge,
    /// `The sequence of 8193 jumps is too complex.`
    JumpsTooComplex,
    /// `combined stack size of 2 calls is 576. Too large`
    StackTooLarge,
    /// `the call stack of 9 frames is too deep !`
    CallStackTooDeep,
    /// `At program exit the register R0 has value (0x2; 0x0) should have been in (0x0; 0x1)` (up to 6.5), `... has smin=2 smax=2 should have been in [0, 1]` (later)
    ReturnRange,
    /// `unreachable insn 5`
    UnreachableInsn,
    /// `jump out of range from insn 3 to 9`
    JumpOutOfRange,
    /// `last insn is not an exit or jmp`
    LastInsnNotExit,
    /// `missing btf func_info`
    MissingFuncInfo,
    /// `Global function f() doesn't return scalar. Only those are supported.`
    GlobalFuncReturn,
    /// A message this crate does not know yet.
    Unknown,
}

impl Cause {
    /// Every cause, [`Cause::Unknown`] last.
    pub const ALL: [Cause; 53] = [
        Cause::NullDeref,
        Cause::ScalarDeref,
        Cause::BadPointerDeref,
        Cause::PacketBounds,
        Cause::MapValueBounds,
        Cause::MapKeyBounds,
        Cause::MemBounds,
        Cause::BadCtxAccess,
        Cause::ModifiedCtx,
        Cause::UnboundedMemAccess,
        Cause::NegativeIndex,
        Cause::UnboundedPointerMath,
        Cause::PointerOutOfBounds,
        Cause::NullablePointerArith,
        Cause::PointerArithProhibited,
        Cause::UninitRegister,
        Cause::UninitStackRead,
        Cause::VariableStackAccess,
        Cause::StackOutOfBounds,
        Cause::MisalignedAccess,
        Cause::RegisterFillSize,
        Cause::ReadonlyMapWrite,
        Cause::PacketWriteNotAllowed,
        Cause::ArgTypeMismatch,
        Cause::NullableArg,
        Cause::HelperSizeUnbounded,
        Cause::HelperSizeZero,
        Cause::MapTypeMismatch,
        Cause::LeakedReference,
        Cause::ReleaseUnacquired,
        Cause::LockHeldAtExit,
        Cause::CallUnderLock,
        Cause::RcuLockHeldAtExit,
        Cause::InvalidHelper,
        Cause::UnknownHelper,
        Cause::KfuncNotAllowed,
        Cause::SleepableInNonSleepable,
        Cause::GplOnly,
        Cause::PointerLeak,
        Cause::PointerComparison,
        Cause::UnboundedLoop,
        Cause::BackEdge,
        Cause::ProgramTooLarge,
        Cause::JumpsTooComplex,
        Cause::StackTooLarge,
        Cause::CallStackTooDeep,
        Cause::ReturnRange,
        Cause::UnreachableInsn,
        Cause::JumpOutOfRange,
        Cause::LastInsnNotExit,
        Cause::MissingFuncInfo,
        Cause::GlobalFuncReturn,
        Cause::Unknown,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Cause::NullDeref => "null-deref",
            Cause::ScalarDeref => "scalar-deref",
            Cause::BadPointerDeref => "bad-pointer-deref",
            Cause::PacketBounds => "packet-bounds",
            Cause::MapValueBounds => "map-value-bounds",
            Cause::MapKeyBounds => "map-key-bounds",
            Cause::MemBounds => "mem-bounds",
            Cause::BadCtxAccess => "bad-ctx-access",
            Cause::ModifiedCtx => "modified-ctx",
            Cause::UnboundedMemAccess => "unbounded-mem-access",
            Cause::NegativeIndex => "negative-index",
            Cause::UnboundedPointerMath => "unbounded-pointer-math",
            Cause::PointerOutOfBounds => "pointer-out-of-bounds",
            Cause::NullablePointerArith => "nullable-pointer-arith",
            Cause::PointerArithProhibited => "pointer-arith-prohibited",
            Cause::UninitRegister => "uninit-register",
            Cause::UninitStackRead => "uninit-stack-read",
            Cause::VariableStackAccess => "variable-stack-access",
            Cause::StackOutOfBounds => "stack-out-of-bounds",
            Cause::MisalignedAccess => "misaligned-access",
            Cause::RegisterFillSize => "register-fill-size",
            Cause::ReadonlyMapWrite => "readonly-map-write",
            Cause::PacketWriteNotAllowed => "packet-write-not-allowed",
            Cause::ArgTypeMismatch => "arg-type-mismatch",
            Cause::NullableArg => "nullable-arg",
            Cause::HelperSizeUnbounded => "helper-size-unbounded",
            Cause::HelperSizeZero => "helper-size-zero",
            Cause::MapTypeMismatch => "map-type-mismatch",
            Cause::LeakedReference => "leaked-reference",
            Cause::ReleaseUnacquired => "release-unacquired",
            Cause::LockHeldAtExit => "lock-held-at-exit",
            Cause::CallUnderLock => "call-under-lock",
            Cause::RcuLockHeldAtExit => "rcu-lock-held-at-exit",
            Cause::InvalidHelper => "invalid-helper",
            Cause::UnknownHelper => "unknown-helper",
            Cause::KfuncNotAllowed => "kfunc-not-allowed",
            Cause::SleepableInNonSleepable => "sleepable-in-non-sleepable",
            Cause::GplOnly => "gpl-only",
            Cause::PointerLeak => "pointer-leak",
            Cause::PointerComparison => "pointer-comparison",
            Cause::UnboundedLoop => "unbounded-loop",
            Cause::BackEdge => "back-edge",
            Cause::ProgramTooLarge => "program-too-large",
            Cause::JumpsTooComplex => "jumps-too-complex",
            Cause::StackTooLarge => "stack-too-large",
            Cause::CallStackTooDeep => "call-stack-too-deep",
            Cause::ReturnRange => "return-range",
            Cause::UnreachableInsn => "unreachable-insn",
            Cause::JumpOutOfRange => "jump-out-of-range",
            Cause::LastInsnNotExit => "last-insn-not-exit",
            Cause::MissingFuncInfo => "missing-func-info",
            Cause::GlobalFuncReturn => "global-func-return",
            Cause::Unknown => "unknown",
        }
    }

    pub fn from_id(id: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.id() == id)
    }

    /// What went wrong, in plain words.
    pub fn title(self) -> &'static str {
        match self {
            Cause::NullDeref => "a pointer that may be NULL is dereferenced",
            Cause::ScalarDeref => "a plain number is dereferenced as if it were a pointer",
            Cause::BadPointerDeref => "a pointer that may not be read through is dereferenced",
            Cause::PacketBounds => {
                "packet data is accessed without a bounds check against data_end"
            }
            Cause::MapValueBounds => "an access reaches outside the map value",
            Cause::MapKeyBounds => "an access reaches outside the map key",
            Cause::MemBounds => {
                "an access reaches outside a memory region (ringbuf record, helper buffer)"
            }
            Cause::BadCtxAccess => {
                "a context field this program type may not access, or not this way"
            }
            Cause::ModifiedCtx => {
                "a pointer into the context is used where the context itself is required"
            }
            Cause::UnboundedMemAccess => "a pointer is offset by a value with no upper bound",
            Cause::NegativeIndex => "an index that may be negative is used to access memory",
            Cause::UnboundedPointerMath => "a value with no lower bound is added to a pointer",
            Cause::PointerOutOfBounds => "a constant offset moves a pointer far out of its object",
            Cause::NullablePointerArith => "arithmetic on a pointer that may be NULL",
            Cause::PointerArithProhibited => "arithmetic on a pointer that allows none",
            Cause::UninitRegister => "a register is read before anything was written to it",
            Cause::UninitStackRead => "stack memory is read before it was written",
            Cause::VariableStackAccess => {
                "a stack access at an offset the verifier cannot bound to the buffer"
            }
            Cause::StackOutOfBounds => "an access outside the 512-byte stack frame",
            Cause::MisalignedAccess => "an access not aligned to its size",
            Cause::RegisterFillSize => "a spilled pointer is read back with a different size",
            Cause::ReadonlyMapWrite => {
                "a write into read-only memory (.rodata, a frozen or read-only map)"
            }
            Cause::PacketWriteNotAllowed => {
                "a direct packet write in a program type whose packet access is read-only"
            }
            Cause::ArgTypeMismatch => "a helper argument of the wrong kind",
            Cause::NullableArg => {
                "a pointer that may be NULL passed to a helper or kfunc that needs a valid one"
            }
            Cause::HelperSizeUnbounded => "a helper's size argument has no safe bounds",
            Cause::HelperSizeZero => {
                "a helper's size argument may be zero (or, seen as unsigned, huge)"
            }
            Cause::MapTypeMismatch => "a map of a type this helper does not take",
            Cause::LeakedReference => "an acquired object is not released on every path",
            Cause::ReleaseUnacquired => {
                "an object released that is not held (released twice, or never acquired)"
            }
            Cause::LockHeldAtExit => "the program can exit while holding a bpf_spin_lock",
            Cause::CallUnderLock => "a function call while holding a bpf_spin_lock",
            Cause::RcuLockHeldAtExit => "the program can exit inside a bpf_rcu_read_lock() section",
            Cause::InvalidHelper => "a helper this program type may not call",
            Cause::UnknownHelper => "a helper this kernel does not have",
            Cause::KfuncNotAllowed => {
                "a kernel function this program type or kernel does not allow"
            }
            Cause::SleepableInNonSleepable => "a call that may sleep in a program that must not",
            Cause::GplOnly => {
                "a GPL-only helper or kfunc in a program whose license is not GPL-compatible"
            }
            Cause::PointerLeak => "a kernel address would leave the program (unprivileged load)",
            Cause::PointerComparison => "pointers compared in an unprivileged program",
            Cause::UnboundedLoop => "a loop the verifier cannot see end",
            Cause::BackEdge => {
                "a loop in a program loaded without CAP_BPF (or on a kernel before 5.3)"
            }
            Cause::ProgramTooLarge => "the verifier gave up after a million instructions",
            Cause::JumpsTooComplex => "too many branches pending at once",
            Cause::StackTooLarge => "the call chain needs more than 512 bytes of stack",
            Cause::CallStackTooDeep => "more than 8 nested function calls",
            Cause::ReturnRange => "the program returns a value its type does not allow",
            Cause::UnreachableInsn => "instructions no path reaches",
            Cause::JumpOutOfRange => "a jump or call to outside the program",
            Cause::LastInsnNotExit => "the program or a function can run off its end",
            Cause::MissingFuncInfo => "functions without BTF function info",
            Cause::GlobalFuncReturn => "a global function that does not return a number",
            Cause::Unknown => "a rejection this tool does not recognise yet",
        }
    }

    /// What usually fixes it.
    pub fn fix(self) -> &'static str {
        match self {
            Cause::NullDeref => {
                "check the pointer right after the helper that returned it (`if (!p) return ...;`, e.g. after bpf_map_lookup_elem()) and use only the checked pointer"
            }
            Cause::ScalarDeref => {
                "the verifier sees this value as a number: a kprobe or raw tracepoint argument (read through it with bpf_probe_read_kernel() or BPF_CORE_READ(), or use fentry/tp_btf whose arguments are pointers), or a packet pointer taken before a helper that changes the packet (bpf_xdp_adjust_head(), bpf_skb_pull_data(), ...: load ctx->data again after the call and check it against data_end)"
            }
            Cause::BadPointerDeref => {
                "read map data through the pointer bpf_map_lookup_elem() returns, not through the map; use data_end only in comparisons; read sockets and other kernel objects with the helpers made for them"
            }
            Cause::PacketBounds => {
                "compare the end of the access with data_end on the same pointer before it: `if ((void *)(hdr + 1) > data_end) return ...;`"
            }
            Cause::MapValueBounds => {
                "bound the index so that the whole access fits in the value: `if (i >= N) return ...;` (not `i > N`), or mask it with `i &= N - 1` for a power-of-two N"
            }
            Cause::MapKeyBounds => {
                "read only the key's own bytes (the key size of the map's definition)"
            }
            Cause::MemBounds => {
                "keep the access inside the size the region was created with (the size given to bpf_ringbuf_reserve(), the buffer's size); bound variable offsets before adding them"
            }
            Cause::BadCtxAccess => {
                "access only the context fields this program type allows, at their declared size, and write only the writable ones: socket filters and cgroup programs read packet bytes with bpf_skb_load_bytes(), tc-only fields (tc_classid, ...) are not for cgroup programs, and XDP moves the packet start with bpf_xdp_adjust_head(), not by writing ctx->data"
            }
            Cause::ModifiedCtx => {
                "pass the context pointer unchanged (the program's argument) to helpers, and read context fields by name (`skb->mark`), never through a pointer computed from ctx"
            }
            Cause::UnboundedMemAccess => {
                "check the index against the size before adding it (`if (i >= N) return ...;`) or mask it (`i &= N - 1`), on the same variable the access uses"
            }
            Cause::NegativeIndex => {
                "make the index unsigned (`__u32`), or check `if (i < 0) return ...;` as well as the upper bound"
            }
            Cause::UnboundedPointerMath => {
                "use an unsigned offset with an upper bound (`__u32 i; if (i >= N) return ...;`): a signed value checked from above only can still be negative"
            }
            Cause::PointerOutOfBounds => {
                "use an offset inside the object; compute large offsets in a scalar and bound it before adding"
            }
            Cause::NullablePointerArith => {
                "check the pointer for NULL first and compute addresses (`&p->field[i]`) from the checked pointer only"
            }
            Cause::PointerArithProhibited => {
                "data_end may only be compared with: move the packet pointer instead (`if (data + N > data_end)`); map and context pointers cannot be offset"
            }
            Cause::UninitRegister => {
                "give the value a definition on every path (a C function that falls off its end without `return`, an inline asm output it never writes, a value kept across a call in R1-R5, which calls clobber)"
            }
            Cause::UninitStackRead => {
                "initialise the whole variable before passing it (`__u32 key = 0;`, `struct k k = {};` or __builtin_memset() for struct padding); root with CAP_PERFMON may read uninitialised stack from 5.11 on, unprivileged loads may not"
            }
            Cause::VariableStackAccess => {
                "bound the index to the buffer (`if (i >= sizeof(buf)) return ...;` or `i &= sizeof(buf) - 1` for a power of two), or keep the buffer in a per-CPU array map"
            }
            Cause::StackOutOfBounds => {
                "keep stack accesses inside the variable (a helper's size argument no larger than the buffer); move buffers larger than the stack to a per-CPU array map"
            }
            Cause::MisalignedAccess => {
                "access the stack (and, with strict alignment, packet and map values) at offsets aligned to the access size: copy unaligned fields with __builtin_memcpy(), or lay the struct out with natural alignment"
            }
            Cause::RegisterFillSize => {
                "read spilled pointers back whole, at 8 bytes; do not read parts of a pointer kept on the stack"
            }
            Cause::ReadonlyMapWrite => {
                "keep `const volatile` settings read-only in the program (set them from user space before the load); use a non-const global (.data/.bss) or a map for values the program changes"
            }
            Cause::PacketWriteNotAllowed => {
                "change packet bytes only where direct writes are allowed (tc, XDP, lwt_xmit, sk_skb); cgroup_skb and socket filter programs can only read the packet"
            }
            Cause::ArgTypeMismatch => {
                "pass what the helper's prototype wants: a pointer to a stack variable (`&key`, not the key's value), the map itself (`&map`), the context unchanged, a socket that is still referenced (not one already released)"
            }
            Cause::NullableArg => "check the pointer for NULL before the call",
            Cause::HelperSizeUnbounded => {
                "give the size both bounds before the call, as an unsigned value: `len &= MAX - 1;` or `if (len > MAX) len = MAX;` on a `__u32`, never an `int` checked from above only"
            }
            Cause::HelperSizeZero => {
                "check the size on both sides before the call: `if (len == 0 || len > sizeof(buf)) return ...;` on an unsigned variable; a signed `int` capped from above only may be 0 or negative"
            }
            Cause::MapTypeMismatch => {
                "pass a map of the type the helper works on (bpf_ringbuf_* take a RINGBUF map, bpf_redirect_map a DEVMAP/CPUMAP/XSKMAP, bpf_perf_event_output a PERF_EVENT_ARRAY, bpf_tail_call a PROG_ARRAY)"
            }
            Cause::LeakedReference => {
                "release what was acquired on every path, early returns included: bpf_ringbuf_submit() or bpf_ringbuf_discard() for a reserved record, bpf_sk_release() for a socket"
            }
            Cause::ReleaseUnacquired => {
                "release each acquired object exactly once, on each path; release only pointers an acquire helper or kfunc returned"
            }
            Cause::LockHeldAtExit => {
                "call bpf_spin_unlock() on every path out of the locked section, early returns included; keep the section short and straight"
            }
            Cause::CallUnderLock => {
                "call helpers before bpf_spin_lock() or after bpf_spin_unlock() and keep only plain loads and stores between them"
            }
            Cause::RcuLockHeldAtExit => {
                "call bpf_rcu_read_unlock() on every path out of the section"
            }
            Cause::InvalidHelper => {
                "call only helpers this program type allows (XDP has no skb helpers; socket filters and cgroup programs cannot rewrite packets), or move the code to a program type that may call it, such as tc (classifier)"
            }
            Cause::UnknownHelper => {
                "the helper is newer than this kernel: require a kernel that has it, or check for it at load time (libbpf's bpf_probe_prog_type/helper probes, or a fallback program with `?` in its section)"
            }
            Cause::KfuncNotAllowed => {
                "call only kfuncs registered for this program type on this kernel; guard optional ones with bpf_ksym_exists()"
            }
            Cause::SleepableInNonSleepable => {
                "use a sleepable section (`fentry.s/`, `lsm.s/`, `uprobe.s/`, `iter.s/`) or a non-sleeping variant of the call"
            }
            Cause::GplOnly => {
                "declare a GPL-compatible license, `char LICENSE[] SEC(\"license\") = \"GPL\";` (or \"Dual BSD/GPL\", \"Dual MIT/GPL\"), or do without the GPL-only helper"
            }
            Cause::PointerLeak => {
                "store, pass and return numbers only, not pointers, or load the program with CAP_BPF (and CAP_PERFMON)"
            }
            Cause::PointerComparison => {
                "compare numbers instead of pointers, or load the program with CAP_BPF (and CAP_PERFMON)"
            }
            Cause::UnboundedLoop => {
                "give the loop a bound the verifier can follow, a counter with a constant limit (`for (i = 0; i < MAX && !done; i++)`), or use bpf_loop() (5.17+) or bpf_for() (6.4+); a BPF program cannot wait for a value to change"
            }
            Cause::BackEdge => {
                "load with CAP_BPF on 5.3 or later, or unroll the loop (`#pragma unroll` with a constant bound)"
            }
            Cause::ProgramTooLarge => {
                "reduce the paths the verifier walks: fewer loop iterations or bpf_loop() (5.17+) / bpf_for() (6.4+) instead of unrolled loops, global (non-static, __noinline) functions verified once each, tail calls to split the program"
            }
            Cause::JumpsTooComplex => {
                "reduce the branches inside loops, or move loop bodies into bpf_loop() (5.17+) / bpf_for() (6.4+) callbacks"
            }
            Cause::StackTooLarge => {
                "keep the stack of the whole call chain under 512 bytes: move large buffers to a single-entry BPF_MAP_TYPE_PERCPU_ARRAY used as scratch space"
            }
            Cause::CallStackTooDeep => {
                "flatten the call chain: inline small functions (`static __always_inline`) or call them one after another instead of one from the other"
            }
            Cause::ReturnRange => {
                "return only values inside the range the message gives: cgroup hooks return 1 to allow and 0 to deny (the caller then sees EPERM), not negative errors or tc verdicts (TC_ACT_*)"
            }
            Cause::UnreachableInsn => {
                "build with -O2 and without hand-written dead code; check that asm and linked objects jump where they mean to"
            }
            Cause::JumpOutOfRange => {
                "link every function the program calls into the object (no unresolved externs); check hand-written jumps"
            }
            Cause::LastInsnNotExit => {
                "end every function with a return; in Rust (Aya) avoid panicking paths; build with -O2"
            }
            Cause::MissingFuncInfo => {
                "compile with -g so that every function gets BTF; keep the BTF when linking or stripping"
            }
            Cause::GlobalFuncReturn => {
                "global (non-static) functions must return a scalar: return an int, or make the function `static __always_inline`"
            }
            Cause::Unknown => {
                "read the kernel's message together with the failing instruction and the state \
                 before it"
            }
        }
    }

    /// The class Linux 7.3 puts this rejection in; `None` for
    /// [`Cause::Unknown`]. Checked against what 7.3 prints for the
    /// programs of `testdata/` where it prints a class (not for
    /// `bad-ctx-access`, `unbounded-loop`, `return-range` and
    /// `stack-too-large`, which it explains with the classic line alone).
    pub fn category(self) -> Option<Category> {
        // Where 7.3 prints a class for a program of testdata/, it is the one
        // here (tests/kernel_explanation.rs); the rest follow the nearest.
        Some(match self {
            Cause::NullDeref
            | Cause::ScalarDeref
            | Cause::BadPointerDeref
            | Cause::ModifiedCtx
            | Cause::NullablePointerArith
            | Cause::PointerArithProhibited
            | Cause::UninitRegister
            | Cause::NullableArg
            // 7.3: "Register Type Safety: Pointer offset is not safe".
            | Cause::UnboundedPointerMath
            | Cause::PointerOutOfBounds => Category::RegisterType,
            Cause::PacketBounds
            | Cause::MapValueBounds
            | Cause::MapKeyBounds
            | Cause::MemBounds
            | Cause::BadCtxAccess
            | Cause::UnboundedMemAccess
            | Cause::NegativeIndex
            | Cause::UninitStackRead
            | Cause::VariableStackAccess
            | Cause::StackOutOfBounds
            | Cause::MisalignedAccess
            | Cause::RegisterFillSize
            | Cause::ReadonlyMapWrite => Category::Memory,
            // 7.3: "Operation is not allowed in this context", a lock held
            // at exit among them.
            Cause::PacketWriteNotAllowed
            | Cause::CallUnderLock
            | Cause::LockHeldAtExit
            | Cause::RcuLockHeldAtExit
            | Cause::UnknownHelper
            | Cause::KfuncNotAllowed
            | Cause::SleepableInNonSleepable => Category::ExecutionContext,
            // 7.3: "Invalid call argument", releasing what was not acquired
            // among them.
            Cause::ArgTypeMismatch
            | Cause::ReleaseUnacquired
            | Cause::HelperSizeUnbounded
            | Cause::HelperSizeZero
            | Cause::MapTypeMismatch => Category::CallType,
            Cause::LeakedReference => Category::ResourceLifetime,
            // 7.3: "Policy: Operation is not allowed" for a helper the type may not call.
            Cause::GplOnly
            | Cause::InvalidHelper
            | Cause::PointerLeak
            | Cause::PointerComparison => Category::Policy,
            Cause::UnboundedLoop
            | Cause::BackEdge
            | Cause::ProgramTooLarge
            | Cause::JumpsTooComplex
            | Cause::StackTooLarge
            | Cause::CallStackTooDeep
            | Cause::ReturnRange
            | Cause::UnreachableInsn
            | Cause::JumpOutOfRange
            | Cause::LastInsnNotExit
            | Cause::MissingFuncInfo
            | Cause::GlobalFuncReturn => Category::ProgramStructure,
            Cause::Unknown => return None,
        })
    }

    /// A limit on the program's size or the verifier's work: its diagnosis
    /// says where the instructions (or the stack) went.
    pub fn is_about_complexity(self) -> bool {
        matches!(
            self,
            Cause::ProgramTooLarge
                | Cause::JumpsTooComplex
                | Cause::StackTooLarge
                | Cause::CallStackTooDeep
        )
    }

    /// The verifier's walk itself ran into a limit (instructions, pending
    /// jumps), rather than a check after it.
    pub fn is_walk_limit(self) -> bool {
        matches!(self, Cause::ProgramTooLarge | Cause::JumpsTooComplex)
    }

    /// Whether the message is about the instruction the walk stopped at.
    /// Stack sizes are checked after a successful walk, whose log the
    /// kernel discards at level 1; the shape of the program (unreachable
    /// code, jumps out of range, missing BTF, loops without CAP_BPF) before
    /// any walk.
    pub(crate) fn at_instruction(self) -> bool {
        !matches!(
            self,
            Cause::BackEdge
                | Cause::StackTooLarge
                | Cause::UnreachableInsn
                | Cause::JumpOutOfRange
                | Cause::LastInsnNotExit
                | Cause::MissingFuncInfo
                | Cause::GlobalFuncReturn
        )
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

/// What the error message says beyond its cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Classified {
    pub(crate) cause: Cause,
    /// The instruction the message names (`infinite loop detected at insn 9`).
    pub(crate) insn: Option<usize>,
    /// Where the value at fault came from (`alloc_insn=4`).
    pub(crate) origin: Option<usize>,
}

// Named groups: `insn` for an instruction the message names, `origin` for
// the instruction a value at fault came from. Order matters where two rules
// match the same line: the more specific one comes first (a nullable or
// scalar dereference before any other pointer type, pointer arithmetic on
// a nullable pointer before the general rule).
static RULES: LazyLock<Vec<(Cause, Regex)>> = LazyLock::new(|| {
    [
        (Cause::NullDeref, r"^R\d+ invalid mem access '\w*_or_null\w*'$"),
        (Cause::ScalarDeref, r"^R\d+ invalid mem access '(?:scalar|inv)'$"),
        (Cause::BadPointerDeref, r"^R\d+ invalid mem access '\w+'$"),
        (Cause::PacketBounds, r"^invalid access to packet, off=-?\d+ size=\d+, R\d+\("),
        (Cause::MapValueBounds, r"^invalid access to map value, value_size=\d+ off=-?\d+ size=\d+$"),
        (Cause::MapKeyBounds, r"^invalid access to map key, key_size=\d+ off=-?\d+ size=\d+$"),
        (Cause::MemBounds, r"^invalid access to memory, mem_size=\d+ off=-?\d+ size=\d+$"),
        (Cause::BadCtxAccess, r"^invalid bpf_context access off=-?\d+ size=\d+"),
        (Cause::ModifiedCtx, r"^dereference of modified \w+ ptr R\d+ off=-?\d+ disallowed$"),
        (Cause::UnboundedMemAccess, r"^R\d+ unbounded memory access, make sure to bounds check any such access$"),
        (Cause::NegativeIndex, r"^R\d+ min value is negative, either use unsigned index or do a if \(index >=0\) check\.?$"),
        (Cause::UnboundedPointerMath, r"^math between \w+ pointer and register with unbounded min value is not allowed$"),
        (Cause::PointerOutOfBounds, r"^value -?\d+ makes \w+ pointer be out of bounds$"),
        (Cause::PointerOutOfBounds, r"^math between \w+ pointer and -?\d+ is not allowed$"),
        (Cause::NullablePointerArith, r"^R\d+ pointer arithmetic on \w*_or_null\w* prohibited, null-check it first$"),
        (Cause::PointerArithProhibited, r"^R\d+ pointer arithmetic on \w+ prohibited$"),
        (Cause::PointerArithProhibited, r"^R\d+ \w+ pointer arithmetic on \w+ prohibited$"),
        (Cause::UninitRegister, r"^R\d+ !read_ok$"),
        (Cause::UninitStackRead, r"^invalid (?:indirect )?read from stack (?:R\d+ )?(?:off -?\d+\+-?\d+ size \d+$|var_off )"),
        (Cause::VariableStackAccess, r"^invalid (?:unbounded )?variable-offset (?:read from|write to|indirect access to|access to) stack R\d+"),
        (Cause::VariableStackAccess, r"^variable stack access var_off="),
        (Cause::VariableStackAccess, r"^variable stack read R\d+ var_off="),
        (Cause::StackOutOfBounds, r"^invalid (?:read from|write to) stack R\d+ off=-?\d+ size=\d+$"),
        (Cause::StackOutOfBounds, r"^invalid stack off=-?\d+ size=\d+$"),
        (Cause::StackOutOfBounds, r"^invalid indirect access to stack R\d+ off=-?\d+ size=\d+$"),
        (Cause::MisalignedAccess, r"^misaligned (?:stack |packet |value |context |)access off"),
        (Cause::RegisterFillSize, r"^invalid size of register fill$"),
        (Cause::ReadonlyMapWrite, r"^write into map forbidden, value_size=\d+ off=-?\d+ size=\d+$"),
        (Cause::PacketWriteNotAllowed, r"^cannot write into packet$"),
        (Cause::PacketWriteNotAllowed, r"^the prog does not allow writes to packet data$"),
        (Cause::ArgTypeMismatch, r"^R\d+ type=\w+ expected="),
        (Cause::NullableArg, r"^Possibly NULL pointer passed to (?:helper|trusted) arg\d+$"),
        (Cause::HelperSizeUnbounded, r"^R\d+ min value is negative, either use unsigned or 'var &= const'$"),
        (Cause::HelperSizeUnbounded, r"^R\d+ unbounded memory access, use 'var &= const' or 'if \(var < const\)'$"),
        (Cause::HelperSizeZero, r"^(?:R\d+ )?invalid zero-sized read(?:: u64=\[-?\d+,-?\d+\])?$"),
        (Cause::MapTypeMismatch, r"^cannot pass map_type \d+ into func \w+#\d+$"),
        (Cause::LeakedReference, r"^Unreleased reference id=\d+ alloc_insn=(?P<origin>\d+)$"),
        (Cause::LeakedReference, r"^tail_call would lead to reference leak$"),
        (Cause::ReleaseUnacquired, r"^(?:k?func )?\S+#\d+ reference has not been acquired before$"),
        (Cause::ReleaseUnacquired, r"^R\d+ must be referenced when passed to "),
        (
            Cause::ReleaseUnacquired,
            r"^release (?:helper|kfunc) \S+ expects referenced \S+ passed to R\d+$",
        ),
        (Cause::LockHeldAtExit, r"^bpf_spin_unlock is missing$"),
        (Cause::LockHeldAtExit, r"^BPF_EXIT instruction (?:in main prog )?cannot be used inside bpf_spin_lock-ed region$"),
        (Cause::CallUnderLock, r"^function calls are not allowed while holding a lock$"),
        (Cause::RcuLockHeldAtExit, r"^bpf_rcu_read_unlock is missing$"),
        (Cause::RcuLockHeldAtExit, r"^BPF_EXIT instruction (?:in main prog )?cannot be used inside bpf_rcu_read_lock-ed region$"),
        (Cause::InvalidHelper, r"^(?:unknown func|program of this type cannot use helper) \w+#\d+$"),
        (Cause::UnknownHelper, r"^invalid func \w+#\d+$"),
        (Cause::KfuncNotAllowed, r"^calling kernel function \S+ is not allowed$"),
        (Cause::KfuncNotAllowed, r"^kernel function \S+ is not allowed"),
        (Cause::SleepableInNonSleepable, r"^helper call might sleep in a non-sleepable prog$"),
        (Cause::SleepableInNonSleepable, r"^program must be sleepable to call sleepable kfunc \S+$"),
        (Cause::SleepableInNonSleepable, r"^kernel func \S+ is sleepable within "),
        (Cause::SleepableInNonSleepable, r"^sleepable helper \S+ in rcu_read_lock region$"),
        (Cause::GplOnly, r"^cannot call GPL-restricted function from non-GPL compatible program$"),
        (Cause::GplOnly, r"^cannot call kernel function from non-GPL compatible program$"),
        (Cause::PointerLeak, r"^R\d+ leaks addr into \w+"),
        (Cause::PointerLeak, r"^R0 leaks addr as return value$"),
        (Cause::PointerComparison, r"^R\d+ pointer comparison prohibited$"),
        (Cause::UnboundedLoop, r"^infinite loop detected at insn (?P<insn>\d+)$"),
        (Cause::BackEdge, r"^back-edge from insn (?P<insn>\d+) to \d+$"),
        (Cause::ProgramTooLarge, r"^BPF program is too large\. Processed \d+ insn$"),
        (Cause::JumpsTooComplex, r"^The sequence of \d+ jumps is too complex\.$"),
        (Cause::StackTooLarge, r"^combined stack size of \d+ calls is \d+\. Too large$"),
        (Cause::StackTooLarge, r"^stack size of subprog \d+ is \d+\. Too large$"),
        (Cause::StackTooLarge, r"^tail_calls are not allowed when call stack of previous frames is \d+ bytes\. Too large$"),
        (Cause::CallStackTooDeep, r"^the call stack of \d+ frames is too deep(?: !)?$"),
        (Cause::ReturnRange, r"^At (?:program|subprogram) exit the register R0 "),
        (Cause::UnreachableInsn, r"^unreachable insn (?P<insn>\d+)$"),
        (Cause::JumpOutOfRange, r"^jump out of range from insn (?P<insn>\d+) to -?\d+$"),
        (Cause::LastInsnNotExit, r"^last insn is not an exit or jmp$"),
        (Cause::MissingFuncInfo, r"^missing btf func_info$"),
        (Cause::MissingFuncInfo, r"^number of funcs in func_info doesn't match number of subprogs$"),
        (Cause::GlobalFuncReturn, r"^Global function \S+\(\) doesn't return scalar\. Only those are supported\.$"),
    ]
    .into_iter()
    .map(|(cause, pattern)| (cause, Regex::new(pattern).expect("valid regex")))
    .collect()
});

/// The cause of the first message line that has a known one.
pub(crate) fn classify<'a>(message: impl IntoIterator<Item = &'a str>) -> Classified {
    for line in message {
        for (cause, rule) in RULES.iter() {
            if let Some(caps) = rule.captures(line) {
                let number = |name| caps.name(name).and_then(|m| m.as_str().parse().ok());
                return Classified {
                    cause: *cause,
                    insn: number("insn"),
                    origin: number("origin"),
                };
            }
        }
    }
    Classified {
        cause: Cause::Unknown,
        insn: None,
        origin: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        for cause in Cause::ALL {
            assert_eq!(Cause::from_id(cause.id()), Some(cause));
        }
        assert_eq!(Cause::from_id("no-such-cause"), None);
    }

    #[test]
    fn the_first_known_line_decides() {
        let c = classify(["something new", "Unreleased reference id=2 alloc_insn=4"]);
        assert_eq!(c.cause, Cause::LeakedReference);
        assert_eq!(c.origin, Some(4));
        assert_eq!(classify(["infinite loop detected at insn 9"]).insn, Some(9));
        assert_eq!(
            classify(["R0 invalid mem access 'scalar'"]).cause,
            Cause::ScalarDeref
        );
        assert_eq!(
            classify(["R0 invalid mem access 'ringbuf_mem_or_null'"]).cause,
            Cause::NullDeref
        );
        assert_eq!(classify(["nothing known"]).cause, Cause::Unknown);
    }

    /// Every wording of every cause, as the kernels' format strings print
    /// it (5.10 to 7.3); lines marked (v) were seen in real logs.
    const WORDINGS: &[(&str, Cause)] = &[
        (
            "R0 invalid mem access 'map_value_or_null'",
            Cause::NullDeref,
        ), // (v)
        (
            "R0 invalid mem access 'ringbuf_mem_or_null'",
            Cause::NullDeref,
        ), // (v)
        (
            "R0 invalid mem access 'alloc_mem_or_null'",
            Cause::NullDeref,
        ),
        ("R0 invalid mem access 'sock_or_null'", Cause::NullDeref),
        ("R6 invalid mem access 'inv'", Cause::ScalarDeref), // (v) 5.10
        ("R6 invalid mem access 'scalar'", Cause::ScalarDeref), // (v)
        ("R1 invalid mem access 'map_ptr'", Cause::BadPointerDeref),
        ("R3 invalid mem access 'pkt_end'", Cause::BadPointerDeref),
        (
            "invalid access to packet, off=23 size=1, R1(id=0,off=23,r=14)",
            Cause::PacketBounds,
        ), // (v)
        (
            "invalid access to map value, value_size=128 off=128 size=8",
            Cause::MapValueBounds,
        ), // (v)
        (
            "invalid access to map key, key_size=4 off=4 size=4",
            Cause::MapKeyBounds,
        ),
        (
            "invalid access to memory, mem_size=16 off=16 size=8",
            Cause::MemBounds,
        ),
        (
            "invalid bpf_context access off=72 size=4",
            Cause::BadCtxAccess,
        ), // (v)
        (
            "invalid bpf_context access off=72 size=4. Reference may already be released",
            Cause::BadCtxAccess,
        ),
        (
            "dereference of modified ctx ptr R1 off=8 disallowed",
            Cause::ModifiedCtx,
        ), // (v)
        (
            "dereference of modified trusted_ptr_ ptr R1 off=8 disallowed",
            Cause::ModifiedCtx,
        ),
        (
            "R0 unbounded memory access, make sure to bounds check any such access",
            Cause::UnboundedMemAccess,
        ), // (v)
        (
            "R0 min value is negative, either use unsigned index or do a if (index >=0) check.",
            Cause::NegativeIndex,
        ),
        (
            "R0 min value is negative, either use unsigned index or do a if (index >=0) check",
            Cause::NegativeIndex,
        ),
        (
            "math between map_value pointer and register with unbounded min value is not allowed",
            Cause::UnboundedPointerMath,
        ), // (v)
        (
            "math between pkt pointer and register with unbounded min value is not allowed",
            Cause::UnboundedPointerMath,
        ),
        (
            "value -2147483648 makes pkt pointer be out of bounds",
            Cause::PointerOutOfBounds,
        ),
        (
            "math between fp pointer and -2147483648 is not allowed",
            Cause::PointerOutOfBounds,
        ),
        (
            "R0 pointer arithmetic on map_value_or_null prohibited, null-check it first",
            Cause::NullablePointerArith,
        ), // (v)
        (
            "R1 pointer arithmetic on pkt_end prohibited",
            Cause::PointerArithProhibited,
        ), // (v)
        ("R1 32-bit pointer arithmetic prohibited", Cause::Unknown),
        (
            "R1 bitwise operator &= on pointer prohibited",
            Cause::Unknown,
        ),
        ("R0 !read_ok", Cause::UninitRegister), // (v)
        (
            "invalid indirect read from stack off -8+0 size 8",
            Cause::UninitStackRead,
        ),
        (
            "invalid indirect read from stack R2 off -8+0 size 8",
            Cause::UninitStackRead,
        ),
        (
            "invalid read from stack R2 off -8+0 size 8",
            Cause::UninitStackRead,
        ), // 6.14 on
        (
            "invalid read from stack off -8+0 size 8",
            Cause::UninitStackRead,
        ),
        (
            "invalid read from stack R2 var_off (0x0; 0x7)+-16 size 8",
            Cause::UninitStackRead,
        ),
        (
            "invalid variable-offset write to stack R2 var_off=(0x0; 0xff) size=1",
            Cause::VariableStackAccess,
        ), // (v) 5.10
        (
            "invalid variable-offset write to stack R2 var_off=(0x0; 0xff) off=-64 size=1",
            Cause::VariableStackAccess,
        ), // (v)
        (
            "invalid unbounded variable-offset read from stack R2",
            Cause::VariableStackAccess,
        ),
        (
            "invalid variable-offset indirect access to stack R2 var_off=(0x0; 0xff) off=-64 size=1",
            Cause::VariableStackAccess,
        ),
        (
            "variable stack access var_off=(0x0; 0xff) off=-64 size=1",
            Cause::VariableStackAccess,
        ),
        (
            "invalid write to stack R1 off=-520 size=8",
            Cause::StackOutOfBounds,
        ),
        (
            "invalid read from stack R1 off=-520 size=8",
            Cause::StackOutOfBounds,
        ),
        ("invalid stack off=-520 size=8", Cause::StackOutOfBounds),
        (
            "invalid indirect access to stack R3 off=-64 size=128",
            Cause::StackOutOfBounds,
        ),
        (
            "misaligned stack access off (0x0; 0x0)+0+-7 size 4",
            Cause::MisalignedAccess,
        ), // (v) 5.10, 6.1
        (
            "misaligned stack access off 0+0+-7 size 4",
            Cause::MisalignedAccess,
        ), // (v) 6.12
        (
            "misaligned stack access off 0+-7 size 4",
            Cause::MisalignedAccess,
        ), // (v) 7.2
        (
            "misaligned packet access off 2+(0x0; 0x0)+0 size 4",
            Cause::MisalignedAccess,
        ),
        (
            "misaligned value access off (0x0; 0x0)+1+0 size 8",
            Cause::MisalignedAccess,
        ),
        (
            "misaligned context access off (0x0; 0x0)+1+0 size 4",
            Cause::MisalignedAccess,
        ),
        (
            "misaligned access off (0x0; 0x0)+1+0 size 4",
            Cause::MisalignedAccess,
        ),
        ("invalid size of register fill", Cause::RegisterFillSize), // (v)
        (
            "write into map forbidden, value_size=4 off=0 size=4",
            Cause::ReadonlyMapWrite,
        ), // (v)
        ("cannot write into packet", Cause::PacketWriteNotAllowed), // (v)
        (
            "the prog does not allow writes to packet data",
            Cause::PacketWriteNotAllowed,
        ),
        (
            "R2 type=inv expected=fp, pkt, pkt_meta, map_value",
            Cause::ArgTypeMismatch,
        ), // (v) 5.10
        (
            "R2 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_, ctx",
            Cause::ArgTypeMismatch,
        ), // (v) 7.2
        (
            "R1 type=scalar expected=sock_common, sock, tcp_sock, xdp_sock, ptr_",
            Cause::ArgTypeMismatch,
        ), // (v)
        (
            "Possibly NULL pointer passed to helper arg2",
            Cause::NullableArg,
        ),
        (
            "Possibly NULL pointer passed to trusted arg0",
            Cause::NullableArg,
        ),
        (
            "R4 min value is negative, either use unsigned or 'var &= const'",
            Cause::HelperSizeUnbounded,
        ),
        (
            "R4 unbounded memory access, use 'var &= const' or 'if (var < const)'",
            Cause::HelperSizeUnbounded,
        ),
        ("invalid zero-sized read", Cause::HelperSizeZero), // (v) 5.10, 6.1
        (
            "R4 invalid zero-sized read: u64=[0,4294967295]",
            Cause::HelperSizeZero,
        ), // (v) 6.12 on
        (
            "cannot pass map_type 4 into func bpf_ringbuf_output#130", // (v)
            Cause::MapTypeMismatch,
        ),
        (
            "Unreleased reference id=2 alloc_insn=13",
            Cause::LeakedReference,
        ), // (v)
        (
            "tail_call would lead to reference leak",
            Cause::LeakedReference,
        ),
        (
            "func bpf_sk_release#86 reference has not been acquired before",
            Cause::ReleaseUnacquired,
        ),
        (
            "kfunc bpf_task_release#12345 reference has not been acquired before",
            Cause::ReleaseUnacquired,
        ),
        (
            "R1 must be referenced when passed to release function",
            Cause::ReleaseUnacquired,
        ), // (v) 6.1 to 6.18
        (
            "func bpf_sk_release#86 reference has not been acquired before",
            Cause::ReleaseUnacquired,
        ), // (v) 5.10
        (
            "release helper bpf_sk_release expects referenced PTR_TO_BTF_ID passed to R1",
            Cause::ReleaseUnacquired,
        ), // (v) 7.2
        (
            "release kfunc bpf_task_release expects referenced PTR_TO_BTF_ID passed to R1",
            Cause::ReleaseUnacquired,
        ),
        ("bpf_spin_unlock is missing", Cause::LockHeldAtExit), // (v) up to 6.12
        (
            "BPF_EXIT instruction cannot be used inside bpf_spin_lock-ed region",
            Cause::LockHeldAtExit,
        ), // 6.13
        (
            "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region",
            Cause::LockHeldAtExit,
        ), // (v) 7.2
        (
            "function calls are not allowed while holding a lock",
            Cause::CallUnderLock,
        ), // (v)
        ("bpf_rcu_read_unlock is missing", Cause::RcuLockHeldAtExit),
        (
            "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region",
            Cause::RcuLockHeldAtExit,
        ),
        ("unknown func bpf_skb_store_bytes#9", Cause::InvalidHelper), // (v) up to 6.9
        (
            "program of this type cannot use helper bpf_skb_store_bytes#9",
            Cause::InvalidHelper,
        ), // (v) 6.10 on
        ("invalid func unknown#181", Cause::UnknownHelper),
        (
            "calling kernel function bpf_task_acquire is not allowed",
            Cause::KfuncNotAllowed,
        ),
        (
            "helper call might sleep in a non-sleepable prog",
            Cause::SleepableInNonSleepable,
        ),
        (
            "program must be sleepable to call sleepable kfunc bpf_put_file",
            Cause::SleepableInNonSleepable,
        ),
        (
            "kernel func bpf_copy_from_user_str is sleepable within rcu_read_lock region",
            Cause::SleepableInNonSleepable,
        ),
        (
            "sleepable helper bpf_copy_from_user#148 in rcu_read_lock region",
            Cause::SleepableInNonSleepable,
        ),
        (
            "cannot call GPL-restricted function from non-GPL compatible program",
            Cause::GplOnly,
        ), // (v)
        (
            "cannot call kernel function from non-GPL compatible program",
            Cause::GplOnly,
        ),
        ("R1 leaks addr into map", Cause::PointerLeak),
        ("R0 leaks addr as return value", Cause::PointerLeak),
        ("R1 pointer comparison prohibited", Cause::PointerComparison),
        ("infinite loop detected at insn 9", Cause::UnboundedLoop), // (v)
        ("back-edge from insn 9 to 7", Cause::BackEdge),
        (
            "BPF program is too large. Processed 1000001 insn",
            Cause::ProgramTooLarge,
        ), // (v)
        (
            "The sequence of 8193 jumps is too complex.",
            Cause::JumpsTooComplex,
        ),
        (
            "combined stack size of 2 calls is 640. Too large",
            Cause::StackTooLarge,
        ), // (v)
        (
            "stack size of subprog 0 is 544. Too large",
            Cause::StackTooLarge,
        ),
        (
            "tail_calls are not allowed when call stack of previous frames is 288 bytes. Too large",
            Cause::StackTooLarge,
        ),
        (
            "the call stack of 9 frames is too deep !",
            Cause::CallStackTooDeep,
        ),
        (
            "the call stack of 9 frames is too deep",
            Cause::CallStackTooDeep,
        ),
        (
            "At program exit the register R0 has value (0xffffffffffffffff; 0x0) should have been in (0x0; 0x1)",
            Cause::ReturnRange,
        ), // (v) up to 6.5
        (
            "At program exit the register R0 has smin=-1 smax=-1 should have been in [0, 1]",
            Cause::ReturnRange,
        ), // (v) 6.8 on
        (
            "At program exit the register R0 has unknown scalar value should have been in [0, 1]",
            Cause::ReturnRange,
        ),
        (
            "At program exit the register R0 is not a known value (scalar)",
            Cause::ReturnRange,
        ),
        (
            "At subprogram exit the register R0 is not a scalar value (ptr_)",
            Cause::ReturnRange,
        ),
        ("unreachable insn 5", Cause::UnreachableInsn),
        ("jump out of range from insn 3 to 9", Cause::JumpOutOfRange),
        ("last insn is not an exit or jmp", Cause::LastInsnNotExit),
        ("missing btf func_info", Cause::MissingFuncInfo),
        (
            "number of funcs in func_info doesn't match number of subprogs",
            Cause::MissingFuncInfo,
        ),
        (
            "Global function f() doesn't return scalar. Only those are supported.",
            Cause::GlobalFuncReturn,
        ),
    ];

    #[test]
    fn every_wording_names_its_cause() {
        for (line, cause) in WORDINGS {
            assert_eq!(classify([*line]).cause, *cause, "{line}");
        }
    }

    #[test]
    fn every_cause_has_a_wording_a_category_a_title_and_a_fix() {
        assert!(Cause::ALL.len() > 40, "{} causes", Cause::ALL.len());
        for cause in Cause::ALL {
            if cause == Cause::Unknown {
                assert_eq!(cause.category(), None);
                continue;
            }
            assert!(
                WORDINGS.iter().any(|(_, c)| *c == cause),
                "{cause}: no wording tested"
            );
            assert!(cause.category().is_some(), "{cause}");
            assert!(
                !cause.title().is_empty() && !cause.fix().is_empty(),
                "{cause}"
            );
        }
        let mut titles: Vec<_> = Cause::ALL.iter().map(|c| c.title()).collect();
        titles.sort_unstable();
        titles.dedup();
        assert_eq!(titles.len(), Cause::ALL.len(), "titles are distinct");
    }

    #[test]
    fn messages_name_their_instructions() {
        assert_eq!(classify(["back-edge from insn 9 to 7"]).insn, Some(9));
        assert_eq!(classify(["unreachable insn 5"]).insn, Some(5));
        assert_eq!(
            classify(["jump out of range from insn 3 to 9"]).insn,
            Some(3)
        );
        assert_eq!(
            classify(["Unreleased reference id=2 alloc_insn=13"]).origin,
            Some(13)
        );
        assert_eq!(classify(["R0 !read_ok"]).insn, None);
    }
}
