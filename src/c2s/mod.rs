//! A small XMPP client (RFC 6120 client-to-server) that plays a real
//! server's local users: STARTTLS trusting only the run's CA, optional
//! in-band registration (XEP-0077), SASL SCRAM-SHA-1 or PLAIN, resource
//! binding, roster get and initial presence (RFC 6121), then a receive loop
//! that records every stanza with its arrival time so that a scenario can
//! ask "did a stanza with id X reach alice within T".
//!
//! It exists for managed targets: where the reference target's echo user
//! proves delivery at the peer's server, a real server's delivery is
//! observed at its user's own client.

mod login;
pub mod scram;
mod session;

use std::time::Duration;

pub use login::{Login, Provision};
pub use session::{Received, Session, Users};

/// A local account of the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub password: String,
}

impl Account {
    /// `user` with a fresh random password (hex, so SASLprep leaves it alone).
    pub fn generated(user: &str) -> Account {
        let mut bytes = [0u8; 12];
        // ring's RNG (already in the tree through rustls) is the system one.
        let _ = rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut bytes);
        Account {
            user: user.to_string(),
            password: hex::encode(bytes),
        }
    }
}

/// What went wrong while a client logged in or ran.
#[derive(Debug, thiserror::Error)]
pub enum C2sError {
    #[error("cannot connect to {addr}: {detail}")]
    Connect {
        addr: std::net::SocketAddr,
        detail: String,
    },
    #[error("{stage}: nothing within {wait:?}")]
    Timeout { stage: &'static str, wait: Duration },
    #[error("{stage}: the stream ended ({how})")]
    Closed { stage: &'static str, how: String },
    #[error("{stage}: stream error <{condition}/>")]
    StreamError {
        stage: &'static str,
        condition: String,
    },
    #[error("{stage}: the server offers no {what} (features {features})")]
    Missing {
        stage: &'static str,
        what: &'static str,
        features: String,
    },
    #[error("{stage}: unexpected {got}")]
    Unexpected { stage: &'static str, got: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("SASL {mechanism} failed: {detail}")]
    Sasl {
        mechanism: &'static str,
        detail: String,
    },
    #[error("{stage}: the server answered with an error: {error}")]
    IqError { stage: &'static str, error: String },
    #[error("the session of {jid} has ended")]
    Ended { jid: String },
}
