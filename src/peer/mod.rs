//! Simulated peer XMPP servers: the partner's servers the harness plays
//! against a target (SPEC §4.1–§4.3, §8).
//!
//! A peer follows its own [`PeerProfile`] — the same TLS/SASL/dialback
//! settings as a partner configuration, a certificate variant and a few
//! policy knobs — exactly as a careful server with that configuration would.
//! It is an implementation of the protocol rules independent of the oracle
//! and of the reference proxy, so that what happens when it meets a target
//! reveals what the target did. Every stream is recorded in the shared
//! [`Transcript`](crate::stream::Transcript), and every role reports
//! structured observations ([`observe`]) for the judge.
//!
//! Layout, one job per file:
//! - [`profile`]: [`PeerProfile`], [`PeerEnv`] and the knobs;
//! - [`observe`]: the serialisable observation types;
//! - [`initiating`]: [`initiate`], the originating server;
//! - [`receiving`]: [`PeerServer`], the listener and its event log;
//! - `inbound`: one inbound stream (receiving and authoritative roles);
//! - `verifier`: the receiving side's `db:verify` round trip to the target;
//! - `wire`: bounded reads, headers, per-connection TLS configurations.

mod inbound;
pub mod initiating;
pub mod observe;
pub mod profile;
pub mod receiving;
mod verifier;
mod wire;

pub use initiating::initiate;
pub use observe::*;
pub use profile::{Authzid, PeerEnv, PeerProfile, StreamNumbers, VerifyMode};
pub use receiving::{PeerServer, TargetInfo};

/// Why a peer could not be set up (failures while talking to a target are
/// observations, not errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("certificate: {0}")]
    Pki(String),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("I/O: {0}")]
    Io(String),
    #[error("{0}")]
    Random(#[from] crate::random::RandomError),
}
