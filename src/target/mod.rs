//! The target under test and what the harness can ask of it. The reference
//! proxy runs in-process and can be driven directly; an external target is
//! only an address and a domain that someone else configured; a managed
//! target is a real server (Prosody, ejabberd, any server with a profile)
//! that s2spec configures, starts and stops itself from its profile
//! (`profile`, docs/profiles.md) with the process lifecycle of `managed`.
//! Nothing here runs cases: that is `run`'s job.

pub mod managed;
pub mod profile;

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
    /// Boxed: a managed server carries far more state than the others.
    Managed(Box<Managed>),
}

/// A managed server (its processes stop as their profile says).
pub struct Managed {
    pub server: managed::ManagedServer,
    /// Why the server cannot be handed a configuration to validate.
    pub config_reason: String,
    /// Its local users, logged in as clients.
    pub users: LocalUsers,
}

/// A managed server's local users as clients of it (SPEC: delivery to a
/// local user is observed at that user's client).
pub enum LocalUsers {
    /// No case of the instance addresses a local user: nobody logged in.
    NotNeeded,
    Online(Box<crate::c2s::Users>),
    /// Provisioning or logging in failed: the cases that need them say why.
    Failed(String),
}

/// How the harness makes a target open its own outbound stream to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundTrigger {
    /// [`Target::send_from_local`]: a local user sends the test stanza.
    LocalUser,
    /// The peer opens an inbound stream, authenticates and sends an XMPP ping
    /// (XEP-0199) to the target's domain; the answer must travel on the
    /// target's own outbound stream to the peer's domain (SPEC §9).
    Ping,
    /// No way known.
    None,
}

/// Why the harness cannot ask a target for something (a `not-applicable` reason).
pub type Unsupported = String;

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Reference(_) => "reference",
            Target::External(_) => "external",
            Target::Managed(_) => "managed",
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Reference(p) => p.addr(),
            Target::External(e) => e.addr,
            Target::Managed(m) => m.server.addr(),
        }
    }

    /// Where the target accepts direct TLS (XEP-0368), or why s2spec knows
    /// of no such port.
    pub fn direct_tls_addr(&self) -> Result<SocketAddr, Unsupported> {
        match self {
            // Like the Lync Edge it models, the proxy speaks STARTTLS only.
            Target::Reference(_) => {
                Err("the reference target serves STARTTLS only, on one port".into())
            }
            Target::External(_) => {
                Err("s2spec knows only the STARTTLS port of an external target".into())
            }
            Target::Managed(m) => m.server.port(profile::S2S_DIRECT_TLS_PORT).ok_or_else(|| {
                format!(
                    "profile {} names no `{}` port (its `ports`)",
                    m.server.name(),
                    profile::S2S_DIRECT_TLS_PORT
                )
            }),
        }
    }

    /// How outbound cases reach this target.
    pub fn outbound_trigger(&self) -> OutboundTrigger {
        match self {
            Target::Reference(_) => OutboundTrigger::LocalUser,
            Target::External(_) => OutboundTrigger::None,
            Target::Managed(_) => OutboundTrigger::Ping,
        }
    }

    /// Whether the probe stanza of an inbound case is an XMPP ping to the
    /// target's domain (answered by the server itself) rather than a message
    /// to a local user (echoed by the reference target's user).
    pub fn probes_with_ping(&self) -> bool {
        matches!(self, Target::Managed(_))
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
            Target::Managed(m) => Err(format!(
                "{} has no local user s2spec can drive; outbound cases use an XMPP ping instead",
                m.server.name()
            )),
        }
    }

    /// The reference target's own account of what it did, to end waits early.
    pub fn events(&self) -> Option<broadcast::Receiver<ProxyEvent>> {
        match self {
            Target::Reference(p) => Some(p.subscribe()),
            Target::External(_) | Target::Managed(_) => None,
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
            Target::Managed(m) => Err(m.config_reason.clone()),
        }
    }

    /// Where a delivery to a local user is observed: `None` at the peer's
    /// server (the reference target's echo user answers the sender);
    /// `Some` at the local users' own clients (a managed server), or why
    /// they are not online.
    pub fn local_users(&self) -> Option<Result<&crate::c2s::Users, &str>> {
        match self {
            Target::Reference(_) | Target::External(_) => None,
            Target::Managed(m) => Some(match &m.users {
                LocalUsers::Online(u) => Ok(u),
                LocalUsers::Failed(why) => Err(why),
                LocalUsers::NotNeeded => Err("no local user was logged in for this instance"),
            }),
        }
    }

    pub async fn shutdown(self) {
        match self {
            Target::Reference(p) => p.shutdown().await,
            Target::External(_) => {}
            Target::Managed(m) => {
                if let LocalUsers::Online(users) = &m.users {
                    users.shutdown().await;
                }
                m.server.shutdown().await
            }
        }
    }
}
