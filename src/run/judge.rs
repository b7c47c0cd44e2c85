//! Judging one pairing: classify what happened from the observations alone,
//! compare it with the oracle's expectation, and check the invariants of SPEC
//! §4.1/§4.2. Pure: the runner gathers the facts, this decides.

use crate::oracle::{
    CertVariant, Direction, DnsVariant, Expectation, Outcome, Pairing, Policy,
    UNREACHABLE_CONDITIONS, certificate_defect, dialback_error_rule, optional_identity,
    srv_dot_rule, unreachable_condition_rule,
};
use crate::partner::{Method, Setting, methods};
use crate::peer::{
    DialbackOutcome, FeaturesSeen, InitiatorReport, ServerEvent, Stage, StepFailure, ViolationKind,
};
use crate::report::{
    CaseOutcome, Connection, DirectTlsFacts, DnsQuery, Expected, HeaderFacts, Initiating, Observed,
    TlsFacts, Verdict,
};
use crate::requirement::{Deviation, Keyword, Requirement, Severity, worst};

use super::Parts;

/// What the runner saw during one pairing.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Inbound: the initiating peer's report.
    pub initiator: Option<InitiatorReport>,
    /// Inbound: the test stanza came back as an echo on the peer's server.
    pub echoed: bool,
    /// Everything the peer's server saw (outbound streams of the target,
    /// dialback verification, echoes).
    pub server_events: Vec<ServerEvent>,
    /// The id of the test stanza.
    pub probe_id: String,
    /// The target cannot be asked for this exchange (why).
    pub unsupported: Option<String>,
    /// The mock DNS queries for the peer's domain during the exchange.
    pub dns_queries: Vec<crate::dns::Query>,
    /// The exchange ended by waiting for a stanza that did not come (how
    /// long, and what ended the wait): reported as `CaseResult.waited`.
    pub waited: Option<crate::report::Waited>,
}

/// The judge's conclusion.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    pub observed: Observed,
    pub messages: Vec<String>,
    /// Each unmet expectation with its source (SPEC §4.6).
    pub deviations: Vec<Deviation>,
}

impl Judgement {
    /// From the deviations alone: the verdict is their worst severity.
    fn of(observed: Observed, deviations: Vec<Deviation>) -> Judgement {
        let verdict = match worst(&deviations) {
            Some(Severity::Fail) => Verdict::Fail,
            Some(Severity::NonStrict) => Verdict::NonStrict,
            _ => Verdict::Pass,
        };
        Judgement {
            verdict,
            observed,
            messages: deviations.iter().map(Deviation::message).collect(),
            deviations,
        }
    }

    pub(super) fn into_parts(self, expected: Option<Expected>) -> Parts {
        (
            self.verdict,
            expected,
            Some(self.observed),
            self.messages,
            self.deviations,
        )
    }
}

/// A failed check and the text it rests on; its severity follows from that
/// and the policy (SPEC §4.6), never from the check itself.
struct Finding {
    rule: Requirement,
    text: String,
}

impl Finding {
    fn new(rule: Requirement, text: impl Into<String>) -> Finding {
        Finding {
            rule,
            text: text.into(),
        }
    }
}

// The texts the invariants rest on (SPEC §4.6: a rule of SPEC.md alone is a
// configuration rule, never presented as an RFC requirement).
fn protocol(keyword: Keyword, reference: &str) -> Requirement {
    Requirement::protocol(keyword, reference)
}

fn configuration(reference: &str) -> Requirement {
    Requirement::configuration(reference)
}

pub fn expected_of(e: &Expectation) -> Expected {
    Expected {
        outcome: e.outcome.into(),
        tls: e.tls,
        rationale: e.rationale.clone(),
        refs: e.refs.clone(),
        source: Some(e.requirement.clone()),
        alternatives: e
            .alternatives
            .iter()
            .map(|a| match &a.deviates_from {
                None => format!("{} (allowed: {})", a.outcome, a.why),
                Some(r) => format!("{} ({}: {})", a.outcome, r.label(), a.why),
            })
            .collect(),
    }
}

pub fn judge(p: &Pairing, expectation: &Expectation, obs: &Observation) -> Judgement {
    let observed = classify(p, obs);
    let mut findings = Vec::new();
    if let Some(rule) = expectation.deviation_of(observed.0) {
        findings.push(Finding::new(
            srv_dot_fallback(p, obs, observed.0).unwrap_or_else(|| rule.clone()),
            format!(
                "expected {} but observed {}: {} [{}]",
                expectation.outcome,
                observed.0,
                expectation.rationale,
                expectation.refs.join(", ")
            ),
        ));
    }
    if p.direction == Direction::Inbound
        && observed.0 == Outcome::Refused
        && let Some(report) = &obs.initiator
    {
        silent_refusal(report, &mut findings);
    }
    match p.direction {
        Direction::Inbound => {
            if let Some(report) = &obs.initiator {
                inbound_invariants(p, report, &mut findings);
                if p.dns == DnsVariant::AuthoritativeUnreachable {
                    unreachable_answer(report, &mut findings);
                }
                if let Some(m) = report.method
                    && !methods(p.target).contains(m)
                {
                    findings.push(Finding::new(
                        configuration("SPEC §4.1"),
                        format!(
                            "the target accepted {} although its configuration does not admit it",
                            m.title()
                        ),
                    ));
                }
            }
            if matches!(observed.0, Outcome::Authenticated(_))
                && expectation.deviation_of(observed.0).is_none()
                && !obs.echoed
            {
                findings.push(Finding::new(
                    configuration("SPEC §4.3"),
                    "the stream was authenticated but the test stanza was not delivered and \
                     echoed back",
                ));
            }
        }
        Direction::Outbound => outbound_invariants(p, obs, &mut findings),
    }
    direct_tls_rules(&crate::scenario::peer_domain(p), obs, &mut findings);
    let (outcome, tls, facts) = observed;
    let observed = Observed {
        outcome: outcome.into(),
        tls,
        facts,
        initiating: initiating_of(obs),
    };
    Judgement::of(observed, deviations(findings, expectation.policy))
}

fn connection(all: &mut Vec<(u32, Connection)>, stream: u32) -> &mut Connection {
    let i = match all.iter().position(|(s, _)| *s == stream) {
        Some(i) => i,
        None => {
            all.push((stream, Connection::default()));
            all.len() - 1
        }
    };
    &mut all[i].1
}

fn used_for(c: &mut Connection, what: &str) {
    if !c.used_for.iter().any(|u| u == what) {
        c.used_for.push(what.to_string());
    }
}

/// The target as initiating server: every connection it opened to the peer's
/// server (its outbound streams, its dialback verification) and the names it
/// resolved. `None` when it did neither.
pub fn initiating_of(obs: &Observation) -> Option<Initiating> {
    let mut connections: Vec<(u32, Connection)> = Vec::new();
    for e in &obs.server_events {
        match e {
            ServerEvent::Header {
                stream,
                tls,
                header,
            } => connection(&mut connections, *stream)
                .headers
                .push(HeaderFacts {
                    from: header.from.clone(),
                    to: header.to.clone(),
                    version: header.version.clone(),
                    dialback_declared: header.dialback_declared,
                    tls: *tls,
                }),
            ServerEvent::Tls {
                stream,
                version,
                client_cert,
                sni,
                cipher_suite,
                ..
            } => {
                connection(&mut connections, *stream).tls = Some(TlsFacts {
                    sni: sni.clone(),
                    version: version.clone(),
                    cipher_suite: cipher_suite.clone(),
                    client_cert: client_cert.presented,
                })
            }
            ServerEvent::DirectTls { stream, sni, alpn } => {
                connection(&mut connections, *stream).direct_tls = Some(DirectTlsFacts {
                    sni: sni.clone(),
                    alpn: alpn.clone(),
                })
            }
            ServerEvent::Verify { stream, .. } => {
                used_for(connection(&mut connections, *stream), "db:verify")
            }
            ServerEvent::Dialback { stream, .. } => {
                used_for(connection(&mut connections, *stream), "db:result")
            }
            ServerEvent::Sasl { stream, .. } => {
                used_for(connection(&mut connections, *stream), "sasl")
            }
            ServerEvent::Stanza { stream, .. } => {
                used_for(connection(&mut connections, *stream), "stanzas")
            }
            _ => {}
        }
    }
    if connections.is_empty() && obs.dns_queries.is_empty() {
        return None;
    }
    Some(Initiating {
        dns_queries: obs
            .dns_queries
            .iter()
            .map(|q| DnsQuery {
                name: q.name.clone(),
                rtype: q.rtype.clone(),
            })
            .collect(),
        connections: connections.into_iter().map(|(_, c)| c).collect(),
    })
}

fn deviations(findings: Vec<Finding>, policy: Policy) -> Vec<Deviation> {
    findings
        .into_iter()
        .map(|f| Deviation::new(f.rule, policy, f.text))
        .collect()
}

/// Inbound `srv-dot`: a target that accepted dialback after a `db:verify`
/// reached the peer's authoritative server found it through the A-record
/// fallback (RFC 6120 §3.2.2), which the "." target rules out at SHOULD NOT
/// level; without that `db:verify` it accepted what it never verified, and
/// the oracle's own rule stands.
fn srv_dot_fallback(p: &Pairing, obs: &Observation, outcome: Outcome) -> Option<Requirement> {
    if p.dns != DnsVariant::SrvDot {
        return None;
    }
    let fell_back = match p.direction {
        Direction::Outbound => matches!(outcome, Outcome::Authenticated(_)),
        Direction::Inbound => {
            matches!(outcome, Outcome::Authenticated(m) if m.uses_dialback())
                && obs
                    .server_events
                    .iter()
                    .any(|e| matches!(e, ServerEvent::Verify { .. }))
        }
    };
    fell_back.then(srv_dot_rule)
}

/// XEP-0368 §3 for every direct-TLS ClientHello the target sent: "Client or
/// server MUST set SNI TLS extension to the JID's domain part"; "SHOULD set
/// the ALPN ... extension"; "When ALPN is used, the ALPN protocol MUST be
/// 'xmpp-server', where the SRV service is 'xmpps-server'".
fn direct_tls_rules(domain: &str, obs: &Observation, out: &mut Vec<Finding>) {
    for e in &obs.server_events {
        let ServerEvent::DirectTls { sni, alpn, .. } = e else {
            continue;
        };
        if !sni
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(domain))
        {
            out.push(Finding::new(
                protocol(Keyword::Must, "XEP-0368 §3"),
                format!(
                    "direct TLS to {domain} with SNI {} (must be the domain)",
                    sni.as_deref().unwrap_or("none")
                ),
            ));
        }
        if alpn.is_empty() {
            out.push(Finding::new(
                protocol(Keyword::Should, "XEP-0368 §3"),
                "direct TLS without the ALPN extension",
            ));
        } else if !alpn.iter().any(|a| a == "xmpp-server") {
            out.push(Finding::new(
                protocol(Keyword::Must, "XEP-0368 §3"),
                format!(
                    "direct TLS to an xmpps-server record with ALPN {} (must be xmpp-server)",
                    alpn.join(",")
                ),
            ));
        }
    }
}

/// `authoritative-unreachable`: the refusal itself is the oracle's; how it
/// is told is XEP-0220 §2.5's: a dialback error rather than a stream error
/// (SHOULD; silence is judged by [`silent_refusal`]), with one of the
/// conditions its table gives for an unreachable authoritative server
/// (guidance, advisory).
fn unreachable_answer(r: &InitiatorReport, out: &mut Vec<Finding>) {
    match &r.dialback {
        Some(DialbackOutcome::Error { condition }) => {
            let known = condition
                .as_deref()
                .is_some_and(|c| UNREACHABLE_CONDITIONS.contains(&c));
            if !known {
                out.push(Finding::new(
                    unreachable_condition_rule(),
                    format!(
                        "the dialback error names {} where the authoritative server could not \
                         be reached (the table gives {})",
                        condition
                            .as_deref()
                            .map_or("no condition".to_string(), |c| format!("<{c}/>")),
                        UNREACHABLE_CONDITIONS.join(", ")
                    ),
                ));
            }
        }
        Some(DialbackOutcome::Invalid) => out.push(Finding::new(
            unreachable_condition_rule(),
            "the target answered type='invalid' although it could not reach the authoritative \
             server to learn the key was wrong (a dialback error such as \
             <remote-connection-failed/> says what happened)",
        )),
        Some(DialbackOutcome::NoAnswer) if r.stream_error.is_some() => out.push(Finding::new(
            dialback_error_rule(),
            format!(
                "the target closed the stream with <{}/> instead of a dialback error \
                 (db:result type='error')",
                r.stream_error.as_deref().unwrap_or_default()
            ),
        )),
        _ => {}
    }
}

/// SPEC §4.3: a refusal must be observable. The peer stopped because the
/// target never answered a request whose answer a text prescribes; that
/// silence is a deviation from that text, never a refusal.
fn silent_refusal(r: &InitiatorReport, out: &mut Vec<Finding>) {
    let Some(f) = &r.failure else { return };
    if f.failure == StepFailure::Closed {
        // Closing is an answer to most requests, but not where a text names
        // the reply: STARTTLS (MUST reply <proceed/> or <failure/>) and SASL
        // (a <failure/> whose child says why).
        let (rule, what) = match f.stage {
            Stage::StartTls => (
                protocol(Keyword::Must, "RFC 6120 §5.4.2.1"),
                "the target closed the stream instead of answering <starttls/> with \
                 <proceed/> or <failure/>",
            ),
            Stage::Sasl => (
                Requirement::advisory("RFC 6120 §6.4.5"),
                "the target closed the stream instead of answering SASL <auth/> with \
                 <success/> or <failure/>",
            ),
            _ => return,
        };
        out.push(Finding::new(rule, what));
        return;
    }
    if f.failure != StepFailure::Timeout {
        return;
    }
    let (rule, what) = match f.stage {
        Stage::Header => (
            protocol(Keyword::Must, "RFC 6120 §4.2"),
            "the target never answered the stream header",
        ),
        Stage::Features => (
            protocol(Keyword::Must, "RFC 6120 §4.3.2"),
            "the target sent no stream features",
        ),
        // "The receiving entity MUST reply with either a <proceed/> element
        // ... or a <failure/> element"
        Stage::StartTls => (
            protocol(Keyword::Must, "RFC 6120 §5.4.2.1"),
            "the target answered <starttls/> with neither <proceed/> nor <failure/>",
        ),
        Stage::Sasl => (
            Requirement::advisory("RFC 6120 §6.4.5, §6.4.6"),
            "the target answered SASL <auth/> with neither <success/> nor <failure/>",
        ),
        // XEP-0220 §2.2.1 "SHALL notify" sits in the success path; for a
        // refusal §2.5 says the server "SHOULD still attempt to send the
        // dialback error instead of terminating the stream".
        Stage::Dialback => (
            protocol(Keyword::Should, "XEP-0220 §2.5"),
            "the target never answered the db:result (valid, invalid or a dialback error)",
        ),
        _ => return,
    };
    out.push(Finding::new(
        rule,
        format!("{what} before the peer's deadline: silence is not a refusal"),
    ));
}

/// The outcome as seen on the wire: authenticated with a method AND the test
/// stanza delivered, or refused.
fn classify(p: &Pairing, obs: &Observation) -> (Outcome, bool, Vec<String>) {
    let mut facts = Vec::new();
    match p.direction {
        Direction::Inbound => {
            let Some(r) = &obs.initiator else {
                facts.push("the initiating peer did not run".into());
                return (Outcome::Refused, false, facts);
            };
            facts.push(format!(
                "TLS {}",
                if r.tls {
                    "negotiated"
                } else {
                    "not negotiated"
                }
            ));
            if let Some(sasl) = &r.sasl {
                facts.push(format!("SASL EXTERNAL: {sasl:?}"));
            }
            if p.cert == CertVariant::ServerAuthOnly {
                // SPEC §5: reported, not judged.
                let offered = r
                    .features_tls
                    .as_ref()
                    .is_some_and(|f| f.mechanisms.iter().any(|m| m == "EXTERNAL"));
                facts.push(format!(
                    "serverAuth-only certificate: EXTERNAL {}, SASL {}",
                    if offered { "offered" } else { "not offered" },
                    match &r.sasl {
                        Some(crate::peer::SaslOutcome::Success) => "succeeded",
                        Some(_) => "failed",
                        None => "not attempted",
                    }
                ));
            }
            if let Some(db) = &r.dialback {
                facts.push(format!("dialback: {db:?}"));
            }
            if let Some(g) = &r.gave_up {
                facts.push(format!("peer gave up: {g:?}"));
            }
            if let Some(e) = &r.stream_error {
                facts.push(format!("stream error <{e}/> from the target"));
            }
            if let Some(f) = &r.failure {
                facts.push(format!("stopped at {:?}: {:?}", f.stage, f.failure));
            }
            facts.push(if obs.echoed {
                "test stanza echoed".to_string()
            } else {
                "test stanza not echoed".to_string()
            });
            // Acceptance is what the target decided; delivery is checked apart.
            match r.method {
                Some(m) => {
                    facts.push(format!("the target accepted {}", m.title()));
                    (Outcome::Authenticated(m), r.tls, facts)
                }
                None => (Outcome::Refused, r.tls, facts),
            }
        }
        Direction::Outbound => {
            let delivered = obs.server_events.iter().find_map(|e| match e {
                ServerEvent::Stanza {
                    tls,
                    method,
                    stanza,
                    ..
                } if stanza.id.as_deref() == Some(obs.probe_id.as_str()) => Some((*method, *tls)),
                _ => None,
            });
            let tls = obs
                .server_events
                .iter()
                .any(|e| matches!(e, ServerEvent::Tls { .. }));
            for e in &obs.server_events {
                match e {
                    ServerEvent::DirectTls { .. } => facts.push(
                        "the target tried direct TLS on a port that speaks STARTTLS (the \
                         xmpps-server record) and was closed"
                            .into(),
                    ),
                    ServerEvent::Authenticated { method, .. } => {
                        facts.push(format!("target authenticated with {}", method.title()))
                    }
                    ServerEvent::Sasl { outcome, .. } => {
                        facts.push(format!("SASL EXTERNAL: {outcome:?}"))
                    }
                    ServerEvent::Dialback { handled, .. } => {
                        facts.push(format!("dialback verified: {:?}", handled.answer))
                    }
                    _ => {}
                }
            }
            match delivered {
                Some((m, tls)) => {
                    facts.push(format!("test stanza received over {}", m.title()));
                    (Outcome::Authenticated(m), tls, facts)
                }
                None => {
                    facts.push("test stanza not received".into());
                    (Outcome::Refused, tls, facts)
                }
            }
        }
    }
}

/// SPEC §4.1: the features a receiving target offers for the stream state.
fn inbound_invariants(p: &Pairing, r: &InitiatorReport, out: &mut Vec<Finding>) {
    let t = p.target;
    let admitted = methods(t);
    if let Some(clear) = &r.features_clear {
        let want = t.tls.enabled().then_some(t.tls == Setting::Required);
        if clear.starttls != want {
            let (rule, text) = match (want, clear.starttls) {
                (Some(true), Some(false)) => (
                    rule_tls_required_flag(),
                    "TLS is required but STARTTLS is offered without <required/>".to_string(),
                ),
                (None, Some(_)) => (
                    configuration("SPEC §4.1"),
                    "STARTTLS offered although TLS is not supported".to_string(),
                ),
                _ => (
                    configuration("SPEC §4.1"),
                    format!(
                        "STARTTLS offer {:?} where {:?} was expected",
                        clear.starttls, want
                    ),
                ),
            };
            out.push(Finding::new(rule, text));
        }
        empty_mechanisms(clear, "before TLS", out);
        if !clear.mechanisms.is_empty() {
            out.push(Finding::new(
                rule_mechanisms_before_tls(t.tls == Setting::Required),
                format!("SASL mechanisms {:?} offered before TLS", clear.mechanisms),
            ));
        }
        dialback_offer(
            clear,
            admitted.contains(Method::TcpDialback),
            "before TLS",
            t.tls == Setting::Required,
            out,
        );
    }
    if let Some(tls) = &r.features_tls {
        empty_mechanisms(tls, "after TLS", out);
        let cert_ok = certificate_defect(p.cert).is_none();
        let want_external = admitted.contains(Method::SaslOverTls) && cert_ok;
        let external = tls.mechanisms.iter().any(|m| m == "EXTERNAL");
        if external && !want_external {
            // XEP-0178 says SHOULD: offering is tolerated if <failure/> follows.
            let (rule, text) = if admitted.contains(Method::SaslOverTls) {
                (
                    rule_external_offer_bad_cert(),
                    "EXTERNAL offered although the peer's certificate does not authenticate it",
                )
            } else {
                (
                    configuration("SPEC §4.1"),
                    "EXTERNAL offered although the configuration admits no SASL over TLS",
                )
            };
            out.push(Finding::new(rule, text));
        } else if !external && want_external && p.cert != CertVariant::ServerAuthOnly {
            // "The receiving entity SHOULD offer the SASL EXTERNAL mechanism
            // if" the certificate is acceptable; a missing offer shows in the
            // outcome too, where the configuration decides.
            // An identity type the server need not support (XmppAddr, a
            // wildcard) may make the certificate unacceptable to it, so the
            // SHOULD's condition need not hold: reported only.
            out.push(Finding::new(
                optional_identity(p.cert)
                    .unwrap_or_else(|| protocol(Keyword::Should, "RFC 6120 §6.3.4")),
                "EXTERNAL not offered although SASL over TLS is admitted and the peer's \
                 certificate is valid",
            ));
        }
        if tls.starttls.is_some() {
            out.push(Finding::new(
                rule_starttls_again(),
                "STARTTLS offered again on an encrypted stream",
            ));
        }
        dialback_offer(
            tls,
            admitted.contains(Method::TlsDialback),
            "after TLS",
            false,
            out,
        );
    }
}

fn empty_mechanisms(f: &FeaturesSeen, state: &str, out: &mut Vec<Finding>) {
    if f.empty_mechanisms {
        out.push(Finding::new(
            rule_empty_mechanisms(),
            format!(
                "an empty <mechanisms/> offered {state}: malformed, at least one mechanism is \
                 required"
            ),
        ));
    }
}

fn dialback_offer(
    f: &FeaturesSeen,
    admitted: bool,
    state: &str,
    tls_required_clear: bool,
    out: &mut Vec<Finding>,
) {
    if f.dialback && !admitted {
        out.push(Finding::new(
            rule_dialback_offer_not_admitted(tls_required_clear),
            format!(
                "dialback feature offered {state} where the configuration does not admit it \
                 (what must hold is that a db:result is then refused)"
            ),
        ));
    } else if !f.dialback && admitted {
        out.push(Finding::new(
            configuration("SPEC §4.1"),
            format!("dialback feature not offered {state} although admitted"),
        ));
    }
}

/// SPEC §4.2: never downgrade, never use a method the configuration does not
/// admit, never send a stanza before authentication.
fn outbound_invariants(p: &Pairing, obs: &Observation, out: &mut Vec<Finding>) {
    let admitted = methods(p.target);
    for e in &obs.server_events {
        match e {
            ServerEvent::Violation {
                kind, tls, element, ..
            } => {
                let what = element.as_ref().map(|e| e.xml.clone()).unwrap_or_default();
                let (rule, text) = match kind {
                    ViolationKind::UnauthenticatedStanza
                        if !tls && p.target.tls == Setting::Required =>
                    {
                        (
                            configuration("SPEC §4.2"),
                            format!(
                                "a clear-text stanza toward a partner whose TLS is required: {what}"
                            ),
                        )
                    }
                    other => (
                        violation_rule(*other),
                        format!("{other:?} on a stream toward the peer (tls={tls}): {what}"),
                    ),
                };
                out.push(Finding::new(rule, text));
            }
            ServerEvent::Authenticated { method, .. } if !admitted.contains(*method) => {
                out.push(Finding::new(
                    configuration("SPEC §4.2"),
                    format!(
                        "the target authenticated with {}, which its configuration does not admit",
                        method.title()
                    ),
                ))
            }
            _ => {}
        }
    }
}

/// The text each kind of misbehaviour toward the peer's receiving server
/// breaks (SPEC §4.6).
fn violation_rule(kind: ViolationKind) -> Requirement {
    match kind {
        ViolationKind::UnauthenticatedStanza => protocol(Keyword::MustNot, "XEP-0220 §2.1.1"),
        // "The domainpart of the JID contained in the stanza's 'from'
        // attribute MUST match the FQDN of the sending server"
        ViolationKind::InvalidFrom => protocol(Keyword::Must, "RFC 6120 §8.1.2.2"),
        ViolationKind::ImproperAddressing => protocol(Keyword::Must, "RFC 6120 §8.1.1.2"),
        // XEP-0220 §2.4.1 makes the declaration the signal of support but no
        // text forbids an attempt: reported, never a failure (SPEC §4.7).
        ViolationKind::DialbackNotOffered => protocol(Keyword::May, "XEP-0220 §2.4.1"),
        ViolationKind::SaslNotOffered => Requirement::advisory("RFC 6120 §6.4.2"),
        // RFC 7590 §3.1: the initiating entity "MUST NOT be deterred from
        // attempting TLS negotiation even if the receiving entity does not
        // advertise support for TLS".
        ViolationKind::StartTlsNotOffered => protocol(Keyword::May, "RFC 7590 §3.1"),
        ViolationKind::Unexpected => configuration("SPEC §4.2"),
    }
}

// Rules whose level the RFC text decides; one place each.
fn rule_tls_required_flag() -> Requirement {
    protocol(Keyword::Must, "RFC 6120 §5.4.1")
}
fn rule_mechanisms_before_tls(tls_required: bool) -> Requirement {
    if tls_required {
        // "it MUST NOT advertise that mechanism ... before TLS negotiation
        // has been completed"
        protocol(Keyword::MustNot, "RFC 6120 §6.3.4")
    } else {
        // Where TLS is optional no RFC text forbids it, but SPEC §4.1 (what
        // the configuration means on the wire) offers no mechanism before TLS.
        configuration("SPEC §4.1")
    }
}
fn rule_external_offer_bad_cert() -> Requirement {
    // "the receiving entity MAY offer the SASL EXTERNAL mechanism under other
    // circumstances, as well"
    protocol(Keyword::May, "RFC 6120 §6.3.4")
}
fn rule_starttls_again() -> Requirement {
    protocol(Keyword::MustNot, "RFC 6120 §5.4.3.3")
}
fn rule_empty_mechanisms() -> Requirement {
    // Only the descriptive schema requires a <mechanism/> child.
    Requirement::advisory("RFC 6120 §6.4.1, Appendix A.4 (schema)")
}
fn rule_dialback_offer_not_admitted(tls_required_clear: bool) -> Requirement {
    if tls_required_clear {
        // "the receiving entity SHOULD NOT advertise support for any stream
        // feature except STARTTLS"
        protocol(Keyword::ShouldNot, "RFC 6120 §5.3.1")
    } else {
        configuration("SPEC §4.1")
    }
}

/// What must happen with a peer whose domain matches no partner (SPEC §2).
pub fn stranger_expected() -> Expected {
    Expected {
        source: Some(configuration("SPEC §2")),
        alternatives: Vec::new(),
        outcome: CaseOutcome::REFUSED,
        tls: false,
        rationale: "A domain that matches no partner configuration is not a partner: streams \
                    from or to it are refused."
            .into(),
        refs: vec!["SPEC §2".into()],
    }
}

/// A stranger must never be authenticated inbound, and never be connected
/// to (let alone sent a stanza) outbound.
pub fn judge_stranger(direction: Direction, obs: &Observation, policy: Policy) -> Judgement {
    let mut findings = Vec::new();
    let mut facts = Vec::new();
    match direction {
        Direction::Inbound => {
            let method = obs.initiator.as_ref().and_then(|r| r.method);
            if let Some(m) = method {
                findings.push(Finding::new(
                    configuration("SPEC §2"),
                    format!("the target accepted a stranger with {}", m.title()),
                ));
            }
            if let Some(e) = obs.initiator.as_ref().and_then(|r| r.stream_error.clone()) {
                facts.push(format!("stream error <{e}/> from the target"));
            }
        }
        Direction::Outbound => {
            let streams = obs
                .server_events
                .iter()
                .filter(|e| matches!(e, ServerEvent::Header { .. }))
                .count();
            if streams > 0 {
                findings.push(Finding::new(
                    configuration("SPEC §2"),
                    format!(
                        "the target opened {streams} stream(s) toward a domain that is no partner"
                    ),
                ));
            }
            facts.push(format!("{streams} stream(s) opened toward the stranger"));
        }
    }
    let refused = findings.is_empty();
    let observed = Observed {
        outcome: if refused {
            CaseOutcome::REFUSED
        } else {
            CaseOutcome::StrangerAccepted
        },
        tls: false,
        facts,
        initiating: initiating_of(obs),
    };
    Judgement::of(observed, deviations(findings, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::CertVariant;
    use crate::partner::Negotiation;

    fn inbound(target: &str) -> Pairing {
        Pairing {
            target: Negotiation::from_code(target).unwrap(),
            peer: Negotiation::from_code("OO1").unwrap(),
            direction: Direction::Inbound,
            cert: CertVariant::Valid,
            dns: crate::oracle::DnsVariant::Srv,
        }
    }

    /// An empty `<mechanisms/>` breaks only the descriptive schema of RFC
    /// 6120 (advisory: non-strict), and nothing else about correct features
    /// is a finding.
    #[test]
    fn an_empty_mechanisms_element_is_an_advisory_finding() {
        let clear = FeaturesSeen {
            starttls: Some(false),
            dialback: true,
            ..FeaturesSeen::default()
        };
        let report = InitiatorReport {
            features_clear: Some(clear.clone()),
            ..InitiatorReport::default()
        };
        let mut out = Vec::new();
        inbound_invariants(&inbound("OO1"), &report, &mut out);
        assert!(
            out.is_empty(),
            "{:?}",
            out.iter().map(|f| &f.text).collect::<Vec<_>>()
        );

        let report = InitiatorReport {
            features_clear: Some(FeaturesSeen {
                empty_mechanisms: true,
                ..clear
            }),
            ..InitiatorReport::default()
        };
        inbound_invariants(&inbound("OO1"), &report, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].rule.severity(Policy::Lync) == Severity::NonStrict
                && out[0]
                    .text
                    .contains("empty <mechanisms/> offered before TLS")
        );
    }
}
