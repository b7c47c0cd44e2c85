//! STARTTLS on an inbound stream (RFC 6120 §5.4).

use super::{Inbound, Next, Phase};
use crate::refproxy::policy;
use crate::starttls;
use crate::tls::{self, Transport};

impl Inbound {
    pub(super) async fn starttls(&mut self) -> Next {
        if self.offer().starttls.is_none() {
            // RFC 6120 §5.4.2.2: failure, then close the stream.
            return self.refuse_starttls().await;
        }
        let Some(cert) = self.shared.cert_for(&self.local) else {
            return self.refuse_starttls().await;
        };
        let Ok((config, recorder)) =
            tls::server_config(&self.shared.trust, &cert, Transport::StartTls)
        else {
            return self.refuse_starttls().await;
        };
        if self.s.send(&starttls::proceed()).await.is_err() {
            return Next::Close;
        }
        let upgraded = if policy::replays_pipelined_bytes(self.faults()) {
            self.s.starttls_server_replaying_pipelined(config).await
        } else {
            self.s.starttls_server(config).await
        };
        if upgraded.is_err() {
            return Next::Close;
        }
        let check = tls::check_peer(&recorder.finish(), &self.remote);
        tracing::debug!(remote = %self.remote, certificate = %check.summary, "inbound stream: TLS up");
        self.phase = Phase::Encrypted {
            cert_ok: check.ok(),
        };
        Next::Restart
    }

    async fn refuse_starttls(&mut self) -> Next {
        let _ = self.s.send(&starttls::failure()).await;
        let _ = self.s.close().await;
        Next::Close
    }
}
