//! The mock authoritative DNS server: a catalogue of in-memory zone handlers
//! (hickory-server) behind a swappable pointer, served over UDP and TCP on the
//! same loopback port.
//!
//! Answers follow hickory's authoritative behaviour:
//! - a name inside a zone with records of another type → NOERROR, no answers;
//! - an unknown name inside a zone → NXDOMAIN (with the zone's SOA);
//! - a name outside every zone → REFUSED (we are not a recursive resolver).
//!   Add an empty parent zone (e.g. `Zone::new("test")`) to get NXDOMAIN for
//!   every unknown `*.test` name instead.
//!
//! Zones can be replaced while the server runs: each change rebuilds a fresh
//! `Catalog` from the current zone handlers and swaps it in; queries already
//! in flight finish against the catalogue they started with.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record as HRecord};
use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

use super::zone::{Record, Zone, ZoneError, ZoneProblem, check_loopback, normalize};

/// Idle timeout for TCP query connections.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection response buffer (hickory's own default size).
const TCP_BUFFER: usize = 32;
/// How many times to look for a port free for both UDP and TCP.
const BIND_ATTEMPTS: usize = 20;

/// Why the mock server could not start or take a zone.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("refusing to listen on {0}: s2spec only uses loopback addresses")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr} ({proto}): {source}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: io::Error,
    },
    #[error(transparent)]
    Zone(#[from] ZoneError),
}

/// The zones currently served, and the catalogue built from them.
struct State {
    zones: BTreeMap<String, Zone>,
    handlers: BTreeMap<String, Arc<dyn ZoneHandler>>,
}

/// Shared between the request handler (readers) and `MockDns` (writer).
struct Shared {
    state: RwLock<State>,
    catalog: RwLock<Arc<Catalog>>,
    serial: AtomicU32,
    /// Every query in arrival order, so a case can tell which names its
    /// target asked for (the oldest are dropped past [`QUERY_LOG_LIMIT`]).
    queries: Mutex<VecDeque<Query>>,
}

/// How many queries the log keeps when nobody takes them.
const QUERY_LOG_LIMIT: usize = 100_000;

/// One query as received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Query {
    /// The name asked for, normalised (lower case, no trailing dot).
    pub name: String,
    /// `SRV`, `A`, `AAAA`, ...
    #[serde(rename = "type")]
    pub rtype: String,
}

impl Shared {
    fn current(&self) -> Arc<Catalog> {
        // A poisoned lock only means a writer panicked mid-swap; the Arc
        // inside is still a complete catalogue.
        match self.catalog.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn rebuild(&self, state: &State) {
        let mut catalog = Catalog::new();
        for (origin, handler) in &state.handlers {
            if let Ok(name) = Name::from_str(&format!("{origin}.")) {
                catalog.upsert(LowerName::new(&name), vec![Arc::clone(handler)]);
            }
        }
        let catalog = Arc::new(catalog);
        match self.catalog.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }
}

/// hickory request handler: delegates to the current catalogue and logs one
/// line per query.
struct QueryLog {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl RequestHandler for QueryLog {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let catalog = self.shared.current();
        let info = catalog
            .handle_request::<R, T>(request, response_handle)
            .await;
        if let Ok(mut log) = self.shared.queries.lock() {
            for q in request.queries.queries() {
                if log.len() >= QUERY_LOG_LIMIT {
                    log.pop_front();
                }
                log.push_back(Query {
                    name: normalize(&q.name().to_string()),
                    rtype: q.query_type().to_string(),
                });
            }
        }
        for q in request.queries.queries() {
            tracing::debug!(
                target: "s2spec::dns::query",
                proto = %request.protocol(),
                "{} {} -> {:?} answers={}",
                q.name(),
                q.query_type(),
                info.response_code,
                info.counts().answers,
            );
        }
        info
    }
}

/// A running mock DNS server. Dropping it stops the listeners (hickory's
/// `Server` aborts its tasks on drop); [`MockDns::shutdown`] stops gracefully.
pub struct MockDns {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Server<QueryLog>,
}

impl std::fmt::Debug for MockDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockDns")
            .field("addr", &self.addr)
            .field("zones", &self.origins())
            .finish()
    }
}

impl MockDns {
    /// Starts serving `zones` on `addr` (UDP and TCP, same port). `addr`
    /// must be loopback; port 0 picks a port free for both protocols.
    pub async fn start(
        addr: SocketAddr,
        zones: impl IntoIterator<Item = Zone>,
    ) -> Result<Self, ServerError> {
        if check_loopback(addr.ip()).is_err() {
            return Err(ServerError::NotLoopback(addr));
        }
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                zones: BTreeMap::new(),
                handlers: BTreeMap::new(),
            }),
            catalog: RwLock::new(Arc::new(Catalog::new())),
            serial: AtomicU32::new(1),
            queries: Mutex::new(VecDeque::new()),
        });
        let initial: Vec<Zone> = zones.into_iter().collect();
        for zone in &initial {
            zone.validate()?;
        }
        let (udp, tcp) = bind_pair(addr).await?;
        let local = udp.local_addr().map_err(|source| ServerError::Bind {
            addr,
            proto: "udp",
            source,
        })?;
        let mut server = Server::new(QueryLog {
            shared: Arc::clone(&shared),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, TCP_BUFFER);
        let dns = Self {
            addr: local,
            shared,
            server,
        };
        for zone in initial {
            dns.upsert_zone(zone)?;
        }
        tracing::debug!(target: "s2spec::dns", addr = %local, "mock DNS listening (udp+tcp)");
        Ok(dns)
    }

    /// The bound address (UDP and TCP share it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds `zone`, or replaces the zone with the same origin. Visible to the
    /// next query.
    pub fn upsert_zone(&self, zone: Zone) -> Result<(), ZoneError> {
        zone.validate()?;
        let serial = self.shared.serial.fetch_add(1, Ordering::Relaxed);
        let handler = build_handler(&zone, serial)?;
        let mut state = self.write_state();
        state.handlers.insert(zone.origin.clone(), handler);
        state.zones.insert(zone.origin.clone(), zone);
        self.shared.rebuild(&state);
        Ok(())
    }

    /// Removes the zone with this origin; returns it if it was served.
    pub fn remove_zone(&self, origin: &str) -> Option<Zone> {
        let origin = normalize(origin);
        let mut state = self.write_state();
        state.handlers.remove(&origin);
        let removed = state.zones.remove(&origin);
        self.shared.rebuild(&state);
        removed
    }

    /// A copy of the zone with this origin.
    pub fn zone(&self, origin: &str) -> Option<Zone> {
        self.read_state(|s| s.zones.get(&normalize(origin)).cloned())
    }

    /// Removes and returns, in arrival order, the logged queries for
    /// `domain` and the names under it (`_xmpp-server._tcp.DOMAIN`, ...).
    pub fn take_queries(&self, domain: &str) -> Vec<Query> {
        let domain = normalize(domain);
        let suffix = format!(".{domain}");
        let mut log = match self.shared.queries.lock() {
            Ok(log) => log,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (mine, rest): (VecDeque<Query>, VecDeque<Query>) = log
            .drain(..)
            .partition(|q| q.name == domain || q.name.ends_with(&suffix));
        *log = rest;
        mine.into()
    }

    /// Origins of all served zones, sorted.
    pub fn origins(&self) -> Vec<String> {
        self.read_state(|s| s.zones.keys().cloned().collect())
    }

    /// Stops accepting queries and waits for the listeners to finish.
    pub async fn shutdown(mut self) {
        // Bounded: a stuck listener must not hang the harness; drop aborts it.
        let _ =
            tokio::time::timeout(Duration::from_secs(5), self.server.shutdown_gracefully()).await;
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        match self.shared.state.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn read_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.shared.state.read() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

/// Binds UDP first (port 0 lets the OS choose), then TCP on the same port;
/// if that TCP port is taken, starts over with a new UDP port.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), ServerError> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr,
                proto: "udp",
                source,
            })?;
        let local = udp.local_addr().map_err(|source| ServerError::Bind {
            addr,
            proto: "udp",
            source,
        })?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => {
                last = Some(ServerError::Bind {
                    addr: local,
                    proto: "tcp",
                    source: e,
                });
            }
            Err(source) => {
                return Err(ServerError::Bind {
                    addr: local,
                    proto: "tcp",
                    source,
                });
            }
        }
    }
    Err(last.unwrap_or_else(|| ServerError::Bind {
        addr,
        proto: "tcp",
        source: io::Error::from(io::ErrorKind::AddrInUse),
    }))
}

/// Converts a plain-data zone into a hickory in-memory zone handler, adding
/// the SOA that hickory needs for authoritative (negative) answers.
fn build_handler(zone: &Zone, serial: u32) -> Result<Arc<dyn ZoneHandler>, ZoneError> {
    let err = |m: ZoneProblem| ZoneError::new(&zone.origin, m);
    let origin = fqdn(&zone.origin).map_err(err)?;
    let mut handler: InMemoryZoneHandler<TokioRuntimeProvider> =
        InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(
        fqdn(&format!("ns.{}", zone.origin)).map_err(err)?,
        fqdn(&format!("hostmaster.{}", zone.origin)).map_err(err)?,
        serial,
        3600,
        600,
        86400,
        // Negative-caching TTL: short, the harness changes zones per case.
        1,
    );
    let records = std::iter::once(Ok(HRecord::from_rdata(origin, zone.ttl, RData::SOA(soa))))
        .chain(zone.records.iter().map(|r| to_hickory(r, zone.ttl)));
    for record in records {
        let record = record.map_err(err)?;
        let text = record.to_string();
        if !handler.upsert_mut(record, serial) {
            return Err(err(ZoneProblem::NotAccepted(text)));
        }
    }
    Ok(Arc::new(handler))
}

fn to_hickory(record: &Record, ttl: u32) -> Result<HRecord, ZoneProblem> {
    let owner = fqdn(&record.owner())?;
    let rdata = match record {
        Record::Srv {
            priority,
            weight,
            port,
            target,
            ..
        } => RData::SRV(SRV::new(*priority, *weight, *port, fqdn(target)?)),
        Record::A { address, .. } => RData::A(A(*address)),
        Record::Aaaa { address, .. } => RData::AAAA(AAAA(*address)),
        Record::Cname { target, .. } => RData::CNAME(CNAME(fqdn(target)?)),
    };
    Ok(HRecord::from_rdata(owner, ttl, rdata))
}

/// `name` as an absolute hickory name (`"."` is the root).
fn fqdn(name: &str) -> Result<Name, ZoneProblem> {
    if name == "." {
        return Ok(Name::root());
    }
    Name::from_ascii(format!("{name}.")).map_err(|e| ZoneProblem::Hickory {
        name: name.to_owned(),
        source: e,
    })
}
