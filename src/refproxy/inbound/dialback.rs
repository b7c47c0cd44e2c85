//! Server Dialback on an inbound stream (XEP-0220): as receiving server,
//! verifying a `db:result` with the originating domain's authoritative
//! server (§2.1), and as authoritative server for our own keys (§2.2).

use std::sync::Arc;

use super::{Inbound, Next};
use crate::dialback::{self, DbElement, DbKind};
use crate::partner::Partner;
use crate::refproxy::connect::{self, Failure};
use crate::refproxy::{ProxyEvent, Shared, policy};

impl Inbound {
    pub(super) async fn dialback(&mut self, db: DbElement) -> Next {
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
        if !policy::asks_authoritative(self.faults()) {
            return Ok(true);
        }
        verify_with_authoritative(&self.shared, &partner, target, origin, &self.stream_id, key)
            .await
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
