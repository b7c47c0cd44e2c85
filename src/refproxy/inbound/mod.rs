//! Inbound streams: the proxy as receiving server (SPEC §4.1) and as
//! authoritative server for its own dialback keys (XEP-0220 §2.2).
//!
//! One file per negotiation concern: `header` (stream headers and the
//! features offered), `starttls`, `sasl` (EXTERNAL, XEP-0178), `dialback`
//! (both XEP-0220 roles) and `stanza` (routing after authentication). This
//! file holds the connection, its `Phase` and the element dispatch. Every
//! decision, and every fault switch, is asked of `refproxy::policy`.

mod dialback;
mod header;
mod sasl;
mod stanza;
mod starttls;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};

use super::policy::InboundState;
use super::{ProxyEvent, Settings, Shared, lock};
use crate::dialback::DbElement;
use crate::partner::Partner;
use crate::stream::{Transcript, XmppStream};
use crate::xml::{Element, Event, ReadError};

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

/// How far the negotiation of the current connection has come (RFC 6120
/// §5, §6). Dialback may authenticate domains in any phase; those are in
/// `Inbound::authenticated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No TLS session yet.
    Clear,
    /// TLS is up; `cert_ok`: the certificate authenticates the stream's
    /// `from` (chain and name, RFC 6125).
    Encrypted { cert_ok: bool },
    /// SASL EXTERNAL succeeded; the restarted stream offers nothing more.
    SaslDone,
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
    /// Our header for the current stream is out (a stream error needs one first).
    header_sent: bool,
    phase: Phase,
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
        phase: Phase::Clear,
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

    /// What `policy` needs to know about this stream.
    fn state(&self) -> InboundState {
        InboundState {
            tls: self.s.is_tls(),
            cert_matches_from: self.phase == Phase::Encrypted { cert_ok: true },
        }
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
        if crate::starttls::is_starttls(&e) {
            return self.starttls().await;
        }
        if let Some(auth) = crate::sasl::parse_auth(&e) {
            return self.sasl_external(auth).await;
        }
        if let Some(db) = DbElement::parse(&e) {
            return self.dialback(db).await;
        }
        if crate::stanza::is_stanza(&e) {
            return self.stanza(e).await;
        }
        self.fail(
            "unsupported-stanza-type",
            &format!("unexpected <{}/>", e.name),
        )
        .await;
        Next::Close
    }
}
