//! The reference federation proxy: a small, real XMPP server-to-server proxy
//! that honours partner configurations (SPEC §4.1, §4.2, §7, §8). It is the
//! embedded default target. It depends on the protocol pieces (`xml`,
//! `stream`, `tls`, `dialback`, `dns`) and the partner model, never on the
//! oracle, the peers or the scenarios: it may not peek at expected answers.
//!
//! Layout: `policy` decides (pure), `fault` names the deviations, `inbound`
//! serves streams partners open, `outbound` opens streams to partners and
//! queues stanzas meanwhile, `connect` reaches a partner's server (DNS, TCP,
//! STARTTLS) for both outbound streams and dialback verification, `local`
//! plays the local users.

mod connect;
pub mod fault;
mod inbound;
mod local;
mod outbound;
pub mod policy;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio::task::JoinSet;

pub use fault::{Fault, Faults};

use crate::dialback::Secret;
use crate::dns::XmppResolver;
use crate::partner::{
    Diagnostic, Loaded, Method, Negotiation, Partner, PartnerSet, PartnerType, Setting, Severity,
    validate,
};
use crate::pki::Leaf;
use crate::xml::{Element, Limits};

/// Deadlines and limits of the proxy.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A stream must be authenticated within this time.
    pub negotiation: Duration,
    /// An authenticated stream with no traffic is closed after this time.
    pub idle: Duration,
    /// Waiting for one answer of the other side (features, proceed, result).
    pub step: Duration,
    /// Connecting to a partner's server.
    pub connect: Duration,
    /// Interval of whitespace keep-alives on idle outbound streams of partners
    /// with `keep-alive = true`.
    pub keepalive: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            negotiation: Duration::from_secs(30),
            idle: Duration::from_secs(300),
            step: Duration::from_secs(10),
            connect: Duration::from_secs(5),
            keepalive: Duration::from_secs(60),
        }
    }
}

/// Everything the proxy needs to run.
pub struct Config {
    /// The partner set, as loaded (validated again on start).
    pub partners: Loaded,
    /// Where to listen; use port 0 to let the system choose.
    pub listen: SocketAddr,
    /// The DNS server partners are resolved through (the mock DNS in tests).
    pub dns: SocketAddr,
    /// Roots trusted for partners' certificates.
    pub trust: Arc<RootCertStore>,
    /// The proxy's own certificate per local domain.
    pub certs: HashMap<String, Arc<Leaf>>,
    pub faults: Faults,
    pub timeouts: Timeouts,
    pub limits: Limits,
    /// Maximum simultaneous inbound connections, all partners together.
    pub max_connections: usize,
    /// The dialback secret; random when `None`.
    pub secret: Option<Secret>,
}

/// Why the proxy did not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the partner set has validation errors")]
    Invalid(Vec<Diagnostic>),
    #[error("no certificate for local domain {0}")]
    MissingCertificate(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot use the DNS server: {0}")]
    Dns(String),
    #[error("no dialback secret: {0}")]
    Random(String),
}

/// What the proxy did that a test can observe without a network capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ProxyEvent {
    /// A remote domain was authenticated on an inbound stream.
    InboundAuthenticated { remote: String, method: Method },
    /// An inbound stream or dialback request was refused.
    InboundRefused {
        remote: Option<String>,
        reason: String,
    },
    /// A stanza reached a local user.
    Delivered {
        to: String,
        from: String,
        stanza: String,
    },
    /// A stanza for a local user was refused (partner type, unknown user).
    NotDelivered {
        to: String,
        from: String,
        reason: String,
    },
    /// An outbound stream to a partner was authenticated.
    OutboundAuthenticated { remote: String, method: Method },
    /// An outbound stream could not be established.
    OutboundFailed { remote: String, reason: String },
    /// A stanza from a local user could not be sent.
    Bounced {
        to: String,
        stanza: String,
        reason: String,
    },
}

/// The settings a reload replaces.
struct Settings {
    partners: PartnerSet,
    faults: Faults,
    /// The stand-in configuration for strangers under `accept-unknown-domain`.
    stand_in: Partner,
}

/// State shared by every connection of one proxy.
pub(crate) struct Shared {
    settings: RwLock<Arc<Settings>>,
    trust: Arc<RootCertStore>,
    certs: HashMap<String, Arc<Leaf>>,
    resolver: XmppResolver,
    secret: Secret,
    timeouts: Timeouts,
    limits: Limits,
    /// Outbound stanza queues per (local domain, remote domain).
    links: Mutex<HashMap<(String, String), mpsc::UnboundedSender<Element>>>,
    /// Inbound streams per partner (primary domain), for connection limits.
    inbound_streams: Mutex<HashMap<String, usize>>,
    connection_slots: Arc<Semaphore>,
    events: Mutex<Vec<ProxyEvent>>,
    events_tx: broadcast::Sender<ProxyEvent>,
    /// (local bare JID, remote bare JID) pairs the local user asked to subscribe to.
    authorisations: Mutex<HashSet<(String, String)>>,
    tasks: Mutex<JoinSet<()>>,
    next_stream: AtomicU32,
}

impl Shared {
    fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn record(&self, event: ProxyEvent) {
        tracing::debug!(?event, "proxy event");
        lock(&self.events).push(event.clone());
        let _ = self.events_tx.send(event);
    }

    /// Runs `fut` as a task of this proxy: shutdown aborts it.
    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = lock(&self.tasks);
        // Reap finished tasks so the set does not grow with every connection.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(fut);
    }

    fn stream_no(&self) -> u32 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    fn cert_for(&self, domain: &str) -> Option<Arc<Leaf>> {
        self.certs.get(&domain.to_ascii_lowercase()).cloned()
    }
}

/// A lock that survives a panicking holder: the data are plain collections
/// that stay consistent between statements.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running reference proxy.
pub struct RefProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl RefProxy {
    /// Validates the partner set, binds the listener and starts serving.
    pub async fn start(config: Config) -> Result<RefProxy, StartError> {
        let settings = settings_from(&config.partners, config.faults.clone())?;
        for domain in &settings.partners.local.domains {
            if !config.certs.contains_key(domain) {
                return Err(StartError::MissingCertificate(domain.clone()));
            }
        }
        let resolver = XmppResolver::new(config.dns).map_err(|e| StartError::Dns(e.to_string()))?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Listen {
                addr: config.listen,
                reason: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| StartError::Listen {
            addr: config.listen,
            reason: e.to_string(),
        })?;
        let (events_tx, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            settings: RwLock::new(Arc::new(settings)),
            trust: config.trust,
            certs: config
                .certs
                .into_iter()
                .map(|(d, c)| (d.to_ascii_lowercase(), c))
                .collect(),
            resolver,
            secret: match config.secret {
                Some(secret) => secret,
                None => Secret::random().map_err(|e| StartError::Random(e.to_string()))?,
            },
            timeouts: config.timeouts,
            limits: config.limits,
            links: Mutex::default(),
            inbound_streams: Mutex::default(),
            connection_slots: Arc::new(Semaphore::new(
                config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
            events: Mutex::default(),
            events_tx,
            authorisations: Mutex::default(),
            tasks: Mutex::new(JoinSet::new()),
            next_stream: AtomicU32::new(1),
        });
        let acceptor = shared.clone();
        shared.spawn(inbound::accept_loop(acceptor, listener));
        tracing::info!(%addr, "reference proxy listening");
        Ok(RefProxy { addr, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the partner set; an invalid one is refused and the old one kept.
    pub fn reload(&self, partners: &Loaded) -> Result<(), StartError> {
        let faults = self.shared.settings().faults.clone();
        let settings = settings_from(partners, faults)?;
        *self
            .shared
            .settings
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(settings);
        Ok(())
    }

    /// Whether this proxy would accept `partners`, without applying it: the
    /// error codes when it would refuse (SPEC §3).
    pub fn check_config(&self, partners: &Loaded) -> Result<(), Vec<String>> {
        match settings_from(partners, Faults::none()) {
            Ok(_) => Ok(()),
            Err(StartError::Invalid(d)) => Err(d.into_iter().map(|d| d.code).collect()),
            Err(other) => Err(vec![other.to_string()]),
        }
    }

    /// Makes a local user send a stanza (its `from` must be a local JID): the
    /// outbound trigger. A presence subscription request also authorises the
    /// remote user for `public-unverified` partners (SPEC §7).
    pub fn send_from_local(&self, stanza: Element) {
        local::send_from_local(&self.shared, stanza);
    }

    /// Everything observed so far.
    pub fn events(&self) -> Vec<ProxyEvent> {
        lock(&self.shared.events).clone()
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProxyEvent> {
        self.shared.events_tx.subscribe()
    }

    /// Stops accepting and aborts every connection.
    pub async fn shutdown(self) {
        let mut tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        tasks.shutdown().await;
    }
}

impl Drop for RefProxy {
    fn drop(&mut self) {
        lock(&self.shared.tasks).abort_all();
    }
}

fn settings_from(partners: &Loaded, faults: Faults) -> Result<Settings, StartError> {
    let errors: Vec<Diagnostic> = validate(partners)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(StartError::Invalid(errors));
    }
    Ok(Settings {
        partners: partners.set.clone(),
        faults,
        stand_in: Partner {
            domain: "unknown.invalid".into(),
            description: Some("stand-in for accept-unknown-domain".into()),
            additional_domains: vec![],
            partner_type: PartnerType::Federated,
            negotiation: Negotiation::new(Setting::Optional, Setting::Optional, true),
            proxy_fqdn: None,
            connection_limit: None,
            keep_alive: false,
        },
    })
}
