//! Server-to-server name resolution (RFC 6120 §3.2 + XEP-0368) against a
//! given DNS server — in the harness, the mock one. Never reads /etc/hosts or
//! /etc/resolv.conf, and keeps no cache (zones change between cases).
//!
//! # Order of candidates
//! 1. Query `_xmpps-server._tcp.DOMAIN` and `_xmpp-server._tcp.DOMAIN`
//!    (RFC 6120 §3.2.1 step 2; XEP-0368 §3 adds the `xmpps-` lookup).
//! 2. Per service, a single record with target `.` means that service is
//!    "decidedly not available" (RFC 2782, RFC 6120 §3.2.1): it contributes
//!    nothing. If that leaves no usable record while some SRV answer existed,
//!    the result is [`ResolveError::ServiceUnavailable`] and there is no
//!    A/AAAA fallback (RFC 6120 §3.2.1: the fallback of §3.2.2 is for an SRV
//!    lookup that *fails*, not for an explicit "no service").
//! 3. XEP-0368 §3 rule 1: "Both 'xmpp-' and 'xmpps-' records SHOULD be
//!    treated as the same record with regard to connection order as specified
//!    by RFC 2782, in that all priorities and weights are mixed … However,
//!    clients MAY choose to prefer one type of connection over the other." So
//!    both sets are merged and sorted by priority (lowest first); within a
//!    priority, RFC 2782 weight ordering over the merged set. XEP-0368 does
//!    not itself prefer direct TLS; we use its MAY only as the deterministic
//!    tie-break (equal priority *and* weight: `xmpps` first, like Prosody and
//!    ejabberd, which query `xmpps` first).
//! 4. No SRV records at all (NXDOMAIN or an empty answer for both) → the
//!    fallback of RFC 6120 §3.2.2: A/AAAA of DOMAIN itself, port 5269,
//!    STARTTLS (not direct TLS).
//! 5. Each SRV target is resolved to addresses (A then AAAA; CNAMEs followed
//!    by the resolver). Targets without addresses are skipped — the
//!    initiating server would just try the next one — and if none is left the
//!    result is [`ResolveError::NoAddress`] naming the first target.
//!
//! Any other lookup failure (timeout, REFUSED for a name outside every zone,
//! SERVFAIL) ends the resolution with that error: against the mock server it
//! means the harness set up the wrong zones, which must not pass silently.
//!
//! Weight ordering ([`SrvOrder`]): `Deterministic` (the default, for tests)
//! sorts by weight, highest first; `Weighted { seed }` runs RFC 2782's random
//! selection with a seeded generator, so a run can be replayed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use super::zone::{DEFAULT_S2S_PORT, Service, normalize};

/// Why a domain could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The domain does not exist (no SRV, and NXDOMAIN for its A/AAAA).
    #[error("{0}: no such domain (NXDOMAIN)")]
    NxDomain(String),
    /// The domain's SRV records say the service is not offered (target `.`).
    #[error("{0}: XMPP server-to-server service explicitly unavailable (SRV target \".\")")]
    ServiceUnavailable(String),
    /// The host exists but has no A/AAAA address (or none of the targets do).
    #[error("{0}: no A/AAAA address")]
    NoAddress(String),
    /// The DNS server did not answer in time.
    #[error("DNS query timed out")]
    Timeout,
    /// Anything else (REFUSED for a name outside every zone, SERVFAIL, I/O).
    #[error("DNS error: {0}")]
    Other(String),
}

/// One place to connect to, in the order they should be tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The SRV target (or the domain itself on fallback), normalised.
    pub host: String,
    pub port: u16,
    /// Found through `_xmpps-server` (XEP-0368): start TLS immediately.
    pub direct_tls: bool,
    /// Addresses of `host`, A before AAAA.
    pub addrs: Vec<IpAddr>,
}

impl Candidate {
    /// `(addr, port)` pairs to try, in order.
    pub fn socket_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.addrs.iter().map(|ip| SocketAddr::new(*ip, self.port))
    }
}

/// One SRV record as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrvRecord {
    pub service: Service,
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Normalised target; `"."` for "service not available".
    pub target: String,
}

/// How to order SRV records of equal priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrvOrder {
    /// Highest weight first; ties: `xmpps` before `xmpp`, then target, port.
    #[default]
    Deterministic,
    /// RFC 2782 weighted random selection from a seeded generator.
    Weighted { seed: u64 },
}

/// Which transports the resolver may use to reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// UDP, with TCP on truncation (the normal stub behaviour).
    #[default]
    UdpAndTcp,
    Udp,
    Tcp,
}

/// Resolver settings; `Default` suits the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverOptions {
    pub transport: Transport,
    pub order: SrvOrder,
    /// Per-attempt timeout.
    pub timeout: Duration,
    pub attempts: usize,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        Self {
            transport: Transport::UdpAndTcp,
            order: SrvOrder::Deterministic,
            // Loopback answers in microseconds; keep failures quick.
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }
}

/// A resolver bound to one DNS server.
#[derive(Clone)]
pub struct XmppResolver {
    resolver: TokioResolver,
    server: SocketAddr,
    order: SrvOrder,
}

impl std::fmt::Debug for XmppResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppResolver")
            .field("server", &self.server)
            .field("order", &self.order)
            .finish()
    }
}

impl XmppResolver {
    /// A resolver that asks only `server` (UDP and TCP), with default options.
    pub fn new(server: SocketAddr) -> Result<Self, ResolveError> {
        Self::with_options(server, ResolverOptions::default())
    }

    pub fn with_options(
        server: SocketAddr,
        options: ResolverOptions,
    ) -> Result<Self, ResolveError> {
        let mut ns = match options.transport {
            Transport::UdpAndTcp => NameServerConfig::udp_and_tcp(server.ip()),
            Transport::Udp => NameServerConfig::udp(server.ip()),
            Transport::Tcp => NameServerConfig::tcp(server.ip()),
        };
        for connection in &mut ns.connections {
            connection.port = server.port();
        }
        // No domain, no search list: names are always queried as given.
        let config = ResolverConfig::from_name_servers(vec![ns]);
        let mut opts = ResolverOpts::default();
        opts.use_hosts_file = ResolveHosts::Never;
        opts.cache_size = 0;
        opts.timeout = options.timeout;
        opts.attempts = options.attempts.max(1);
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.ndots = 0;
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| ResolveError::Other(e.to_string()))?;
        Ok(Self {
            resolver,
            server,
            order: options.order,
        })
    }

    /// The DNS server this resolver asks.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The underlying hickory resolver, for raw lookups.
    pub fn hickory(&self) -> &TokioResolver {
        &self.resolver
    }

    /// Resolves `domain` for a server-to-server connection; see the module
    /// documentation for the order.
    pub async fn resolve_s2s(&self, domain: &str) -> Result<Vec<Candidate>, ResolveError> {
        let domain = normalize(domain);
        let (xmpps, xmpp) = tokio::join!(
            self.lookup_srv(Service::XmppsServer, &domain),
            self.lookup_srv(Service::XmppServer, &domain),
        );
        let sets = [absent_as_empty(xmpps)?, absent_as_empty(xmpp)?];
        if sets.iter().all(Vec::is_empty) {
            tracing::debug!(target: "s2spec::dns", %domain, "no SRV records: A/AAAA fallback on 5269");
            let addrs = self.lookup_ip(&domain).await?;
            return Ok(vec![Candidate {
                host: domain,
                port: DEFAULT_S2S_PORT,
                direct_tls: false,
                addrs,
            }]);
        }
        let usable: Vec<SrvRecord> = sets.into_iter().flat_map(usable_records).collect();
        if usable.is_empty() {
            return Err(ResolveError::ServiceUnavailable(domain));
        }
        let ordered = order_srv(usable, self.order);

        let mut candidates = Vec::with_capacity(ordered.len());
        let mut first_error = None;
        for srv in ordered {
            match self.lookup_ip(&srv.target).await {
                Ok(addrs) => candidates.push(Candidate {
                    host: srv.target,
                    port: srv.port,
                    direct_tls: srv.service.direct_tls(),
                    addrs,
                }),
                Err(e) => {
                    tracing::debug!(target: "s2spec::dns", host = %srv.target, error = %e, "skipping SRV target");
                    let e = match e {
                        ResolveError::NxDomain(h) => ResolveError::NoAddress(h),
                        other => other,
                    };
                    first_error.get_or_insert(e);
                }
            }
        }
        if candidates.is_empty() {
            return Err(first_error.unwrap_or(ResolveError::NoAddress(domain)));
        }
        Ok(candidates)
    }

    /// The SRV records of one service for `domain`, as received (unordered).
    /// An existing name without SRV records gives `Ok(vec![])`; NXDOMAIN
    /// gives [`ResolveError::NxDomain`] naming the queried SRV name.
    pub async fn lookup_srv(
        &self,
        service: Service,
        domain: &str,
    ) -> Result<Vec<SrvRecord>, ResolveError> {
        let name = service.srv_name(domain);
        match self.resolver.srv_lookup(format!("{name}.")).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) => Some(SrvRecord {
                        service,
                        priority: srv.priority,
                        weight: srv.weight,
                        port: srv.port,
                        target: target_text(&srv.target.to_ascii()),
                    }),
                    _ => None,
                })
                .collect()),
            Err(e) => match classify(e, &name) {
                ResolveError::NoAddress(_) => Ok(Vec::new()),
                other => Err(other),
            },
        }
    }

    /// A and AAAA addresses of `host` (A first), following CNAMEs.
    pub async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let host = normalize(host);
        match self.resolver.lookup_ip(format!("{host}.")).await {
            Ok(lookup) => {
                let addrs: Vec<IpAddr> = lookup.iter().collect();
                if addrs.is_empty() {
                    Err(ResolveError::NoAddress(host))
                } else {
                    Ok(addrs)
                }
            }
            Err(e) => Err(classify(e, &host)),
        }
    }

    /// The CNAME target of `name`, if it has one.
    pub async fn lookup_cname(&self, name: &str) -> Result<Option<String>, ResolveError> {
        let name = normalize(name);
        match self
            .resolver
            .lookup(format!("{name}."), RecordType::CNAME)
            .await
        {
            Ok(lookup) => Ok(lookup.answers().iter().find_map(|r| match &r.data {
                RData::CNAME(c) => Some(normalize(&c.0.to_ascii())),
                _ => None,
            })),
            Err(e) => match classify(e, &name) {
                ResolveError::NoAddress(_) => Ok(None),
                other => Err(other),
            },
        }
    }
}

/// Maps a hickory error for `name`. "No records of this type" comes back as
/// `NoAddress(name)`; callers that expect other types re-map it.
fn classify(e: NetError, name: &str) -> ResolveError {
    if e.is_nx_domain() {
        return ResolveError::NxDomain(name.to_owned());
    }
    if e.is_no_records_found() {
        return ResolveError::NoAddress(name.to_owned());
    }
    match e {
        NetError::Timeout => ResolveError::Timeout,
        NetError::Dns(DnsError::ResponseCode(code)) => {
            ResolveError::Other(format!("{name}: server answered {code}"))
        }
        other => ResolveError::Other(format!("{name}: {other}")),
    }
}

/// For the S2S lookup, NXDOMAIN on an SRV name just means "no SRV records".
fn absent_as_empty(
    r: Result<Vec<SrvRecord>, ResolveError>,
) -> Result<Vec<SrvRecord>, ResolveError> {
    match r {
        Err(ResolveError::NxDomain(_)) => Ok(Vec::new()),
        other => other,
    }
}

/// RFC 2782: a lone `.` target means "not available"; a `.` among other
/// records is meaningless and skipped.
fn usable_records(set: Vec<SrvRecord>) -> Vec<SrvRecord> {
    set.into_iter().filter(|r| r.target != ".").collect()
}

fn target_text(ascii: &str) -> String {
    if ascii == "." {
        ".".to_owned()
    } else {
        normalize(ascii)
    }
}

/// Orders SRV records: priority ascending, then weight ordering within each
/// priority (RFC 2782 "Usage rules"; mixed services per XEP-0368 §3).
pub fn order_srv(mut records: Vec<SrvRecord>, order: SrvOrder) -> Vec<SrvRecord> {
    // Canonical starting order, so the result never depends on the order
    // the records arrived in.
    records.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then(b.service.direct_tls().cmp(&a.service.direct_tls()))
            .then(a.target.cmp(&b.target))
            .then(a.port.cmp(&b.port))
    });
    match order {
        SrvOrder::Deterministic => records,
        SrvOrder::Weighted { seed } => {
            let mut rng = SplitMix64(seed);
            let mut out = Vec::with_capacity(records.len());
            let mut rest = records.as_slice();
            while let Some(first) = rest.first() {
                let end = rest
                    .iter()
                    .position(|r| r.priority != first.priority)
                    .unwrap_or(rest.len());
                out.extend(rfc2782_weighted(rest[..end].to_vec(), &mut rng));
                rest = &rest[end..];
            }
            out
        }
    }
}

/// RFC 2782 selection within one priority: zero weights first, then pick the
/// first record whose running weight sum reaches a random number in
/// `0..=sum`, move it to the output, repeat.
fn rfc2782_weighted(mut group: Vec<SrvRecord>, rng: &mut SplitMix64) -> Vec<SrvRecord> {
    group.sort_by_key(|r| r.weight != 0);
    let mut out = Vec::with_capacity(group.len());
    while !group.is_empty() {
        let sum: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
        let pick = rng.next() % (sum + 1);
        let mut running = 0u64;
        let idx = group
            .iter()
            .position(|r| {
                running += u64::from(r.weight);
                running >= pick
            })
            .unwrap_or(0);
        out.push(group.remove(idx));
    }
    out
}

/// Small seeded generator (SplitMix64): reproducible, no extra dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(service: Service, priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            service,
            priority,
            weight,
            port: 5269,
            target: target.into(),
        }
    }

    #[test]
    fn deterministic_order() {
        let recs = vec![
            srv(Service::XmppServer, 20, 100, "d"),
            srv(Service::XmppServer, 10, 1, "c"),
            srv(Service::XmppServer, 10, 5, "b"),
            srv(Service::XmppsServer, 10, 5, "z"),
        ];
        let out: Vec<_> = order_srv(recs, SrvOrder::Deterministic)
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(out, ["z", "b", "c", "d"]);
    }

    #[test]
    fn weighted_order_keeps_priorities_and_is_reproducible() {
        let recs: Vec<_> = (0..6)
            .map(|i| {
                srv(
                    Service::XmppServer,
                    (i % 2) as u16,
                    i as u16,
                    &format!("t{i}"),
                )
            })
            .collect();
        for seed in 0..50 {
            let a = order_srv(recs.clone(), SrvOrder::Weighted { seed });
            let b = order_srv(recs.clone(), SrvOrder::Weighted { seed });
            assert_eq!(a, b);
            assert_eq!(a.len(), recs.len());
            assert!(a.windows(2).all(|w| w[0].priority <= w[1].priority));
        }
    }

    #[test]
    fn weighted_order_follows_weights() {
        // Weight 0 vs 99: the heavy one must come first almost always.
        let recs = vec![
            srv(Service::XmppServer, 0, 0, "light"),
            srv(Service::XmppServer, 0, 99, "heavy"),
        ];
        let heavy_first = (0..1000)
            .filter(|&seed| {
                order_srv(recs.clone(), SrvOrder::Weighted { seed })[0].target == "heavy"
            })
            .count();
        assert!(heavy_first > 950, "{heavy_first}");
    }
}
