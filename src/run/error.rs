//! Why the harness (not the target) could not start or play a case: an
//! `error` verdict, or a run that does not start.

use crate::dns::{ServerError, ZoneError};
use crate::partner::{Diagnostic, Negotiation};
use crate::peer::{Failed, PeerError};
use crate::pki::PkiError;
use crate::run::network::{NoFreeLoopback, PlaceError};
use crate::run::script::PlayError;

/// Harness trouble while starting a target or playing a case.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("PKI: {0}")]
    Pki(#[source] PkiError),
    #[error(transparent)]
    Dns(#[from] MockDnsError),
    /// The mock DNS wanted port 53 on a loopback address of its own.
    #[error(transparent)]
    DnsLoopback(#[from] NoFreeLoopback<MockDnsError>),
    /// The partner set generated from the cases does not load.
    #[error(
        "generated partner set: {}",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    PartnerSet(Vec<Diagnostic>),
    #[error(transparent)]
    Trust(#[from] crate::tls::TlsError),
    #[error(transparent)]
    TargetCertificate(PkiError),
    #[error("no target certificate")]
    NoTargetCertificate,
    #[error("reference target: {0}")]
    Reference(#[source] crate::refproxy::StartError),
    #[error(transparent)]
    Managed(#[from] crate::target::managed::StartError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error(transparent)]
    Place(#[from] PlaceError),
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error(transparent)]
    Play(#[from] PlayError),
    /// The managed target's outbound trigger: the inbound stream that
    /// carries the ping should have authenticated with SASL EXTERNAL.
    #[error(
        "outbound trigger: the ping stream ({}, valid certificate) was not authenticated: {failure:?}",
        config.code()
    )]
    PingNotAuthenticated {
        config: Negotiation,
        failure: Option<Failed>,
    },
}

/// The run's mock DNS could not start.
#[derive(Debug, thiserror::Error)]
#[error("mock DNS: {0}")]
pub struct MockDnsError(#[source] pub ServerError);
