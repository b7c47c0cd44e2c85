//! Inbound streams: the proxy as receiving server (SPEC §4.1) and as
//! authoritative server for its own dialback keys (XEP-0220 §2.2).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};

use super::connect::{self, Failure};
use super::policy::{self, InboundState};
use super::{Fault, ProxyEvent, Settings, Shared, local, lock};
use crate::dialback::{self, DbElement, DbKind};
use crate::features::Features;
use crate::partner::{Method, Partner};
use crate::sasl;
use crate::stanza;
use crate::starttls;
use crate::stream::{Transcript, XmppStream};
use crate::tls::{self, Transport};
use crate::xml::{Element, Event, NS_SERVER, ReadError, StreamHeader};

pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = shared.connection_slots.clone().try_acquire_owned();
        let conn_shared = shared.clone();
        shared.spawn(async move {
            let _permit = permit.ok();
            let busy = _permit.is_none();
            serve(conn_shared, tcp, busy).await;
        });
    }
}

/// What the element loop asks the stream loop to do next.
enum Next {
    Continue,
    /// A new stream header is expected (after STARTTLS or SASL success).
    Restart,
    Close,
}

struct Inbound {
    shared: Arc<Shared>,
    /// The partner set as it was when the connection arrived.
    settings: Arc<Settings>,
    s: XmppStream,
    local: String,
    remote: String,
    partner: Option<Partner>,
    /// The partner whose connection count this stream holds.
    counted: Option<String>,
    stream_id: String,
    /// The `version` of the peer's last header.
    peer_version: Option<String>,
    header_sent: bool,
    cert_ok: bool,
    sasl_done: bool,
    authenticated: HashSet<String>,
    deadline: Instant,
}

async fn serve(shared: Arc<Shared>, tcp: TcpStream, busy: bool) {
    let settings = shared.settings();
    let s = XmppStream::plain(tcp, shared.limits, Transcript::new(), shared.stream_no());
    let mut conn = Inbound {
        deadline: crate::clock::deadline(shared.timeouts.negotiation),
        shared,
        settings,
        s,
        local: String::new(),
        remote: String::new(),
        partner: None,
        counted: None,
        stream_id: String::new(),
        peer_version: None,
        header_sent: false,
        cert_ok: false,
        sasl_done: false,
        authenticated: HashSet::new(),
    };
    if busy {
        conn.read_header().await;
        conn.fail("resource-constraint", "too many connections")
            .await;
    } else {
        conn.run().await;
    }
    if let Some(partner) = conn.counted.take() {
        let mut counts = lock(&conn.shared.inbound_streams);
        if let Some(n) = counts.get_mut(&partner) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Inbound {
    fn faults(&self) -> &super::Faults {
        &self.settings.faults
    }

    async fn run(&mut self) {
        loop {
            // Each stream (after STARTTLS or SASL, too) gets its own header
            // before anything else, stream errors included (RFC 6120 §4.9.1.1).
            self.header_sent = false;
            let Some(header) = self.read_header().await else {
                return;
            };
            self.peer_version = header.version.clone();
            if let Err((condition, text)) = self.accept_header(&header) {
                self.shared.record(ProxyEvent::InboundRefused {
                    remote: header.from.clone(),
                    reason: text.clone(),
                });
                return self.fail(condition, &text).await;
            }
            if self.send_header_and_features().await.is_err() {
                return;
            }
            match self.elements().await {
                Next::Restart => continue,
                Next::Continue | Next::Close => return,
            }
        }
    }

    /// The peer's stream header; stream errors for anything else.
    async fn read_header(&mut self) -> Option<StreamHeader> {
        loop {
            match self.s.next(self.remaining()).await {
                Ok(Event::Header(h)) => return Some(h),
                Ok(Event::Whitespace) => continue,
                Ok(Event::Element(_)) => {
                    self.fail("not-authorized", "element before the stream header")
                        .await;
                    return None;
                }
                Ok(Event::End | Event::Eof) | Err(ReadError::Closed | ReadError::Busy) => {
                    return None;
                }
                Err(ReadError::Timeout) => {
                    self.fail("connection-timeout", "no stream header").await;
                    return None;
                }
                Err(ReadError::Xml(e)) => {
                    self.fail(e.condition(), e.detail()).await;
                    return None;
                }
            }
        }
    }

    /// RFC 6120 §4.7 checks plus SPEC §2: only partners may connect.
    fn accept_header(&mut self, h: &StreamHeader) -> Result<(), (&'static str, String)> {
        let to = h.to.clone().unwrap_or_default().to_ascii_lowercase();
        // Set the addresses first so that a refusal still answers with a proper header.
        if self.local.is_empty() && self.settings.partners.is_local(&to) {
            self.local = to.clone();
        }
        if h.default_ns != NS_SERVER {
            return Err((
                "invalid-namespace",
                format!("default namespace `{}` is not jabber:server", h.default_ns),
            ));
        }
        if h.version.as_deref() != Some("1.0") && !self.faults().has(Fault::EchoStreamVersion) {
            return Err((
                "unsupported-version",
                "only version 1.0 streams are served".into(),
            ));
        }
        if !self.settings.partners.is_local(&to) || (!self.local.is_empty() && to != self.local) {
            return Err(("host-unknown", format!("`{to}` is not served here")));
        }
        let from = h.from.clone().unwrap_or_default().to_ascii_lowercase();
        if from.is_empty() {
            return Err((
                "improper-addressing",
                "the stream header has no `from`".into(),
            ));
        }
        if !self.remote.is_empty() && from != self.remote {
            return Err(("invalid-from", "`from` changed on a stream restart".into()));
        }
        let stand_in = &self.settings.stand_in;
        let Some(partner) = policy::partner_for(
            &self.settings.partners.partners,
            &from,
            self.faults(),
            stand_in,
        )
        .cloned() else {
            return Err((
                "policy-violation",
                format!("{from} is not a federation partner"),
            ));
        };
        if self.counted.is_none() {
            let mut counts = lock(&self.shared.inbound_streams);
            let n = counts.entry(partner.domain.clone()).or_default();
            if partner
                .connection_limit
                .is_some_and(|limit| *n >= limit as usize)
            {
                return Err((
                    "policy-violation",
                    format!("connection limit of {} reached", partner.domain),
                ));
            }
            *n += 1;
            self.counted = Some(partner.domain.clone());
        }
        self.remote = from;
        self.partner = Some(partner);
        Ok(())
    }

    fn offer(&self) -> Features {
        if self.sasl_done {
            return Features::default();
        }
        let Some(partner) = &self.partner else {
            return Features::default();
        };
        let state = InboundState {
            tls: self.s.is_tls(),
            cert_matches_from: self.cert_ok,
        };
        let offer = policy::offer(partner.negotiation, state, self.faults());
        Features {
            starttls: offer.starttls,
            mechanisms: if offer.external {
                vec![sasl::EXTERNAL.to_string()]
            } else {
                vec![]
            },
            dialback: offer.dialback,
            other: vec![],
            empty_mechanisms: false,
        }
    }

    async fn send_our_header(&mut self) -> Result<(), ()> {
        self.stream_id = new_stream_id().map_err(|e| {
            tracing::error!("closing the connection: {e}");
        })?;
        let mut header = StreamHeader::server().with_id(self.stream_id.clone());
        if !self.local.is_empty() {
            header = header.with_from(self.local.clone());
        }
        if !self.remote.is_empty() {
            header = header.with_to(self.remote.clone());
        }
        if self.faults().has(Fault::EchoStreamVersion) {
            header.version = self.peer_version.clone();
        }
        self.header_sent = true;
        self.s.send_header(&header).await.map_err(|_| ())
    }

    async fn send_header_and_features(&mut self) -> Result<(), ()> {
        self.send_our_header().await?;
        let offer = self.offer();
        tracing::debug!(
            remote = %self.remote,
            tls = self.s.is_tls(),
            starttls = ?offer.starttls,
            mechanisms = ?offer.mechanisms,
            dialback = offer.dialback,
            "inbound stream: features offered"
        );
        self.s.send(&offer.to_element()).await.map_err(|_| ())
    }

    /// Sends a stream error (after our header if none was sent yet) and closes.
    async fn fail(&mut self, condition: &str, text: &str) {
        tracing::debug!(remote = %self.remote, condition, text, "stream error");
        if !self.header_sent && self.send_our_header().await.is_err() {
            return;
        }
        let _ = self.s.send_stream_error(condition, Some(text)).await;
    }

    fn remaining(&self) -> std::time::Duration {
        if self.authenticated.is_empty() {
            self.deadline.saturating_duration_since(Instant::now())
        } else {
            self.shared.timeouts.idle
        }
    }

    async fn elements(&mut self) -> Next {
        loop {
            let next = match self.s.next(self.remaining()).await {
                Ok(Event::Element(e)) => self.element(e).await,
                Ok(Event::Whitespace) => Next::Continue,
                Ok(Event::Header(_)) => {
                    self.fail("bad-format", "unexpected stream header").await;
                    Next::Close
                }
                Ok(Event::End) => {
                    let _ = self.s.close().await;
                    Next::Close
                }
                Ok(Event::Eof) | Err(ReadError::Closed | ReadError::Busy) => Next::Close,
                Err(ReadError::Timeout) => {
                    self.fail("connection-timeout", "negotiation or idle timeout")
                        .await;
                    Next::Close
                }
                Err(ReadError::Xml(e)) => {
                    self.fail(e.condition(), e.detail()).await;
                    Next::Close
                }
            };
            match next {
                Next::Continue => continue,
                other => return other,
            }
        }
    }

    async fn element(&mut self, e: Element) -> Next {
        if starttls::is_starttls(&e) {
            return self.starttls().await;
        }
        if let Some(auth) = sasl::parse_auth(&e) {
            return self.sasl_external(auth).await;
        }
        if let Some(db) = DbElement::parse(&e) {
            return self.dialback(db).await;
        }
        if stanza::is_stanza(&e) {
            return self.stanza(e).await;
        }
        self.fail(
            "unsupported-stanza-type",
            &format!("unexpected <{}/>", e.name),
        )
        .await;
        Next::Close
    }

    async fn starttls(&mut self) -> Next {
        if self.offer().starttls.is_none() {
            // RFC 6120 §5.4.2.2: failure, then close the stream.
            let _ = self.s.send(&starttls::failure()).await;
            let _ = self.s.close().await;
            return Next::Close;
        }
        let Some(cert) = self.shared.cert_for(&self.local) else {
            let _ = self.s.send(&starttls::failure()).await;
            let _ = self.s.close().await;
            return Next::Close;
        };
        let Ok((config, recorder)) =
            tls::server_config(&self.shared.trust, &cert, Transport::StartTls)
        else {
            let _ = self.s.send(&starttls::failure()).await;
            let _ = self.s.close().await;
            return Next::Close;
        };
        if self.s.send(&starttls::proceed()).await.is_err() {
            return Next::Close;
        }
        let upgraded = if self.faults().has(Fault::ProcessPipelinedStarttls) {
            self.s.starttls_server_replaying_pipelined(config).await
        } else {
            self.s.starttls_server(config).await
        };
        if upgraded.is_err() {
            return Next::Close;
        }
        let check = tls::check_peer(&recorder.finish(), &self.remote);
        tracing::debug!(remote = %self.remote, certificate = %check.summary, "inbound stream: TLS up");
        self.cert_ok = check.ok();
        Next::Restart
    }

    /// SASL EXTERNAL per XEP-0178: the certificate must authenticate the
    /// stream's `from`; the authorization identity is empty or that domain.
    async fn sasl_external(&mut self, auth: sasl::Auth) -> Next {
        let offered = self.offer().mechanisms.iter().any(|m| m == sasl::EXTERNAL);
        let answer = if auth.mechanism != sasl::EXTERNAL || !offered {
            sasl::failure("invalid-mechanism")
        } else {
            match &auth.authzid {
                Err(_) => sasl::failure("incorrect-encoding"),
                Ok(Some(id)) if !id.eq_ignore_ascii_case(&self.remote) => {
                    sasl::failure("invalid-authzid")
                }
                Ok(_) => {
                    let lax = self.faults().has(Fault::AcceptInvalidCert)
                        || (!self.s.is_tls() && self.faults().has(Fault::OfferExternalBeforeTls));
                    if self.cert_ok || lax {
                        sasl::success()
                    } else {
                        sasl::failure("not-authorized")
                    }
                }
            }
        };
        let success = sasl::is_success(&answer);
        tracing::debug!(remote = %self.remote, success, answer = %answer, "inbound stream: SASL EXTERNAL");
        if self.s.send(&answer).await.is_err() {
            return Next::Close;
        }
        if !success {
            // XEP-0178 §3: the initiating server may fall back to dialback.
            return Next::Continue;
        }
        self.sasl_done = true;
        self.authenticated.insert(self.remote.clone());
        self.shared.record(ProxyEvent::InboundAuthenticated {
            remote: self.remote.clone(),
            method: Method::SaslOverTls,
        });
        match self.s.restart() {
            Ok(()) => Next::Restart,
            Err(_) => Next::Close,
        }
    }

    async fn dialback(&mut self, db: DbElement) -> Next {
        match (db.kind, db.ty.as_deref()) {
            (DbKind::Verify, None) => self.answer_verify(db).await,
            (DbKind::Result, None) => self.receive_result(db).await,
            // Answers belong on streams we initiated; ignore strays.
            _ => Next::Continue,
        }
    }

    /// Authoritative role: is this a key we issued? (XEP-0185: recompute it.)
    async fn answer_verify(&mut self, db: DbElement) -> Next {
        let id = db.id.clone().unwrap_or_default();
        let ours = self.settings.partners.is_local(&db.to);
        let valid = ours && self.shared.secret.verify(&db.from, &db.to, &id, &db.key);
        let answer = dialback::verify_answer(&db.to, &db.from, &id, valid);
        match self.s.send(&answer).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::Close,
        }
    }

    /// Receiving role: verify the key with the originating domain's
    /// authoritative server, then report the verdict (XEP-0220 §2.1).
    async fn receive_result(&mut self, db: DbElement) -> Next {
        let (origin, target) = (db.from.to_ascii_lowercase(), db.to.to_ascii_lowercase());
        let verdict = self.dialback_verdict(&origin, &target, &db.key).await;
        tracing::debug!(%origin, tls = self.s.is_tls(), verdict = ?verdict.as_ref().map_err(|f| &f.reason), "inbound stream: dialback");
        // XEP-0220 §2.2.1: on an `invalid` result with no other valid domain
        // pair on the connection, the Receiving Server "MUST close the XML stream".
        let mut close_after = false;
        let answer = match verdict {
            Ok(valid) => {
                if valid {
                    self.authenticated.insert(origin.clone());
                    let method = policy::dialback_method(self.s.is_tls());
                    self.shared.record(ProxyEvent::InboundAuthenticated {
                        remote: origin.clone(),
                        method,
                    });
                } else {
                    self.shared.record(ProxyEvent::InboundRefused {
                        remote: Some(origin.clone()),
                        reason: "dialback key invalid".into(),
                    });
                    close_after = self.authenticated.is_empty();
                }
                dialback::result_answer(&target, &origin, valid)
            }
            Err(failure) => {
                self.shared.record(ProxyEvent::InboundRefused {
                    remote: Some(origin.clone()),
                    reason: failure.reason.clone(),
                });
                dialback::result_error(&target, &origin, failure.condition)
            }
        };
        match self.s.send(&answer).await {
            Ok(()) if close_after => {
                let _ = self.s.close().await;
                Next::Close
            }
            Ok(()) => Next::Continue,
            Err(_) => Next::Close,
        }
    }

    async fn dialback_verdict(
        &self,
        origin: &str,
        target: &str,
        key: &str,
    ) -> Result<bool, Failure> {
        if !self.settings.partners.is_local(target) {
            return Err(Failure::new(
                "item-not-found",
                format!("{target} is not served here"),
            ));
        }
        let stand_in = &self.settings.stand_in;
        let Some(partner) = policy::partner_for(
            &self.settings.partners.partners,
            origin,
            self.faults(),
            stand_in,
        )
        .cloned() else {
            return Err(Failure::new(
                "policy-violation",
                format!("{origin} is not a federation partner"),
            ));
        };
        if !policy::dialback_allowed(partner.negotiation, self.s.is_tls(), self.faults()) {
            return Err(Failure::new(
                "policy-violation",
                format!(
                    "dialback over {} is not admitted for {}",
                    if self.s.is_tls() { "TLS" } else { "TCP" },
                    partner.domain
                ),
            ));
        }
        if self.faults().has(Fault::SkipDialbackVerify) {
            return Ok(true);
        }
        verify_with_authoritative(&self.shared, &partner, target, origin, &self.stream_id, key)
            .await
    }

    async fn stanza(&mut self, e: Element) -> Next {
        let unauthenticated = self.authenticated.is_empty();
        if unauthenticated && !policy::route_unauthenticated(self.faults()) {
            self.fail("not-authorized", "stanza before authentication")
                .await;
            return Next::Close;
        }
        let (Some(to), Some(from)) = (e.attr("to"), e.attr("from")) else {
            self.fail("improper-addressing", "stanza without `to` or `from`")
                .await;
            return Next::Close;
        };
        let from_domain = stanza::domain_of(from);
        let from_ok = self.authenticated.contains(&from_domain)
            || self.faults().has(Fault::NoFromCheck)
            || unauthenticated;
        if !from_ok {
            self.fail(
                "invalid-from",
                &format!("`{from_domain}` is not authenticated on this stream"),
            )
            .await;
            return Next::Close;
        }
        let _ = to;
        let stand_in = &self.settings.stand_in;
        let partner = policy::partner_for(
            &self.settings.partners.partners,
            &from_domain,
            self.faults(),
            stand_in,
        )
        .or(self.partner.as_ref())
        .cloned();
        if let Some(partner) = partner {
            local::handle_inbound(&self.shared, &self.settings, &partner, e);
        }
        Next::Continue
    }
}

/// Dialback verification: a fresh stream to the originating domain's
/// authoritative server carrying `db:verify` (XEP-0220 §2.1.2).
async fn verify_with_authoritative(
    shared: &Arc<Shared>,
    partner: &Partner,
    local: &str,
    origin: &str,
    stream_id: &str,
    key: &str,
) -> Result<bool, Failure> {
    let mut s = connect::reach(shared, partner, origin).await?;
    let result = async {
        let (_, features) = connect::open(shared, &mut s, local, origin).await?;
        if features.starttls.is_some() && partner.negotiation.tls.enabled() {
            connect::starttls(shared, &mut s, local, origin).await?;
            connect::open(shared, &mut s, local, origin).await?;
        } else if !policy::verify_in_clear_allowed(partner.negotiation, &shared.settings().faults) {
            // SPEC §4.2: with TLS required nothing leaves in clear text, and
            // the key is no less sensitive than a stanza.
            return Err(Failure::new(
                "remote-connection-failed",
                format!(
                    "TLS is required but {origin}'s authoritative server does not offer STARTTLS"
                ),
            ));
        }
        s.send(&dialback::verify_request(local, origin, stream_id, key))
            .await
            .map_err(|e| Failure::new("remote-connection-failed", e.to_string()))?;
        loop {
            let e = connect::expect_element(shared, &mut s).await?;
            if let Some(db) = DbElement::parse(&e)
                && db.kind == DbKind::Verify
                && db.id.as_deref() == Some(stream_id)
            {
                return Ok(db.is_valid());
            }
        }
    }
    .await;
    let _ = s.close().await;
    result
}

/// A fresh, unguessable stream id (also the input of dialback keys); none
/// at all when the RNG fails, since a guessable one would weaken dialback.
fn new_stream_id() -> Result<String, crate::random::RandomError> {
    crate::random::hex::<12>()
}
