//! One inbound stream of a peer server, played as a receiving server with the
//! peer's configuration (SPEC §4.1 applied to the peer) and as the peer's
//! authoritative server (XEP-0220 §2.2: `db:verify` is answered on any stream).

use std::sync::Arc;

use tokio::net::TcpStream;

use crate::dialback::{self, DbElement, DbKind};
use crate::features::Features;
use crate::partner::{Method, Setting, methods};
use crate::sasl;
use crate::stanza;
use crate::starttls;
use crate::stream::{Dir, XmppStream};
use crate::tls::Verification;
use crate::xml::Element;

use super::observe::{
    CertCheck, DialbackHandled, DialbackOutcome, ElementSeen, HeaderSeen, SaslOutcome, ServerEvent,
    StepFailure, ViolationKind,
};
use super::profile::VerifyMode;
use super::receiving::Ctx;
use super::verifier::verify_back;
use super::wire;

/// Serves one accepted connection until it ends.
pub(crate) async fn serve(ctx: Arc<Ctx>, tcp: TcpStream) {
    let no = ctx.env.streams.next();
    let peer = tcp.peer_addr().ok();
    // This is a STARTTLS port. A target that takes it for a direct-TLS port
    // (XEP-0368) opens with a TLS handshake record (0x16): record what its
    // ClientHello says and close, as a plaintext XMPP port would.
    let mut first = [0u8; 1];
    if let Ok(Ok(1)) = tokio::time::timeout(ctx.env.step, tcp.peek(&mut first)).await
        && first[0] == TLS_HANDSHAKE_RECORD
    {
        direct_tls_attempt(&ctx, tcp, no, peer).await;
        return;
    }
    let stream = XmppStream::plain(tcp, ctx.env.limits, ctx.env.transcript.clone(), no);
    if let Some(peer) = peer {
        stream.note(Dir::Received, format!("accepted connection from {peer}"));
    }
    let mut conn = Inbound {
        ctx,
        stream,
        no,
        from: None,
        id: String::new(),
        client_cert: None,
        authenticated: Vec::new(),
    };
    let failure = conn.run().await.err();
    if let Some(StepFailure::Xml { condition, .. }) = &failure {
        // RFC 6120 §4.9: say why before closing.
        let _ = conn.stream.send_stream_error(condition, None).await;
    }
    let _ = conn.stream.close().await;
    conn.log(ServerEvent::Closed {
        stream: no,
        failure: failure.filter(|f| *f != StepFailure::Closed),
    });
}

/// The content type of a TLS handshake record (RFC 8446 §5.1).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Reads the ClientHello of a direct-TLS attempt on this STARTTLS port,
/// logs its SNI and ALPN, and drops the connection.
async fn direct_tls_attempt(
    ctx: &Arc<Ctx>,
    tcp: TcpStream,
    no: u32,
    peer: Option<std::net::SocketAddr>,
) {
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let (sni, alpn) = match tokio::time::timeout(ctx.env.step, acceptor).await {
        Ok(Ok(start)) => {
            let hello = start.client_hello();
            let alpn: Vec<String> = hello
                .alpn()
                .map(|protocols| {
                    protocols
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect()
                })
                .unwrap_or_default();
            (hello.server_name().map(str::to_owned), alpn)
        }
        // Not a readable ClientHello: nothing more to say about it.
        _ => (None, Vec::new()),
    };
    ctx.env.transcript.record(
        no,
        Dir::Received,
        false,
        crate::stream::EntryKind::Note,
        format!(
            "TLS ClientHello on a STARTTLS port{} (SNI {}, ALPN {}): closed",
            peer.map(|p| format!(" from {p}")).unwrap_or_default(),
            sni.as_deref().unwrap_or("none"),
            if alpn.is_empty() {
                "none".to_string()
            } else {
                alpn.join(",")
            }
        ),
    );
    let log = &ctx.log;
    log.push(ServerEvent::DirectTls {
        stream: no,
        sni,
        alpn,
    });
    log.push(ServerEvent::Closed {
        stream: no,
        failure: None,
    });
}

/// What the loop does after handling one element.
enum Next {
    /// Keep reading elements on this stream.
    Continue,
    /// A new stream header follows (after TLS or SASL success).
    Restart,
    /// The peer closed the stream (a refusal was already sent).
    Stop,
}

struct Inbound {
    ctx: Arc<Ctx>,
    stream: XmppStream,
    no: u32,
    /// `from` of the current stream header (the domain the target claims).
    from: Option<String>,
    /// The id we gave the current stream (dialback keys are bound to it).
    id: String,
    /// What the client-certificate verifier recorded at the TLS handshake.
    client_cert: Option<Verification>,
    /// Domains authenticated on this connection, with the method used.
    authenticated: Vec<(String, Method)>,
}

impl Inbound {
    /// `Ok` when the target closed the stream, `Err` when the peer stopped it.
    async fn run(&mut self) -> Result<(), StepFailure> {
        loop {
            let header = match wire::header(&mut self.stream, self.ctx.env.step).await {
                Ok(h) => h,
                Err(StepFailure::Closed) => return Ok(()),
                Err(f) => return Err(f),
            };
            self.log(ServerEvent::Header {
                stream: self.no,
                tls: self.stream.is_tls(),
                header: HeaderSeen::from(&header),
            });
            let ours = &self.ctx.profile.domain;
            self.id = wire::stream_id()?;
            let mut reply = wire::s2s_header(&self.ctx.profile, "", Some(self.id.clone()));
            // RFC 6120 §4.7.2: `to` mirrors the initiator's `from`, omitted without one.
            reply.to = header.from.clone();
            self.stream
                .send_header(&reply)
                .await
                .map_err(wire::send_failure)?;
            if !header
                .to
                .as_deref()
                .is_some_and(|to| to.eq_ignore_ascii_case(ours))
            {
                // RFC 6120 §4.9.3.6: we do not serve the requested domain.
                return self.refuse("host-unknown").await;
            }
            self.from = header.from.clone();
            let features = self.features();
            self.stream
                .send(&features.to_element())
                .await
                .map_err(wire::send_failure)?;
            loop {
                let wait = self.ctx.env.idle;
                let e = match wire::element(&mut self.stream, wait).await {
                    Ok(e) => e,
                    Err(StepFailure::Closed) => return Ok(()),
                    Err(f) => return Err(f),
                };
                match self.handle(&features, e).await? {
                    Next::Continue => {}
                    Next::Restart => break,
                    Next::Stop => return Ok(()),
                }
            }
        }
    }

    /// The features of the current stream state (SPEC §4.1 for the peer's
    /// own configuration).
    fn features(&self) -> Features {
        let n = self.ctx.profile.negotiation;
        let admitted = methods(n);
        let tls = self.stream.is_tls();
        let fresh = self.authenticated.is_empty();
        let mut f = Features {
            starttls: (!tls && n.tls != Setting::NotSupported)
                .then_some(n.tls == Setting::Required),
            ..Features::default()
        };
        if tls && fresh && admitted.contains(Method::SaslOverTls) && self.cert_ok() {
            f.mechanisms.push(sasl::EXTERNAL.into());
        }
        f.dialback = fresh && admitted.contains(dialback_method(tls));
        f
    }

    /// The target's certificate authenticates the stream's `from` (XEP-0178).
    fn cert_ok(&self) -> bool {
        match (&self.client_cert, &self.from) {
            (Some(v), Some(from)) => CertCheck::of(v, from).ok,
            _ => false,
        }
    }

    async fn handle(&mut self, offered: &Features, e: Element) -> Result<Next, StepFailure> {
        if starttls::is_starttls(&e) {
            return self.starttls(offered, &e).await;
        }
        if let Some(auth) = sasl::parse_auth(&e) {
            return self.sasl(offered, &e, auth).await;
        }
        if let Some(db) = DbElement::parse(&e) {
            return match (db.kind, db.ty.is_none()) {
                (DbKind::Result, true) => self.dialback_result(offered, &e, db).await,
                (DbKind::Verify, true) => self.dialback_verify(db).await,
                _ => {
                    self.violation(ViolationKind::Unexpected, Some(&e));
                    Ok(Next::Continue)
                }
            };
        }
        if stanza::is_stanza(&e) {
            return self.stanza(e).await;
        }
        self.violation(ViolationKind::Unexpected, Some(&e));
        Ok(Next::Continue)
    }

    async fn starttls(&mut self, offered: &Features, e: &Element) -> Result<Next, StepFailure> {
        if offered.starttls.is_none() || self.stream.is_tls() {
            self.violation(ViolationKind::StartTlsNotOffered, Some(e));
            // RFC 6120 §5.4.2.2: <failure/>, then close.
            let _ = self.stream.send(&starttls::failure()).await;
            return Ok(Next::Stop);
        }
        let (config, recorder) =
            wire::server_tls(&self.ctx.env, &self.ctx.profile).map_err(|e| StepFailure::Tls {
                detail: e.to_string(),
            })?;
        self.stream
            .send(&starttls::proceed())
            .await
            .map_err(wire::send_failure)?;
        let pipelined = match tokio::time::timeout(
            self.ctx.env.step,
            self.stream.starttls_server(config),
        )
        .await
        {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(wire::send_failure(e)),
            Err(_) => return Err(StepFailure::Timeout),
        };
        let verification = recorder.map_or_else(Verification::absent, |r| r.finish());
        let domain = self.from.clone().unwrap_or_default();
        self.log(ServerEvent::Tls {
            stream: self.no,
            version: wire::tls_version(&self.stream),
            client_cert: CertCheck::of(&verification, &domain),
            pipelined_bytes: pipelined,
            sni: self.stream.tls_info().and_then(|t| t.sni.clone()),
            cipher_suite: self
                .stream
                .tls_info()
                .and_then(|t| t.cipher_suite)
                .map(|c| format!("{c:?}")),
        });
        self.client_cert = Some(verification);
        Ok(Next::Restart)
    }

    async fn sasl(
        &mut self,
        offered: &Features,
        e: &Element,
        auth: sasl::Auth,
    ) -> Result<Next, StepFailure> {
        if auth.mechanism != sasl::EXTERNAL || !offered.offers_external() {
            self.violation(ViolationKind::SaslNotOffered, Some(e));
            return self.sasl_failure(None, "invalid-mechanism").await;
        }
        let from = self.from.clone().unwrap_or_default();
        let authzid = match auth.authzid {
            Ok(a) => a,
            Err(_) => return self.sasl_failure(None, "incorrect-encoding").await,
        };
        // SPEC §4.1: `=` or the initiating domain itself; anything else fails.
        if authzid
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case(&from))
        {
            return self.sasl_failure(authzid, "invalid-authzid").await;
        }
        // Events are logged before the answer goes out, so whoever reads the
        // answer finds the event already there.
        self.log(ServerEvent::Sasl {
            stream: self.no,
            authzid,
            outcome: SaslOutcome::Success,
        });
        self.authenticate(from, Method::SaslOverTls);
        self.stream
            .send(&sasl::success())
            .await
            .map_err(wire::send_failure)?;
        // RFC 6120 §6.4.6: a new stream follows on the same connection.
        self.stream.restart().map_err(|_| StepFailure::Closed)?;
        Ok(Next::Restart)
    }

    async fn sasl_failure(
        &mut self,
        authzid: Option<String>,
        condition: &str,
    ) -> Result<Next, StepFailure> {
        self.log(ServerEvent::Sasl {
            stream: self.no,
            authzid,
            outcome: SaslOutcome::Failure {
                condition: condition.to_owned(),
            },
        });
        self.stream
            .send(&sasl::failure(condition))
            .await
            .map_err(wire::send_failure)?;
        // The stream stays open: the initiator may fall back to dialback (XEP-0178 §3).
        Ok(Next::Continue)
    }

    /// `db:result` as receiving server (XEP-0220 §2.1).
    async fn dialback_result(
        &mut self,
        offered: &Features,
        e: &Element,
        db: DbElement,
    ) -> Result<Next, StepFailure> {
        let ours = self.ctx.profile.domain.clone();
        let tls = self.stream.is_tls();
        let refuse = |condition: &str| DialbackHandled {
            from: db.from.clone(),
            to: db.to.clone(),
            verify: DialbackOutcome::NoAnswer,
            verify_failure: None,
            answer: DialbackOutcome::Error {
                condition: Some(condition.to_owned()),
            },
        };
        let handled = if !offered.dialback {
            let profile = &self.ctx.profile;
            if profile.advertises_dialback() {
                // The header declared dialback support (XEP-0220 §2.4.1), so
                // the attempt is legitimate; this stream state just does not
                // admit it. XEP-0220 §2.5 names the error for "TLS before
                // dialback" policies.
                if !tls && profile.negotiation.tls == Setting::Required {
                    refuse("policy-violation")
                } else {
                    refuse("not-authorized")
                }
            } else {
                // SPEC §4.7: neither the header nor the features advertised
                // dialback, so the target used a method the peer never offered.
                // A server without dialback does not speak its namespace: it
                // refuses the element like any unsupported first-level child
                // (RFC 6120 §4.9.3.24), and may not answer with `db:` elements
                // it never declared (XEP-0220 §2).
                self.violation(ViolationKind::DialbackNotOffered, Some(e));
                self.log(ServerEvent::Dialback {
                    stream: self.no,
                    tls,
                    handled: refuse("unsupported-stanza-type"),
                });
                self.refuse("unsupported-stanza-type").await?;
                return Ok(Next::Stop);
            }
        } else if !db.to.eq_ignore_ascii_case(&ours) {
            refuse("item-not-found")
        } else {
            let v = verify_back(
                &self.ctx.env,
                &self.ctx.profile,
                &self.ctx.target,
                &db.from,
                &self.id,
                &db.key,
            )
            .await;
            let answer = match &v.outcome {
                DialbackOutcome::Valid => DialbackOutcome::Valid,
                DialbackOutcome::Invalid => DialbackOutcome::Invalid,
                DialbackOutcome::Error { .. } => DialbackOutcome::Error {
                    condition: Some("remote-connection-failed".into()),
                },
                DialbackOutcome::NoAnswer => DialbackOutcome::Error {
                    condition: Some(
                        match v.failure.as_ref().map(|f| &f.failure) {
                            Some(StepFailure::Timeout) => "remote-server-timeout",
                            _ => "remote-connection-failed",
                        }
                        .into(),
                    ),
                },
            };
            DialbackHandled {
                from: db.from.clone(),
                to: db.to.clone(),
                verify: v.outcome,
                verify_failure: v.failure,
                answer,
            }
        };
        let reply = answer_element(&handled.answer, &db.to, &db.from);
        let valid = handled.answer == DialbackOutcome::Valid;
        self.log(ServerEvent::Dialback {
            stream: self.no,
            tls,
            handled,
        });
        if valid {
            self.authenticate(db.from.to_ascii_lowercase(), dialback_method(tls));
        }
        self.stream.send(&reply).await.map_err(wire::send_failure)?;
        Ok(Next::Continue)
    }

    /// `db:verify` as authoritative server (XEP-0220 §2.2).
    async fn dialback_verify(&mut self, db: DbElement) -> Result<Next, StepFailure> {
        let p = &self.ctx.profile;
        if !p.advertises_dialback() {
            // SPEC §4.7: a peer without dialback does not speak its namespace,
            // as authoritative server no more than as receiving server: it
            // refuses the element like any unsupported first-level child
            // (RFC 6120 §4.9.3.24) instead of answering a protocol it never
            // declared. No XEP-0220 keyword forbids the target's attempt
            // (§2.4.1 only says how support is indicated), so it is no
            // violation, only the end of this verification.
            self.log_verify(db, None);
            self.refuse("unsupported-stanza-type").await?;
            return Ok(Next::Stop);
        }
        let valid = match p.verify_mode {
            VerifyMode::Silent => None,
            VerifyMode::AlwaysInvalid => Some(false),
            // The key was issued by our initiating role as key(receiving =
            // the asker, originating = us, stream id).
            VerifyMode::Honest => Some(
                db.to.eq_ignore_ascii_case(&p.domain)
                    && db.id.as_deref().is_some_and(|id| {
                        self.ctx.env.secret.verify(&db.from, &db.to, id, &db.key)
                    }),
            ),
        };
        let answer = valid.map(|valid| {
            let id = db.id.clone().unwrap_or_default();
            dialback::verify_answer(&db.to, &db.from, &id, valid)
        });
        self.log_verify(db, valid);
        if let Some(answer) = answer {
            self.stream
                .send(&answer)
                .await
                .map_err(wire::send_failure)?;
        }
        Ok(Next::Continue)
    }

    fn log_verify(&self, db: DbElement, answered: Option<bool>) {
        self.log(ServerEvent::Verify {
            stream: self.no,
            tls: self.stream.is_tls(),
            from: db.from,
            to: db.to,
            id: db.id,
            answered,
        });
    }

    async fn stanza(&mut self, e: Element) -> Result<Next, StepFailure> {
        // Checked in this order so that the most serious fault is the one
        // reported: unauthenticated, then addressing, then a foreign `from`.
        let refusal = if self.authenticated.is_empty() {
            // RFC 6120 §4.9.3.12 / SPEC §4.1: nothing before authentication.
            Some((ViolationKind::UnauthenticatedStanza, "not-authorized"))
        } else if e.attr("from").is_none() || e.attr("to").is_none() {
            // RFC 6120 §8.1.1.2, §8.1.2.2: S2S stanzas carry both addresses.
            Some((ViolationKind::ImproperAddressing, "improper-addressing"))
        } else {
            None
        };
        if let Some((kind, condition)) = refusal {
            self.violation(kind, Some(&e));
            return self.refuse(condition).await.map(|()| Next::Stop);
        }
        let domain = stanza::domain_of(e.attr("from").unwrap_or_default());
        let auth = self
            .authenticated
            .iter()
            .find(|(d, _)| *d == domain)
            .cloned();
        let Some((domain, method)) = auth else {
            self.violation(ViolationKind::InvalidFrom, Some(&e));
            return self.refuse("invalid-from").await.map(|()| Next::Stop);
        };
        self.log(ServerEvent::Stanza {
            stream: self.no,
            tls: self.stream.is_tls(),
            method,
            domain,
            stanza: ElementSeen::from(&e),
        });
        Ok(Next::Continue)
    }

    fn authenticate(&mut self, domain: String, method: Method) {
        self.log(ServerEvent::Authenticated {
            stream: self.no,
            domain: domain.clone(),
            method,
        });
        self.authenticated
            .push((domain.to_ascii_lowercase(), method));
    }

    /// Sends a stream error and closes.
    async fn refuse(&mut self, condition: &str) -> Result<(), StepFailure> {
        self.log(ServerEvent::Refused {
            stream: self.no,
            condition: condition.to_owned(),
        });
        self.stream
            .send_stream_error(condition, None)
            .await
            .map_err(wire::send_failure)
    }

    fn violation(&self, kind: ViolationKind, e: Option<&Element>) {
        self.log(ServerEvent::Violation {
            stream: self.no,
            tls: self.stream.is_tls(),
            kind,
            element: e.map(ElementSeen::from),
        });
    }

    fn log(&self, e: ServerEvent) {
        self.ctx.log.push(e);
    }
}

fn dialback_method(tls: bool) -> Method {
    if tls {
        Method::TlsDialback
    } else {
        Method::TcpDialback
    }
}

/// `db:result` carrying the verdict we give the originating server.
fn answer_element(answer: &DialbackOutcome, from: &str, to: &str) -> Element {
    match answer {
        DialbackOutcome::Valid => dialback::result_answer(from, to, true),
        DialbackOutcome::Invalid => dialback::result_answer(from, to, false),
        DialbackOutcome::Error { condition } => dialback::result_error(
            from,
            to,
            condition.as_deref().unwrap_or("undefined-condition"),
        ),
        // Never built above (failures map to errors); if it were, say so on the wire.
        DialbackOutcome::NoAnswer => dialback::result_error(from, to, "undefined-condition"),
    }
}
