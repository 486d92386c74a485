//! Test-case files to plans: validates every name against the object,
//! encodes packets and typed values, and keeps the expectations host-side.
//! Nothing here looks at a kernel, so the result is the same on any machine.

use std::{
    collections::BTreeSet,
    ops::Range,
    path::{Path, PathBuf},
};

use harness_btf_value::{Constants, Encoded, TypeDesc, encode, encode_with, format};
use harness_packet::NameOrNumber;
use harness_protocol::{Action, CasePlan, MapValue, MapWrite, RunInput};
use toml::{Spanned, Value};

use crate::{
    diag::CaseError,
    file::{CaseDef, EntryDef, ExpectEntryDef, FileDef, PacketExpect, PcapDef},
    object::{MapInfo, ObjectInfo},
    retval,
};

/// A parsed file, before it meets its object.
pub struct ParsedFile {
    pub path: PathBuf,
    pub source: String,
    pub def: FileDef,
}

/// Reads and parses a test-case file. TOML and schema errors carry line and
/// column.
pub fn parse_file(path: &Path) -> Result<ParsedFile, CaseError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| CaseError::new(path, "", None, format!("cannot read the file: {e}")))?;
    parse_str(path, source)
}

pub fn parse_str(path: &Path, source: String) -> Result<ParsedFile, CaseError> {
    match toml::from_str::<FileDef>(&source) {
        Ok(def) => Ok(ParsedFile {
            path: path.to_owned(),
            source,
            def,
        }),
        Err(e) => Err(CaseError::new(
            path,
            &source,
            e.span(),
            e.message().to_owned(),
        )),
    }
}

impl ParsedFile {
    pub fn object_name(&self) -> &str {
        self.def.object.get_ref()
    }

    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> CaseError {
        CaseError::new(&self.path, &self.source, Some(span), msg)
    }

    pub fn unknown_object(&self, available: &[String]) -> CaseError {
        self.err(
            self.def.object.span(),
            format!(
                "no object `{}` (a source `{}.bpf.c` or an object `{}.bpf.o` among the project's); objects are {}",
                self.def.object.get_ref(),
                self.def.object.get_ref(),
                self.def.object.get_ref(),
                available.join(", ")
            ),
        )
    }
}

/// The `[[verifier]]` expectations of a file, as `(program, expectation)`.
pub fn compile_expectations(
    file: &ParsedFile,
    object: &ObjectInfo,
) -> Result<Vec<(String, harness_verifier::Expectation)>, Vec<CaseError>> {
    use harness_verifier::{Expectation, ExpectedVerdict, KernelRange};
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for v in &file.def.verifier {
        let v = v.get_ref();
        if object.program(v.program.get_ref()).is_none() {
            errors.push(file.err(
                v.program.span(),
                format!(
                    "no program `{}` in object `{}`; its programs are {}",
                    v.program.get_ref(),
                    object.name,
                    object.program_names().join(", ")
                ),
            ));
            continue;
        }
        let kernels = match KernelRange::parse(v.kernels.get_ref()) {
            Ok(k) => k,
            Err(e) => {
                errors.push(file.err(v.kernels.span(), e.to_string()));
                continue;
            }
        };
        let Some(verdict) = ExpectedVerdict::parse(v.verdict.get_ref()) else {
            let e = harness_verifier::ExpectationError::Verdict(v.verdict.get_ref().clone());
            errors.push(file.err(v.verdict.span(), e.to_string()));
            continue;
        };
        let origin = format!(
            "{}:{}",
            file.path.display(),
            line_of(&file.source, v.program.span().start)
        );
        match Expectation::new(
            kernels,
            verdict,
            v.message.as_ref().map(|m| m.get_ref().as_str()),
            origin,
        ) {
            Ok(e) => out.push((v.program.get_ref().clone(), e)),
            Err(e) => errors.push(file.err(
                v.message.as_ref().map_or(v.program.span(), |m| m.span()),
                e.to_string(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// What must hold after a case ran.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    pub retval: Option<u32>,
    pub packet: Option<Vec<u8>>,
    pub ctx: Option<(TypeDesc, Encoded)>,
    pub maps: Vec<MapExpectation>,
    /// Lines of `expect.return`, `expect.packet` and `expect.ctx`, so a
    /// failure points at the expectation that failed.
    pub retval_line: usize,
    pub packet_line: usize,
    pub ctx_line: usize,
    /// `expect.flow_keys`, for flow dissectors: what the run's output holds.
    pub flow_keys: Option<(TypeDesc, Encoded)>,
    pub flow_keys_line: usize,
}

#[derive(Clone, Debug)]
pub struct MapExpectation {
    /// Line of the entry in the case file.
    pub line: usize,
    pub map: String,
    pub key: Vec<u8>,
    pub key_text: String,
    pub want: Want,
}

#[derive(Clone, Debug)]
pub enum Want {
    Absent,
    /// One value; for per-CPU maps, compared with the sum over CPUs.
    Value(Encoded),
    PerCpu(Vec<Encoded>),
}

/// One runnable case with its expectations.
#[derive(Clone, Debug)]
pub struct CompiledCase {
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
    pub object: String,
    pub program: String,
    pub prog_type: String,
    pub plan: CasePlan,
    pub expect: Expectations,
    pub percpu_sum: bool,
    pub snapshot_maps: bool,
    /// For a case of steps: its steps' and events' expectations.
    pub steps: Option<crate::steps::StepsCase>,
}

/// Context fields `BPF_PROG_TEST_RUN` accepts, per program type (from the
/// kernel's net/bpf/test_run.c; older kernels accept fewer).
fn ctx_fields(prog_type: &str) -> Option<(&'static str, &'static [&'static str])> {
    const SKB: &[&str] = &[
        "mark",
        "priority",
        "ingress_ifindex",
        "ifindex",
        "cb",
        "tstamp",
        "wire_len",
        "gso_segs",
        "gso_size",
        "hwtstamp",
    ];
    match prog_type {
        "xdp" => Some(("xdp_md", &["ingress_ifindex", "rx_queue_index"])),
        "sched_cls" | "sched_act" | "socket_filter" | "cgroup_skb" | "lwt_in" | "lwt_out"
        | "lwt_xmit" => Some(("__sk_buff", SKB)),
        _ => None,
    }
}

pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// Turns every case of `file` into a plan against `object`. All problems
/// are collected, so one run reports every mistake in the file.
pub fn compile(
    file: &ParsedFile,
    object: &ObjectInfo,
) -> Result<Vec<CompiledCase>, Vec<CaseError>> {
    let mut errors = Vec::new();
    let mut cases = Vec::new();
    if file.def.cases.is_empty() && file.def.verifier.is_empty() {
        errors.push(file.err(
            file.def.object.span(),
            "this file defines no cases: add at least one [[case]] (or [[verifier]] expectation)",
        ));
    }
    let mut seen = BTreeSet::new();
    for case in &file.def.cases {
        let name = case.get_ref().name.get_ref();
        if !seen.insert(name.clone()) {
            errors.push(file.err(
                case.get_ref().name.span(),
                format!("a case named `{name}` already exists in this file"),
            ));
            continue;
        }
        match compile_case(file, object, case) {
            Ok(mut c) => cases.append(&mut c),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// One case (or one per packet of a capture), or every mistake in it.
fn compile_case(
    file: &ParsedFile,
    object: &ObjectInfo,
    case: &Spanned<CaseDef>,
) -> Result<Vec<CompiledCase>, Vec<CaseError>> {
    let c = case.get_ref();
    let (program, prog_type) = program_of(file, object, c).map_err(|e| vec![e])?;
    if !c.steps.is_empty() {
        return compile_steps_case(file, object, case, program, prog_type);
    }
    let mut errors = Vec::new();
    let inputs = inputs(file, c, &prog_type, &mut errors);
    let (ctx, ctx_type) = context(file, object, c, &program, &prog_type, &mut errors);
    let requires = requirements(file, c, &prog_type, ctx.is_some(), &mut errors);
    let setup = map_setup(file, object, c, &mut errors);
    let expect = expectations(
        file,
        object,
        c,
        &prog_type,
        ctx_type.as_ref(),
        inputs.first().map(|(_, bytes)| bytes.as_slice()),
        &mut errors,
    );
    let percpu_sum = percpu_sum(file, c, &mut errors);
    if let Some(r) = &c.repeat
        && runs_on_context_only(&prog_type)
    {
        errors.push(file.err(
            r.span(),
            format!("BPF_PROG_TEST_RUN runs {prog_type} programs once: it takes no `repeat`"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let repeat = c.repeat.as_ref().map_or(1, |r| *r.get_ref()).max(1);
    let stem = file
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ctx_out_size = ctx_type
        .as_ref()
        .or(expect.ctx.as_ref().map(|(t, _)| t))
        .map_or(0, |t| t.size() as u32);
    Ok(inputs
        .into_iter()
        .map(|(suffix, data)| {
            let name = format!("{}{suffix}", c.name.get_ref());
            CompiledCase {
                plan: CasePlan {
                    id: format!("{stem}::{name}"),
                    program: program.clone(),
                    setup: setup.clone(),
                    action: Action::TestRun(run_input(
                        &prog_type,
                        data,
                        ctx.clone(),
                        ctx_type.as_ref(),
                        ctx_out_size,
                        repeat,
                    )),
                    requires: requires.clone(),
                    dump_maps: true,
                },
                name,
                file: file.path.clone(),
                line: line_of(&file.source, case.span().start),
                object: object.name.clone(),
                program: program.clone(),
                prog_type: prog_type.clone(),
                expect: expect.clone(),
                percpu_sum,
                snapshot_maps: c.snapshot_maps.unwrap_or(true),
                steps: None,
            }
        })
        .collect())
}

/// A case of steps: one plan whose action is [`Action::Steps`].
fn compile_steps_case(
    file: &ParsedFile,
    object: &ObjectInfo,
    case: &Spanned<CaseDef>,
    program: String,
    prog_type: String,
) -> Result<Vec<CompiledCase>, Vec<CaseError>> {
    let c = case.get_ref();
    let mut errors = Vec::new();
    let steps = crate::steps::compile(file, object, c, &program, &mut errors);
    let requires = requirements(file, c, &prog_type, false, &mut errors);
    let setup = map_setup(file, object, c, &mut errors);
    let expect = expectations(file, object, c, &prog_type, None, None, &mut errors);
    let percpu_sum = percpu_sum(file, c, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let stem = file
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = c.name.get_ref().clone();
    Ok(vec![CompiledCase {
        plan: CasePlan {
            id: format!("{stem}::{name}"),
            program: program.clone(),
            setup,
            action: Action::Steps(steps.plan.clone()),
            requires,
            dump_maps: true,
        },
        name,
        file: file.path.clone(),
        line: line_of(&file.source, case.span().start),
        object: object.name.clone(),
        program,
        prog_type,
        expect,
        percpu_sum,
        snapshot_maps: c.snapshot_maps.unwrap_or(true),
        steps: Some(steps),
    }])
}

/// Program types whose `BPF_PROG_TEST_RUN` takes a context and nothing
/// else: no packet buffers, no repeat (the kernel refuses them, EINVAL).
pub(crate) fn runs_on_context_only(prog_type: &str) -> bool {
    matches!(prog_type, "raw_tracepoint" | "syscall" | "tracing")
}

/// One `BPF_PROG_TEST_RUN` input as the kernel takes it for `prog_type`.
pub(crate) fn run_input(
    prog_type: &str,
    data: Vec<u8>,
    ctx: Option<Vec<u8>>,
    ctx_type: Option<&TypeDesc>,
    ctx_out_size: u32,
    repeat: u32,
) -> RunInput {
    if runs_on_context_only(prog_type) {
        return RunInput {
            data: data.into(),
            ctx: ctx.map(Into::into),
            data_out_size: 0,
            ctx_out_size: 0,
            repeat: 0,
            flags: 0,
        };
    }
    RunInput {
        data_out_size: (data.len() + 256) as u32,
        ctx: ctx.map(|c| with_data_end(&c, ctx_type, data.len()).into()),
        ctx_out_size,
        repeat,
        flags: 0,
        data: data.into(),
    }
}

/// The program the case drives (its own, else the file's) and its type.
fn program_of(
    file: &ParsedFile,
    object: &ObjectInfo,
    c: &CaseDef,
) -> Result<(String, String), CaseError> {
    let Some(program) = c.program.as_ref().or(file.def.program.as_ref()) else {
        return Err(file.err(
            c.name.span(),
            format!(
                "no program given: set `program` at the top of the file or in the case; {} has {}",
                object.name,
                object.program_names().join(", ")
            ),
        ));
    };
    let Some(spec) = object.program(program.get_ref()) else {
        return Err(file.err(
            program.span(),
            format!(
                "no program `{}` in object `{}`; its programs are {}",
                program.get_ref(),
                object.name,
                object.program_names().join(", ")
            ),
        ));
    };
    let prog_type = spec.kind.as_ref().map_or("unknown", |k| k.name).to_owned();
    Ok((program.get_ref().clone(), prog_type))
}

/// The input bytes, with a name suffix per packet of a capture (` #3`).
fn inputs(
    file: &ParsedFile,
    c: &CaseDef,
    prog_type: &str,
    errors: &mut Vec<CaseError>,
) -> Vec<(String, Vec<u8>)> {
    let case_span = c.name.span();
    let given = [c.packet.is_some(), c.pcap.is_some(), c.data.is_some()];
    if given.iter().filter(|b| **b).count() > 1 {
        errors.push(file.err(
            case_span.clone(),
            "give only one of `packet`, `pcap` and `data`",
        ));
    }
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(p) = &c.packet {
        match p.get_ref().build() {
            Ok(bytes) => inputs.push((String::new(), bytes)),
            Err(e) => errors.push(file.err(p.span(), format!("packet: {e}"))),
        }
    } else if let Some(p) = &c.pcap {
        inputs.extend(capture(file, p, errors));
    } else if let Some(d) = &c.data {
        inputs.push((String::new(), d.get_ref().0.clone()));
    } else if runs_on_context_only(prog_type) {
        inputs.push((String::new(), Vec::new()));
    } else {
        errors.push(file.err(
            case_span.clone(),
            format!("case has no input: {prog_type} programs need `packet`, `pcap` or `data`"),
        ));
    }
    for (_, bytes) in &inputs {
        if !bytes.is_empty() && bytes.len() < 14 && prog_type != "raw_tracepoint" {
            errors.push(file.err(case_span.clone(), format!(
                "the input is {} bytes; BPF_PROG_TEST_RUN needs at least a 14-byte Ethernet header",
                bytes.len()
            )));
        }
    }
    inputs
}

/// Packets from a capture file, relative to the case file: one, or all.
fn capture(
    file: &ParsedFile,
    p: &Spanned<PcapDef>,
    errors: &mut Vec<CaseError>,
) -> Vec<(String, Vec<u8>)> {
    let base = file.path.parent().unwrap_or(Path::new("."));
    let path = base.join(p.get_ref().file.get_ref());
    let packets = match harness_packet::read_packets(&path) {
        Ok(packets) => packets,
        Err(e) => {
            errors.push(file.err(p.get_ref().file.span(), e.to_string()));
            return Vec::new();
        }
    };
    match p.get_ref().index {
        Some(i) if i < packets.len() => vec![(String::new(), packets[i].clone())],
        Some(i) => {
            errors.push(file.err(
                p.span(),
                format!(
                    "{} has {} packets; index {i} does not exist",
                    path.display(),
                    packets.len()
                ),
            ));
            Vec::new()
        }
        None if packets.len() == 1 => vec![(String::new(), packets[0].clone())],
        None => packets
            .into_iter()
            .enumerate()
            .map(|(i, b)| (format!(" #{i}"), b))
            .collect(),
    }
}

/// The context bytes and their type, when the case gives a context.
fn context(
    file: &ParsedFile,
    object: &ObjectInfo,
    c: &CaseDef,
    program: &str,
    prog_type: &str,
    errors: &mut Vec<CaseError>,
) -> (Option<Vec<u8>>, Option<TypeDesc>) {
    let Some(t) = &c.ctx else {
        return (None, None);
    };
    match encode_ctx(object, program, prog_type, t.get_ref()) {
        Ok((bytes, ty)) => (Some(bytes), Some(ty)),
        Err(e) => {
            errors.push(file.err(t.span(), e));
            (None, None)
        }
    }
}

/// The probes the case needs. An XDP context needs a kernel that takes one
/// (5.13+).
fn requirements(
    file: &ParsedFile,
    c: &CaseDef,
    prog_type: &str,
    has_ctx: bool,
    errors: &mut Vec<CaseError>,
) -> Vec<String> {
    let mut requires = Vec::new();
    if prog_type == "xdp" && has_ctx {
        requires.push("xdp_ctx".to_owned());
    }
    for r in &c.requires {
        if crate::features::feature(r.get_ref()).is_none() {
            let names: Vec<_> = crate::features::FEATURES.iter().map(|f| f.name).collect();
            errors.push(file.err(
                r.span(),
                format!(
                    "unknown probe `{}`; known probes are {}",
                    r.get_ref(),
                    names.join(", ")
                ),
            ));
        } else {
            requires.push(r.get_ref().clone());
        }
    }
    requires
}

/// The entries written before the run.
fn map_setup(
    file: &ParsedFile,
    object: &ObjectInfo,
    c: &CaseDef,
    errors: &mut Vec<CaseError>,
) -> Vec<MapWrite> {
    let mut setup = Vec::new();
    for (map_name, entries) in &c.maps {
        let Some(map) = lookup_map(file, object, map_name, errors) else {
            continue;
        };
        for (i, entry) in entries.get_ref().iter().enumerate() {
            match encode_write(
                map,
                &object.constants,
                entry.get_ref(),
                &format!("maps.{}[{i}]", map_name.get_ref()),
            ) {
                Ok(w) => setup.push(w),
                Err((span, e)) => errors.push(file.err(span.unwrap_or_else(|| entry.span()), e)),
            }
        }
    }
    setup
}

/// What must hold after the run, each with the line it is written on.
fn expectations(
    file: &ParsedFile,
    object: &ObjectInfo,
    c: &CaseDef,
    prog_type: &str,
    ctx_type: Option<&TypeDesc>,
    input: Option<&[u8]>,
    errors: &mut Vec<CaseError>,
) -> Expectations {
    let line = |span: Range<usize>| line_of(&file.source, span.start);
    let mut expect = Expectations {
        retval_line: c.expect.retval.as_ref().map_or(0, |r| line(r.span())),
        packet_line: c
            .expect
            .packet
            .as_ref()
            .map(|p| line(p.span()))
            .or(c.expect.packet_hex.as_ref().map(|p| line(p.span())))
            .unwrap_or(0),
        ctx_line: c.expect.ctx.as_ref().map_or(0, |t| line(t.span())),
        ..Expectations::default()
    };
    if let Some(r) = &c.expect.retval {
        match expected_return(r.get_ref(), prog_type) {
            Ok(v) => expect.retval = Some(v),
            Err(e) => errors.push(file.err(r.span(), e)),
        }
    }
    expect.packet = expected_packet(file, c, input, errors);
    if let Some(t) = &c.expect.ctx {
        match ctx_type
            .cloned()
            .or_else(|| ctx_struct(object, prog_type).ok())
        {
            Some(ty) => match encode_with(
                &ty,
                &Value::Table(t.get_ref().clone()),
                "expect.ctx",
                &object.constants,
            ) {
                Ok(e) => expect.ctx = Some((ty, e)),
                Err(e) => errors.push(file.err(t.span(), e.to_string())),
            },
            None => errors.push(file.err(
                t.span(),
                format!("{prog_type} programs have no context to check"),
            )),
        }
    }
    if let Some(t) = &c.expect.flow_keys {
        expect.flow_keys_line = line(t.span());
        match (prog_type, object.struct_type("bpf_flow_keys")) {
            ("flow_dissector", Some(ty)) => match encode_with(
                &ty,
                &Value::Table(t.get_ref().clone()),
                "expect.flow_keys",
                &object.constants,
            ) {
                Ok(e) => expect.flow_keys = Some((ty, e)),
                Err(e) => errors.push(file.err(t.span(), e.to_string())),
            },
            ("flow_dissector", None) => errors.push(file.err(
                t.span(),
                "the object's BTF has no layout of `struct bpf_flow_keys` (clang records a struct only \
                 pointed to from the context as a forward declaration): name it in the program, e.g. \
                 `const struct bpf_flow_keys *unused_flow_keys __attribute__((unused));`",
            )),
            (other, _) => errors.push(file.err(
                t.span(),
                format!("`expect.flow_keys` is for flow dissectors; this is a {other} program"),
            )),
        }
    }
    for (map_name, entries) in &c.expect.maps {
        let Some(map) = lookup_map(file, object, map_name, errors) else {
            continue;
        };
        for (i, entry) in entries.get_ref().iter().enumerate() {
            match encode_expectation(
                map,
                &object.constants,
                entry.get_ref(),
                &format!("expect.maps.{}[{i}]", map_name.get_ref()),
            ) {
                Ok(e) => expect.maps.push(MapExpectation {
                    line: line(entry.span()),
                    ..e
                }),
                Err((span, e)) => errors.push(file.err(span.unwrap_or_else(|| entry.span()), e)),
            }
        }
    }
    expect
}

/// `expect.return`: a name of the program type, or a 32-bit number.
pub(crate) fn expected_return(r: &NameOrNumber, prog_type: &str) -> Result<u32, String> {
    match r {
        NameOrNumber::Number(n) => i32::try_from(*n)
            .map(|v| v as u32)
            .or_else(|_| u32::try_from(*n))
            .map_err(|_| format!("{n} is not a 32-bit return value")),
        NameOrNumber::Name(n) => retval::resolve(prog_type, n).map_err(|e| e.to_string()),
    }
}

/// `expect.packet` (layers, or `"unchanged"`: the input) or
/// `expect.packet_hex`.
fn expected_packet(
    file: &ParsedFile,
    c: &CaseDef,
    input: Option<&[u8]>,
    errors: &mut Vec<CaseError>,
) -> Option<Vec<u8>> {
    match (&c.expect.packet, &c.expect.packet_hex) {
        (Some(_), Some(h)) => {
            errors.push(file.err(
                h.span(),
                "give either `expect.packet` or `expect.packet_hex`",
            ));
            None
        }
        (Some(p), None) => match p.get_ref() {
            PacketExpect::Keyword(k) if k == "unchanged" => input.map(<[u8]>::to_vec),
            PacketExpect::Keyword(k) => {
                errors.push(file.err(
                    p.span(),
                    format!("`{k}`: expected \"unchanged\" or a table of layers"),
                ));
                None
            }
            PacketExpect::Layers(layers) => match layers.build() {
                Ok(b) => Some(b),
                Err(e) => {
                    errors.push(file.err(p.span(), format!("expect.packet: {e}")));
                    None
                }
            },
        },
        (None, Some(h)) => Some(h.get_ref().0.clone()),
        (None, None) => None,
    }
}

/// `percpu = "sum"` (default) or `"each"`.
fn percpu_sum(file: &ParsedFile, c: &CaseDef, errors: &mut Vec<CaseError>) -> bool {
    match c.percpu.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
        None | Some(("sum", _)) => true,
        Some(("each", _)) => false,
        Some((other, span)) => {
            errors.push(file.err(
                span,
                format!("percpu = \"{other}\": expected \"sum\" or \"each\""),
            ));
            true
        }
    }
}

fn lookup_map<'o>(
    file: &ParsedFile,
    object: &'o ObjectInfo,
    name: &Spanned<String>,
    errors: &mut Vec<CaseError>,
) -> Option<&'o MapInfo> {
    match object.maps.get(name.get_ref()) {
        Some(m) if m.is_keyed() => Some(m),
        Some(m) => {
            errors.push(file.err(name.span(), format!(
                "map `{}` is a {}; the harness sets and checks hash, array, per-CPU, LRU, LPM-trie, \
                 devmap and cpumap maps (prog arrays and maps of maps keep what the object \
                 initialises them with)",
                name.get_ref(),
                m.spec.map_type
            )));
            None
        }
        None => {
            let names: Vec<_> = object.maps.keys().map(String::as_str).collect();
            errors.push(file.err(
                name.span(),
                format!(
                    "no map `{}` in object `{}`; its maps are {}",
                    name.get_ref(),
                    object.name,
                    names.join(", ")
                ),
            ));
            None
        }
    }
}

type SpannedErr = (Option<Range<usize>>, String);

fn encode_spanned(
    ty: &TypeDesc,
    v: &Spanned<Value>,
    path: &str,
    k: &Constants,
) -> Result<Encoded, SpannedErr> {
    encode_with(ty, v.get_ref(), path, k).map_err(|e| (Some(v.span()), e.to_string()))
}

/// An array has indexes 0..max_entries: the kernel refuses any other with
/// E2BIG at run time, so say it here, at the key.
fn check_array_index(map: &MapInfo, key: &[u8], path: &str) -> Result<(), String> {
    let Ok(index) = <[u8; 4]>::try_from(key).map(u32::from_ne_bytes) else {
        return Ok(());
    };
    let entries = map.spec.max_entries;
    if map.spec.map_type.is_array() && index >= entries {
        return Err(format!(
            "{path}: index {index} is beyond the array `{}`, which has {entries} entries (0 to {})",
            map.spec.name,
            entries.saturating_sub(1)
        ));
    }
    Ok(())
}

fn encode_write(
    map: &MapInfo,
    k: &Constants,
    e: &EntryDef,
    path: &str,
) -> Result<MapWrite, SpannedErr> {
    let key = encode_spanned(&map.key, &e.key, &format!("{path}.key"), k)?.bytes;
    check_array_index(map, &key, &format!("{path}.key")).map_err(|m| (Some(e.key.span()), m))?;
    let value = match (&e.value, &e.values) {
        (Some(v), None) => MapValue::Single(
            encode_spanned(&map.value, v, &format!("{path}.value"), k)?
                .bytes
                .into(),
        ),
        (None, Some(vs)) if map.is_per_cpu() => MapValue::PerCpu(
            vs.get_ref()
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    encode_with(&map.value, v, &format!("{path}.values[{i}]"), k)
                        .map(|e| e.bytes.into())
                })
                .collect::<Result<_, _>>()
                .map_err(|e| (Some(vs.span()), e.to_string()))?,
        ),
        (None, Some(vs)) => {
            return Err((
                Some(vs.span()),
                format!(
                    "{path}: `values` is for per-CPU maps; `{}` holds one value per key, use `value`",
                    map.spec.name
                ),
            ));
        }
        (Some(_), Some(vs)) => {
            return Err((
                Some(vs.span()),
                format!("{path}: give `value` or `values`, not both"),
            ));
        }
        (None, None) => {
            return Err((
                Some(e.key.span()),
                format!("{path}: entry has a key but no `value`"),
            ));
        }
    };
    Ok(MapWrite {
        map: map.spec.name.clone(),
        key: key.into(),
        value,
    })
}

fn encode_expectation(
    map: &MapInfo,
    k: &Constants,
    e: &ExpectEntryDef,
    path: &str,
) -> Result<MapExpectation, SpannedErr> {
    let key = encode_spanned(&map.key, &e.key, &format!("{path}.key"), k)?.bytes;
    check_array_index(map, &key, &format!("{path}.key")).map_err(|m| (Some(e.key.span()), m))?;
    let key_text = format(&map.key, &key, &map.spec.name);
    let want = match (e.absent, &e.value, &e.values) {
        (true, None, None) => Want::Absent,
        (true, _, _) => {
            return Err((
                Some(e.key.span()),
                format!("{path}: an `absent` entry has no value"),
            ));
        }
        (false, Some(v), None) => {
            Want::Value(encode_spanned(&map.value, v, &format!("{path}.value"), k)?)
        }
        (false, None, Some(vs)) if map.is_per_cpu() => Want::PerCpu(
            vs.get_ref()
                .iter()
                .enumerate()
                .map(|(i, v)| encode_with(&map.value, v, &format!("{path}.values[{i}]"), k))
                .collect::<Result<_, _>>()
                .map_err(|e| (Some(vs.span()), e.to_string()))?,
        ),
        (false, None, Some(vs)) => {
            return Err((
                Some(vs.span()),
                format!("{path}: `values` is for per-CPU maps"),
            ));
        }
        (false, Some(_), Some(vs)) => {
            return Err((
                Some(vs.span()),
                format!("{path}: give `value` or `values`, not both"),
            ));
        }
        (false, None, None) => {
            return Err((
                Some(e.key.span()),
                format!("{path}: give `value`, `values` or `absent = true`"),
            ));
        }
    };
    Ok(MapExpectation {
        line: 0,
        map: map.spec.name.clone(),
        key,
        key_text,
        want,
    })
}

/// The kernel insists that an XDP context's `data_end` equals the input's
/// size; fill it in (the field is 0 for other context types' layouts).
pub(crate) fn with_data_end(ctx: &[u8], ty: Option<&TypeDesc>, len: usize) -> Vec<u8> {
    let mut ctx = ctx.to_vec();
    if let Some(TypeDesc::Struct { name, members, .. }) = ty
        && name == "xdp_md"
        && let Some(m) = members.iter().find(|m| m.name == "data_end")
    {
        let at = (m.bit_offset / 8) as usize;
        if let Some(slot) = ctx.get_mut(at..at + 4) {
            slot.copy_from_slice(&(len as u32).to_ne_bytes());
        }
    }
    ctx
}

fn ctx_struct(object: &ObjectInfo, prog_type: &str) -> Result<TypeDesc, String> {
    let Some((name, _)) = ctx_fields(prog_type) else {
        return Err(format!(
            "BPF_PROG_TEST_RUN takes no context fields for {prog_type} programs"
        ));
    };
    object
        .struct_type(name)
        .ok_or_else(|| format!("the object's BTF has no `struct {name}` (compile with -g so the context type is recorded)"))
}

pub(crate) fn encode_ctx(
    object: &ObjectInfo,
    program: &str,
    prog_type: &str,
    table: &toml::Table,
) -> Result<(Vec<u8>, TypeDesc), String> {
    if prog_type == "syscall" {
        // The context is whatever struct the program declares it takes.
        let ty = object.ctx_type_of(program).ok_or_else(|| {
            format!(
                "`{program}` takes no pointer to a struct in its BTF signature: give `data` instead"
            )
        })?;
        let e = encode_with(&ty, &Value::Table(table.clone()), "ctx", &object.constants)
            .map_err(|e| e.to_string())?;
        return Ok((e.bytes, ty));
    }
    if matches!(prog_type, "raw_tracepoint") {
        // The context of a raw tracepoint is its arguments, as u64s.
        let Some(Value::Array(args)) = table.get("args") else {
            return Err(
                "raw tracepoint context is `{ args = [..] }` (up to 12 u64 arguments)".into(),
            );
        };
        if table.len() != 1 || args.len() > 12 {
            return Err(
                "raw tracepoint context is `{ args = [..] }` (up to 12 u64 arguments)".into(),
            );
        }
        let u64_ty = TypeDesc::Int {
            name: "u64".into(),
            size: 8,
            signed: false,
            big_endian: false,
            is_bool: false,
        };
        let mut out = Vec::new();
        for (i, a) in args.iter().enumerate() {
            out.extend(
                encode(&u64_ty, a, &format!("ctx.args[{i}]"))
                    .map_err(|e| e.to_string())?
                    .bytes,
            );
        }
        return Ok((out, TypeDesc::Bytes { size: 0 }));
    }
    let (_, allowed) = ctx_fields(prog_type).ok_or_else(|| {
        format!("BPF_PROG_TEST_RUN takes no context fields for {prog_type} programs")
    })?;
    for key in table.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(format!(
                "the kernel's BPF_PROG_TEST_RUN refuses `{key}` in the context of {prog_type} programs; it accepts {}",
                allowed.join(", ")
            ));
        }
    }
    let ty = ctx_struct(object, prog_type)?;
    let e = encode_with(&ty, &Value::Table(table.clone()), "ctx", &object.constants)
        .map_err(|e| e.to_string())?;
    Ok((e.bytes, ty))
}
