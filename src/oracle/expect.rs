//! The expected outcome of one pairing (SPEC §4.3, §4.4).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    CertVariant, Direction, DnsVariant, Policy, certificate_defect, certificate_rule,
    identity_support_rule, optional_identity, server_auth_only_rule, srv_dot_rule,
};
use crate::partner::{Method, methods};
use crate::partner::{Negotiation, Setting};
use crate::requirement::{Keyword, Requirement};

/// One target configuration meeting one simulated peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pairing {
    pub target: Negotiation,
    pub peer: Negotiation,
    pub direction: Direction,
    /// The peer's certificate: its client certificate when it initiates
    /// (inbound), its server certificate when it receives (outbound).
    pub cert: CertVariant,
    /// How the peer's domain resolves for the target.
    pub dns: DnsVariant,
}

impl Pairing {
    /// A pairing with valid certificates and normal DNS.
    pub fn plain(target: Negotiation, peer: Negotiation, direction: Direction) -> Pairing {
        Pairing {
            target,
            peer,
            direction,
            cert: CertVariant::Valid,
            dns: DnsVariant::Srv,
        }
    }
}

/// What the stream between the two ends up as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "method")]
pub enum Outcome {
    /// The stream is authenticated with this method and the test stanza is delivered.
    Authenticated(Method),
    /// The stream is closed with a stream or dialback error; nothing is delivered.
    Refused,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Authenticated(m) => write!(f, "{}", m.title()),
            Outcome::Refused => f.write_str("refused"),
        }
    }
}

/// What must happen, why, and on what authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    pub outcome: Outcome,
    /// TLS is negotiated on the stream whenever both sides support it; a
    /// refusal caused by a TLS mismatch happens without it.
    pub tls: bool,
    /// One sentence a failure message can quote.
    pub rationale: String,
    /// The requirements the expectation rests on, e.g. `RFC 6120 §5.3.1`.
    pub refs: Vec<String>,
    pub policy: Policy,
    /// The rule an outcome other than `outcome` (and not listed in
    /// `alternatives`) deviates from (SPEC §4.6).
    pub requirement: Requirement,
    /// Other outcomes and what each means: allowed outright, or a deviation
    /// from a named rule of its own (e.g. a `lync` policy choice, or the
    /// certificate rule a wrongly accepted SASL EXTERNAL breaks).
    pub alternatives: Vec<Alternative>,
}

/// An outcome other than the expected one, judged by its own rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alternative {
    pub outcome: Outcome,
    /// `None`: the texts allow it, so it passes.
    pub deviates_from: Option<Requirement>,
    /// Why, in one sentence.
    pub why: String,
}

impl Expectation {
    /// What observing `outcome` means: `None` when it is the expected outcome
    /// or an allowed alternative, else the rule it deviates from.
    pub fn deviation_of(&self, outcome: Outcome) -> Option<&Requirement> {
        if outcome == self.outcome {
            return None;
        }
        match self.alternatives.iter().find(|a| a.outcome == outcome) {
            Some(a) => a.deviates_from.as_ref(),
            None => Some(&self.requirement),
        }
    }
}

const REF_OUTCOME_RULE: &str = "SPEC §4.3";
const REF_MATRIX: &str = "SPEC §4";
const REF_POLICY: &str = "SPEC §4.4";
const REF_TLS_MANDATORY: &str = "RFC 6120 §5.3.1";
const REF_SASL: &str = "RFC 6120 §6";
const REF_EXTERNAL: &str = "XEP-0178 §3";
const REF_CERT: &str = "RFC 6120 §13.7.2";
const REF_IDENTITY: &str = "RFC 6125 §6";
const REF_DIALBACK: &str = "XEP-0220 §2";
const REF_DNS: &str = "RFC 6120 §3.2";
const REF_DIALBACK_ERRORS: &str = "XEP-0220 §2.5";

/// SPEC §4.3 (the Lync matrix): what both configurations admit decides the
/// outcome. A configuration rule: unmet, the case fails.
fn matrix_rule() -> Requirement {
    Requirement::configuration(REF_OUTCOME_RULE)
}

/// SPEC §4.4: a choice the RFCs leave open (non-strict under `lync`).
fn policy_rule() -> Requirement {
    Requirement::policy(REF_POLICY)
}

/// XEP-0220 §2.2.1: the receiving server authorises a dialback request only
/// on the authoritative server's answer; it cannot accept what it could not
/// verify.
fn dialback_verification_rule() -> Requirement {
    Requirement::protocol(Keyword::MustNot, "XEP-0220 §2.2.1")
}

/// Applies the outcome rule: the first method in preference order that both
/// sides admit and that is feasible, else a refusal.
pub fn expect(p: &Pairing, policy: Policy) -> Expectation {
    let mut e = expect_rule(p, policy);
    // The texts each new DNS variant rests on (SPEC §6).
    let dns_refs: &[&str] = match p.dns {
        DnsVariant::SrvDot => &["RFC 6120 §3.2.1", "SPEC §6"],
        // RFC 6120 §3.2.1 step 7 (no keyword): "If the initiating entity
        // fails to connect using all resolved IP addresses for a given FDQN,
        // then it repeats the process of resolution and connection for the
        // next FQDN returned by the SRV lookup"; XEP-0368 §3 mixes xmpps- and
        // xmpp- records in one order.
        DnsVariant::XmppsToStarttlsPort => &["RFC 6120 §3.2.1", "XEP-0368 §3", "SPEC §6"],
        DnsVariant::AaaaOnly => &["RFC 6120 §3.2.1", "SPEC §6"],
        _ => &[],
    };
    for r in dns_refs {
        if !e.refs.iter().any(|have| have == r) {
            e.refs.push((*r).to_string());
        }
    }
    // `xmpps-to-starttls-port`: going on to the `_xmpp-server` record after
    // direct TLS failed is RFC 6120 §3.2.1 step 7, which names no keyword,
    // and XEP-0368 has no sentence for this case (its SHOULD is about the
    // order of the records). A refusal caused by not going on is therefore
    // advisory, never a failure. Inbound, DNS only matters for dialback.
    if p.dns == DnsVariant::XmppsToStarttlsPort
        && let Outcome::Authenticated(m) = e.outcome
        && (p.direction == Direction::Outbound || m.uses_dialback())
    {
        e.alternatives.retain(|a| a.outcome != Outcome::Refused);
        e.alternatives.push(Alternative {
            outcome: Outcome::Refused,
            deviates_from: Some(Requirement::advisory(
                "RFC 6120 §3.2.1 step 7 (no keyword); XEP-0368 §3",
            )),
            why: "the target did not go on to the `_xmpp-server` record after direct TLS to \
                  the `_xmpps-server` one failed"
                .to_string(),
        });
    }
    if p.cert == CertVariant::ServerAuthOnly && e.outcome != Outcome::Refused {
        // SPEC §5: refusing a certificate without the clientAuth purpose (the
        // peer presents it as a client when it initiates or verifies
        // dialback) is the policy's question. Under `lync` the TLS session
        // survives and dialback still works where admitted; where only SASL
        // EXTERNAL is shared, whether it succeeds is reported, not judged.
        let dialback_shared = methods(p.target)
            .intersection(methods(p.peer))
            .iter()
            .any(|m| m.uses_dialback());
        let rule = (policy == Policy::Lync && dialback_shared).then(server_auth_only_rule);
        e.alternatives.retain(|a| a.outcome != Outcome::Refused);
        e.alternatives.push(Alternative {
            outcome: Outcome::Refused,
            deviates_from: rule,
            why: "refusing a serverAuth-only certificate (SPEC §5: under lync the TLS session \
                  survives and dialback still works where admitted)"
                .to_string(),
        });
    }
    e
}

fn expect_rule(p: &Pairing, policy: Policy) -> Expectation {
    let mut why = Reasons::new(policy);
    let tls = p.target.tls.enabled() && p.peer.tls.enabled();
    let shared = methods(p.target).intersection(methods(p.peer));

    if shared.is_empty() {
        return why.refuse(tls, no_shared_method(p), tls_refs(p));
    }
    // Outbound, the target cannot even reach the peer without DNS.
    if p.direction == Direction::Outbound && !p.dns.reachable() {
        why.refs.push(REF_DNS);
        if p.dns == DnsVariant::SrvDot {
            // Reaching the peer anyway means the A-record fallback was used.
            for m in shared.iter() {
                why.alternative(
                    Outcome::Authenticated(m),
                    Some(srv_dot_rule()),
                    "the target fell back to the domain's A record although the only SRV \
                     target is \".\"",
                );
            }
        }
        return why.refuse(
            tls,
            format!(
                "The target must resolve the peer's domain to connect, and under DNS variant \
                 `{}` no server is reachable, so nothing can be delivered.",
                p.dns
            ),
            vec![],
        );
    }

    let mut skipped: Vec<String> = Vec::new();
    for method in shared.iter() {
        match feasibility(p, method, policy) {
            Ok(()) => {
                alternatives_after(p, method, shared, policy, &mut why);
                why.refs.extend(method_refs(method));
                let mut rationale = format!(
                    "{} is the best method admitted by both the target ({}) and the peer ({})",
                    method.title(),
                    methods(p.target),
                    methods(p.peer)
                );
                if skipped.is_empty() {
                    rationale.push('.');
                } else {
                    rationale.push_str(&format!(" that is feasible: {}.", skipped.join("; ")));
                }
                return why.finish(Outcome::Authenticated(method), tls, rationale);
            }
            Err(Infeasible::Certificate(reason)) => {
                why.refs.extend([REF_CERT, REF_IDENTITY, REF_POLICY]);
                why.wrongly_accepted(p, method);
                if policy == Policy::Strict {
                    why.requirement = policy_rule();
                    if p.direction == Direction::Outbound && p.cert == CertVariant::CnOnly {
                        // Going on with a CN-only receiving certificate is
                        // what RFC 6125 §6.4.4 allows: advisory only.
                        for m in shared.iter() {
                            why.alternative(
                                Outcome::Authenticated(m),
                                Some(certificate_rule(p.cert)),
                                "the target took the receiving server's CN as its identity",
                            );
                        }
                    }
                    return why.refuse(
                        tls,
                        format!(
                            "{} is admitted by both sides but {reason}; the strict policy refuses \
                             the connection instead of falling back.",
                            method.title()
                        ),
                        vec![],
                    );
                }
                skipped.push(format!("{} is ruled out because {reason}", method.title()));
            }
            Err(Infeasible::Other(reason, refs)) => {
                why.refs.extend(refs);
                if method.uses_dialback() && p.direction == Direction::Inbound {
                    why.alternative(
                        Outcome::Authenticated(method),
                        Some(dialback_verification_rule()),
                        "the target accepted a dialback request it could not have verified",
                    );
                }
                skipped.push(format!("{} is ruled out because {reason}", method.title()));
            }
        }
    }
    let rationale = format!(
        "The methods admitted by both sides ({shared}) are all infeasible: {}.",
        skipped.join("; ")
    );
    // Every shared method was ruled out. Under `lync` the decisive rule is the
    // one that ruled out the first (e.g. the certificate rule for SASL
    // EXTERNAL); under `strict` the refusal is the policy's own choice.
    if policy == Policy::Lync
        && let Some(first) = why
            .alternatives
            .first()
            .and_then(|a| a.deviates_from.clone())
    {
        why.requirement = first;
    }
    why.refuse(tls, rationale, vec![])
}

/// The outcomes the texts also allow, or judge by a rule of their own, once
/// `method` is the expected one.
fn alternatives_after(
    p: &Pairing,
    method: Method,
    shared: crate::partner::Methods,
    policy: Policy,
    why: &mut Reasons,
) {
    let defect = certificate_defect(p.cert).is_some();
    let others: Vec<Method> = shared.iter().filter(|m| *m != method).collect();
    match p.direction {
        // SPEC §4.4 (lync): the receiving server's certificate is no
        // precondition for any method, so every shared method passes; closing
        // the stream over it is what RFC 6120 §13.7.2 and RFC 7590 §3.4 ask
        // for, so that passes too. (Under strict a defect refuses outright.)
        Direction::Outbound if defect && p.cert != CertVariant::NoClientCert => {
            for other in others {
                why.alternative(
                    Outcome::Authenticated(other),
                    None,
                    "the initiating side may go on with any method both sides admit (SPEC §4.4)",
                );
            }
            if policy == Policy::Lync {
                why.alternative(
                    Outcome::Refused,
                    None,
                    "closing the stream over the receiving server's certificate follows RFC \
                     6120 §13.7.2 (RFC 7590 §3.4: servers SHOULD authenticate other servers)",
                );
            }
        }
        // A target that validates the receiving server's certificate need not
        // support XmppAddr or wildcards (RFC 6120 §13.7.1.2.1, RFC 6125
        // §6.4.3): closing the stream for want of an identity it takes is
        // allowed, reported as info.
        Direction::Outbound => {
            if let Some(rule) = optional_identity(p.cert) {
                why.alternative(
                    Outcome::Refused,
                    Some(rule),
                    "the target does not take this identity type for the receiving server",
                );
            }
        }
        // An unusable initiating certificate rules out SASL EXTERNAL; closing
        // the connection instead of falling back is what RFC 6120 §13.7.2 and
        // XEP-0178 §3 (step 7a) describe, so it passes under either policy.
        Direction::Inbound if defect && shared.contains(Method::SaslOverTls) => {
            why.alternative(
                Outcome::Refused,
                None,
                "closing the connection over an unacceptable certificate (RFC 6120 §13.7.2, \
                 XEP-0178 §3 step 7a)",
            );
        }
        // A serverAuth-only initiating certificate (SPEC §5): whether SASL
        // EXTERNAL succeeds is reported, not judged; under `lync` the TLS
        // session survives and dialback still works where admitted, so a
        // refusal deviates from the policy only when dialback was shared.
        Direction::Inbound
            if method == Method::SaslOverTls && p.cert == CertVariant::ServerAuthOnly =>
        {
            for other in others {
                why.alternative(
                    Outcome::Authenticated(other),
                    None,
                    "whether SASL EXTERNAL accepts a certificate without the clientAuth \
                     purpose is reported, not judged (SPEC §5)",
                );
            }
            why.refs.push(REF_POLICY);
        }
        // Identity types a receiving server need not support: refusing them
        // for SASL EXTERNAL is reported, never a failure.
        Direction::Inbound if method == Method::SaslOverTls => {
            if let Some(rule) = optional_identity(p.cert) {
                for other in others {
                    why.alternative(
                        Outcome::Authenticated(other),
                        Some(rule.clone()),
                        "the target does not take this identity type for SASL EXTERNAL",
                    );
                }
                why.alternative(
                    Outcome::Refused,
                    Some(rule),
                    "the target does not take this identity type for SASL EXTERNAL",
                );
            } else if let Some(rule) = identity_support_rule(p.cert) {
                why.requirement = rule;
            }
        }
        _ => {}
    }
}

/// Collects references while the rule is applied.
struct Reasons {
    policy: Policy,
    refs: Vec<&'static str>,
    requirement: Requirement,
    alternatives: Vec<Alternative>,
}

impl Reasons {
    fn new(policy: Policy) -> Reasons {
        Reasons {
            policy,
            refs: vec![REF_OUTCOME_RULE],
            requirement: matrix_rule(),
            alternatives: Vec::new(),
        }
    }

    fn alternative(&mut self, outcome: Outcome, deviates_from: Option<Requirement>, why: &str) {
        if !self.alternatives.iter().any(|a| a.outcome == outcome) {
            self.alternatives.push(Alternative {
                outcome,
                deviates_from,
                why: why.to_string(),
            });
        }
    }

    /// Inbound SASL EXTERNAL ruled out by the peer's certificate: accepting
    /// it anyway breaks the certificate rule of that variant.
    fn wrongly_accepted(&mut self, p: &Pairing, method: Method) {
        if p.direction == Direction::Inbound && method == Method::SaslOverTls {
            self.alternative(
                Outcome::Authenticated(method),
                Some(certificate_rule(p.cert)),
                "the target authenticated the peer with a certificate that does not \
                 authenticate its domain",
            );
        }
    }

    fn refuse(self, tls: bool, rationale: String, extra: Vec<&'static str>) -> Expectation {
        let mut me = self;
        me.refs.extend(extra);
        me.finish(Outcome::Refused, tls, rationale)
    }

    fn finish(self, outcome: Outcome, tls: bool, rationale: String) -> Expectation {
        let mut refs: Vec<String> = Vec::new();
        for r in self.refs {
            if !refs.iter().any(|have| have == r) {
                refs.push(r.to_string());
            }
        }
        Expectation {
            outcome,
            tls,
            rationale,
            refs,
            policy: self.policy,
            requirement: self.requirement,
            alternatives: self.alternatives,
        }
    }
}

enum Infeasible {
    /// A certificate problem: the policy profile decides what follows.
    Certificate(String),
    /// Anything else: the next method is tried.
    Other(String, Vec<&'static str>),
}

fn feasibility(p: &Pairing, method: Method, policy: Policy) -> Result<(), Infeasible> {
    if method.uses_tls() {
        certificate_feasibility(p, method, policy)?;
    }
    if method.uses_dialback() && !p.dns.reachable() {
        // Outbound unreachability was handled before; inbound, the target as
        // receiving server must reach the peer's authoritative server.
        return Err(Infeasible::Other(
            format!(
                "the target cannot reach the peer's authoritative server to verify the dialback \
                 key (DNS variant `{}`)",
                p.dns
            ),
            if p.dns == DnsVariant::AuthoritativeUnreachable {
                vec![REF_DIALBACK, REF_DNS, REF_DIALBACK_ERRORS]
            } else {
                vec![REF_DIALBACK, REF_DNS]
            },
        ));
    }
    Ok(())
}

fn certificate_feasibility(p: &Pairing, method: Method, policy: Policy) -> Result<(), Infeasible> {
    let Some(defect) = certificate_defect(p.cert) else {
        return Ok(());
    };
    match (p.direction, method) {
        // Inbound, the peer's client certificate only matters for SASL EXTERNAL.
        (Direction::Inbound, Method::SaslOverTls) => Err(Infeasible::Certificate(format!(
            "the peer's certificate cannot authenticate its domain ({defect})"
        ))),
        (Direction::Inbound, _) => Ok(()),
        // Outbound, a peer that requests no client certificate simply cannot
        // offer EXTERNAL; the target uses the next method the peer offers.
        (Direction::Outbound, Method::SaslOverTls) if p.cert == CertVariant::NoClientCert => {
            Err(Infeasible::Other(
                "the peer requests no client certificate, so it cannot offer SASL EXTERNAL"
                    .to_string(),
                vec![REF_EXTERNAL],
            ))
        }
        (Direction::Outbound, _) if p.cert == CertVariant::NoClientCert => Ok(()),
        // Outbound, the receiving server's certificate is no precondition for
        // any method under lync (SPEC §4.4: SASL EXTERNAL authenticates the
        // initiating side with its own certificate); strict refuses.
        (Direction::Outbound, _) => {
            if policy == Policy::Strict {
                Err(Infeasible::Certificate(format!(
                    "the peer's server certificate cannot be relied on ({defect})"
                )))
            } else {
                Ok(())
            }
        }
    }
}

fn no_shared_method(p: &Pairing) -> String {
    let (t, peer) = (p.target, p.peer);
    let tls_clash = |a: Negotiation, b: Negotiation| {
        a.tls == Setting::Required && b.tls == Setting::NotSupported
    };
    if tls_clash(t, peer) {
        "The target requires TLS and the peer does not support it, so no stream can be \
         negotiated."
            .to_string()
    } else if tls_clash(peer, t) {
        "The peer requires TLS and the target does not support it, so no stream can be \
         negotiated."
            .to_string()
    } else {
        format!(
            "No method is admitted by both the target ({}) and the peer ({}).",
            methods(t),
            methods(peer)
        )
    }
}

fn tls_refs(p: &Pairing) -> Vec<&'static str> {
    let required = [p.target.tls, p.peer.tls].contains(&Setting::Required);
    let unsupported = [p.target.tls, p.peer.tls].contains(&Setting::NotSupported);
    if required && unsupported {
        vec![REF_TLS_MANDATORY, REF_MATRIX]
    } else {
        vec![REF_MATRIX]
    }
}

fn method_refs(m: Method) -> Vec<&'static str> {
    match m {
        Method::SaslOverTls => vec![REF_SASL, REF_EXTERNAL],
        Method::TlsDialback | Method::TcpDialback => vec![REF_DIALBACK],
    }
}
