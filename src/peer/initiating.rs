//! The initiating peer: connects to the target as the originating server and
//! authenticates the way a server with the peer's configuration would
//! (SPEC §4.2, applied to the peer): STARTTLS whenever offered and allowed,
//! give up when TLS is required and not offered, then the best admitted
//! method the target offers — SASL EXTERNAL > TLS Dialback > TCP Dialback —
//! with the XEP-0178 fallback from a failed EXTERNAL to dialback.

use std::net::SocketAddr;
use std::time::Duration;

use crate::dialback::{self, DbElement, DbKind};
use crate::features::Features;
use crate::partner::{Method, Setting, methods};
use crate::sasl;
use crate::starttls;
use crate::stream::{Dir, StreamError, XmppStream};
use crate::tls;
use crate::xml::Element;

use super::observe::{
    CertCheck, DialbackOutcome, Failed, FeaturesSeen, GiveUp, HeaderSeen, Initiated,
    InitiatorReport, SaslOutcome, Stage, StepFailure,
};
use super::profile::{PeerEnv, PeerProfile};
use super::wire;

/// Connects to `target_addr` as `profile.domain` and authenticates toward
/// `target_domain`. Never hangs (every step is bounded by `env.step`, the
/// dialback verdict by `env.dialback_wait`) and never panics on what the
/// target sends: everything ends up in the report.
pub async fn initiate(
    env: &PeerEnv,
    profile: &PeerProfile,
    target_addr: SocketAddr,
    target_domain: &str,
) -> Initiated {
    let mut report = InitiatorReport {
        peer_domain: profile.domain.clone(),
        target_domain: target_domain.to_owned(),
        stream_no: env.streams.next(),
        ..InitiatorReport::default()
    };
    let connect = XmppStream::connect(
        target_addr,
        env.limits,
        env.transcript.clone(),
        report.stream_no,
    );
    let stream = match tokio::time::timeout(env.step, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            report.failure = Some(Failed {
                stage: Stage::Connect,
                failure: wire::send_failure(e),
            });
            return Initiated {
                report,
                stream: None,
            };
        }
        Err(_) => {
            report.failure = Some(Failed {
                stage: Stage::Connect,
                failure: StepFailure::Timeout,
            });
            return Initiated {
                report,
                stream: None,
            };
        }
    };
    report.connected = true;
    let mut run = Run {
        env,
        profile,
        target_domain,
        stream,
        report,
    };
    let authenticated = run.negotiate().await;
    let Run {
        mut stream, report, ..
    } = run;
    if authenticated {
        return Initiated {
            report,
            stream: Some(stream),
        };
    }
    // Close our side; the target may already be gone, which changes nothing.
    let _ = stream.close().await;
    Initiated {
        report,
        stream: None,
    }
}

/// Why negotiation stopped early (the report holds the details).
struct Stop;

struct Run<'a> {
    env: &'a PeerEnv,
    profile: &'a PeerProfile,
    target_domain: &'a str,
    stream: XmppStream,
    report: InitiatorReport,
}

impl Run<'_> {
    /// Runs the whole negotiation; `true` when the stream is authenticated.
    async fn negotiate(&mut self) -> bool {
        self.steps().await.is_ok()
    }

    async fn steps(&mut self) -> Result<(), Stop> {
        let clear = self.open().await?;
        self.report.features_clear = Some(FeaturesSeen::from(&clear));
        let tls_setting = self.profile.negotiation.tls;
        let features = if clear.starttls.is_some() && tls_setting != Setting::NotSupported {
            self.starttls().await?;
            let f = self.open().await?;
            self.report.features_tls = Some(FeaturesSeen::from(&f));
            f
        } else if tls_setting == Setting::Required {
            self.give_up(GiveUp::TlsNotOffered, "TLS required, STARTTLS not offered");
            return Err(Stop);
        } else {
            clear
        };
        self.authenticate(&features).await
    }

    /// Sends our header, reads the target's header and features.
    async fn open(&mut self) -> Result<Features, Stop> {
        let header = wire::s2s_header(self.profile, self.target_domain, None);
        if let Err(e) = self.stream.send_header(&header).await {
            return Err(self.fail(Stage::Header, wire::send_failure(e)));
        }
        let h = match wire::header(&mut self.stream, self.env.step).await {
            Ok(h) => h,
            Err(f) => return Err(self.fail(Stage::Header, f)),
        };
        self.report.headers.push(HeaderSeen::from(&h));
        let e = match wire::element(&mut self.stream, self.env.step).await {
            Ok(e) => e,
            Err(f) => return Err(self.fail(Stage::Features, f)),
        };
        match Features::parse(&e) {
            Some(f) => Ok(f),
            None => Err(self.fail(Stage::Features, wire::unexpected(&e))),
        }
    }

    async fn starttls(&mut self) -> Result<(), Stop> {
        if let Err(e) = self.stream.send(&starttls::starttls()).await {
            return Err(self.fail(Stage::StartTls, wire::send_failure(e)));
        }
        match wire::element(&mut self.stream, self.env.step).await {
            Ok(e) if starttls::is_proceed(&e) => {}
            Ok(e) => return Err(self.fail(Stage::StartTls, wire::unexpected(&e))),
            Err(f) => return Err(self.fail(Stage::StartTls, f)),
        }
        let (config, recorder) = match wire::client_tls(self.env, self.profile) {
            Ok(c) => c,
            Err(e) => return Err(self.fail_tls(e.to_string())),
        };
        let name = match tls::server_name(self.target_domain) {
            Ok(n) => n,
            Err(e) => return Err(self.fail_tls(e.to_string())),
        };
        let upgrade = self.stream.starttls_client(config, name);
        match tokio::time::timeout(self.env.step, upgrade).await {
            Ok(Ok(discarded)) => {
                self.report.tls = true;
                self.report.pipelined_bytes = discarded;
                self.report.tls_version = wire::tls_version(&self.stream);
                // A bad target certificate is recorded, not fatal: the peer
                // still reaches authentication, so the target's own choices
                // stay observable (SPEC §4.4 `lync` lets TLS Dialback proceed).
                let check = CertCheck::of(&recorder.finish(), self.target_domain);
                self.note(format!("target certificate: {}", check.summary));
                self.report.target_cert = Some(check);
                Ok(())
            }
            Ok(Err(e)) => Err(self.fail(Stage::TlsHandshake, wire::send_failure(e))),
            Err(_) => Err(self.fail(Stage::TlsHandshake, StepFailure::Timeout)),
        }
    }

    async fn authenticate(&mut self, features: &Features) -> Result<(), Stop> {
        let admitted = methods(self.profile.negotiation);
        let tls = self.report.tls;
        let mut sasl_failed = false;
        if tls && admitted.contains(Method::SaslOverTls) && features.offers_external() {
            if self.sasl_external().await? {
                self.report.method = Some(Method::SaslOverTls);
                return Ok(());
            }
            sasl_failed = true;
        }
        let dialback = if tls {
            Method::TlsDialback
        } else {
            Method::TcpDialback
        };
        if admitted.contains(dialback) && features.dialback {
            if self.dialback().await? {
                self.report.method = Some(dialback);
                return Ok(());
            }
            self.give_up(GiveUp::AuthenticationFailed, "dialback refused");
            return Err(Stop);
        }
        if sasl_failed {
            self.give_up(GiveUp::AuthenticationFailed, "SASL failed, no dialback");
        } else {
            self.give_up(GiveUp::NoCommonMethod, "no admitted method offered");
        }
        Err(Stop)
    }

    /// SASL EXTERNAL; `Ok(false)` on `<failure/>` (the stream stays usable).
    async fn sasl_external(&mut self) -> Result<bool, Stop> {
        let authzid = self.profile.authzid_value();
        self.report.sasl_authzid = authzid.clone();
        if let Err(e) = self
            .stream
            .send(&sasl::auth_external(authzid.as_deref()))
            .await
        {
            return Err(self.fail(Stage::Sasl, wire::send_failure(e)));
        }
        let answer = match wire::element(&mut self.stream, self.env.step).await {
            Ok(e) => e,
            Err(f) => {
                self.report.sasl = Some(SaslOutcome::NoAnswer);
                return Err(self.fail(Stage::Sasl, f));
            }
        };
        if sasl::is_success(&answer) {
            self.report.sasl = Some(SaslOutcome::Success);
            // RFC 6120 §6.4.6: the stream restarts after SASL success.
            if self.stream.restart().is_err() {
                return Err(self.fail(Stage::Sasl, StepFailure::Closed));
            }
            let f = self.open().await?;
            self.report.features_sasl = Some(FeaturesSeen::from(&f));
            return Ok(true);
        }
        match sasl::failure_condition(&answer) {
            Some(condition) => {
                self.report.sasl = Some(SaslOutcome::Failure { condition });
                Ok(false)
            }
            None => {
                self.report.sasl = Some(SaslOutcome::NoAnswer);
                Err(self.fail(Stage::Sasl, wire::unexpected(&answer)))
            }
        }
    }

    /// XEP-0220 as originating server; `Ok(false)` for `invalid`/`error`.
    async fn dialback(&mut self) -> Result<bool, Stop> {
        // XEP-0185: the key binds the receiving domain, our domain and the id
        // of the stream the target opened toward us.
        let Some(id) = self.report.headers.last().and_then(|h| h.id.clone()) else {
            return Err(self.fail(
                Stage::Dialback,
                StepFailure::Unexpected {
                    element: "stream header without id".into(),
                },
            ));
        };
        let key = self
            .env
            .secret
            .key(self.target_domain, &self.profile.domain, &id);
        let request = dialback::result_request(&self.profile.domain, self.target_domain, &key);
        if let Err(e) = self.stream.send(&request).await {
            return Err(self.fail(Stage::Dialback, wire::send_failure(e)));
        }
        let answer = match wire::element(&mut self.stream, self.env.dialback_wait).await {
            Ok(e) => e,
            Err(f) => {
                self.report.dialback = Some(DialbackOutcome::NoAnswer);
                return Err(self.fail(Stage::Dialback, f));
            }
        };
        let outcome = match DbElement::parse(&answer) {
            Some(db) if db.kind == DbKind::Result => match db.ty.as_deref() {
                Some("valid") => Some(DialbackOutcome::Valid),
                Some("invalid") => Some(DialbackOutcome::Invalid),
                Some("error") => Some(DialbackOutcome::Error {
                    condition: db.error,
                }),
                _ => None,
            },
            _ => None,
        };
        match outcome {
            Some(o) => {
                let valid = o == DialbackOutcome::Valid;
                self.report.dialback = Some(o);
                Ok(valid)
            }
            None => {
                self.report.dialback = Some(DialbackOutcome::NoAnswer);
                Err(self.fail(Stage::Dialback, wire::unexpected(&answer)))
            }
        }
    }

    fn fail(&mut self, stage: Stage, failure: StepFailure) -> Stop {
        match &failure {
            StepFailure::StreamError { condition } => {
                self.report.stream_error = Some(condition.clone());
                self.report.target_closed = true;
            }
            // A broken connection (reset, broken pipe) ended the stream too.
            StepFailure::Closed | StepFailure::Io { .. } if stage != Stage::Connect => {
                self.report.target_closed = true
            }
            _ => {}
        }
        self.note(format!("peer stops at {stage:?}: {failure:?}"));
        self.report.failure = Some(Failed { stage, failure });
        Stop
    }

    fn fail_tls(&mut self, detail: String) -> Stop {
        self.fail(Stage::TlsHandshake, StepFailure::Tls { detail })
    }

    fn give_up(&mut self, why: GiveUp, text: &str) {
        self.note(format!("peer gives up: {text}"));
        self.report.gave_up = Some(why);
    }

    fn note(&self, text: String) {
        self.stream.note(Dir::Sent, text);
    }
}

impl Initiated {
    /// Sends a stanza on the authenticated stream.
    pub async fn send_stanza(&mut self, stanza: &Element) -> Result<(), StreamError> {
        match self.stream.as_mut() {
            Some(s) => s.send(stanza).await,
            None => Err(StreamError::Closed),
        }
    }

    /// The next element the target sends on this stream, within `wait`.
    pub async fn next_element(&mut self, wait: Duration) -> Result<Element, StepFailure> {
        match self.stream.as_mut() {
            Some(s) => wire::element(s, wait).await,
            None => Err(StepFailure::Closed),
        }
    }

    /// Closes the stream (if any).
    pub async fn close(&mut self) {
        if let Some(s) = self.stream.as_mut() {
            let _ = s.close().await;
        }
    }
}
