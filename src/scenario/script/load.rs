//! Reading scenario files: TOML through serde (unknown keys are errors), then
//! the checks serde cannot do — one action per step, modifiers that fit the
//! action, placeholders that fit the place, XML that parses. Every error
//! names the file and the line.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

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
pub fn parse_script(text: &str, file: &str) -> Result<Script, String> {
    let at_line = |offset: usize| line_of(text, offset);
    let raw: RawScript = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| at_line(s.start)).unwrap_or(1);
        format!("{file}:{line}: {}", e.message().trim())
    })?;
    let top = |msg: String| format!("{file}:1: {msg}");
    let id_line = at_line(raw.id.span().start);
    check_id(raw.id.get_ref()).map_err(|m| format!("{file}:{id_line}: {m}"))?;
    let partner = match (raw.stranger, raw.partner) {
        (true, Some(_)) => {
            return Err(top(
                "`stranger = true` means no partner configuration: remove [partner]".into(),
            ));
        }
        (false, None) => {
            return Err(top(
                "missing [partner] (or `stranger = true` for a domain configured nowhere)".into(),
            ));
        }
        (true, None) => None,
        (false, Some(p)) => {
            let mut configurations =
                configurations(p.tls.list(), p.sasl.list(), p.dialback.list()).map_err(top)?;
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
                    .map_err(top)?,
                connection_limit: match p.connection_limit {
                    // A partner set refuses 0 (P6): every run would fail on it.
                    Some(limit) if *limit.get_ref() == 0 => {
                        let line = at_line(limit.span().start);
                        return Err(format!(
                            "{file}:{line}: connection-limit must be at least 1 (it counts the \
                             streams a partner may hold at once)"
                        ));
                    }
                    limit => limit.map(Spanned::into_inner),
                },
                keep_alive: p.keep_alive,
            })
        }
    };
    let requirement = default_requirement(raw.source, raw.level, &raw.refs).map_err(top)?;
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
            .map_err(top)?,
    };
    if raw.steps.is_empty() {
        return Err(top("a scenario needs at least one [[step]]".into()));
    }
    let mut steps = Vec::new();
    let mut connected = false;
    for (n, spanned) in raw.steps.into_iter().enumerate() {
        let line = at_line(spanned.span().start);
        let source = step_source(text, spanned.span());
        let step = build_step(spanned.into_inner(), line, source, &requirement)
            .map_err(|m| format!("{file}:{line}: step {}: {m}", n + 1))?;
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
            _ if !connected => {
                return Err(format!(
                    "{file}:{line}: step {}: needs a connection: `connect` or `authenticate` first",
                    n + 1
                ));
            }
            _ => {}
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
fn check_id(id: &str) -> Result<(), String> {
    let parts: Vec<&str> = id.split('/').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        });
    if !ok {
        return Err(format!(
            "id `{id}` is not `<spec>/<section>/<slug>` in lower case (SPEC §4.5)"
        ));
    }
    let domain = script_domain(id);
    // The same rule the partner set applies (length 253, labels 1-63), so
    // that an id `list` accepts gives a domain every run accepts.
    if let Some(problem) = crate::partner::dns_name_problem(&domain) {
        return Err(format!(
            "id `{id}` gives an invalid peer domain `{domain}`: {problem}"
        ));
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

fn domain_template(s: &str) -> Result<Template, String> {
    let t = Template::parse(s)?;
    allow(&t, "a domain", |p| {
        matches!(p, Placeholder::Peer | Placeholder::Target)
    })?;
    Ok(t)
}

/// Fails if `t` uses a placeholder `ok` refuses here.
fn allow(t: &Template, place: &str, ok: impl Fn(&Placeholder) -> bool) -> Result<(), String> {
    match t.holes().find(|p| !ok(p)) {
        Some(p) => Err(format!("`{}` cannot be used in {place}", p.source())),
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
fn check_xml(t: &Template, pattern: bool) -> Result<(), String> {
    let text = t.render(|p| {
        Ok(match p {
            Placeholder::Peer => Some("peer.example".into()),
            Placeholder::Target => Some("target.example".into()),
            Placeholder::Capture(_) if !pattern => Some("captured".into()),
            Placeholder::Any | Placeholder::Absent | Placeholder::Capture(_) => None,
            _ => Some("AA".into()),
        })
    })?;
    parse_xml(&text)
        .map(|_| ())
        .map_err(|e| format!("XML does not parse: {e}"))
}

fn secs(v: f64, key: &str) -> Result<Duration, String> {
    if !(v.is_finite() && (0.0..=600.0).contains(&v)) {
        return Err(format!("`{key}` must be between 0 and 600 seconds"));
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
) -> Result<Vec<Negotiation>, String> {
    for (key, n) in [
        ("tls", tls.len()),
        ("sasl", sasl.len()),
        ("dialback", dialback.len()),
    ] {
        if n == 0 {
            return Err(format!("[partner] `{key}` needs at least one value"));
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
        return Err(
            "[partner] lists no valid configuration (SPEC §3: e.g. SASL needs TLS, and some \
             method must remain)"
                .into(),
        );
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
) -> Result<Requirement, String> {
    let Some(first) = refs.first() else {
        return Err("`refs` must cite at least one requirement".into());
    };
    match source.unwrap_or(SourceKind::Protocol) {
        SourceKind::Protocol => {
            if !is_protocol_ref(first) {
                return Err(format!(
                    "the first ref `{first}` is no RFC or XEP: a rule of SPEC.md needs \
                     `source = \"configuration\"` or `\"policy\"` (SPEC §4.6)"
                ));
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
                return Err(format!(
                    "`level = \"{}\"` is for protocol rules; an unmet {kind} rule always counts \
                     (write `level = \"MUST\"`)",
                    level.as_str()
                ));
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
fn step_requirement(r: &RawStep, default: &Requirement) -> Result<Requirement, String> {
    if r.keyword.is_none() && r.source.is_none() && r.reference.is_none() {
        return Ok(default.clone());
    }
    let Some(reference) = r.reference.clone() else {
        return Err(
            "a step with its own `keyword` or `source` needs its own `ref` (the sentence it \
             rests on)"
                .into(),
        );
    };
    if reference.trim().is_empty() {
        return Err("`ref` is empty".into());
    }
    let source = r.source.unwrap_or(default.source);
    match source {
        SourceKind::Protocol => {
            if !is_protocol_ref(&reference) {
                return Err(format!(
                    "a protocol step cites an RFC or XEP; `{reference}` is neither (SPEC §4.6)"
                ));
            }
            let keyword = match (r.keyword, default.source) {
                (Some(k), _) => k,
                (None, SourceKind::Protocol) => default.keyword.unwrap_or(Keyword::Must),
                (None, _) => {
                    return Err(
                        "a protocol step in a non-protocol scenario needs its `keyword`".into(),
                    );
                }
            };
            Ok(Requirement::protocol(keyword, reference))
        }
        kind => {
            if let Some(k) = r.keyword {
                return Err(format!(
                    "`keyword = \"{k}\"` applies to protocol rules, not to a {kind} rule"
                ));
            }
            Ok(Requirement {
                source: kind,
                keyword: None,
                reference,
            })
        }
    }
}

fn build_step(
    r: RawStep,
    line: usize,
    source: String,
    default: &Requirement,
) -> Result<Step, String> {
    let actions = [
        ("connect", r.connect.is_some()),
        ("open", r.open.is_some()),
        ("send", r.send.is_some()),
        ("send-raw", r.send_raw.is_some()),
        ("starttls", r.starttls.is_some()),
        ("authenticate", r.authenticate.is_some()),
        ("expect", r.expect.is_some()),
        ("expect-stream-error", r.expect_stream_error.is_some()),
        ("expect-close", r.expect_close.is_some()),
        ("expect-version", r.expect_version.is_some()),
        ("expect-nothing", r.expect_nothing.is_some()),
        ("expect-delivery", r.expect_delivery.is_some()),
        ("expect-no-delivery", r.expect_no_delivery.is_some()),
        ("expect-stanza", r.expect_stanza.is_some()),
        ("expect-feature", r.expect_feature.is_some()),
        ("expect-no-feature", r.expect_no_feature.is_some()),
        ("close", r.close.is_some()),
        ("wait", r.wait.is_some()),
    ];
    let named: Vec<&str> = actions.iter().filter(|a| a.1).map(|a| a.0).collect();
    let action = match named.as_slice() {
        [one] => *one,
        [] => return Err("no action (e.g. `send`, `expect`, `connect`)".into()),
        many => return Err(format!("one action per step, found {}", many.join(", "))),
    };
    // Which modifiers each action takes.
    let modifiers: &[&str] = match action {
        "connect" => &["as", "to", "header", "direct-tls", "timeout"],
        "authenticate" => &["as", "timeout"],
        "starttls" => &["pipeline", "timeout"],
        "open" => &["timeout"],
        "send-raw" => &["pad-to"],
        "expect" => &["exact", "timeout"],
        "expect-stanza" => &["exact", "absent", "at", "timeout"],
        "expect-delivery" | "expect-no-delivery" => &["at", "timeout"],
        "expect-stream-error" | "expect-close" | "expect-version" => &["timeout"],
        _ => &[],
    };
    let given = [
        ("as", r.from.is_some()),
        ("to", r.to.is_some()),
        ("header", r.header.is_some()),
        ("direct-tls", r.direct_tls.is_some()),
        ("pipeline", r.pipeline.is_some()),
        ("exact", r.exact.is_some()),
        ("absent", r.absent.is_some()),
        ("at", r.at.is_some()),
        ("pad-to", r.pad_to.is_some()),
        ("timeout", r.timeout.is_some()),
    ];
    if let Some((bad, _)) = given.iter().find(|(k, set)| *set && !modifiers.contains(k)) {
        return Err(format!("`{bad}` does not apply to `{action}`"));
    }
    // Only a step that can be unmet rests on a text.
    let can_be_unmet = !matches!(action, "send" | "send-raw" | "open" | "close" | "wait");
    let provenance = [
        ("keyword", r.keyword.is_some()),
        ("source", r.source.is_some()),
        ("ref", r.reference.is_some()),
    ];
    if let Some((bad, _)) = provenance.iter().find(|(_, set)| *set && !can_be_unmet) {
        return Err(format!(
            "`{bad}` does not apply to `{action}`: it checks nothing, so it cannot be unmet"
        ));
    }
    let requirement = step_requirement(&r, default)?;
    let flag = |v: Option<bool>, key: &str| -> Result<(), String> {
        match v {
            Some(false) => Err(format!("`{key} = false` means nothing; remove the step")),
            _ => Ok(()),
        }
    };
    let peer = || Template::parse("{peer}").map_err(|e| e.to_string());
    let domain_or_peer = |v: &Option<String>| match v {
        Some(d) => domain_template(d),
        None => peer(),
    };
    let action = match action {
        "connect" => {
            flag(r.connect, "connect")?;
            Action::Connect {
                from: domain_or_peer(&r.from)?,
                to: match &r.to {
                    Some(t) => domain_template(t)?,
                    None => Template::parse("{target}")?,
                },
                header: r.header.unwrap_or(true),
                direct_tls: r.direct_tls.unwrap_or(false),
            }
        }
        "open" => {
            flag(r.open, "open")?;
            Action::Open
        }
        "send" => {
            let t = Template::parse(r.send.as_deref().unwrap_or_default())?;
            allow(&t, "`send`", for_send)?;
            check_xml(&t, false)?;
            Action::Send(t)
        }
        "send-raw" => {
            let t = Template::parse(r.send_raw.as_deref().unwrap_or_default())?;
            allow(&t, "`send-raw`", |p| {
                for_send(p) || (*p == Placeholder::Padding && r.pad_to.is_some())
            })?;
            if r.pad_to.is_some_and(|n| n > MAX_PAD) {
                return Err(format!("`pad-to` is at most {MAX_PAD} bytes"));
            }
            if r.pad_to.is_some() && !t.holes().any(|p| *p == Placeholder::Padding) {
                return Err("`pad-to` needs a `{padding}` in the text".into());
            }
            Action::SendRaw {
                text: t,
                pad_to: r.pad_to,
            }
        }
        "starttls" => {
            flag(r.starttls, "starttls")?;
            let pipeline = match &r.pipeline {
                Some(p) => {
                    let t = Template::parse(p)?;
                    allow(&t, "`pipeline`", for_send)?;
                    Some(t)
                }
                None => None,
            };
            Action::StartTls { pipeline }
        }
        "authenticate" => Action::Authenticate {
            from: domain_or_peer(&r.from)?,
            expect_success: r.authenticate.unwrap_or(true),
        },
        "expect" => {
            let mut patterns = Vec::new();
            for p in r.expect.clone().map(OneOrMany::list).unwrap_or_default() {
                let t = Template::parse(&p)?;
                allow(&t, "a pattern", for_pattern)?;
                check_xml(&t, true)?;
                patterns.push(t);
            }
            if patterns.is_empty() {
                return Err("`expect` needs at least one pattern".into());
            }
            Action::Expect {
                patterns,
                exact: r.exact.unwrap_or(false),
            }
        }
        "expect-stream-error" => {
            let conditions = r
                .expect_stream_error
                .clone()
                .map(OneOrMany::list)
                .unwrap_or_default();
            if conditions.is_empty() {
                return Err("`expect-stream-error` needs a condition".into());
            }
            Action::ExpectStreamError(conditions)
        }
        "expect-close" => {
            flag(r.expect_close, "expect-close")?;
            Action::ExpectClose
        }
        "expect-version" => Action::ExpectVersion(r.expect_version.clone().unwrap_or_default()),
        "expect-nothing" => Action::ExpectNothing(secs(
            r.expect_nothing.unwrap_or_default(),
            "expect-nothing",
        )?),
        "expect-delivery" | "expect-no-delivery" => {
            let delivered = action == "expect-delivery";
            let id = r
                .expect_delivery
                .as_deref()
                .or(r.expect_no_delivery.as_deref())
                .unwrap_or_default();
            let id = Template::parse(id)?;
            allow(&id, "a stanza id", |p| {
                matches!(
                    p,
                    Placeholder::Peer | Placeholder::Target | Placeholder::Capture(_)
                )
            })?;
            Action::ExpectDelivery {
                id,
                at: domain_or_peer(&r.at)?,
                delivered,
            }
        }
        "expect-stanza" => {
            let t = Template::parse(r.expect_stanza.as_deref().unwrap_or_default())?;
            allow(&t, "a pattern", for_pattern)?;
            check_xml(&t, true)?;
            Action::ExpectStanza {
                pattern: t,
                exact: r.exact.unwrap_or(false),
                absent: r.absent.clone().unwrap_or_default(),
                at: domain_or_peer(&r.at)?,
            }
        }
        "expect-feature" | "expect-no-feature" => {
            let name = r
                .expect_feature
                .as_deref()
                .or(r.expect_no_feature.as_deref())
                .unwrap_or_default();
            Action::ExpectFeature {
                feature: feature(name)?,
                present: action == "expect-feature",
            }
        }
        "close" => {
            flag(r.close, "close")?;
            Action::Close
        }
        _ => Action::Wait(secs(r.wait.unwrap_or_default(), "wait")?),
    };
    let timeout = r.timeout.map(|t| secs(t, "timeout")).transpose()?;
    Ok(Step {
        line,
        action,
        timeout,
        source,
        requirement,
    })
}

fn feature(name: &str) -> Result<Feature, String> {
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
                return Err(format!(
                    "unknown feature `{other}` (starttls, starttls-required, external, sasl, \
                     dialback, bidi, or {{namespace}}name)"
                ));
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
pub fn load_scenarios(dir: &Path) -> Result<Vec<Script>, String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut scripts: Vec<Script> = Vec::new();
    for path in files {
        let text = crate::source::read_text(&path).map_err(|e| e.to_string())?;
        let script = parse_script(&text, &path.display().to_string())?;
        if let Some(other) = scripts.iter().find(|s| s.id == script.id) {
            return Err(format!(
                "{}:1: id `{}` is already used by {}",
                script.file, script.id, other.file
            ));
        }
        scripts.push(script);
    }
    Ok(scripts)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
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
                            assert!(e.contains("SPEC §3"), "{e}");
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
        let e = parse_script(text, "x.toml").unwrap_err();
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
