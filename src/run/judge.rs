//! Judging one pairing: classify what happened from the observations alone,
//! compare it with the oracle's expectation, and check the invariants of SPEC
//! §4.1/§4.2. Pure: the runner gathers the facts, this decides.

use crate::oracle::{Direction, Expectation, Outcome, Pairing, certificate_defect};
use crate::partner::{Method, Setting, methods};
use crate::peer::{FeaturesSeen, InitiatorReport, ServerEvent, ViolationKind};
use crate::report::{Expected, Observed, Verdict};

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
}

/// The judge's conclusion.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    pub observed: Observed,
    pub messages: Vec<String>,
}

/// A failed check: MUST-level ones fail the case, SHOULD-level ones make it non-strict.
struct Finding {
    must: bool,
    text: String,
}

pub fn expected_of(e: &Expectation) -> Expected {
    Expected {
        outcome: e.outcome.to_string(),
        tls: e.tls,
        rationale: e.rationale.clone(),
        refs: e.refs.clone(),
    }
}

pub fn judge(p: &Pairing, expectation: &Expectation, obs: &Observation) -> Judgement {
    let observed = classify(p, obs);
    let mut findings = Vec::new();
    if observed.0 != expectation.outcome {
        findings.push(Finding {
            must: true,
            text: format!(
                "expected {} but observed {}: {} [{}]",
                expectation.outcome,
                observed.0,
                expectation.rationale,
                expectation.refs.join(", ")
            ),
        });
    }
    match p.direction {
        Direction::Inbound => {
            if let Some(report) = &obs.initiator {
                inbound_invariants(p, report, &mut findings);
                if let Some(m) = report.method
                    && !methods(p.target).contains(m)
                {
                    findings.push(Finding {
                        must: true,
                        text: format!(
                            "the target accepted {} although its configuration does not admit it \
                             (SPEC §4.1)",
                            m.title()
                        ),
                    });
                }
            }
            if matches!(expectation.outcome, Outcome::Authenticated(_))
                && observed.0 == expectation.outcome
                && !obs.echoed
            {
                findings.push(Finding {
                    must: true,
                    text: "the stream was authenticated but the test stanza was not delivered and \
                           echoed back (SPEC §4.3)"
                        .into(),
                });
            }
        }
        Direction::Outbound => outbound_invariants(p, obs, &mut findings),
    }
    let verdict = if findings.iter().any(|f| f.must) {
        Verdict::Fail
    } else if findings.is_empty() {
        Verdict::Pass
    } else {
        Verdict::NonStrict
    };
    let (outcome, tls, facts) = observed;
    Judgement {
        verdict,
        observed: Observed {
            outcome: outcome.to_string(),
            tls,
            facts,
        },
        messages: findings
            .into_iter()
            .map(|f| format!("{}: {}", if f.must { "MUST" } else { "SHOULD" }, f.text))
            .collect(),
    }
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
            let text = match (want, clear.starttls) {
                (Some(true), Some(false)) => {
                    "TLS is required but STARTTLS is offered without <required/> (RFC 6120 §5.4.1)"
                        .into()
                }
                (None, Some(_)) => "STARTTLS offered although TLS is not supported".into(),
                _ => format!(
                    "STARTTLS offer {:?} where {:?} was expected (RFC 6120 §5.4.1)",
                    clear.starttls, want
                ),
            };
            out.push(Finding { must: true, text });
        }
        empty_mechanisms(clear, "before TLS", out);
        if !clear.mechanisms.is_empty() {
            out.push(Finding {
                must: true,
                text: format!(
                    "SASL mechanisms {:?} offered before TLS (SPEC §4.1, XEP-0178 §3)",
                    clear.mechanisms
                ),
            });
        }
        dialback_offer(
            clear,
            admitted.contains(Method::TcpDialback),
            "before TLS",
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
            out.push(Finding {
                must: false,
                text: "EXTERNAL offered although the peer's certificate does not authenticate it \
                       or SASL is not admitted (XEP-0178 §3)"
                    .into(),
            });
        } else if !external && want_external {
            out.push(Finding {
                must: true,
                text: "EXTERNAL not offered although SASL over TLS is admitted and the peer's \
                       certificate is valid (SPEC §4.1)"
                    .into(),
            });
        }
        if tls.starttls.is_some() {
            out.push(Finding {
                must: true,
                text: "STARTTLS offered again on an encrypted stream (RFC 6120 §5.4.3.3)".into(),
            });
        }
        dialback_offer(
            tls,
            admitted.contains(Method::TlsDialback),
            "after TLS",
            out,
        );
    }
}

fn empty_mechanisms(f: &FeaturesSeen, state: &str, out: &mut Vec<Finding>) {
    if f.empty_mechanisms {
        out.push(Finding {
            must: true,
            text: format!(
                "an empty <mechanisms/> offered {state}: malformed, RFC 6120 §6.4.1 requires at \
                 least one mechanism (SPEC §4.1)"
            ),
        });
    }
}

fn dialback_offer(f: &FeaturesSeen, admitted: bool, state: &str, out: &mut Vec<Finding>) {
    if f.dialback && !admitted {
        out.push(Finding {
            must: false,
            text: format!(
                "dialback feature offered {state} where the configuration does not admit it \
                 (SPEC §4.1; what MUST hold is that a db:result is then refused)"
            ),
        });
    } else if !f.dialback && admitted {
        out.push(Finding {
            must: true,
            text: format!(
                "dialback feature not offered {state} although admitted (SPEC §4.1, XEP-0220 §2.4)"
            ),
        });
    }
}

/// SPEC §4.2: never downgrade, never use a method the configuration does not
/// admit, never send a stanza before authentication.
fn outbound_invariants(p: &Pairing, obs: &Observation, out: &mut Vec<Finding>) {
    let admitted = methods(p.target);
    for e in &obs.server_events {
        match e {
            ServerEvent::Violation { kind, tls, element, .. } => {
                let what = element.as_ref().map(|e| e.xml.clone()).unwrap_or_default();
                let text = match kind {
                    ViolationKind::UnauthenticatedStanza if !tls && p.target.tls == Setting::Required => {
                        format!("a clear-text stanza toward a partner whose TLS is required (SPEC §4.2): {what}")
                    }
                    other => format!("{other:?} on a stream toward the peer (tls={tls}): {what}"),
                };
                out.push(Finding { must: true, text });
            }
            ServerEvent::Authenticated { method, .. } if !admitted.contains(*method) => out.push(Finding {
                must: true,
                text: format!(
                    "the target authenticated with {}, which its configuration does not admit (SPEC §4.2)",
                    method.title()
                ),
            }),
            _ => {}
        }
    }
}

/// What must happen with a peer whose domain matches no partner (SPEC §2).
pub fn stranger_expected() -> Expected {
    Expected {
        outcome: Outcome::Refused.to_string(),
        tls: false,
        rationale: "A domain that matches no partner configuration is not a partner: streams \
                    from or to it are refused."
            .into(),
        refs: vec!["SPEC §2".into()],
    }
}

/// A stranger must never be authenticated inbound, and never be connected
/// to (let alone sent a stanza) outbound.
pub fn judge_stranger(direction: Direction, obs: &Observation) -> Judgement {
    let mut messages = Vec::new();
    let mut facts = Vec::new();
    match direction {
        Direction::Inbound => {
            let method = obs.initiator.as_ref().and_then(|r| r.method);
            if let Some(m) = method {
                messages.push(format!(
                    "MUST: the target accepted a stranger with {} (SPEC §2)",
                    m.title()
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
                messages.push(format!(
                    "MUST: the target opened {streams} stream(s) toward a domain that is no partner (SPEC §2)"
                ));
            }
            facts.push(format!("{streams} stream(s) opened toward the stranger"));
        }
    }
    let refused = messages.is_empty();
    Judgement {
        verdict: if refused {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        observed: Observed {
            outcome: if refused {
                "refused".into()
            } else {
                "accepted".into()
            },
            tls: false,
            facts,
        },
        messages,
    }
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

    /// SPEC §4.1: an empty `<mechanisms/>` is malformed wherever it appears,
    /// and nothing else about correct features is a finding.
    #[test]
    fn an_empty_mechanisms_element_is_a_must_finding() {
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
            out[0].must
                && out[0]
                    .text
                    .contains("empty <mechanisms/> offered before TLS")
        );
    }
}
