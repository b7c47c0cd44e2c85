//! The live half of the probe: the trials against the probed server, as
//! initiating server toward `--connect` and as receiving (and
//! authoritative) server at `--listen`, reported as plain data.
//!
//! The trials use the simulated peers of [`crate::peer`], which implement
//! the protocol independently of the oracle the predictions come from.
//! Each profile of [`TRIAL_PROFILES`] is played once in each role:
//! - *receiving role of the server*: we connect with that profile; the first
//!   (everything allowed) also records the offered features and the
//!   server's certificate;
//! - *initiating role of the server*: our listener runs with that profile
//!   and an XMPP ping (XEP-0199) on a stream we keep open makes the server
//!   connect back to answer it. The listener is restarted between rounds,
//!   which ends the server's previous stream to us, so each round sees a
//!   fresh connection.

use crate::stanza::ping;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::infer::{RoleEvidence, TRIAL_PROFILES, TlsOffer, Trial, TrialResult};
use crate::oracle::CertVariant;
use crate::partner::{Method, Negotiation};
use crate::peer::{
    CertCheck, DialbackOutcome, FeaturesSeen, GiveUp, Initiated, InitiatorReport, PeerEnv,
    PeerProfile, PeerServer, SaslOutcome, ServerEvent, Stage, StepFailure, TargetInfo, initiate,
};
use crate::pki::Pki;
use crate::stream::Transcript;
use crate::tls::ChainStatus;

/// What the probe needs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The probed server's domain.
    pub domain: String,
    /// Where it listens for server-to-server streams.
    pub connect: SocketAddr,
    /// The domain we play; its DNS records must point at `listen`.
    pub ours: String,
    pub listen: SocketAddr,
    /// Our CA (and the certificate it issues for `ours`).
    pub pki: Arc<Pki>,
    /// Deadline of one protocol step.
    pub step: Duration,
    /// How long the server is given to connect back after a ping.
    pub connect_back: Duration,
}

/// Why the probe could not be carried out (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("--listen {addr}: {detail}")]
    Listen { addr: SocketAddr, detail: String },
    #[error("--connect {addr}: cannot reach {domain}: {detail}")]
    Unreachable {
        addr: SocketAddr,
        domain: String,
        detail: String,
    },
    #[error("--certs: {0}")]
    Certs(String),
}

/// A stream feature: offered, and (when tried) accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub offered: bool,
    /// `None` when not tried (not offered, or the trial was inconclusive).
    pub accepted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One trial with the server as receiving server: we connected as `ours`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivingTrial {
    /// Our settings, `<T><S><D>`.
    pub ours: String,
    pub result: TrialResult,
    pub tls: bool,
    pub sasl: Option<SaslOutcome>,
    pub dialback: Option<DialbackOutcome>,
    /// Where and why it stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// One round with the server as initiating server: it connected to us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiatingTrial {
    /// The settings our listener played, `<T><S><D>`.
    pub ours: String,
    pub result: TrialResult,
    /// It connected at all.
    pub connected: bool,
    /// It used STARTTLS (our listener offered it when `ours` allows TLS).
    pub starttls: bool,
    pub tls_version: Option<String>,
    /// Its client certificate, checked for its domain.
    pub client_cert: Option<CertCheck>,
    /// It tried SASL EXTERNAL, with this result.
    pub sasl: Option<SaslOutcome>,
    /// It asked us to verify a dialback key, with our answer.
    pub dialback: Option<DialbackOutcome>,
    /// The Server Name Indication of its TLS handshake.
    pub sni: Option<String>,
}

/// Everything the probe observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The first stream's STARTTLS offer.
    pub starttls: Option<TlsOffer>,
    pub features_clear: Option<FeaturesSeen>,
    pub features_tls: Option<FeaturesSeen>,
    pub tls_version: Option<String>,
    /// The server's certificate (chain, identities), checked for its domain.
    pub certificate: Option<CertCheck>,
    /// SASL EXTERNAL with our certificate.
    pub external: Offer,
    /// Dialback on the encrypted and on the clear-text stream.
    pub dialback_tls: Offer,
    pub dialback_tcp: Offer,
    /// `Some(false)` when the server evidently does not accept our
    /// certificate (it offered EXTERNAL and refused it).
    pub trusts_our_certificate: Option<bool>,
    /// Our trials against the server as receiving server.
    pub as_receiving: Vec<ReceivingTrial>,
    /// Its connections back to us.
    pub as_initiating: Vec<InitiatingTrial>,
    /// The Server Name Indication the server sent when it connected back
    /// over TLS, in words.
    pub sni: String,
    /// Facts worth a sentence in the report.
    pub notes: Vec<String>,
}

/// Runs every trial. Errors only when the probe itself cannot run; what the
/// server does (including refusing everything) is an observation.
pub async fn observe(setup: &Setup) -> Result<Observed, ProbeError> {
    let transcript = Transcript::new();
    let env = PeerEnv::new(setup.pki.clone(), transcript)
        .map_err(|e| ProbeError::Certs(e.to_string()))?
        .with_step(setup.step);
    let target = TargetInfo {
        addr: setup.connect,
        domain: setup.domain.clone(),
    };
    let mut observed = Observed::default();
    let everything = profile(setup, TRIAL_PROFILES[0]);

    // The server as receiving server. Our listener answers its dialback
    // verification meanwhile (as authoritative server for `ours`).
    let listener = listen(&env, setup, everything.clone(), &target).await?;
    let mut keep: Option<Initiated> = None;
    for code in TRIAL_PROFILES {
        let ours = profile(setup, code);
        let mut initiated = initiate(&env, &ours, setup.connect, &setup.domain).await;
        if !initiated.report.connected && observed.as_receiving.is_empty() {
            listener.shutdown().await;
            return Err(ProbeError::Unreachable {
                addr: setup.connect,
                domain: setup.domain.clone(),
                detail: stopped(&initiated.report).unwrap_or_else(|| "no connection".into()),
            });
        }
        if observed.as_receiving.is_empty() {
            record_first(&mut observed, &initiated.report);
        }
        let trial = receiving_trial(code, &initiated.report);
        record_offers(&mut observed, code, &initiated.report);
        observed.as_receiving.push(trial);
        // The best authenticated stream is kept to carry the pings below
        // (trials run best-first, so the first one is the best).
        if initiated.report.authenticated() && keep.is_none() {
            keep = Some(initiated);
        } else {
            initiated.close().await;
        }
    }
    listener.shutdown().await;
    judge_our_certificate(&mut observed, &setup.ours);

    // The server as initiating server.
    for (round, code) in TRIAL_PROFILES.into_iter().enumerate() {
        let trial = match keep.as_mut() {
            None => InitiatingTrial::inconclusive(
                code,
                "no stream of ours was accepted, so nothing made the server connect back",
            ),
            Some(stream) => {
                let after_refusal = observed
                    .as_initiating
                    .iter()
                    .any(|t| t.result == TrialResult::Refused);
                connect_back(&env, setup, &target, stream, code, round, after_refusal).await?
            }
        };
        observed.as_initiating.push(trial);
    }
    if let Some(mut s) = keep {
        s.close().await;
    }
    observed.sni = sni_summary(&observed.as_initiating, &setup.ours);
    Ok(observed)
}

fn profile(setup: &Setup, code: &str) -> PeerProfile {
    // TRIAL_PROFILES are valid codes; NN1 stands in should one ever not be.
    let n = Negotiation::from_code(code).unwrap_or(Negotiation::new(
        crate::partner::Setting::NotSupported,
        crate::partner::Setting::NotSupported,
        true,
    ));
    PeerProfile::new(setup.ours.clone(), n, CertVariant::Valid)
}

async fn listen(
    env: &PeerEnv,
    setup: &Setup,
    profile: PeerProfile,
    target: &TargetInfo,
) -> Result<PeerServer, ProbeError> {
    PeerServer::start(env.clone(), profile, setup.listen, target.clone())
        .await
        .map_err(|e| ProbeError::Listen {
            addr: setup.listen,
            detail: e.to_string(),
        })
}

fn stopped(r: &InitiatorReport) -> Option<String> {
    let give_up = r.gave_up.map(|g| match g {
        GiveUp::TlsNotOffered => "we require TLS and STARTTLS was not offered".to_string(),
        GiveUp::NoCommonMethod => "no method of ours was offered".to_string(),
        GiveUp::AuthenticationFailed => "every method we tried was refused".to_string(),
    });
    let failure = r.failure.as_ref().map(|f| {
        let what = match &f.failure {
            StepFailure::Timeout => "no answer in time".to_string(),
            StepFailure::Closed => "the server closed the stream".to_string(),
            StepFailure::StreamError { condition } => format!("stream error <{condition}/>"),
            StepFailure::Xml { condition, detail } => format!("bad XML ({condition}): {detail}"),
            StepFailure::Io { detail } => detail.clone(),
            StepFailure::Tls { detail } => format!("TLS: {detail}"),
            StepFailure::Unexpected { element } => format!("unexpected {element}"),
        };
        format!("{} at {:?}", what, f.stage)
    });
    match (give_up, failure) {
        (Some(g), Some(f)) => Some(format!("{g}; {f}")),
        (g, f) => g.or(f),
    }
}

/// Dialback errors that mean the server could not verify our key at all:
/// our records or listener are at fault, not the server's settings.
fn unverifiable(o: &Option<DialbackOutcome>) -> Option<String> {
    match o {
        Some(DialbackOutcome::Error { condition: Some(c) })
            if matches!(
                c.as_str(),
                "remote-server-not-found" | "remote-server-timeout" | "remote-connection-failed"
            ) =>
        {
            Some(c.clone())
        }
        _ => None,
    }
}

fn receiving_trial(code: &str, r: &InitiatorReport) -> ReceivingTrial {
    let result = if let Some(m) = r.method {
        TrialResult::Authenticated(m)
    } else if let Some(c) = unverifiable(&r.dialback) {
        TrialResult::Inconclusive(format!(
            "the server could not verify our dialback key (<{c}/>): do our domain's DNS records \
             point at --listen?"
        ))
    } else if r.dialback == Some(DialbackOutcome::NoAnswer)
        || r.failure
            .as_ref()
            .is_some_and(|f| f.failure == StepFailure::Timeout || matches!(f.stage, Stage::Connect))
    {
        TrialResult::Inconclusive(stopped(r).unwrap_or_else(|| "no answer".into()))
    } else if r.failure.as_ref().is_some_and(|f| {
        matches!(f.failure, StepFailure::Tls { .. }) || matches!(f.stage, Stage::TlsHandshake)
    }) {
        TrialResult::Inconclusive(stopped(r).unwrap_or_else(|| "TLS failed".into()))
    } else {
        TrialResult::Refused
    };
    ReceivingTrial {
        ours: code.to_string(),
        result,
        tls: r.tls,
        sasl: r.sasl.clone(),
        dialback: r.dialback.clone(),
        stopped: if r.authenticated() { None } else { stopped(r) },
    }
}

fn record_first(o: &mut Observed, r: &InitiatorReport) {
    o.features_clear = r.features_clear.clone();
    o.features_tls = r.features_tls.clone();
    o.tls_version = r.tls_version.clone();
    o.certificate = r.target_cert.clone();
    o.starttls = r.features_clear.as_ref().map(|f| match f.starttls {
        Some(true) => TlsOffer::Required,
        Some(false) => TlsOffer::Optional,
        None => TlsOffer::NotOffered,
    });
    o.external.offered = r
        .features_tls
        .as_ref()
        .is_some_and(|f| f.mechanisms.iter().any(|m| m == "EXTERNAL"));
    o.dialback_tls.offered = r.features_tls.as_ref().is_some_and(|f| f.dialback);
    o.dialback_tcp.offered = r.features_clear.as_ref().is_some_and(|f| f.dialback);
}

/// "Accepted" comes from the trial that tries exactly that method.
fn record_offers(o: &mut Observed, code: &str, r: &InitiatorReport) {
    let verdict = |r: &InitiatorReport, m: Method| match r.method {
        Some(got) if got == m => Some(true),
        _ if r.failure.is_some() && r.sasl.is_none() && r.dialback.is_none() => None,
        _ => Some(false),
    };
    match code {
        "RR0" if o.external.offered => {
            o.external.accepted = verdict(r, Method::SaslOverTls);
            if let Some(SaslOutcome::Failure { condition }) = &r.sasl {
                o.external.detail = Some(format!("<failure/> with <{condition}/>"));
            }
        }
        "RN1" if o.dialback_tls.offered => {
            o.dialback_tls.accepted = verdict(r, Method::TlsDialback);
            o.dialback_tls.detail = r.dialback.as_ref().map(dialback_text);
        }
        // Without TLS our peer tries dialback only when it is offered in
        // clear text; a TLS-requiring server that hides it is "not offered".
        "NN1" if o.dialback_tcp.offered => {
            o.dialback_tcp.accepted = verdict(r, Method::TcpDialback);
            o.dialback_tcp.detail = r.dialback.as_ref().map(dialback_text);
        }
        _ => {}
    }
}

/// The server's dialback verdict in words.
fn dialback_text(d: &DialbackOutcome) -> String {
    match d {
        DialbackOutcome::Valid => "type='valid'".into(),
        DialbackOutcome::Invalid => "type='invalid'".into(),
        DialbackOutcome::Error { condition } => format!(
            "type='error' <{}/>",
            condition.as_deref().unwrap_or("no condition")
        ),
        DialbackOutcome::NoAnswer => "no answer".into(),
    }
}

/// EXTERNAL offered and refused for a certificate our CA issued for our
/// domain: the server evidently does not trust that CA (or our name on it).
fn judge_our_certificate(o: &mut Observed, ours: &str) {
    let refused = o
        .as_receiving
        .iter()
        .any(|t| matches!(t.sasl, Some(SaslOutcome::Failure { .. })));
    let succeeded = o
        .as_receiving
        .iter()
        .any(|t| t.sasl == Some(SaslOutcome::Success));
    o.trusts_our_certificate = if succeeded {
        Some(true)
    } else if refused {
        o.notes.push(format!(
            "the server offered SASL EXTERNAL and refused our certificate for {ours}: it \
             evidently does not trust the CA of --certs (add ca.pem to its trust store)"
        ));
        Some(false)
    } else {
        None
    };
    if !o.external.offered && o.features_tls.is_some() {
        o.notes.push(format!(
            "SASL EXTERNAL was not offered on the encrypted stream although we presented a \
             certificate for {ours}: either SASL is off or the server does not trust the CA of \
             --certs; the two cannot be told apart from outside, and the predictions assume \
             the former"
        ));
    }
}

/// What the server's TLS connections to us said in SNI (the name it should
/// give is our domain, the one it connects to).
fn sni_summary(rounds: &[InitiatingTrial], ours: &str) -> String {
    let tls: Vec<&InitiatingTrial> = rounds.iter().filter(|t| t.starttls).collect();
    if tls.is_empty() {
        return "not seen: the server never connected back over TLS".into();
    }
    let names: std::collections::BTreeSet<String> = tls
        .iter()
        .map(|t| t.sni.clone().unwrap_or_else(|| "(none)".into()))
        .collect();
    let names: Vec<String> = names.into_iter().collect();
    if names.len() == 1 && names[0].eq_ignore_ascii_case(ours) {
        format!("{ours} (our domain) on every TLS connection")
    } else {
        format!("{} (expected {ours})", names.join(", "))
    }
}

impl InitiatingTrial {
    fn inconclusive(code: &str, why: &str) -> InitiatingTrial {
        InitiatingTrial {
            ours: code.to_string(),
            result: TrialResult::Inconclusive(why.to_string()),
            connected: false,
            starttls: false,
            tls_version: None,
            client_cert: None,
            sasl: None,
            dialback: None,
            sni: None,
        }
    }
}

/// One round: our listener with `code`, a ping, and what the server's
/// connection back did.
async fn connect_back(
    env: &PeerEnv,
    setup: &Setup,
    target: &TargetInfo,
    stream: &mut Initiated,
    code: &str,
    round: usize,
    after_refusal: bool,
) -> Result<InitiatingTrial, ProbeError> {
    let server = listen(env, setup, profile(setup, code), target).await?;
    let id = format!("s2spec-probe-{round}");
    if stream
        .send_stanza(&ping(&setup.ours, &setup.domain, &id))
        .await
        .is_err()
    {
        server.shutdown().await;
        return Ok(InitiatingTrial::inconclusive(
            code,
            "our stream to the server was closed before the ping",
        ));
    }
    // Done when a stream authenticated, or when every stream it opened has
    // closed without authentication (a refusal, either side's).
    let settled = |events: &[ServerEvent]| {
        let opened: Vec<u32> = events
            .iter()
            .filter(|e| matches!(e, ServerEvent::Header { .. }))
            .map(ServerEvent::stream)
            .collect();
        events
            .iter()
            .any(|e| matches!(e, ServerEvent::Authenticated { .. }))
            || (!opened.is_empty()
                && opened.iter().all(|s| {
                    events
                        .iter()
                        .any(|e| matches!(e, ServerEvent::Closed { stream, .. } if stream == s))
                }))
    };
    let until = tokio::time::Instant::now() + setup.connect_back;
    while tokio::time::Instant::now() < until && !settled(&server.events()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Answers to the ping arrive on the server's stream; read and drop the
    // ones on ours (an iq error is not expected but harmless).
    let _ = stream.next_element(Duration::from_millis(10)).await;
    let events = server.events();
    server.shutdown().await;
    // The server notices the closed connection before the next round pings.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(initiating_trial(
        code,
        &events,
        setup.connect_back,
        after_refusal,
    ))
}

/// `after_refusal`: an earlier round was refused, which may make the server
/// wait before it tries our domain again.
fn initiating_trial(
    code: &str,
    events: &[ServerEvent],
    wait: Duration,
    after_refusal: bool,
) -> InitiatingTrial {
    let mut t = InitiatingTrial::inconclusive(code, "");
    let mut method = None;
    let mut refused = false;
    for e in events {
        match e {
            ServerEvent::Header { tls, .. } => {
                t.connected = true;
                t.starttls |= *tls;
            }
            ServerEvent::Tls {
                version,
                client_cert,
                sni,
                ..
            } => {
                t.tls_version = version.clone();
                t.sni = t.sni.take().or_else(|| sni.clone());
                t.client_cert.get_or_insert_with(|| client_cert.clone());
            }
            ServerEvent::Sasl { outcome, .. } => t.sasl = Some(outcome.clone()),
            ServerEvent::Dialback { handled, .. } => t.dialback = Some(handled.answer.clone()),
            ServerEvent::Authenticated { method: m, .. } => {
                method.get_or_insert(*m);
            }
            ServerEvent::Refused { .. } | ServerEvent::Closed { .. } => refused = true,
            _ => {}
        }
    }
    t.result = match (method, t.connected) {
        (Some(m), _) => TrialResult::Authenticated(m),
        (None, true) if refused || !t.connected => TrialResult::Refused,
        (None, true) => TrialResult::Inconclusive(format!(
            "the server connected but did not authenticate within {wait:?}"
        )),
        (None, false) if after_refusal => TrialResult::Inconclusive(format!(
            "the server did not connect back within {wait:?}; after the refusal of an earlier \
             round it may be waiting before it retries our domain (ejabberd's s2s retry delay)"
        )),
        (None, false) => TrialResult::Inconclusive(format!(
            "the server did not connect back within {wait:?} (do our domain's DNS records \
             point at --listen?)"
        )),
    };
    t
}

impl Observed {
    /// The evidence the inference works from.
    pub fn evidence(&self) -> (RoleEvidence, RoleEvidence) {
        let trial = |ours: &str, result: &TrialResult| {
            Negotiation::from_code(ours).map(|n| Trial {
                ours: n,
                result: result.clone(),
            })
        };
        let receiving = RoleEvidence {
            trials: self
                .as_receiving
                .iter()
                .filter_map(|t| trial(&t.ours, &t.result))
                .collect(),
            tls_offer: self.starttls,
            cert: Some(if self.trusts_our_certificate == Some(false) {
                CertVariant::UntrustedCa
            } else {
                CertVariant::Valid
            }),
        };
        let client_cert = self
            .as_initiating
            .iter()
            .find_map(|t| t.client_cert.as_ref())
            .map(cert_variant);
        let initiating = RoleEvidence {
            trials: self
                .as_initiating
                .iter()
                .filter_map(|t| trial(&t.ours, &t.result))
                .collect(),
            tls_offer: None,
            cert: client_cert,
        };
        (receiving, initiating)
    }
}

/// The oracle's view of a certificate we checked: valid, or the variant
/// whose defect it has (the first that applies).
pub fn cert_variant(c: &CertCheck) -> CertVariant {
    if !c.presented {
        return CertVariant::NoClientCert;
    }
    match &c.chain {
        ChainStatus::Valid if c.name_ok => CertVariant::Valid,
        ChainStatus::Valid => CertVariant::WrongName,
        ChainStatus::Expired => CertVariant::Expired,
        ChainStatus::NotYetValid => CertVariant::NotYetValid,
        _ => CertVariant::UntrustedCa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::HeaderSeen;

    fn header(stream: u32, tls: bool) -> ServerEvent {
        ServerEvent::Header {
            stream,
            tls,
            header: HeaderSeen::default(),
        }
    }

    #[test]
    fn a_connection_that_authenticates_is_that_method() {
        let events = vec![
            header(1, false),
            header(1, true),
            ServerEvent::Authenticated {
                stream: 1,
                domain: "x.test".into(),
                method: Method::TlsDialback,
            },
        ];
        let t = initiating_trial("RN1", &events, Duration::from_secs(1), false);
        assert_eq!(t.result, TrialResult::Authenticated(Method::TlsDialback));
        assert!(t.starttls && t.connected);
    }

    #[test]
    fn a_connection_closed_unauthenticated_is_a_refusal() {
        let events = vec![
            header(1, false),
            ServerEvent::Closed {
                stream: 1,
                failure: None,
            },
        ];
        let t = initiating_trial("NN1", &events, Duration::from_secs(1), false);
        assert_eq!(t.result, TrialResult::Refused);
    }

    #[test]
    fn no_connection_is_inconclusive_and_says_why() {
        let t = initiating_trial("NN1", &[], Duration::from_secs(1), false);
        match t.result {
            TrialResult::Inconclusive(why) => assert!(why.contains("--listen"), "{why}"),
            other => panic!("{other:?}"),
        }
        let t = initiating_trial("NN1", &[], Duration::from_secs(1), true);
        match t.result {
            TrialResult::Inconclusive(why) => assert!(why.contains("retr"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dialback_key_the_server_cannot_verify_is_inconclusive() {
        let r = InitiatorReport {
            connected: true,
            dialback: Some(DialbackOutcome::Error {
                condition: Some("remote-server-not-found".into()),
            }),
            gave_up: Some(GiveUp::AuthenticationFailed),
            ..InitiatorReport::default()
        };
        let t = receiving_trial("NN1", &r);
        assert!(matches!(t.result, TrialResult::Inconclusive(_)), "{t:?}");
        let r = InitiatorReport {
            dialback: Some(DialbackOutcome::Invalid),
            ..r
        };
        assert_eq!(receiving_trial("NN1", &r).result, TrialResult::Refused);
    }

    #[test]
    fn certificate_verdicts_map_to_variants() {
        let base = CertCheck {
            domain: "a.test".into(),
            presented: true,
            chain: ChainStatus::Valid,
            name_ok: true,
            matched: None,
            ok: true,
            summary: String::new(),
            identities: vec![],
            chain_len: 1,
        };
        assert_eq!(cert_variant(&base), CertVariant::Valid);
        let wrong = CertCheck {
            name_ok: false,
            ..base.clone()
        };
        assert_eq!(cert_variant(&wrong), CertVariant::WrongName);
        let unknown = CertCheck {
            chain: ChainStatus::UnknownIssuer,
            ..base.clone()
        };
        assert_eq!(cert_variant(&unknown), CertVariant::UntrustedCa);
        let none = CertCheck {
            presented: false,
            ..base
        };
        assert_eq!(cert_variant(&none), CertVariant::NoClientCert);
    }
}
