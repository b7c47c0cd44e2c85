//! Reading scenario files: TOML through serde (unknown keys are errors), then
//! the checks serde cannot do — one action per step, modifiers that fit the
//! action, placeholders that fit the place, XML that parses. Every error
//! names the file and the line.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{
    LoadError, MetadataProblem, Problem, RequirementError, StepProblem, TemplateError,
};
use super::pattern::parse_xml;
use super::template::{Placeholder, Template};
use super::{Action, Feature, Level, PartnerSpec, PeerSpec, Script, Step};
use crate::oracle::DnsVariant;
use crate::partner::{Negotiation, PartnerType, Setting};
use crate::peer::{Authzid, VerifyMode};
use crate::pki::CertVariant;
use crate::requirement::{Keyword, Requirement, SourceKind};
use crate::scenario::CASE_ZONE;
use crate::source::line_of;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScript {
    id: Spanned<String>,
    title: String,
    refs: Vec<String>,
    level: Level,
    /// What kind of text the scenario rests on (SPEC §4.6); `protocol` by default.
    source: Option<SourceKind>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    stranger: bool,
    /// What the scenario needs of a target beyond its partner configuration.
    #[serde(default)]
    needs: Vec<super::Need>,
    partner: Option<RawPartner>,
    #[serde(default)]
    peer: RawPeer,
    #[serde(rename = "step", default)]
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPartner {
    #[serde(rename = "type")]
    partner_type: PartnerType,
    /// One setting, or every setting under which the scenario holds.
    tls: OneOrMany<Setting>,
    sasl: OneOrMany<Setting>,
    dialback: OneOrMany<bool>,
    #[serde(default)]
    additional_domains: Vec<String>,
    connection_limit: Option<Spanned<u32>>,
    #[serde(default)]
    keep_alive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPeer {
    #[serde(default = "optional")]
    tls: Setting,
    #[serde(default = "optional")]
    sasl: Setting,
    #[serde(default = "yes")]
    dialback: bool,
    #[serde(default = "valid")]
    cert: CertVariant,
    #[serde(default = "srv")]
    dns: DnsVariant,
    #[serde(default)]
    verify: VerifyMode,
    /// `none`, `own-domain`, or any other identity.
    #[serde(default)]
    authzid: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
}

impl Default for RawPeer {
    fn default() -> Self {
        RawPeer {
            tls: Setting::Optional,
            sasl: Setting::Optional,
            dialback: true,
            cert: CertVariant::Valid,
            dns: DnsVariant::Srv,
            verify: VerifyMode::Honest,
            authzid: None,
            domains: Vec::new(),
        }
    }
}

fn optional() -> Setting {
    Setting::Optional
}
fn yes() -> bool {
    true
}
fn valid() -> CertVariant {
    CertVariant::Valid
}
fn srv() -> DnsVariant {
    DnsVariant::Srv
}

/// One value or several.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum OneOrMany<T = String> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn list(self) -> Vec<T> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Every key a step may have: one action and the modifiers that fit it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStep {
    // actions
    connect: Option<bool>,
    open: Option<bool>,
    send: Option<String>,
    send_raw: Option<String>,
    starttls: Option<bool>,
    authenticate: Option<bool>,
    expect: Option<OneOrMany>,
    expect_stream_error: Option<OneOrMany>,
    expect_close: Option<bool>,
    expect_version: Option<String>,
    expect_nothing: Option<f64>,
    expect_delivery: Option<String>,
    expect_no_delivery: Option<String>,
    expect_stanza: Option<String>,
    expect_feature: Option<String>,
    expect_no_feature: Option<String>,
    close: Option<bool>,
    wait: Option<f64>,
    // modifiers
    #[serde(rename = "as")]
    from: Option<String>,
    to: Option<String>,
    header: Option<bool>,
    direct_tls: Option<bool>,
    pipeline: Option<String>,
    exact: Option<bool>,
    absent: Option<Vec<String>>,
    at: Option<String>,
    pad_to: Option<usize>,
    timeout: Option<f64>,
    // provenance (SPEC §4.6), when the step rests on another text than the scenario
    keyword: Option<Keyword>,
    source: Option<SourceKind>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    /// Free text for the reader of the file; ignored.
    #[allow(dead_code)]
    note: Option<String>,
}

/// The largest padded send (16 MiB): far above any sensible stanza limit,
/// small enough to build in memory.
const MAX_PAD: usize = 16 * 1024 * 1024;

/// Reads and checks one scenario file.
pub fn parse_script(text: &str, file: &str) -> Result<Script, LoadError> {
    let at_line = |offset: usize| line_of(text, offset);
    let at = |line: usize, problem: Problem| LoadError::At {
        file: file.to_owned(),
        line,
        problem,
    };
    let top = |problem: Problem| at(1, problem);
    let metadata = |problem: MetadataProblem| top(Problem::Metadata(problem));
    let raw: RawScript = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| at_line(s.start)).unwrap_or(1);
        at(line, Problem::Toml(e.message().trim().to_owned()))
    })?;
    let id_line = at_line(raw.id.span().start);
    check_id(raw.id.get_ref()).map_err(|m| at(id_line, Problem::Metadata(m)))?;
    let partner = match (raw.stranger, raw.partner) {
        (true, Some(_)) => {
            return Err(metadata(MetadataProblem::StrangerWithPartner));
        }
        (false, None) => {
            return Err(metadata(MetadataProblem::MissingPartner));
        }
        (true, None) => None,
        (false, Some(p)) => {
            let mut configurations =
                configurations(p.tls.list(), p.sasl.list(), p.dialback.list()).map_err(metadata)?;
            let negotiation = configurations.remove(0);
            Some(PartnerSpec {
                partner_type: p.partner_type,
                negotiation,
                alternatives: configurations,
                additional_domains: p
                    .additional_domains
                    .iter()
                    .map(|d| domain_template(d))
                    .collect::<Result<_, _>>()
                    .map_err(|e| top(e.into()))?,
                connection_limit: match p.connection_limit {
                    // A partner set refuses 0 (P6): every run would fail on it.
                    Some(limit) if *limit.get_ref() == 0 => {
                        return Err(at(
                            at_line(limit.span().start),
                            Problem::Metadata(MetadataProblem::ConnectionLimitZero),
                        ));
                    }
                    limit => limit.map(Spanned::into_inner),
                },
                keep_alive: p.keep_alive,
            })
        }
    };
    let requirement =
        default_requirement(raw.source, raw.level, &raw.refs).map_err(|e| metadata(e.into()))?;
    let p = raw.peer;
    let authzid = match p.authzid.as_deref() {
        None | Some("none") => Authzid::None,
        Some("own-domain") => Authzid::OwnDomain,
        Some(other) => Authzid::Other(other.to_owned()),
    };
    let peer = PeerSpec {
        negotiation: Negotiation::new(p.tls, p.sasl, p.dialback),
        cert: p.cert,
        dns: p.dns,
        verify: p.verify,
        authzid,
        domains: p
            .domains
            .iter()
            .map(|d| domain_template(d))
            .collect::<Result<_, _>>()
            .map_err(|e| top(e.into()))?,
    };
    if raw.steps.is_empty() {
        return Err(metadata(MetadataProblem::NoSteps));
    }
    let mut steps = Vec::new();
    let mut connected = false;
    for (n, spanned) in raw.steps.into_iter().enumerate() {
        let line = at_line(spanned.span().start);
        let in_step = |problem: StepProblem| {
            at(
                line,
                Problem::Step {
                    step: n + 1,
                    problem,
                },
            )
        };
        let source = step_source(text, spanned.span());
        let step = build_step(spanned.into_inner(), line, source, &requirement).map_err(in_step)?;
        match &step.action {
            Action::Connect { .. }
            | Action::Authenticate {
                expect_success: true,
                ..
            } => connected = true,
            Action::Authenticate { .. }
            | Action::Wait(_)
            | Action::ExpectDelivery { .. }
            | Action::ExpectStanza { .. } => {}
            Action::Open
            | Action::Send(_)
            | Action::SendRaw { .. }
            | Action::StartTls { .. }
            | Action::Expect { .. }
            | Action::ExpectStreamError(_)
            | Action::ExpectClose
            | Action::ExpectVersion(_)
            | Action::ExpectNothing(_)
            | Action::ExpectFeature { .. }
            | Action::Close => {
                if !connected {
                    return Err(in_step(StepProblem::NeedsConnection));
                }
            }
        }
        steps.push(step);
    }
    Ok(Script {
        id: raw.id.into_inner(),
        title: raw.title,
        refs: raw.refs,
        level: raw.level,
        requirement,
        tags: raw.tags,
        file: file.to_owned(),
        partner,
        peer,
        needs: raw.needs,
        steps,
    })
}

/// The step's keys as written (without `note`), for messages. The span of
/// an array-of-tables entry may cover only its header, so this reads on to
/// the next table header.
fn step_source(text: &str, span: std::ops::Range<usize>) -> String {
    let rest = text.get(span.start..).unwrap_or_default();
    let mut lines = rest.lines();
    let first = lines.next().unwrap_or_default().trim();
    let body = std::iter::once(first)
        .filter(|l| !l.starts_with('['))
        .chain(lines.map(str::trim).take_while(|l| !l.starts_with('[')));
    // A value spread over lines (a list) reads as one key, as if written on one line.
    let mut keys: Vec<String> = Vec::new();
    let mut open = 0usize;
    for l in body.filter(|l| !l.is_empty() && !l.starts_with('#')) {
        match keys.last_mut() {
            Some(last) if open > 0 => {
                last.push(' ');
                last.push_str(l);
            }
            _ => keys.push(l.to_string()),
        }
        open = (open + l.matches('[').count()).saturating_sub(l.matches(']').count());
    }
    for k in &mut keys {
        *k = k.replace("[ ", "[").replace(", ]", "]");
    }
    keys.retain(|k| !is_annotation(k));
    let joined = keys.join("; ");
    if joined.chars().count() > 200 {
        format!("{}…", joined.chars().take(200).collect::<String>())
    } else {
        joined
    }
}

/// Keys for the reader or the verdict (`note`, `keyword`, `source`, `ref`),
/// not what the step does; left out of messages and transcripts so that
/// citing a step's text changes no transcript.
fn is_annotation(line: &str) -> bool {
    let key = line.split('=').next().unwrap_or_default().trim();
    matches!(key, "note" | "keyword" | "source" | "ref")
}

/// `<spec>/<section>/<slug>`: three or more segments of `[a-z0-9.-]`.
fn check_id(id: &str) -> Result<(), MetadataProblem> {
    let parts: Vec<&str> = id.split('/').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        });
    if !ok {
        return Err(MetadataProblem::IdSyntax(id.to_owned()));
    }
    let domain = script_domain(id);
    // The same rule the partner set applies (length 253, labels 1-63), so
    // that an id `list` accepts gives a domain every run accepts.
    if let Some(problem) = crate::partner::dns_name_problem(&domain) {
        return Err(MetadataProblem::IdDomain {
            id: id.to_owned(),
            domain,
            problem,
        });
    }
    Ok(())
}

/// The scenario's own peer domain: its id's segments, most specific first,
/// under `scn.<case zone>`; unique because ids are.
pub fn script_domain(id: &str) -> String {
    let labels: Vec<String> = id
        .split('/')
        .rev()
        .map(|seg| {
            seg.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
                .trim_matches('-')
                .to_owned()
        })
        .collect();
    format!("{}.scn.{CASE_ZONE}", labels.join("."))
}

fn domain_template(s: &str) -> Result<Template, TemplateError> {
    let t = Template::parse(s)?;
    allow(&t, "a domain", |p| {
        matches!(p, Placeholder::Peer | Placeholder::Target)
    })?;
    Ok(t)
}

/// Fails if `t` uses a placeholder `ok` refuses here.
fn allow(
    t: &Template,
    place: &str,
    ok: impl Fn(&Placeholder) -> bool,
) -> Result<(), TemplateError> {
    match t.holes().find(|p| !ok(p)) {
        Some(p) => Err(TemplateError::Misplaced {
            placeholder: p.source(),
            place: place.to_owned(),
        }),
        None => Ok(()),
    }
}

fn for_send(p: &Placeholder) -> bool {
    !matches!(
        p,
        Placeholder::Any | Placeholder::Absent | Placeholder::Padding
    )
}

fn for_pattern(p: &Placeholder) -> bool {
    !matches!(p, Placeholder::DialbackKey | Placeholder::Padding)
}

/// The XML with placeholders filled by stand-ins, so it can be checked now.
fn check_xml(t: &Template, pattern: bool) -> Result<(), StepProblem> {
    let text = t.render(|p| {
        Ok::<_, StepProblem>(match p {
            Placeholder::Peer => Some("peer.example".into()),
            Placeholder::Target => Some("target.example".into()),
            Placeholder::Capture(_) if !pattern => Some("captured".into()),
            Placeholder::Any | Placeholder::Absent | Placeholder::Capture(_) => None,
            _ => Some("AA".into()),
        })
    })?;
    parse_xml(&text).map(|_| ()).map_err(StepProblem::Xml)
}

fn secs(v: f64, key: &'static str) -> Result<Duration, StepProblem> {
    if !(v.is_finite() && (0.0..=600.0).contains(&v)) {
        return Err(StepProblem::Seconds { key });
    }
    Ok(Duration::from_secs_f64(v))
}

/// The product of the listed settings in the order written (TLS slowest),
/// keeping the valid configurations (SPEC §3): `tls = ["optional",
/// "not-supported"]` with `sasl = ["optional", "not-supported"]` means OO, ON
/// and NN, since SASL needs TLS.
fn configurations(
    tls: Vec<Setting>,
    sasl: Vec<Setting>,
    dialback: Vec<bool>,
) -> Result<Vec<Negotiation>, MetadataProblem> {
    for (key, n) in [
        ("tls", tls.len()),
        ("sasl", sasl.len()),
        ("dialback", dialback.len()),
    ] {
        if n == 0 {
            return Err(MetadataProblem::NoValues { key });
        }
    }
    let mut out: Vec<Negotiation> = Vec::new();
    for &t in &tls {
        for &s in &sasl {
            for &d in &dialback {
                let n = Negotiation::new(t, s, d);
                if crate::partner::negotiation_is_valid(n) && !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    if out.is_empty() {
        return Err(MetadataProblem::NoValidConfiguration);
    }
    Ok(out)
}

/// The scenario's default requirement: its `source`, `level` and first ref.
/// A protocol requirement must cite an RFC or XEP (SPEC §4.6: a rule resting
/// on SPEC.md alone is no RFC requirement).
fn default_requirement(
    source: Option<SourceKind>,
    level: Level,
    refs: &[String],
) -> Result<Requirement, RequirementError> {
    let Some(first) = refs.first() else {
        return Err(RequirementError::NoRefs);
    };
    match source.unwrap_or(SourceKind::Protocol) {
        SourceKind::Protocol => {
            if !is_protocol_ref(first) {
                return Err(RequirementError::FirstRefNotProtocol {
                    first: first.clone(),
                });
            }
            let keyword = match level {
                Level::Must => Keyword::Must,
                Level::Should => Keyword::Should,
                Level::May => Keyword::May,
            };
            Ok(Requirement::protocol(keyword, first.clone()))
        }
        kind => {
            if level != Level::Must {
                return Err(RequirementError::LevelNotProtocol {
                    level: level.as_str(),
                    kind,
                });
            }
            Ok(Requirement {
                source: kind,
                keyword: None,
                reference: first.clone(),
            })
        }
    }
}

/// `RFC 6120 §5.4.3.3`, `XEP-0220 §2.4`.
fn is_protocol_ref(r: &str) -> bool {
    r.starts_with("RFC ") || r.starts_with("XEP-")
}

/// A step's own requirement: its `keyword`, `source` and `ref` over the
/// scenario's default. Naming another keyword or source means another
/// sentence, so it needs its own `ref`.
fn step_requirement(
    r: &Provenance,
    default: &Requirement,
) -> Result<Requirement, RequirementError> {
    if r.keyword.is_none() && r.source.is_none() && r.reference.is_none() {
        return Ok(default.clone());
    }
    let Some(reference) = r.reference.clone() else {
        return Err(RequirementError::StepNeedsRef);
    };
    if reference.trim().is_empty() {
        return Err(RequirementError::EmptyRef);
    }
    let source = r.source.unwrap_or(default.source);
    match source {
        SourceKind::Protocol => {
            if !is_protocol_ref(&reference) {
                return Err(RequirementError::StepRefNotProtocol { reference });
            }
            let keyword = match (r.keyword, default.source) {
                (Some(k), _) => k,
                (None, SourceKind::Protocol) => default.keyword.unwrap_or(Keyword::Must),
                (None, _) => {
                    return Err(RequirementError::StepNeedsKeyword);
                }
            };
            Ok(Requirement::protocol(keyword, reference))
        }
        kind => {
            if let Some(k) = r.keyword {
                return Err(RequirementError::KeywordNotProtocol { keyword: k, kind });
            }
            Ok(Requirement {
                source: kind,
                keyword: None,
                reference,
            })
        }
    }
}

/// A step's action key with its value, as written: one variant per key.
enum RawAction {
    Connect(bool),
    Open(bool),
    Send(String),
    SendRaw(String),
    StartTls(bool),
    Authenticate(bool),
    Expect(OneOrMany),
    ExpectStreamError(OneOrMany),
    ExpectClose(bool),
    ExpectVersion(String),
    ExpectNothing(f64),
    ExpectDelivery(String),
    ExpectNoDelivery(String),
    ExpectStanza(String),
    ExpectFeature(String),
    ExpectNoFeature(String),
    Close(bool),
    Wait(f64),
}

/// A key that changes how an action is carried out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Modifier {
    As,
    To,
    Header,
    DirectTls,
    Pipeline,
    Exact,
    Absent,
    At,
    PadTo,
    Timeout,
}

impl Modifier {
    fn key(self) -> &'static str {
        match self {
            Modifier::As => "as",
            Modifier::To => "to",
            Modifier::Header => "header",
            Modifier::DirectTls => "direct-tls",
            Modifier::Pipeline => "pipeline",
            Modifier::Exact => "exact",
            Modifier::Absent => "absent",
            Modifier::At => "at",
            Modifier::PadTo => "pad-to",
            Modifier::Timeout => "timeout",
        }
    }
}

impl RawAction {
    fn key(&self) -> &'static str {
        match self {
            RawAction::Connect(_) => "connect",
            RawAction::Open(_) => "open",
            RawAction::Send(_) => "send",
            RawAction::SendRaw(_) => "send-raw",
            RawAction::StartTls(_) => "starttls",
            RawAction::Authenticate(_) => "authenticate",
            RawAction::Expect(_) => "expect",
            RawAction::ExpectStreamError(_) => "expect-stream-error",
            RawAction::ExpectClose(_) => "expect-close",
            RawAction::ExpectVersion(_) => "expect-version",
            RawAction::ExpectNothing(_) => "expect-nothing",
            RawAction::ExpectDelivery(_) => "expect-delivery",
            RawAction::ExpectNoDelivery(_) => "expect-no-delivery",
            RawAction::ExpectStanza(_) => "expect-stanza",
            RawAction::ExpectFeature(_) => "expect-feature",
            RawAction::ExpectNoFeature(_) => "expect-no-feature",
            RawAction::Close(_) => "close",
            RawAction::Wait(_) => "wait",
        }
    }

    /// The modifiers the action takes.
    fn modifiers(&self) -> &'static [Modifier] {
        use Modifier::*;
        match self {
            RawAction::Connect(_) => &[As, To, Header, DirectTls, Timeout],
            RawAction::Authenticate(_) => &[As, Timeout],
            RawAction::StartTls(_) => &[Pipeline, Timeout],
            RawAction::Open(_) => &[Timeout],
            RawAction::SendRaw(_) => &[PadTo],
            RawAction::Expect(_) => &[Exact, Timeout],
            RawAction::ExpectStanza(_) => &[Exact, Absent, At, Timeout],
            RawAction::ExpectDelivery(_) | RawAction::ExpectNoDelivery(_) => &[At, Timeout],
            RawAction::ExpectStreamError(_)
            | RawAction::ExpectClose(_)
            | RawAction::ExpectVersion(_) => &[Timeout],
            RawAction::Send(_)
            | RawAction::ExpectNothing(_)
            | RawAction::ExpectFeature(_)
            | RawAction::ExpectNoFeature(_)
            | RawAction::Close(_)
            | RawAction::Wait(_) => &[],
        }
    }

    /// Only a step that can be unmet rests on a text.
    fn can_be_unmet(&self) -> bool {
        !matches!(
            self,
            RawAction::Send(_)
                | RawAction::SendRaw(_)
                | RawAction::Open(_)
                | RawAction::Close(_)
                | RawAction::Wait(_)
        )
    }
}

/// The modifiers of a raw step.
struct Modifiers {
    from: Option<String>,
    to: Option<String>,
    header: Option<bool>,
    direct_tls: Option<bool>,
    pipeline: Option<String>,
    exact: Option<bool>,
    absent: Option<Vec<String>>,
    at: Option<String>,
    pad_to: Option<usize>,
    timeout: Option<f64>,
}

impl Modifiers {
    /// The modifiers written, in the order of the table in scenarios/README.md.
    fn given(&self) -> Vec<Modifier> {
        let Modifiers {
            from,
            to,
            header,
            direct_tls,
            pipeline,
            exact,
            absent,
            at,
            pad_to,
            timeout,
        } = self;
        [
            (Modifier::As, from.is_some()),
            (Modifier::To, to.is_some()),
            (Modifier::Header, header.is_some()),
            (Modifier::DirectTls, direct_tls.is_some()),
            (Modifier::Pipeline, pipeline.is_some()),
            (Modifier::Exact, exact.is_some()),
            (Modifier::Absent, absent.is_some()),
            (Modifier::At, at.is_some()),
            (Modifier::PadTo, pad_to.is_some()),
            (Modifier::Timeout, timeout.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(m, _)| m)
        .collect()
    }
}

/// Where an unmet step rests when it names its own text (SPEC §4.6).
struct Provenance {
    keyword: Option<Keyword>,
    source: Option<SourceKind>,
    reference: Option<String>,
}

impl RawStep {
    /// The actions written (one, if the step is right), the modifiers and
    /// the provenance. Destructured in full, so that a new key cannot be
    /// left out of the checks.
    fn split(self) -> (Vec<RawAction>, Modifiers, Provenance) {
        let RawStep {
            connect,
            open,
            send,
            send_raw,
            starttls,
            authenticate,
            expect,
            expect_stream_error,
            expect_close,
            expect_version,
            expect_nothing,
            expect_delivery,
            expect_no_delivery,
            expect_stanza,
            expect_feature,
            expect_no_feature,
            close,
            wait,
            from,
            to,
            header,
            direct_tls,
            pipeline,
            exact,
            absent,
            at,
            pad_to,
            timeout,
            keyword,
            source,
            reference,
            note: _,
        } = self;
        let actions = [
            connect.map(RawAction::Connect),
            open.map(RawAction::Open),
            send.map(RawAction::Send),
            send_raw.map(RawAction::SendRaw),
            starttls.map(RawAction::StartTls),
            authenticate.map(RawAction::Authenticate),
            expect.map(RawAction::Expect),
            expect_stream_error.map(RawAction::ExpectStreamError),
            expect_close.map(RawAction::ExpectClose),
            expect_version.map(RawAction::ExpectVersion),
            expect_nothing.map(RawAction::ExpectNothing),
            expect_delivery.map(RawAction::ExpectDelivery),
            expect_no_delivery.map(RawAction::ExpectNoDelivery),
            expect_stanza.map(RawAction::ExpectStanza),
            expect_feature.map(RawAction::ExpectFeature),
            expect_no_feature.map(RawAction::ExpectNoFeature),
            close.map(RawAction::Close),
            wait.map(RawAction::Wait),
        ]
        .into_iter()
        .flatten()
        .collect();
        let modifiers = Modifiers {
            from,
            to,
            header,
            direct_tls,
            pipeline,
            exact,
            absent,
            at,
            pad_to,
            timeout,
        };
        let provenance = Provenance {
            keyword,
            source,
            reference,
        };
        (actions, modifiers, provenance)
    }
}

/// `key = false` on an action that only takes `true`.
fn flag(v: bool, key: &'static str) -> Result<(), StepProblem> {
    if v {
        Ok(())
    } else {
        Err(StepProblem::FalseFlag(key))
    }
}

fn domain_or_peer(v: &Option<String>) -> Result<Template, TemplateError> {
    match v {
        Some(d) => domain_template(d),
        None => Template::parse("{peer}"),
    }
}

fn build_step(
    r: RawStep,
    line: usize,
    source: String,
    default: &Requirement,
) -> Result<Step, StepProblem> {
    let (mut actions, m, provenance) = r.split();
    let raw = match actions.len() {
        0 => return Err(StepProblem::NoAction),
        1 => actions.remove(0),
        _ => {
            return Err(StepProblem::ManyActions(
                actions.iter().map(RawAction::key).collect(),
            ));
        }
    };
    let key = raw.key();
    if let Some(bad) = m.given().into_iter().find(|g| !raw.modifiers().contains(g)) {
        return Err(StepProblem::Modifier {
            modifier: bad.key(),
            action: key,
        });
    }
    if !raw.can_be_unmet() {
        let written = [
            ("keyword", provenance.keyword.is_some()),
            ("source", provenance.source.is_some()),
            ("ref", provenance.reference.is_some()),
        ];
        if let Some((bad, _)) = written.iter().find(|(_, set)| *set) {
            return Err(StepProblem::Provenance {
                key: bad,
                action: key,
            });
        }
    }
    let requirement = step_requirement(&provenance, default)?;
    let action = match raw {
        RawAction::Connect(v) => {
            flag(v, "connect")?;
            Action::Connect {
                from: domain_or_peer(&m.from)?,
                to: match &m.to {
                    Some(t) => domain_template(t)?,
                    None => Template::parse("{target}")?,
                },
                header: m.header.unwrap_or(true),
                direct_tls: m.direct_tls.unwrap_or(false),
            }
        }
        RawAction::Open(v) => {
            flag(v, "open")?;
            Action::Open
        }
        RawAction::Send(text) => {
            let t = Template::parse(&text)?;
            allow(&t, "`send`", for_send)?;
            check_xml(&t, false)?;
            Action::Send(t)
        }
        RawAction::SendRaw(text) => {
            let t = Template::parse(&text)?;
            allow(&t, "`send-raw`", |p| {
                for_send(p) || (*p == Placeholder::Padding && m.pad_to.is_some())
            })?;
            if m.pad_to.is_some_and(|n| n > MAX_PAD) {
                return Err(StepProblem::Value(format!(
                    "`pad-to` is at most {MAX_PAD} bytes"
                )));
            }
            if m.pad_to.is_some() && !t.holes().any(|p| *p == Placeholder::Padding) {
                return Err(StepProblem::Value(
                    "`pad-to` needs a `{padding}` in the text".into(),
                ));
            }
            Action::SendRaw {
                text: t,
                pad_to: m.pad_to,
            }
        }
        RawAction::StartTls(v) => {
            flag(v, "starttls")?;
            let pipeline = match &m.pipeline {
                Some(p) => {
                    let t = Template::parse(p)?;
                    allow(&t, "`pipeline`", for_send)?;
                    Some(t)
                }
                None => None,
            };
            Action::StartTls { pipeline }
        }
        RawAction::Authenticate(expect_success) => Action::Authenticate {
            from: domain_or_peer(&m.from)?,
            expect_success,
        },
        RawAction::Expect(list) => {
            let mut patterns = Vec::new();
            for p in list.list() {
                let t = Template::parse(&p)?;
                allow(&t, "a pattern", for_pattern)?;
                check_xml(&t, true)?;
                patterns.push(t);
            }
            if patterns.is_empty() {
                return Err(StepProblem::Value(
                    "`expect` needs at least one pattern".into(),
                ));
            }
            Action::Expect {
                patterns,
                exact: m.exact.unwrap_or(false),
            }
        }
        RawAction::ExpectStreamError(list) => {
            let conditions = list.list();
            if conditions.is_empty() {
                return Err(StepProblem::Value(
                    "`expect-stream-error` needs a condition".into(),
                ));
            }
            Action::ExpectStreamError(conditions)
        }
        RawAction::ExpectClose(v) => {
            flag(v, "expect-close")?;
            Action::ExpectClose
        }
        RawAction::ExpectVersion(version) => Action::ExpectVersion(version),
        RawAction::ExpectNothing(quiet) => Action::ExpectNothing(secs(quiet, "expect-nothing")?),
        RawAction::ExpectDelivery(id) | RawAction::ExpectNoDelivery(id) => {
            let delivered = key == "expect-delivery";
            let id = Template::parse(&id)?;
            allow(&id, "a stanza id", |p| {
                matches!(
                    p,
                    Placeholder::Peer | Placeholder::Target | Placeholder::Capture(_)
                )
            })?;
            Action::ExpectDelivery {
                id,
                at: domain_or_peer(&m.at)?,
                delivered,
            }
        }
        RawAction::ExpectStanza(pattern) => {
            let t = Template::parse(&pattern)?;
            allow(&t, "a pattern", for_pattern)?;
            check_xml(&t, true)?;
            Action::ExpectStanza {
                pattern: t,
                exact: m.exact.unwrap_or(false),
                absent: m.absent.clone().unwrap_or_default(),
                at: domain_or_peer(&m.at)?,
            }
        }
        RawAction::ExpectFeature(name) => Action::ExpectFeature {
            feature: feature(&name)?,
            present: true,
        },
        RawAction::ExpectNoFeature(name) => Action::ExpectFeature {
            feature: feature(&name)?,
            present: false,
        },
        RawAction::Close(v) => {
            flag(v, "close")?;
            Action::Close
        }
        RawAction::Wait(d) => Action::Wait(secs(d, "wait")?),
    };
    let timeout = m.timeout.map(|t| secs(t, "timeout")).transpose()?;
    Ok(Step {
        line,
        action,
        timeout,
        source,
        requirement,
    })
}

fn feature(name: &str) -> Result<Feature, StepProblem> {
    Ok(match name {
        "starttls" => Feature::StartTls,
        "starttls-required" => Feature::StartTlsRequired,
        "external" => Feature::External,
        "sasl" => Feature::Sasl,
        "dialback" => Feature::Dialback,
        "bidi" => Feature::Other {
            ns: "urn:xmpp:features:bidi".into(),
            name: "bidi".into(),
        },
        other => {
            let parsed = other
                .strip_prefix('{')
                .and_then(|r| r.split_once('}'))
                .filter(|(ns, n)| !ns.is_empty() && !n.is_empty());
            let Some((ns, n)) = parsed else {
                return Err(StepProblem::Value(format!(
                    "unknown feature `{other}` (starttls, starttls-required, external, sasl, \
                     dialback, bidi, or {{namespace}}name)"
                )));
            };
            Feature::Other {
                ns: ns.into(),
                name: n.into(),
            }
        }
    })
}

/// Every scenario file under `dir` (recursively, sorted), except the matrix
/// file at its top; ids must be unique.
pub fn load_scenarios(dir: &Path) -> Result<Vec<Script>, LoadError> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut scripts: Vec<Script> = Vec::new();
    for path in files {
        let text = crate::source::read_text(&path)?;
        let script = parse_script(&text, &path.display().to_string())?;
        if let Some(other) = scripts.iter().find(|s| s.id == script.id) {
            return Err(LoadError::At {
                file: script.file.clone(),
                line: 1,
                problem: Problem::DuplicateId {
                    id: script.id.clone(),
                    other: other.file.clone(),
                },
            });
        }
        scripts.push(script);
    }
    Ok(scripts)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), LoadError> {
    let unreadable = |source| LoadError::Dir {
        dir: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml")
            && !(dir == root && path.file_name().is_some_and(|n| n == "matrix.toml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::negotiation_is_valid;

    /// Every non-empty list of each setting (in both orders where two):
    /// the product in order, TLS slowest, keeping exactly the valid rows.
    #[test]
    fn configurations_are_the_valid_product_in_the_order_written() {
        use Setting::*;
        let settings = [Required, Optional, NotSupported];
        let mut lists: Vec<Vec<Setting>> = settings.iter().map(|s| vec![*s]).collect();
        for a in settings {
            for b in settings.iter().filter(|b| **b != a) {
                lists.push(vec![a, *b]);
            }
        }
        lists.push(settings.to_vec());
        let dialbacks = [
            vec![true],
            vec![false],
            vec![true, false],
            vec![false, true],
        ];
        for tls in &lists {
            for sasl in &lists {
                for db in &dialbacks {
                    let mut want = Vec::new();
                    for t in tls {
                        for s in sasl {
                            for d in db {
                                let n = Negotiation::new(*t, *s, *d);
                                if negotiation_is_valid(n) {
                                    want.push(n);
                                }
                            }
                        }
                    }
                    match configurations(tls.clone(), sasl.clone(), db.clone()) {
                        Ok(got) => assert_eq!(got, want, "{tls:?} {sasl:?} {db:?}"),
                        Err(e) => {
                            assert!(want.is_empty(), "{tls:?} {sasl:?} {db:?}: {e}");
                            assert!(e.to_string().contains("SPEC §3"), "{e}");
                        }
                    }
                }
            }
        }
        assert!(configurations(vec![], vec![Optional], vec![true]).is_err());
    }

    const BASE: &str = r#"
id = "rfc6120/11.1/example"
title = "t"
refs = ["RFC 6120 §11.1"]
level = "MUST"

[partner]
type = "federated"
tls = ["optional", "not-supported"]
sasl = ["optional", "not-supported"]
dialback = true

[[step]]
connect = true

[[step]]
expect-stream-error = "*"

[[step]]
expect-stream-error = "restricted-xml"
keyword = "SHOULD"
ref = "RFC 6120 §11.1"
"#;

    #[test]
    fn steps_inherit_or_name_their_requirement() {
        let s = parse_script(BASE, "x.toml").unwrap();
        let p = s.partner.as_ref().unwrap();
        let codes: Vec<String> = p.configurations().map(|n| n.code()).collect();
        assert_eq!(codes, ["OO1", "ON1", "NN1"]);
        let must = Requirement::protocol(Keyword::Must, "RFC 6120 §11.1");
        assert_eq!(s.requirement, must);
        assert_eq!(s.steps[1].requirement, must);
        assert_eq!(
            s.steps[2].requirement,
            Requirement::protocol(Keyword::Should, "RFC 6120 §11.1")
        );
        // The annotation stays out of the step's text (and so of transcripts).
        assert_eq!(
            s.steps[2].source,
            "expect-stream-error = \"restricted-xml\""
        );
        let conf = BASE.replace(
            "keyword = \"SHOULD\"\nref = \"RFC 6120 §11.1\"",
            "source = \"configuration\"\nref = \"SPEC §4.1\"",
        );
        let s = parse_script(&conf, "x.toml").unwrap();
        assert_eq!(
            s.steps[2].requirement,
            Requirement::configuration("SPEC §4.1")
        );
    }

    fn fails(text: &str, line: usize, needle: &str) {
        let e = parse_script(text, "x.toml").unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("x.toml:{line}:")),
            "line {line}: {e}"
        );
        assert!(e.contains(needle), "`{needle}` in {e}");
    }

    #[test]
    fn provenance_errors_name_the_line() {
        let k = "keyword = \"SHOULD\"\nref = \"RFC 6120 §11.1\"";
        fails(
            &BASE.replace(k, "keyword = \"OUGHT\""),
            21,
            "unknown variant `OUGHT`",
        );
        fails(
            &BASE.replace(k, "keyword = \"SHOULD\""),
            19,
            "needs its own `ref`",
        );
        fails(
            &BASE.replace(k, "keyword = \"SHOULD\"\nref = \"SPEC §4.1\""),
            19,
            "is neither",
        );
        fails(
            &BASE.replace(
                k,
                "source = \"policy\"\nkeyword = \"SHOULD\"\nref = \"SPEC §4.4\"",
            ),
            19,
            "applies to protocol rules",
        );
        fails(
            &BASE.replace(
                "connect = true",
                "connect = true\n\n[[step]]\nsend = \"<a/>\"\nref = \"RFC 1\"",
            ),
            16,
            "cannot be unmet",
        );
        // The scenario's default: SPEC alone is no protocol requirement.
        fails(
            &BASE.replace("[\"RFC 6120 §11.1\"]", "[\"SPEC §2\"]"),
            1,
            "source = \"configuration\"",
        );
        let spec = BASE
            .replace("[\"RFC 6120 §11.1\"]", "[\"SPEC §2\"]")
            .replace(
                "level = \"MUST\"",
                "level = \"SHOULD\"\nsource = \"configuration\"",
            );
        fails(&spec, 1, "is for protocol rules");
        fails(
            &BASE
                .replace(
                    "sasl = [\"optional\", \"not-supported\"]",
                    "sasl = \"required\"",
                )
                .replace(
                    "tls = [\"optional\", \"not-supported\"]",
                    "tls = \"not-supported\"",
                ),
            1,
            "no valid configuration",
        );
    }
}
