//! What a simulated peer is (its profile) and what it runs with (its environment).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustls::RootCertStore;
use serde::{Deserialize, Serialize};

use crate::dialback::Secret;
use crate::partner::{Method, Negotiation, methods};
use crate::pki::{CertVariant, KeyType, Leaf, Pki};
use crate::stream::Transcript;
use crate::xml::Limits;

use super::PeerError;

/// The authorization identity an initiating peer puts into SASL EXTERNAL
/// `<auth/>` (XEP-0178 §3; SPEC §4.1 lists which ones must succeed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authzid {
    /// `=`: no authorization identity (the default, what most servers send).
    #[default]
    None,
    /// The base64 of the peer's own domain.
    OwnDomain,
    /// Another identity, for scenarios that expect a failure.
    Other(String),
}

/// How the peer's authoritative role answers `db:verify` (XEP-0220 §2.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// `valid` exactly for keys this peer's initiating role issued.
    #[default]
    Honest,
    /// Always `invalid`: the "spoofed originating domain" scenario.
    AlwaysInvalid,
    /// Never answer (the verifying side must time out).
    Silent,
}

/// One simulated peer server: its settings, certificate and policy knobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProfile {
    pub domain: String,
    /// The same three settings as a partner configuration (SPEC §2, §4.3).
    pub negotiation: Negotiation,
    /// The certificate it presents in both roles (SPEC §5). With
    /// `no-client-cert` it presents none when initiating, and as a receiving
    /// server it presents a `valid` certificate but requests none.
    pub cert: CertVariant,
    /// The SASL EXTERNAL authorization identity it sends when initiating.
    pub authzid: Authzid,
    /// How its authoritative role answers `db:verify`.
    pub verify_mode: VerifyMode,
}

impl PeerProfile {
    pub fn new(domain: impl Into<String>, negotiation: Negotiation, cert: CertVariant) -> Self {
        PeerProfile {
            domain: domain.into(),
            negotiation,
            cert,
            authzid: Authzid::None,
            verify_mode: VerifyMode::Honest,
        }
    }

    /// Whether the profile admits any dialback method (SPEC §4.7). A profile
    /// with `dialback = true` whose TLS and SASL are both required admits
    /// none (SPEC §4, W2), so it advertises none either.
    pub fn advertises_dialback(&self) -> bool {
        let m = methods(self.negotiation);
        m.contains(Method::TlsDialback) || m.contains(Method::TcpDialback)
    }

    pub fn with_authzid(mut self, authzid: Authzid) -> Self {
        self.authzid = authzid;
        self
    }

    pub fn with_verify_mode(mut self, mode: VerifyMode) -> Self {
        self.verify_mode = mode;
        self
    }

    /// The authzid to send, resolved against the peer's domain.
    pub(crate) fn authzid_value(&self) -> Option<String> {
        match &self.authzid {
            Authzid::None => None,
            Authzid::OwnDomain => Some(self.domain.clone()),
            Authzid::Other(id) => Some(id.clone()),
        }
    }
}

/// Hands out stream numbers that are distinct within one test case, shared
/// by every peer recording into the same transcript.
#[derive(Debug, Clone)]
pub struct StreamNumbers(Arc<AtomicU32>);

impl Default for StreamNumbers {
    fn default() -> Self {
        StreamNumbers(Arc::new(AtomicU32::new(1)))
    }
}

impl StreamNumbers {
    pub fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Default per-step deadline: generous for loopback, short enough that a
/// stalled target fails a case quickly.
pub const DEFAULT_STEP: Duration = Duration::from_secs(3);
/// How long an inbound stream may stay silent once it is set up (a target
/// may keep an authenticated stream open for later stanzas).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// What one peer runs with. Clones share the transcript and stream numbers;
/// use [`PeerEnv::for_another_peer`] to get a second peer of the same case
/// with its own dialback secret.
#[derive(Debug, Clone)]
pub struct PeerEnv {
    pub pki: Arc<Pki>,
    /// Trust anchors: the PKI's root.
    pub roots: Arc<RootCertStore>,
    pub transcript: Transcript,
    pub streams: StreamNumbers,
    /// Shared by this peer's initiating role (issues keys) and authoritative
    /// role (checks them), XEP-0185.
    pub secret: Secret,
    pub limits: Limits,
    /// Deadline for each protocol step (one expected answer).
    pub step: Duration,
    /// How long an initiating peer waits for the dialback verdict, which
    /// involves the target's round trip to the authoritative server.
    pub dialback_wait: Duration,
    /// Idle limit on inbound streams of a [`super::PeerServer`].
    pub idle: Duration,
}

impl PeerEnv {
    pub fn new(pki: Arc<Pki>, transcript: Transcript) -> Result<PeerEnv, PeerError> {
        let roots = crate::tls::root_store(std::slice::from_ref(pki.root_der()))
            .map_err(|e| PeerError::Tls(e.to_string()))?;
        Ok(PeerEnv {
            pki,
            roots,
            transcript,
            streams: StreamNumbers::default(),
            secret: Secret::random()?,
            limits: Limits::default(),
            step: DEFAULT_STEP,
            dialback_wait: DEFAULT_STEP * 3,
            idle: DEFAULT_IDLE,
        })
    }

    /// Sets the step deadline; the dialback wait becomes three steps.
    pub fn with_step(mut self, step: Duration) -> Self {
        self.step = step;
        self.dialback_wait = step * 3;
        self
    }

    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secret = secret;
        self
    }

    /// Same case (PKI, transcript, stream numbers, deadlines), fresh secret.
    pub fn for_another_peer(&self) -> Result<PeerEnv, PeerError> {
        Ok(self.clone().with_secret(Secret::random()?))
    }

    /// The certificate a profile presents, `None` for `no-client-cert`.
    pub(crate) fn leaf(&self, profile: &PeerProfile) -> Result<Option<Arc<Leaf>>, PeerError> {
        self.pki
            .leaf(&profile.domain, profile.cert, KeyType::Ecdsa)
            .map_err(|e| PeerError::Pki(e.to_string()))
    }

    /// The certificate a profile presents as a receiving server: its own,
    /// or a `valid` one when it has none (TLS needs a server certificate).
    pub(crate) fn server_leaf(&self, profile: &PeerProfile) -> Result<Arc<Leaf>, PeerError> {
        let variant = match profile.cert {
            CertVariant::NoClientCert => CertVariant::Valid,
            v => v,
        };
        self.pki
            .leaf(&profile.domain, variant, KeyType::Ecdsa)
            .map_err(|e| PeerError::Pki(e.to_string()))?
            .ok_or_else(|| PeerError::Pki("no server certificate".into()))
    }
}
