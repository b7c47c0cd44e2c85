//! Stream headers in both directions and the features offered after ours
//! (RFC 6120 §4.7, §4.3.2; SPEC §2: only partners may connect).

use super::{Inbound, Phase};
use crate::features::Features;
use crate::refproxy::{lock, policy};
use crate::sasl;
use crate::xml::{Event, NS_SERVER, ReadError, StreamHeader};

impl Inbound {
    /// The peer's stream header; stream errors for anything else.
    pub(super) async fn read_header(&mut self) -> Option<StreamHeader> {
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
    pub(super) fn accept_header(&mut self, h: &StreamHeader) -> Result<(), (&'static str, String)> {
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
        if !policy::serves_version(h.version.as_deref(), self.faults()) {
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

    /// The features this stream offers now (SPEC §4.1).
    pub(super) fn offer(&self) -> Features {
        if self.phase == Phase::SaslDone {
            return Features::default();
        }
        let Some(partner) = &self.partner else {
            return Features::default();
        };
        let offer = policy::offer(partner.negotiation, self.state(), self.faults());
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

    pub(super) async fn send_our_header(&mut self) -> Result<(), ()> {
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
        header.version = policy::answer_version(self.peer_version.as_deref(), self.faults());
        self.header_sent = true;
        self.s.send_header(&header).await.map_err(|_| ())
    }

    pub(super) async fn send_header_and_features(&mut self) -> Result<(), ()> {
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
}

/// A fresh, unguessable stream id (also the input of dialback keys); none
/// at all when the RNG fails, since a guessable one would weaken dialback.
fn new_stream_id() -> Result<String, crate::random::RandomError> {
    crate::random::hex::<12>()
}
