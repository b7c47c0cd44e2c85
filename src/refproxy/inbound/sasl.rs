//! SASL EXTERNAL on an inbound stream (RFC 6120 §6, XEP-0178).

use super::{Inbound, Next, Phase};
use crate::partner::Method;
use crate::refproxy::{ProxyEvent, policy};
use crate::sasl;

impl Inbound {
    /// SASL EXTERNAL per XEP-0178: the certificate must authenticate the
    /// stream's `from`; the authorization identity is empty or that domain.
    pub(super) async fn sasl_external(&mut self, auth: sasl::Auth) -> Next {
        let offered = self.offer().mechanisms.iter().any(|m| m == sasl::EXTERNAL);
        let answer = if auth.mechanism != sasl::EXTERNAL || !offered {
            sasl::failure("invalid-mechanism")
        } else {
            match &auth.authzid {
                Err(_) => sasl::failure("incorrect-encoding"),
                Ok(Some(id)) if !id.eq_ignore_ascii_case(&self.remote) => {
                    sasl::failure("invalid-authzid")
                }
                Ok(_) if policy::external_succeeds(self.state(), self.faults()) => sasl::success(),
                Ok(_) => sasl::failure("not-authorized"),
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
        self.phase = Phase::SaslDone;
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
}
