//! The target under test and what the harness can ask of it. The reference
//! proxy runs in-process and can be driven directly; an external target is
//! only an address and a domain that someone else configured.

use std::net::SocketAddr;

use tokio::sync::broadcast;

use crate::partner::Loaded;
use crate::refproxy::{ProxyEvent, RefProxy};
use crate::xml::Element;

/// A target someone else started: s2spec only knows where it listens.
#[derive(Debug, Clone)]
pub struct External {
    pub addr: SocketAddr,
    pub domain: String,
}

pub enum Target {
    Reference(RefProxy),
    External(External),
}

/// Why the harness cannot ask a target for something (a `not-applicable` reason).
pub type Unsupported = String;

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Reference(_) => "reference",
            Target::External(_) => "external",
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Reference(p) => p.addr(),
            Target::External(e) => e.addr,
        }
    }

    /// Makes a local user of the target send `stanza` (the outbound trigger).
    pub fn send_from_local(&self, stanza: Element) -> Result<(), Unsupported> {
        match self {
            Target::Reference(p) => {
                p.send_from_local(stanza);
                Ok(())
            }
            Target::External(_) => Err(
                "an external target offers no way to make a local user send a stanza yet".into(),
            ),
        }
    }

    /// The reference target's own account of what it did, to end waits early.
    pub fn events(&self) -> Option<broadcast::Receiver<ProxyEvent>> {
        match self {
            Target::Reference(p) => Some(p.subscribe()),
            Target::External(_) => None,
        }
    }

    /// Whether the target accepts a configuration: `Err(codes)` when it
    /// refuses it.
    pub fn check_config(&self, partners: &Loaded) -> Result<Result<(), Vec<String>>, Unsupported> {
        match self {
            Target::Reference(p) => Ok(p.check_config(partners)),
            Target::External(_) => {
                Err("an external target cannot be handed a configuration by s2spec".into())
            }
        }
    }

    pub async fn shutdown(self) {
        if let Target::Reference(p) = self {
            p.shutdown().await;
        }
    }
}
