//! Where a case's peer server listens and how the mock DNS points at it, per
//! DNS variant (SPEC §6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::dns::{DEFAULT_S2S_PORT, Service, Zone};
use crate::oracle::DnsVariant;
use crate::peer::{PeerEnv, PeerError, PeerProfile, PeerServer, TargetInfo};

/// A peer server placed in DNS.
pub struct Placed {
    pub server: PeerServer,
    /// The zone to add for the peer's domain (`None`: the domain must not exist).
    pub zone: Option<Zone>,
    /// Dead ports stay reserved while the case runs (see [`DeadPort`]).
    _dead: Option<DeadPort>,
}

/// A port where nothing listens: bound but never listening, so connections
/// are refused, and no other case can take the port meanwhile (a port that
/// is merely released could be reused by a concurrent case's listener).
struct DeadPort {
    _socket: tokio::net::TcpSocket,
    port: u16,
}

/// The proxy FQDN a partner of this domain is configured with under the
/// `proxy-fqdn` variant.
pub fn proxy_fqdn(domain: &str) -> String {
    format!("proxy.{domain}")
}

/// Starts the peer server where `variant` says the peer's domain leads, and
/// builds the matching zone.
pub async fn place(
    env: &PeerEnv,
    profile: &PeerProfile,
    target: TargetInfo,
    variant: DnsVariant,
) -> Result<Placed, PlaceError> {
    let domain = profile.domain.clone();
    let start =
        |bind: SocketAddr| PeerServer::start(env.clone(), profile.clone(), bind, target.clone());
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut dead = None;
    let (server, zone) = match variant {
        DnsVariant::Srv => {
            let server = start(SocketAddr::new(loopback, 0)).await?;
            let zone = Zone::xmpp_peer(&domain, loopback, server.addr().port());
            (server, Some(zone))
        }
        DnsVariant::Nxdomain => {
            let server = start(SocketAddr::new(loopback, 0)).await?;
            (server, None)
        }
        DnsVariant::SrvToDeadPort | DnsVariant::AuthoritativeUnreachable => {
            let server = start(SocketAddr::new(loopback, 0)).await?;
            let port = dead.insert(dead_port()?).port;
            let zone = Zone::xmpp_peer(&domain, loopback, port);
            (server, Some(zone))
        }
        DnsVariant::SrvMultiple => {
            let server = start(SocketAddr::new(loopback, 0)).await?;
            let live = server.addr().port();
            let port = dead.insert(dead_port()?).port;
            let zone = Zone::new(&domain)
                .with_srv(Service::XmppServer, &domain, 10, 0, port, &domain)
                .with_srv(Service::XmppServer, &domain, 20, 0, live, &domain)
                .with_address(&domain, loopback);
            (server, Some(zone))
        }
        DnsVariant::AaaaOnly => {
            let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
            let server = start(SocketAddr::new(v6, 0)).await?;
            let zone = Zone::xmpp_peer(&domain, v6, server.addr().port());
            (server, Some(zone))
        }
        DnsVariant::SrvDot => {
            // "." says no service; the A record on 5269 leads to the peer
            // anyway, so a target that falls back (RFC 6120 §3.2.2) is seen.
            let server = start_on_5269(start).await?;
            let zone = Zone::service_unavailable(&domain).with_address(&domain, server.addr().ip());
            (server, Some(zone))
        }
        DnsVariant::XmppsToStarttlsPort => {
            // Both services lead to the one STARTTLS listener; `xmpps` sorts
            // first, so a direct-TLS target meets a plaintext port first and
            // must go on with `_xmpp-server` (RFC 6120 §3.2.1 step 7).
            let server = start(SocketAddr::new(loopback, 0)).await?;
            let port = server.addr().port();
            let zone = Zone::new(&domain)
                .with_srv(Service::XmppsServer, &domain, 0, 0, port, &domain)
                .with_srv(Service::XmppServer, &domain, 10, 0, port, &domain)
                .with_address(&domain, loopback);
            (server, Some(zone))
        }
        DnsVariant::AOnly => {
            let server = start_on_5269(start).await?;
            let zone = Zone::a_only(&domain, server.addr().ip());
            (server, Some(zone))
        }
        DnsVariant::ProxyFqdn => {
            // SRV leads to a dead port: only a target that honours the proxy
            // FQDN (and ignores SRV) reaches the peer.
            let server = start_on_5269(start).await?;
            let fqdn = proxy_fqdn(&domain);
            let port = dead.insert(dead_port()?).port;
            let zone =
                Zone::xmpp_peer(&domain, loopback, port).with_address(&fqdn, server.addr().ip());
            (server, Some(zone))
        }
    };
    Ok(Placed {
        server,
        zone,
        _dead: dead,
    })
}

/// Why a peer server could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("cannot reserve a dead port: {0}")]
    DeadPort(#[source] std::io::Error),
    #[error(transparent)]
    Loopback(#[from] NoFreeLoopback<PeerError>),
}

/// Every loopback address tried for a fixed port was taken; `last` is the
/// last address's error.
#[derive(Debug, thiserror::Error)]
#[error("no free loopback address for port {port}: {last}")]
pub struct NoFreeLoopback<E: std::error::Error + 'static> {
    pub port: u16,
    #[source]
    pub last: E,
}

fn dead_port() -> Result<DeadPort, PlaceError> {
    let fail = PlaceError::DeadPort;
    let socket = tokio::net::TcpSocket::new_v4().map_err(fail)?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
        .map_err(fail)?;
    let port = socket.local_addr().map_err(fail)?.port();
    Ok(DeadPort {
        _socket: socket,
        port,
    })
}

/// Binds port 5269 on a loopback address of its own (A-record fallback and
/// proxy FQDNs use the standard port, RFC 6120 §3.2.2).
async fn start_on_5269<F, Fut>(start: F) -> Result<PeerServer, NoFreeLoopback<PeerError>>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<PeerServer, PeerError>>,
{
    on_own_loopback(DEFAULT_S2S_PORT, start).await
}

/// Starts something on a fixed `port` of a loopback address of its own,
/// trying further addresses when one is taken.
pub(crate) async fn on_own_loopback<T, E, F, Fut>(
    port: u16,
    start: F,
) -> Result<T, NoFreeLoopback<E>>
where
    E: std::error::Error + 'static,
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    const ATTEMPTS: usize = 32;
    let mut tries = 1;
    loop {
        let ip = next_loopback();
        match start(SocketAddr::new(IpAddr::V4(ip), port)).await {
            Ok(server) => return Ok(server),
            Err(last) if tries == ATTEMPTS => return Err(NoFreeLoopback { port, last }),
            Err(_) => tries += 1,
        }
    }
}

/// Distinct 127.x.y.z addresses, starting at a random offset so that
/// concurrent runs rarely collide (collisions are retried anyway).
fn next_loopback() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static START: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        // Only collisions between runs depend on it, and they are retried:
        // without the RNG every run starts at the first address.
        crate::random::bytes::<4>().map_or(0, |b| u32::from_le_bytes(b) % 0x3f_0000)
    });
    let n = start + NEXT.fetch_add(1, Ordering::Relaxed);
    // 127.64.0.1 – 127.127.255.254: clear of 127.0.0.1 and common 127.0.x.y use.
    let n = n % 0x3f_ffff;
    let (a, b, c) = (64 + (n >> 16) as u8, (n >> 8) as u8, (n & 0xff) as u8);
    Ipv4Addr::new(127, a, b, c.clamp(1, 254))
}
