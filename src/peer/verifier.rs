//! The receiving peer's round trip to the target's authoritative server
//! (XEP-0220 §2.1.2): a fresh stream to the target, STARTTLS when offered and
//! allowed by the peer, no authentication, one `db:verify`.

use crate::dialback::{self, DbElement, DbKind};
use crate::features::Features;
use crate::partner::Setting;
use crate::starttls;
use crate::stream::{Dir, XmppStream};
use crate::tls;

use super::observe::{DialbackOutcome, Failed, Stage, StepFailure};
use super::profile::{PeerEnv, PeerProfile};
use super::receiving::TargetInfo;
use super::wire;

/// What asking the authoritative server gave.
pub(crate) struct Verified {
    pub outcome: DialbackOutcome,
    pub failure: Option<Failed>,
}

/// Asks `target` whether `key` is valid for (`originating` → us, `stream_id`).
pub(crate) async fn verify_back(
    env: &PeerEnv,
    profile: &PeerProfile,
    target: &TargetInfo,
    originating: &str,
    stream_id: &str,
    key: &str,
) -> Verified {
    let no = env.streams.next();
    let connect = XmppStream::connect(target.addr, env.limits, env.transcript.clone(), no);
    let mut stream = match tokio::time::timeout(env.step, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return failed(Stage::Connect, wire::send_failure(e)),
        Err(_) => return failed(Stage::Connect, StepFailure::Timeout),
    };
    stream.note(
        Dir::Sent,
        format!("dialback verification for {originating} (stream {stream_id})"),
    );
    // `no-client-cert` describes the peer's receiving side (it requests no
    // client certificate); its own verification stream presents the valid
    // one, as a real server would, so a target that requires certificates
    // on every stream can still answer it.
    let presenting;
    let profile = if profile.cert == crate::pki::CertVariant::NoClientCert {
        presenting = PeerProfile {
            cert: crate::pki::CertVariant::Valid,
            ..profile.clone()
        };
        &presenting
    } else {
        profile
    };
    let result = ask(env, profile, &mut stream, originating, stream_id, key).await;
    let _ = stream.close().await;
    match result {
        Ok(outcome) => Verified {
            outcome,
            failure: None,
        },
        Err(f) => Verified {
            outcome: DialbackOutcome::NoAnswer,
            failure: Some(f),
        },
    }
}

fn failed(stage: Stage, failure: StepFailure) -> Verified {
    Verified {
        outcome: DialbackOutcome::NoAnswer,
        failure: Some(Failed { stage, failure }),
    }
}

async fn ask(
    env: &PeerEnv,
    profile: &PeerProfile,
    stream: &mut XmppStream,
    originating: &str,
    stream_id: &str,
    key: &str,
) -> Result<DialbackOutcome, Failed> {
    let at = |stage: Stage| move |failure: StepFailure| Failed { stage, failure };
    let features = open(env, profile, stream, originating).await?;
    if features.starttls.is_some() && profile.negotiation.tls != Setting::NotSupported {
        stream
            .send(&starttls::starttls())
            .await
            .map_err(|e| at(Stage::StartTls)(wire::send_failure(e)))?;
        let e = wire::element(stream, env.step)
            .await
            .map_err(at(Stage::StartTls))?;
        if !starttls::is_proceed(&e) {
            return Err(at(Stage::StartTls)(wire::unexpected(&e)));
        }
        let tls_err = |e: String| at(Stage::TlsHandshake)(StepFailure::Tls { detail: e });
        let (config, _recorder) =
            wire::client_tls(env, profile).map_err(|e| tls_err(e.to_string()))?;
        let name = tls::server_name(originating).map_err(|e| tls_err(e.to_string()))?;
        match tokio::time::timeout(env.step, stream.starttls_client(config, name)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(at(Stage::TlsHandshake)(wire::send_failure(e))),
            Err(_) => return Err(at(Stage::TlsHandshake)(StepFailure::Timeout)),
        }
        open(env, profile, stream, originating).await?;
    } else if profile.negotiation.tls == Setting::Required {
        // The peer's own rule: nothing in clear text toward a partner when TLS is required.
        return Err(at(Stage::StartTls)(StepFailure::Unexpected {
            element: "no STARTTLS offered on the verification stream".into(),
        }));
    }
    let request = dialback::verify_request(&profile.domain, originating, stream_id, key);
    stream
        .send(&request)
        .await
        .map_err(|e| at(Stage::Verify)(wire::send_failure(e)))?;
    let answer = wire::element(stream, env.step)
        .await
        .map_err(at(Stage::Verify))?;
    match DbElement::parse(&answer) {
        Some(db) if db.kind == DbKind::Verify => match db.ty.as_deref() {
            Some("valid") => Ok(DialbackOutcome::Valid),
            Some("invalid") => Ok(DialbackOutcome::Invalid),
            Some("error") => Ok(DialbackOutcome::Error {
                condition: db.error,
            }),
            _ => Err(at(Stage::Verify)(wire::unexpected(&answer))),
        },
        _ => Err(at(Stage::Verify)(wire::unexpected(&answer))),
    }
}

async fn open(
    env: &PeerEnv,
    profile: &PeerProfile,
    stream: &mut XmppStream,
    to: &str,
) -> Result<Features, Failed> {
    let at = |stage: Stage| move |failure: StepFailure| Failed { stage, failure };
    stream
        .send_header(&wire::s2s_header(profile, to, None))
        .await
        .map_err(|e| at(Stage::Header)(wire::send_failure(e)))?;
    wire::header(stream, env.step)
        .await
        .map_err(at(Stage::Header))?;
    let e = wire::element(stream, env.step)
        .await
        .map_err(at(Stage::Features))?;
    Features::parse(&e).ok_or_else(|| at(Stage::Features)(wire::unexpected(&e)))
}
