//! The pure half of the probe: from what the probed server did in a few
//! trials, which settings it may have, and what each of the 11 valid partner
//! configurations of ours would get in each direction (SPEC §4.3 via the
//! oracle).
//!
//! The server is modelled, per role, as one of the 18 `<T><S><D>` rows.
//! Every row whose oracle outcome agrees with every conclusive trial is a
//! *candidate*; a prediction is certain only when all candidates give the
//! same outcome, and otherwise says which outcomes remain and why. Nothing
//! is guessed: a trial that could not be carried out constrains nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::oracle::{CertVariant, Direction, Outcome, Pairing, Policy, expect};
use crate::partner::{Method, Negotiation, Setting, negotiation_is_valid};

/// The profiles we play in trials, as initiating server toward the probed
/// server and as receiving server for its streams back. Together they
/// separate every row's method set and TLS requirement (proved exhaustively
/// in the tests): everything offered; SASL only; dialback over TLS only;
/// dialback without TLS.
pub const TRIAL_PROFILES: [&str; 4] = ["OO1", "RR0", "RN1", "NN1"];

/// The policy the predictions assume: the reference proxy's (SPEC §4.4).
pub const POLICY: Policy = Policy::Lync;

/// What one trial ended in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "kebab-case")]
pub enum TrialResult {
    /// The stream was authenticated with this method.
    Authenticated(Method),
    /// The stream was refused or given up without authentication.
    Refused,
    /// Nothing can be concluded (no connection, a timeout, our own trouble).
    Inconclusive(String),
}

/// One trial: the settings we played and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// Our settings in `<T><S><D>` form.
    pub ours: Negotiation,
    pub result: TrialResult,
}

/// What STARTTLS looked like on the probed server's first features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsOffer {
    Required,
    Optional,
    NotOffered,
}

/// Everything the live exchanges established about one role of the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleEvidence {
    pub trials: Vec<Trial>,
    /// Receiving role only: the STARTTLS offer.
    pub tls_offer: Option<TlsOffer>,
    /// The certificate the side being authenticated presented, as the oracle
    /// sees it: ours when the probed server receives, its client certificate
    /// when it initiates.
    pub cert: Option<CertVariant>,
}

/// The probed server's possible settings in one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInference {
    /// Every row consistent with the evidence, in table order.
    pub candidates: Vec<Negotiation>,
    /// One sentence on how the evidence narrowed them down.
    pub summary: String,
}

/// The prediction for one direction of one of our configurations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prediction {
    /// `None` when the candidates disagree (or none is left).
    pub outcome: Option<Outcome>,
    /// Every outcome some candidate gives.
    pub possible: Vec<Outcome>,
    pub why: String,
}

impl Prediction {
    /// `sasl-over-tls`, `tls-dialback`, `tcp-dialback`, `refused` or `unknown`.
    pub fn label(&self) -> &'static str {
        match self.outcome {
            Some(Outcome::Authenticated(m)) => m.as_str(),
            Some(Outcome::Refused) => "refused",
            None => "unknown",
        }
    }
}

/// One of our 11 valid configurations with its two predictions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigPrediction {
    pub config: Negotiation,
    /// The probed server connects to us.
    pub inbound: Prediction,
    /// We connect to the probed server.
    pub outbound: Prediction,
}

/// The whole inference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inference {
    pub receiving: RoleInference,
    pub initiating: RoleInference,
    pub configurations: Vec<ConfigPrediction>,
    /// The most secure configuration whose predictions are certain and
    /// authenticated in both directions.
    pub recommended: Option<Negotiation>,
}

/// The oracle's outcome for a receiving side `receiver` meeting an
/// initiating side `initiator` that presents `cert`.
fn outcome(receiver: Negotiation, initiator: Negotiation, cert: CertVariant) -> Outcome {
    let pairing = Pairing {
        cert,
        ..Pairing::plain(receiver, initiator, Direction::Inbound)
    };
    expect(&pairing, POLICY).outcome
}

fn tls_fits(offer: Option<TlsOffer>, n: Negotiation) -> bool {
    match offer {
        None => true,
        Some(TlsOffer::Required) => n.tls == Setting::Required,
        Some(TlsOffer::Optional) => n.tls == Setting::Optional,
        Some(TlsOffer::NotOffered) => n.tls == Setting::NotSupported,
    }
}

fn conclusive(t: &Trial) -> Option<Outcome> {
    match t.result {
        TrialResult::Authenticated(m) => Some(Outcome::Authenticated(m)),
        TrialResult::Refused => Some(Outcome::Refused),
        TrialResult::Inconclusive(_) => None,
    }
}

/// Rows the probed server may have as receiving server: its STARTTLS offer
/// fits, and each conclusive trial (we initiated with `ours`) came out as
/// the oracle says it would.
pub fn infer_receiving(e: &RoleEvidence) -> RoleInference {
    let cert = e.cert.unwrap_or(CertVariant::Valid);
    let candidates: Vec<Negotiation> = Negotiation::all()
        .filter(|&n| tls_fits(e.tls_offer, n))
        .filter(|&n| {
            e.trials.iter().all(|t| match conclusive(t) {
                Some(o) => outcome(n, t.ours, cert) == o,
                None => true,
            })
        })
        .collect();
    RoleInference {
        summary: summarize(&candidates, e),
        candidates,
    }
}

/// Rows the probed server may have as initiating server: each conclusive
/// trial (we received with `ours`) came out as the oracle says.
pub fn infer_initiating(e: &RoleEvidence) -> RoleInference {
    let cert = e.cert.unwrap_or(CertVariant::Valid);
    let candidates: Vec<Negotiation> = Negotiation::all()
        .filter(|&n| {
            e.trials.iter().all(|t| match conclusive(t) {
                Some(o) => outcome(t.ours, n, cert) == o,
                None => true,
            })
        })
        .collect();
    RoleInference {
        summary: summarize(&candidates, e),
        candidates,
    }
}

fn summarize(candidates: &[Negotiation], e: &RoleEvidence) -> String {
    let done = e.trials.iter().filter(|t| conclusive(t).is_some()).count();
    let skipped: Vec<String> = e
        .trials
        .iter()
        .filter_map(|t| match &t.result {
            TrialResult::Inconclusive(why) => Some(format!("{}: {why}", t.ours.code())),
            _ => None,
        })
        .collect();
    let mut s = if candidates.is_empty() {
        format!(
            "no row of the negotiation matrix explains the {done} conclusive trials: the server \
             behaves unlike any configuration the model knows"
        )
    } else {
        let methods: BTreeSet<String> = candidates
            .iter()
            .map(|&n| crate::partner::methods(n).to_string())
            .collect();
        format!(
            "{done} conclusive trials leave {} row(s) ({}), admitting {}",
            candidates.len(),
            candidates
                .iter()
                .map(|n| n.code())
                .collect::<Vec<_>>()
                .join(", "),
            methods.into_iter().collect::<Vec<_>>().join(" or ")
        )
    };
    if !skipped.is_empty() {
        s.push_str(&format!("; inconclusive: {}", skipped.join("; ")));
    }
    s
}

/// What every candidate gives, folded into one prediction.
fn predict(
    candidates: &[Negotiation],
    each: impl Fn(Negotiation) -> (Outcome, String),
    role: &str,
) -> Prediction {
    if candidates.is_empty() {
        return Prediction {
            outcome: None,
            possible: vec![],
            why: format!(
                "unknown: the server's behaviour as {role} fits no configuration of the model"
            ),
        };
    }
    let results: Vec<(Negotiation, Outcome, String)> = candidates
        .iter()
        .map(|&n| {
            let (o, why) = each(n);
            (n, o, why)
        })
        .collect();
    let mut possible: Vec<Outcome> = Vec::new();
    for (_, o, _) in &results {
        if !possible.contains(o) {
            possible.push(*o);
        }
    }
    if possible.len() == 1 {
        return Prediction {
            outcome: Some(possible[0]),
            possible,
            why: results[0].2.clone(),
        };
    }
    let split: Vec<String> = possible
        .iter()
        .map(|o| {
            let rows: Vec<String> = results
                .iter()
                .filter(|(_, r, _)| r == o)
                .map(|(n, _, _)| n.code())
                .collect();
            format!("{o} if it is {}", rows.join("/"))
        })
        .collect();
    Prediction {
        outcome: None,
        possible,
        why: format!(
            "unknown: the trials do not settle the server's settings as {role}: {}",
            split.join(", ")
        ),
    }
}

/// Security rank of an outcome pair, higher is better; `None` unless both
/// directions are certainly authenticated.
fn rank(c: &ConfigPrediction) -> Option<(u8, u8)> {
    let score = |p: &Prediction| match p.outcome {
        Some(Outcome::Authenticated(Method::SaslOverTls)) => Some(3),
        Some(Outcome::Authenticated(Method::TlsDialback)) => Some(2),
        Some(Outcome::Authenticated(Method::TcpDialback)) => Some(1),
        _ => None,
    };
    let (a, b) = (score(&c.inbound)?, score(&c.outbound)?);
    Some((a.min(b), a.max(b)))
}

/// How strict a configuration is, as a tie-break among equally secure ones:
/// fewer admitted methods first (less to downgrade to), then required TLS,
/// then required SASL, then dialback off (W2: inert beside required SASL).
fn strictness(n: Negotiation) -> (u8, u8, u8, bool) {
    let tls = match n.tls {
        Setting::Required => 2,
        Setting::Optional => 1,
        Setting::NotSupported => 0,
    };
    let fewer = 3 - crate::partner::methods(n).iter().count() as u8;
    let sasl = match n.sasl {
        Setting::Required => 2,
        Setting::Optional => 1,
        Setting::NotSupported => 0,
    };
    (fewer, tls, sasl, !n.dialback)
}

/// Predictions for every valid configuration of ours, and the recommendation.
/// `our_cert` is how the probed server sees our certificate (the oracle's
/// view of the initiating side's certificate when we connect out);
/// `their_cert` is its client certificate when it connects to us.
pub fn infer(receiving: &RoleEvidence, initiating: &RoleEvidence) -> Inference {
    let recv = infer_receiving(receiving);
    let init = infer_initiating(initiating);
    let our_cert = receiving.cert.unwrap_or(CertVariant::Valid);
    let their_cert = initiating.cert.unwrap_or(CertVariant::Valid);
    let configurations: Vec<ConfigPrediction> = Negotiation::all()
        .filter(|&n| negotiation_is_valid(n))
        .map(|config| {
            let inbound = predict(
                &init.candidates,
                |server| {
                    let p = Pairing {
                        cert: their_cert,
                        ..Pairing::plain(config, server, Direction::Inbound)
                    };
                    let e = expect(&p, POLICY);
                    (
                        e.outcome,
                        name_roles(&e.rationale, "our proxy", "the probed server"),
                    )
                },
                "initiating server",
            );
            let outbound = predict(
                &recv.candidates,
                |server| {
                    // We initiate: the probed server is the receiving side
                    // and judges our certificate.
                    let p = Pairing {
                        cert: our_cert,
                        ..Pairing::plain(server, config, Direction::Inbound)
                    };
                    let e = expect(&p, POLICY);
                    (
                        e.outcome,
                        name_roles(&e.rationale, "the probed server", "our proxy"),
                    )
                },
                "receiving server",
            );
            ConfigPrediction {
                config,
                inbound,
                outbound,
            }
        })
        .collect();
    let recommended = configurations
        .iter()
        .filter_map(|c| rank(c).map(|r| (r, strictness(c.config), c.config)))
        .max_by_key(|(r, s, _)| (*r, *s))
        .map(|(_, _, n)| n);
    Inference {
        receiving: recv,
        initiating: init,
        configurations,
        recommended,
    }
}

/// The oracle speaks of "the target" (the receiving side of the pairing)
/// and "the peer"; the probe's report names who is who.
fn name_roles(rationale: &str, target: &str, peer: &str) -> String {
    let cap = |s: &str| {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    // Placeholders first, so a replacement text is never replaced again.
    rationale
        .replace("The target", "\u{1}")
        .replace("the target", "\u{2}")
        .replace("The peer", "\u{3}")
        .replace("the peer", "\u{4}")
        .replace('\u{1}', &cap(target))
        .replace('\u{2}', target)
        .replace('\u{3}', &cap(peer))
        .replace('\u{4}', peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(code: &str) -> Negotiation {
        Negotiation::from_code(code).unwrap()
    }

    fn trial_profiles() -> Vec<Negotiation> {
        TRIAL_PROFILES.iter().map(|c| n(c)).collect()
    }

    fn offer(s: Negotiation) -> TlsOffer {
        match s.tls {
            Setting::Required => TlsOffer::Required,
            Setting::Optional => TlsOffer::Optional,
            Setting::NotSupported => TlsOffer::NotOffered,
        }
    }

    /// The evidence a server with settings `s` in both roles gives when
    /// every trial is conclusive and behaves like the model.
    fn evidence(s: Negotiation) -> (RoleEvidence, RoleEvidence) {
        let result = |o: Outcome| match o {
            Outcome::Authenticated(m) => TrialResult::Authenticated(m),
            Outcome::Refused => TrialResult::Refused,
        };
        let recv = RoleEvidence {
            trials: trial_profiles()
                .into_iter()
                .map(|ours| Trial {
                    ours,
                    result: result(outcome(s, ours, CertVariant::Valid)),
                })
                .collect(),
            tls_offer: Some(offer(s)),
            cert: Some(CertVariant::Valid),
        };
        let init = RoleEvidence {
            trials: trial_profiles()
                .into_iter()
                .map(|ours| Trial {
                    ours,
                    result: result(outcome(ours, s, CertVariant::Valid)),
                })
                .collect(),
            tls_offer: None,
            cert: Some(CertVariant::Valid),
        };
        (recv, init)
    }

    /// For every one of the 18 rows, full evidence makes every prediction
    /// certain and equal to what the oracle says for that row.
    #[test]
    fn full_evidence_predicts_every_row_exactly() {
        for s in Negotiation::all() {
            let (recv, init) = evidence(s);
            let inf = infer(&recv, &init);
            assert!(inf.receiving.candidates.contains(&s), "{}", s.code());
            assert!(inf.initiating.candidates.contains(&s), "{}", s.code());
            assert_eq!(inf.configurations.len(), 11);
            for c in &inf.configurations {
                let want_in = outcome(c.config, s, CertVariant::Valid);
                let want_out = outcome(s, c.config, CertVariant::Valid);
                assert_eq!(
                    c.inbound.outcome,
                    Some(want_in),
                    "server {} config {} in: {}",
                    s.code(),
                    c.config.code(),
                    c.inbound.why
                );
                assert_eq!(
                    c.outbound.outcome,
                    Some(want_out),
                    "server {} config {} out: {}",
                    s.code(),
                    c.config.code(),
                    c.outbound.why
                );
            }
        }
    }

    /// Without trials nothing is certain unless every row agrees, and the
    /// prediction says "unknown" with the outcomes that remain.
    #[test]
    fn no_evidence_is_unknown_not_guessed() {
        let inf = infer(&RoleEvidence::default(), &RoleEvidence::default());
        assert_eq!(inf.receiving.candidates.len(), 18);
        let ro1 = inf
            .configurations
            .iter()
            .find(|c| c.config == n("RO1"))
            .unwrap();
        assert_eq!(ro1.inbound.outcome, None);
        assert_eq!(ro1.inbound.label(), "unknown");
        assert!(ro1.inbound.possible.contains(&Outcome::Refused));
        assert!(
            ro1.inbound.why.starts_with("unknown"),
            "{}",
            ro1.inbound.why
        );
        assert_eq!(inf.recommended, None);
    }

    /// An inconclusive trial constrains nothing: dropping the TCP dialback
    /// trial of a TLS-optional dialback server leaves TCP dialback open.
    #[test]
    fn inconclusive_trials_leave_questions_open() {
        let s = n("ON1");
        let (mut recv, init) = evidence(s);
        for t in &mut recv.trials {
            if t.ours == n("NN1") {
                t.result = TrialResult::Inconclusive("timeout".into());
            }
        }
        let inf = infer(&recv, &init);
        let nn1 = inf
            .configurations
            .iter()
            .find(|c| c.config == n("NN1"))
            .unwrap();
        // ON1 and OO1-like rows differ only in TCP dialback here? They do not:
        // TLS optional with dialback always admits TCP dialback, so the
        // remaining rows agree and the prediction stays certain.
        assert!(inf.receiving.summary.contains("inconclusive: NN1: timeout"));
        assert_eq!(
            nn1.outbound.outcome,
            Some(Outcome::Authenticated(Method::TcpDialback))
        );
        // Without the STARTTLS offer either, TLS required vs optional is open.
        recv.tls_offer = None;
        let inf = infer(&recv, &init);
        let nn1 = inf
            .configurations
            .iter()
            .find(|c| c.config == n("NN1"))
            .unwrap();
        assert_eq!(nn1.outbound.outcome, None, "{}", nn1.outbound.why);
        assert!(
            nn1.outbound.why.contains("refused if it is"),
            "{}",
            nn1.outbound.why
        );
    }

    /// A server that rejects our certificate: SASL EXTERNAL is ruled out and
    /// the predictions fall back to dialback where the server admits it.
    #[test]
    fn rejected_certificate_rules_out_sasl_outbound() {
        let s = n("OO1");
        let (mut recv, init) = evidence(s);
        recv.cert = Some(CertVariant::UntrustedCa);
        for t in &mut recv.trials {
            t.result = match outcome(s, t.ours, CertVariant::UntrustedCa) {
                Outcome::Authenticated(m) => TrialResult::Authenticated(m),
                Outcome::Refused => TrialResult::Refused,
            };
        }
        let inf = infer(&recv, &init);
        let get = |code: &str| {
            inf.configurations
                .iter()
                .find(|c| c.config == n(code))
                .unwrap()
                .clone()
        };
        assert_eq!(get("RR0").outbound.outcome, Some(Outcome::Refused));
        assert_eq!(
            get("RO1").outbound.outcome,
            Some(Outcome::Authenticated(Method::TlsDialback))
        );
        assert_eq!(
            get("RO1").inbound.outcome,
            Some(Outcome::Authenticated(Method::SaslOverTls))
        );
    }

    /// A server that fits no row (it accepts TCP dialback although it
    /// requires TLS) gets "unknown" everywhere, with that reason.
    #[test]
    fn impossible_behaviour_is_reported_not_forced() {
        let (mut recv, init) = evidence(n("RN1"));
        for t in &mut recv.trials {
            if t.ours == n("NN1") {
                t.result = TrialResult::Authenticated(Method::TcpDialback);
            }
        }
        let inf = infer(&recv, &init);
        assert!(inf.receiving.candidates.is_empty());
        assert!(inf.receiving.summary.contains("no row"));
        assert!(
            inf.configurations
                .iter()
                .all(|c| c.outbound.outcome.is_none()
                    && c.outbound.why.contains("fits no configuration"))
        );
        assert_eq!(inf.recommended, None);
    }

    /// The recommendation is the most secure configuration that works both
    /// ways: SASL both ways with SASL-capable servers, the strictest such.
    #[test]
    fn recommends_the_most_secure_working_configuration() {
        let cases = [
            ("RR1", Some("RR0")),
            ("RO1", Some("RR0")),
            ("OO1", Some("RR0")),
            ("RN1", Some("RN1")),
            ("ON1", Some("RN1")),
            ("NN1", Some("NN1")),
            ("NR1", Some("NN1")),
            ("NN0", None),
        ];
        for (server, want) in cases {
            let (recv, init) = evidence(n(server));
            let inf = infer(&recv, &init);
            assert_eq!(
                inf.recommended.map(|c| c.code()),
                want.map(str::to_owned),
                "server {server}"
            );
        }
    }

    #[test]
    fn outbound_rationale_names_the_roles() {
        let (recv, init) = evidence(n("RN1"));
        let inf = infer(&recv, &init);
        let c = inf
            .configurations
            .iter()
            .find(|c| c.config == n("NN1"))
            .unwrap();
        assert_eq!(c.outbound.outcome, Some(Outcome::Refused));
        assert!(!c.outbound.why.contains("target"), "{}", c.outbound.why);
        assert!(
            c.outbound
                .why
                .starts_with("The probed server requires TLS and our proxy"),
            "{}",
            c.outbound.why
        );
        assert!(
            c.inbound.why.contains("our proxy does not support it"),
            "{}",
            c.inbound.why
        );
    }
}
