//! Cases made of steps: test runs and live actions in order, the programs
//! a live case attaches, the files it needs, and the events it decodes
//! from a ring buffer (as which BTF struct, which fields to normalise in
//! snapshots, which events it expects).

use std::ops::Range;

use harness_btf_value::{Encoded, TypeDesc, encode_with};
use harness_protocol::{FileSetup, OpenMode, Step, StepsPlan, Transport};
use toml::{Spanned, Value};

use crate::{
    compile::{ParsedFile, encode_ctx, expected_return, line_of, run_input, runs_on_context_only},
    diag::CaseError,
    errno,
    file::{CaseDef, EventTypeDef, EventsDef, IdsDef, StepDef},
    object::ObjectInfo,
};

/// The deadline of a case that sets none.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// Fields every event snapshot shows as `[name]`: they differ between runs.
pub const NORMALISED_BY_DEFAULT: &[&str] = &[
    "pid",
    "ppid",
    "tgid",
    "tid",
    "ino",
    "inode",
    "ts",
    "ts_ns",
    "timestamp",
    "time_ns",
    "when_ns",
    "ktime",
    "ktime_ns",
    "cookie",
];

/// What one step must produce, at its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepExpectation {
    /// 0-based.
    pub step: usize,
    pub line: usize,
    pub want: StepWant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepWant {
    /// A test run's return value.
    Return(u32),
    /// A live action's outcome.
    Outcome(Outcome),
    /// An exec's exit status.
    Exit(i32),
}

/// `expect.result` of a live step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Not refused by a policy: anything but EPERM and EACCES.
    Allowed,
    /// EPERM or EACCES.
    Denied,
    Errno(i32),
}

impl Outcome {
    pub fn holds(self, got: i32) -> bool {
        match self {
            Self::Ok => got == 0,
            Self::Allowed => !errno::is_denial(got),
            Self::Denied => errno::is_denial(got),
            Self::Errno(e) => got == e,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Allowed => f.write_str("allowed (not EPERM or EACCES)"),
            Self::Denied => f.write_str("denied (EPERM or EACCES)"),
            Self::Errno(e) => f.write_str(&errno::describe(*e)),
        }
    }
}

/// How a case reads its ring buffer.
#[derive(Clone, Debug)]
pub struct EventDecoder {
    pub map: String,
    pub types: EventTypes,
    /// Top-level fields shown as `[name]` in snapshots.
    pub normalise: Vec<String>,
    /// A perf event array: the kernel pads each sample to 8 bytes.
    pub padded: bool,
}

#[derive(Clone, Debug)]
pub enum EventTypes {
    One(TypeDesc),
    /// Told apart by the record's first `u32`.
    ByKind(Vec<(u32, TypeDesc)>),
}

impl EventDecoder {
    /// The struct a record is, by its kind where there are several.
    pub fn type_of(&self, record: &[u8]) -> Result<&TypeDesc, String> {
        match &self.types {
            EventTypes::One(ty) => Ok(ty),
            EventTypes::ByKind(types) => {
                let kind = record
                    .get(..4)
                    .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .ok_or_else(|| {
                        format!("a {}-byte record has no kind (first u32)", record.len())
                    })?;
                types
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .map(|(_, t)| t)
                    .ok_or_else(|| {
                        let known: Vec<String> = types.iter().map(|(k, _)| k.to_string()).collect();
                        format!(
                            "a record of kind {kind}, which `type` does not name (it names {})",
                            known.join(", ")
                        )
                    })
            }
        }
    }
}

/// One expected event: only the fields given are compared.
#[derive(Clone, Debug)]
pub struct EventExpectation {
    pub line: usize,
    pub ty: TypeDesc,
    pub want: Encoded,
}

/// Everything a steps case adds to a plain case.
#[derive(Clone, Debug, Default)]
pub struct StepsCase {
    pub plan: StepsPlan,
    pub expect: Vec<StepExpectation>,
    pub events: Option<EventDecoder>,
    /// `expect.events`, with its line; `None` when the case gives none.
    pub expected_events: Option<(usize, Vec<EventExpectation>)>,
    /// `expect.event_count`, with its line.
    pub expected_count: Option<(usize, usize)>,
}

fn err(file: &ParsedFile, span: Range<usize>, msg: impl Into<String>) -> CaseError {
    CaseError::new(&file.path, &file.source, Some(span), msg)
}

/// Compiles the steps of `c` (which has some), driving `program` of
/// `prog_type` where a step runs a test.
pub(crate) fn compile(
    file: &ParsedFile,
    object: &ObjectInfo,
    c: &CaseDef,
    program: &str,
    errors: &mut Vec<CaseError>,
) -> StepsCase {
    for (given, what) in [
        (c.packet.as_ref().map(Spanned::span), "packet"),
        (c.pcap.as_ref().map(Spanned::span), "pcap"),
        (c.data.as_ref().map(Spanned::span), "data"),
        (c.ctx.as_ref().map(Spanned::span), "ctx"),
        (c.repeat.as_ref().map(Spanned::span), "repeat"),
        (c.expect.retval.as_ref().map(Spanned::span), "expect.return"),
        (c.expect.packet.as_ref().map(Spanned::span), "expect.packet"),
        (
            c.expect.packet_hex.as_ref().map(Spanned::span),
            "expect.packet_hex",
        ),
        (c.expect.ctx.as_ref().map(Spanned::span), "expect.ctx"),
    ] {
        if let Some(span) = given {
            errors.push(err(
                file,
                span,
                format!("a case with `steps` gives `{what}` in the step it belongs to"),
            ));
        }
    }
    let mut out = StepsCase::default();
    for (i, step) in c.steps.iter().enumerate() {
        if let Some((s, want)) = compile_step(file, object, program, step, errors) {
            out.plan.steps.push(s);
            if let Some(want) = want {
                out.expect.push(StepExpectation {
                    step: i,
                    line: line_of(&file.source, want.0),
                    want: want.1,
                });
            }
        }
    }
    let live = out.plan.steps.iter().any(Step::is_live);
    out.plan.attach = match &c.attach {
        Some(list) => list
            .get_ref()
            .iter()
            .filter_map(|p| match object.program(p.get_ref()) {
                Some(_) => Some(p.get_ref().clone()),
                None => {
                    errors.push(err(
                        file,
                        p.span(),
                        format!(
                            "no program `{}` to attach in object `{}`; its programs are {}",
                            p.get_ref(),
                            object.name,
                            object.program_names().join(", ")
                        ),
                    ));
                    None
                }
            })
            .collect(),
        None if live => vec![program.to_owned()],
        None => Vec::new(),
    };
    out.plan.files = c
        .files
        .iter()
        .filter_map(|(path, content)| {
            if !path.get_ref().starts_with('/') {
                errors.push(err(
                    file,
                    path.span(),
                    "a file's path must be absolute (inside the VM)",
                ));
                return None;
            }
            Some(FileSetup {
                path: path.get_ref().clone(),
                content: content.get_ref().as_bytes().to_vec().into(),
            })
        })
        .collect();
    out.plan.timeout_ms = c
        .timeout_ms
        .as_ref()
        .map_or(DEFAULT_TIMEOUT_MS, |t| *t.get_ref());
    if let Some(t) = &c.timeout_ms
        && *t.get_ref() == 0
    {
        errors.push(err(file, t.span(), "`timeout_ms` must be more than 0"));
    }
    if let Some(e) = &c.events {
        if let Some(decoder) = decoder(file, object, e, &c.normalize, errors) {
            out.plan.ring_buffers.push(decoder.map.clone());
            out.events = Some(decoder);
        }
    } else if let Some(n) = c.normalize.first() {
        errors.push(err(
            file,
            n.span(),
            "`normalize` names event fields: give `events` too",
        ));
    }
    if let Some(n) = &c.expect.event_count {
        match (&out.events, &c.expect.events) {
            (None, _) => errors.push(err(
                file,
                n.span(),
                "`expect.event_count` needs `events = { map = ..., type = ... }` to read them",
            )),
            (Some(_), Some(list)) if list.get_ref().len() != *n.get_ref() => errors.push(err(
                file,
                n.span(),
                format!(
                    "`expect.event_count` is {} but `expect.events` lists {}",
                    n.get_ref(),
                    list.get_ref().len()
                ),
            )),
            (Some(_), _) => {
                out.expected_count = Some((line_of(&file.source, n.span().start), *n.get_ref()));
            }
        }
    }
    if let Some(expected) = &c.expect.events {
        match &out.events {
            Some(decoder) => {
                let list = expected
                    .get_ref()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| expected_event(file, object, decoder, i, t, errors))
                    .collect();
                out.expected_events = Some((line_of(&file.source, expected.span().start), list));
            }
            None => errors.push(err(
                file,
                expected.span(),
                "`expect.events` needs `events = { map = ..., type = ... }` to decode them",
            )),
        }
    }
    out
}

/// One step and its expectation (span start of the expectation, want).
fn compile_step(
    file: &ParsedFile,
    object: &ObjectInfo,
    case_program: &str,
    step: &Spanned<StepDef>,
    errors: &mut Vec<CaseError>,
) -> Option<(Step, Option<(usize, StepWant)>)> {
    let s = step.get_ref();
    let span = step.span();
    let actions: Vec<&str> = [
        (s.exec.is_some(), "exec"),
        (s.open.is_some(), "open"),
        (s.connect.is_some(), "connect"),
        (s.setuid.is_some(), "setuid"),
        (s.setgid.is_some(), "setgid"),
        (s.sleep_ms.is_some(), "sleep_ms"),
    ]
    .into_iter()
    .filter_map(|(given, name)| given.then_some(name))
    .collect();
    let test_run = s.packet.is_some() || s.data.is_some() || s.ctx.is_some() || s.program.is_some();
    if actions.len() > 1 || (test_run && !actions.is_empty()) {
        errors.push(err(
            file,
            span,
            format!(
                "a step does one thing: it has {}",
                actions
                    .iter()
                    .copied()
                    .chain(test_run.then_some("a test run (program/packet/data/ctx)"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        ));
        return None;
    }
    if s.mode.is_some() && s.open.is_none() {
        errors.push(err(file, span.clone(), "`mode` belongs to an `open` step"));
    }
    let result_want = match &s.expect.result {
        Some(r) => match parse_outcome(r.get_ref()) {
            Ok(o) => Some((r.span().start, StepWant::Outcome(o))),
            Err(e) => {
                errors.push(err(file, r.span(), e));
                None
            }
        },
        None => None,
    };
    if test_run || actions.is_empty() {
        if let Some(r) = &s.expect.result {
            errors.push(err(
                file,
                r.span(),
                "`expect.result` is for live actions; a test run has `expect.return`",
            ));
        }
        if let Some(x) = &s.expect.exit {
            errors.push(err(file, x.span(), "`expect.exit` is for `exec` steps"));
        }
        return test_run_step(file, object, case_program, s, span, errors);
    }
    if let Some(r) = &s.expect.retval {
        errors.push(err(
            file,
            r.span(),
            "`expect.return` is for test-run steps; a live action has `expect.result`",
        ));
    }
    let exit_want = match (&s.expect.exit, &s.exec) {
        (Some(x), Some(_)) => Some((x.span().start, StepWant::Exit(*x.get_ref()))),
        (Some(x), None) => {
            errors.push(err(file, x.span(), "`expect.exit` is for `exec` steps"));
            None
        }
        _ => None,
    };
    let step = if let Some(argv) = &s.exec {
        if argv.get_ref().is_empty() || !argv.get_ref()[0].starts_with('/') {
            errors.push(err(
                file,
                argv.span(),
                "`exec` is `[\"/absolute/path\", args...]`",
            ));
            return None;
        }
        Step::Exec {
            argv: argv.get_ref().clone(),
        }
    } else if let Some(path) = &s.open {
        let mode = match s.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None | Some(("read", _)) => OpenMode::Read,
            Some(("write", _)) => OpenMode::Write,
            Some(("create", _)) => OpenMode::Create,
            Some((other, span)) => {
                errors.push(err(
                    file,
                    span,
                    format!("unknown mode `{other}`: expected read, write or create"),
                ));
                return None;
            }
        };
        Step::Open {
            path: path.get_ref().clone(),
            mode,
        }
    } else if let Some(target) = &s.connect {
        match parse_connect(target.get_ref()) {
            Ok((transport, address)) => Step::Connect { transport, address },
            Err(e) => {
                errors.push(err(file, target.span(), e));
                return None;
            }
        }
    } else if let Some(ids) = s.setuid.as_ref().or(s.setgid.as_ref()) {
        let Some([r, e, sv]) = three_ids(ids.get_ref()) else {
            errors.push(err(
                file,
                ids.span(),
                "ids are one number or [real, effective, saved]",
            ));
            return None;
        };
        if s.setuid.is_some() {
            Step::SetUid {
                ruid: r,
                euid: e,
                suid: sv,
            }
        } else {
            Step::SetGid {
                rgid: r,
                egid: e,
                sgid: sv,
            }
        }
    } else if let Some(ms) = &s.sleep_ms {
        Step::Sleep { ms: *ms.get_ref() }
    } else {
        unreachable!("one action is given")
    };
    if let (Some(_), Some(x)) = (&s.expect.result, &s.expect.exit) {
        errors.push(err(
            file,
            x.span(),
            "give `expect.exit` (which implies the exec worked) or `expect.result`, not both",
        ));
    }
    let want = result_want.or(exit_want);
    Some((step, want))
}

fn test_run_step(
    file: &ParsedFile,
    object: &ObjectInfo,
    case_program: &str,
    s: &StepDef,
    span: Range<usize>,
    errors: &mut Vec<CaseError>,
) -> Option<(Step, Option<(usize, StepWant)>)> {
    let program = s
        .program
        .as_ref()
        .map_or(case_program, |p| p.get_ref().as_str());
    let Some(spec) = object.program(program) else {
        let at = s.program.as_ref().map_or(span.clone(), Spanned::span);
        errors.push(err(
            file,
            at,
            format!(
                "no program `{program}` in object `{}`; its programs are {}",
                object.name,
                object.program_names().join(", ")
            ),
        ));
        return None;
    };
    let prog_type = spec.kind.as_ref().map_or("unknown", |k| k.name);
    let data = match (&s.packet, &s.data) {
        (Some(_), Some(d)) => {
            errors.push(err(file, d.span(), "give `packet` or `data`, not both"));
            return None;
        }
        (Some(p), None) => match p.get_ref().build() {
            Ok(bytes) => bytes,
            Err(e) => {
                errors.push(err(file, p.span(), format!("packet: {e}")));
                return None;
            }
        },
        (None, Some(d)) => d.get_ref().0.clone(),
        (None, None) if runs_on_context_only(prog_type) => Vec::new(),
        (None, None) => {
            errors.push(err(
                file,
                span,
                format!("a step does nothing: give an action, or `packet`/`data` for a test run of the {prog_type} program"),
            ));
            return None;
        }
    };
    let (ctx, ctx_type) = match &s.ctx {
        Some(t) => match encode_ctx(object, program, prog_type, t.get_ref()) {
            Ok((bytes, ty)) => (Some(bytes), Some(ty)),
            Err(e) => {
                errors.push(err(file, t.span(), e));
                return None;
            }
        },
        None => (None, None),
    };
    let want = match &s.expect.retval {
        Some(r) => match expected_return(r.get_ref(), prog_type) {
            Ok(v) => Some((r.span().start, StepWant::Return(v))),
            Err(e) => {
                errors.push(err(file, r.span(), e));
                None
            }
        },
        None => None,
    };
    let input = run_input(prog_type, data, ctx, ctx_type.as_ref(), 0, 1);
    Some((
        Step::TestRun {
            program: program.to_owned(),
            input,
        },
        want,
    ))
}

fn three_ids(ids: &IdsDef) -> Option<[u32; 3]> {
    match ids {
        IdsDef::One(id) => Some([*id; 3]),
        IdsDef::Three(v) => v.as_slice().try_into().ok(),
    }
}

fn parse_outcome(text: &str) -> Result<Outcome, String> {
    match text {
        "ok" => Ok(Outcome::Ok),
        "allowed" => Ok(Outcome::Allowed),
        "denied" => Ok(Outcome::Denied),
        name => errno::by_name(name).map(Outcome::Errno).ok_or_else(|| {
            format!(
                "unknown result `{name}`: expected ok, allowed, denied or an errno name ({})",
                errno::NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    }
}

/// `tcp://10.0.0.1:443` or `udp://[2001:db8::1]:53`.
fn parse_connect(text: &str) -> Result<(Transport, String), String> {
    let expected = "expected `tcp://ADDRESS:PORT` or `udp://ADDRESS:PORT` (IPv6 in brackets)";
    let (transport, rest) = if let Some(rest) = text.strip_prefix("tcp://") {
        (Transport::Tcp, rest)
    } else if let Some(rest) = text.strip_prefix("udp://") {
        (Transport::Udp, rest)
    } else {
        return Err(format!("`{text}`: {expected}"));
    };
    rest.parse::<std::net::SocketAddr>()
        .map_err(|e| format!("`{text}`: {e}; {expected}"))?;
    Ok((transport, rest.to_owned()))
}

fn decoder(
    file: &ParsedFile,
    object: &ObjectInfo,
    e: &Spanned<EventsDef>,
    normalize: &[Spanned<String>],
    errors: &mut Vec<CaseError>,
) -> Option<EventDecoder> {
    let def = e.get_ref();
    let map = def.map.get_ref();
    let is_buffer = |t: &str| matches!(t, "ringbuf" | "perf_event_array");
    let padded = match object.maps.get(map) {
        Some(info) if is_buffer(&info.spec.map_type.name()) => {
            info.spec.map_type.name() == "perf_event_array"
        }
        Some(info) => {
            errors.push(err(
                file,
                def.map.span(),
                format!(
                    "map `{map}` is a {}, not a ring buffer or perf event array",
                    info.spec.map_type.name()
                ),
            ));
            return None;
        }
        None => {
            let rings: Vec<&str> = object
                .maps
                .iter()
                .filter(|(_, m)| is_buffer(&m.spec.map_type.name()))
                .map(|(n, _)| n.as_str())
                .collect();
            errors.push(err(
                file,
                def.map.span(),
                format!(
                    "no map `{map}` in object `{}`; its event buffers are {}",
                    object.name,
                    list_or_none(&rings)
                ),
            ));
            return None;
        }
    };
    let lookup = |name: &str| {
        object.struct_type(name).ok_or_else(|| {
            format!(
                "no struct `{name}` in the object's BTF (a ring buffer's record type is only there if the program names it: declare e.g. `const struct {name} *unused_{name} __attribute__((unused));`)"
            )
        })
    };
    let types = match def.ty.get_ref() {
        EventTypeDef::One(name) => match lookup(name) {
            Ok(ty) => EventTypes::One(ty),
            Err(m) => {
                errors.push(err(file, def.ty.span(), m));
                return None;
            }
        },
        EventTypeDef::ByKind(kinds) => {
            let mut types = Vec::new();
            for (kind, name) in kinds {
                let Ok(k) = kind.parse::<u32>() else {
                    errors.push(err(file, def.ty.span(), format!("`{kind}` is not a kind: the keys are the values of the record's first u32")));
                    continue;
                };
                match lookup(name) {
                    Ok(ty) => types.push((k, ty)),
                    Err(m) => errors.push(err(file, def.ty.span(), m)),
                }
            }
            EventTypes::ByKind(types)
        }
    };
    let mut normalise: Vec<String> = NORMALISED_BY_DEFAULT
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for n in normalize {
        let known = match &types {
            EventTypes::One(ty) => has_field(ty, n.get_ref()),
            EventTypes::ByKind(ts) => ts.iter().any(|(_, ty)| has_field(ty, n.get_ref())),
        };
        if known {
            normalise.push(n.get_ref().clone());
        } else {
            errors.push(err(
                file,
                n.span(),
                format!("no field `{}` in the event type", n.get_ref()),
            ));
        }
    }
    Some(EventDecoder {
        map: map.clone(),
        types,
        normalise,
        padded,
    })
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn has_field(ty: &TypeDesc, name: &str) -> bool {
    matches!(ty, TypeDesc::Struct { members, .. } if members.iter().any(|m| m.name == name))
}

fn expected_event(
    file: &ParsedFile,
    object: &ObjectInfo,
    decoder: &EventDecoder,
    i: usize,
    t: &Spanned<toml::Table>,
    errors: &mut Vec<CaseError>,
) -> Option<EventExpectation> {
    let ty = match &decoder.types {
        EventTypes::One(ty) => ty.clone(),
        EventTypes::ByKind(types) => {
            let first = match &types.first()?.1 {
                TypeDesc::Struct { members, .. } => members.first().map(|m| m.name.clone()),
                _ => None,
            }?;
            let Some(kind) = t.get_ref().get(&first).and_then(Value::as_integer) else {
                errors.push(err(
                    file,
                    t.span(),
                    format!("say which event this is: give `{first}` (the record's kind)"),
                ));
                return None;
            };
            match types.iter().find(|(k, _)| i64::from(*k) == kind) {
                Some((_, ty)) => ty.clone(),
                None => {
                    errors.push(err(
                        file,
                        t.span(),
                        format!("`{first} = {kind}` is not a kind `events.type` names"),
                    ));
                    return None;
                }
            }
        }
    };
    match encode_with(
        &ty,
        &Value::Table(t.get_ref().clone()),
        &format!("expect.events[{i}]"),
        &object.constants,
    ) {
        Ok(want) => Some(EventExpectation {
            line: line_of(&file.source, t.span().start),
            ty,
            want,
        }),
        Err(e) => {
            errors.push(err(file, t.span(), e.to_string()));
            None
        }
    }
}
