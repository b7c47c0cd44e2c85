//! Why a scenario could not be played: trouble of the harness or of the
//! scenario file (an `error` verdict), never the target's behaviour, which
//! is an unmet step.

use std::time::Duration;

/// A scenario that stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// The peer servers could not be placed (DNS, listeners, PKI).
    #[error(transparent)]
    Place(#[from] crate::run::network::PlaceError),
    /// A peer environment (TLS configuration, certificates) could not be built.
    #[error(transparent)]
    PeerEnv(crate::peer::PeerError),
    /// A peer domain of the `[peer]` table could not be rendered.
    #[error(transparent)]
    PeerDomain(StepError),
    /// The mock DNS refused a peer's zone.
    #[error(transparent)]
    Zone(#[from] crate::dns::ZoneError),
    #[error("step {step} ({file}:{line}) was cut by the case deadline ({deadline:?})")]
    Deadline {
        step: usize,
        file: String,
        line: usize,
        deadline: Duration,
    },
    #[error("step {step} ({file}:{line}): {error}")]
    Step {
        step: usize,
        file: String,
        line: usize,
        error: StepError,
    },
}

/// Why one step could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("no connection: `connect` or `authenticate` first")]
    NoConnection,
    #[error("nothing was captured as `{0}`")]
    NotCaptured(String),
    #[error("`{0}` is not a domain")]
    NotADomain(String),
    #[error("XML to send: {0}")]
    XmlToSend(crate::xml::XmlError),
    #[error("pattern: {0}")]
    Pattern(crate::xml::XmlError),
    #[error("`pad-to = {0}` is smaller than the text itself")]
    PadTooSmall(usize),
    #[error("no peer server for {0}: list it in [peer] domains")]
    NoPeerServer(String),
    /// The managed target's local users are not online.
    #[error("{0}")]
    LocalUsers(String),
    #[error("the client of {jid} went offline while waiting ({why})")]
    ClientOffline { jid: String, why: String },
    /// The harness's own set-up for the step failed (TLS configuration,
    /// certificates, a peer environment).
    #[error("{0}")]
    Setup(String),
    #[error("unexpected event kind")]
    UnexpectedEvent,
}
