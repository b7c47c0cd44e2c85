//! Plain-data zones: what the mock server serves, independent of hickory.
//!
//! A [`Zone`] is an origin plus a list of [`Record`]s. Names are written as
//! ordinary domain names (`xmpp.fabrikam.test`, a trailing dot is optional)
//! and are compared case-insensitively. Every record name must lie at or
//! below the zone origin; SRV and CNAME *targets* may point anywhere.
//! Addresses must be loopback: s2spec never sends traffic off the machine.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Port used for server-to-server connections when no SRV record exists
/// (RFC 6120 §3.2.2).
pub const DEFAULT_S2S_PORT: u16 = 5269;

/// TTL given to records built in code; short, since the data changes per case.
pub const DEFAULT_TTL: u32 = 60;

/// The two S2S SRV services: `_xmpp-server._tcp` (RFC 6120 §3.2.1, STARTTLS)
/// and `_xmpps-server._tcp` (XEP-0368, direct TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// `_xmpp-server._tcp`: plain TCP, then STARTTLS.
    XmppServer,
    /// `_xmpps-server._tcp`: TLS from the first byte.
    XmppsServer,
}

impl Service {
    /// The service label without underscore, as written in zone files.
    pub fn label(self) -> &'static str {
        match self {
            Self::XmppServer => "xmpp-server",
            Self::XmppsServer => "xmpps-server",
        }
    }

    /// Parses `xmpp-server` / `xmpps-server` (a leading underscore is allowed).
    pub fn from_label(label: &str) -> Option<Self> {
        match label.trim_start_matches('_').to_ascii_lowercase().as_str() {
            "xmpp-server" => Some(Self::XmppServer),
            "xmpps-server" => Some(Self::XmppsServer),
            _ => None,
        }
    }

    /// Whether a connection found through this service starts with TLS.
    pub fn direct_tls(self) -> bool {
        matches!(self, Self::XmppsServer)
    }

    /// The owner name of this service's SRV records for `domain`,
    /// e.g. `_xmpp-server._tcp.fabrikam.test` (no trailing dot).
    pub fn srv_name(self, domain: &str) -> String {
        format!("_{}._tcp.{}", self.label(), normalize(domain))
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One resource record. Names are stored normalised (lower case, no trailing
/// dot); an SRV `target` of `"."` means "service decidedly not available"
/// (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `_SERVICE._tcp.DOMAIN SRV priority weight port target`.
    Srv {
        service: Service,
        domain: String,
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// `NAME A address`.
    A { name: String, address: Ipv4Addr },
    /// `NAME AAAA address`.
    Aaaa { name: String, address: Ipv6Addr },
    /// `NAME CNAME target`.
    Cname { name: String, target: String },
}

impl Record {
    /// An SRV record for `service` at `domain`.
    pub fn srv(
        service: Service,
        domain: &str,
        priority: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> Self {
        Self::Srv {
            service,
            domain: normalize(domain),
            priority,
            weight,
            port,
            target: normalize_target(target),
        }
    }

    /// An A or AAAA record, depending on the address family.
    pub fn address(name: &str, address: IpAddr) -> Self {
        match address {
            IpAddr::V4(address) => Self::A {
                name: normalize(name),
                address,
            },
            IpAddr::V6(address) => Self::Aaaa {
                name: normalize(name),
                address,
            },
        }
    }

    /// A CNAME record `name → target`.
    pub fn cname(name: &str, target: &str) -> Self {
        Self::Cname {
            name: normalize(name),
            target: normalize(target),
        }
    }

    /// The owner name of the record (for SRV: `_service._tcp.domain`).
    pub fn owner(&self) -> String {
        match self {
            Self::Srv {
                service, domain, ..
            } => service.srv_name(domain),
            Self::A { name, .. } | Self::Aaaa { name, .. } | Self::Cname { name, .. } => {
                name.clone()
            }
        }
    }

    /// The record type mnemonic, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Srv { .. } => "SRV",
            Self::A { .. } => "A",
            Self::Aaaa { .. } => "AAAA",
            Self::Cname { .. } => "CNAME",
        }
    }
}

/// A zone: an origin and its records. The server adds the SOA itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Zone apex, normalised (lower case, no trailing dot).
    pub origin: String,
    /// TTL for every record in the zone.
    pub ttl: u32,
    pub records: Vec<Record>,
}

impl Zone {
    /// An empty zone. Names under it that have no records answer NXDOMAIN,
    /// so an empty parent zone (e.g. `test`) makes unknown peers NXDOMAIN
    /// instead of REFUSED.
    pub fn new(origin: &str) -> Self {
        Self {
            origin: normalize(origin),
            ttl: DEFAULT_TTL,
            records: Vec::new(),
        }
    }

    /// The usual peer: `_xmpp-server._tcp.DOMAIN SRV 0 0 PORT DOMAIN` and
    /// `DOMAIN A/AAAA IP`.
    pub fn xmpp_peer(domain: &str, ip: IpAddr, port: u16) -> Self {
        Self::new(domain)
            .with_srv(Service::XmppServer, domain, 0, 0, port, domain)
            .with_address(domain, ip)
    }

    /// A direct-TLS peer (XEP-0368): `_xmpps-server._tcp.DOMAIN SRV 0 0 PORT
    /// DOMAIN` and `DOMAIN A/AAAA IP`.
    pub fn xmpps_peer(domain: &str, ip: IpAddr, port: u16) -> Self {
        Self::new(domain)
            .with_srv(Service::XmppsServer, domain, 0, 0, port, domain)
            .with_address(domain, ip)
    }

    /// No SRV at all: resolution falls back to `DOMAIN A/AAAA IP` on 5269.
    pub fn a_only(domain: &str, ip: IpAddr) -> Self {
        Self::new(domain).with_address(domain, ip)
    }

    /// `_xmpp-server._tcp.DOMAIN SRV 0 0 0 .`: the service is decidedly not
    /// available and resolution must not fall back to A/AAAA.
    pub fn service_unavailable(domain: &str) -> Self {
        Self::new(domain).with_srv(Service::XmppServer, domain, 0, 0, 0, ".")
    }

    /// Appends a record.
    pub fn with(mut self, record: Record) -> Self {
        self.records.push(record);
        self
    }

    /// Appends an SRV record (see [`Record::srv`]).
    pub fn with_srv(
        self,
        service: Service,
        domain: &str,
        priority: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> Self {
        self.with(Record::srv(service, domain, priority, weight, port, target))
    }

    /// Appends an A or AAAA record.
    pub fn with_address(self, name: &str, ip: IpAddr) -> Self {
        self.with(Record::address(name, ip))
    }

    /// Appends a CNAME record.
    pub fn with_cname(self, name: &str, target: &str) -> Self {
        self.with(Record::cname(name, target))
    }

    /// Checks names, addresses and record placement; the server refuses a
    /// zone that fails this.
    pub fn validate(&self) -> Result<(), ZoneError> {
        check_name(&self.origin).map_err(|e| ZoneError::new(&self.origin, e))?;
        for record in &self.records {
            self.validate_record(record)?;
        }
        // RFC 1034 §3.6.2: a CNAME owner has no other data.
        for record in &self.records {
            if let Record::Cname { name, .. } = record {
                let others = self
                    .records
                    .iter()
                    .filter(|r| r.owner() == *name && *r != record)
                    .count();
                if others > 0 {
                    return Err(ZoneError::new(
                        &self.origin,
                        ZoneProblem::CnameOwner(name.clone()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks one record against this zone (used by the zone-file parser too).
    pub fn validate_record(&self, record: &Record) -> Result<(), ZoneError> {
        let err = |m: ZoneProblem| ZoneError::new(&self.origin, m);
        let owner = record.owner();
        match record {
            Record::Srv { domain, target, .. } => {
                check_name(domain).map_err(|e| err(e.into()))?;
                if target != "." {
                    check_name(target).map_err(|e| err(e.into()))?;
                }
            }
            Record::A { name, address } => {
                check_name(name).map_err(|e| err(e.into()))?;
                check_loopback(IpAddr::V4(*address)).map_err(|e| err(e.into()))?;
            }
            Record::Aaaa { name, address } => {
                check_name(name).map_err(|e| err(e.into()))?;
                check_loopback(IpAddr::V6(*address)).map_err(|e| err(e.into()))?;
            }
            Record::Cname { name, target } => {
                check_name(name).map_err(|e| err(e.into()))?;
                check_name(target).map_err(|e| err(e.into()))?;
            }
        }
        if !in_zone(&owner, &self.origin) {
            return Err(err(ZoneProblem::OutsideZone {
                kind: record.kind(),
                owner,
                origin: self.origin.clone(),
            }));
        }
        Ok(())
    }
}

/// An invalid zone.
#[derive(Debug, Clone, thiserror::Error)]
#[error("zone {origin}: {problem}")]
pub struct ZoneError {
    pub origin: String,
    pub problem: ZoneProblem,
}

impl ZoneError {
    pub(crate) fn new(origin: &str, problem: impl Into<ZoneProblem>) -> Self {
        Self {
            origin: origin.to_owned(),
            problem: problem.into(),
        }
    }
}

/// What is wrong with a zone (the part of [`ZoneError`] after the origin).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ZoneProblem {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Address(#[from] NotLoopback),
    #[error("{0}: a CNAME owner cannot have other records")]
    CnameOwner(String),
    #[error("{kind} record {owner} is outside the zone {origin}")]
    OutsideZone {
        kind: &'static str,
        owner: String,
        origin: String,
    },
    /// hickory refused a name or record the checks above let through.
    #[error("invalid name {name:?}: {source}")]
    Hickory {
        name: String,
        #[source]
        source: hickory_proto::ProtoError,
    },
    #[error("record not accepted: {0}")]
    NotAccepted(String),
}

/// A domain name that breaks the syntax [`check_name`] enforces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty domain name")]
    Empty,
    #[error("domain name longer than 253 characters: {0}")]
    TooLong(String),
    #[error("invalid domain name {name:?} (label {label:?})")]
    BadLabel { name: String, label: String },
}

/// An address outside 127.0.0.0/8 and ::1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("address {0} is not a loopback address (s2spec only uses 127.0.0.0/8 and ::1)")]
pub struct NotLoopback(pub IpAddr);

/// Lower case, without a trailing dot: the one spelling used for comparisons.
pub fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Like [`normalize`], but keeps the root target `"."` as is.
fn normalize_target(target: &str) -> String {
    if target.trim() == "." {
        ".".to_owned()
    } else {
        normalize(target)
    }
}

/// Whether `name` is `origin` or below it (both normalised).
pub fn in_zone(name: &str, origin: &str) -> bool {
    name == origin || name.ends_with(&format!(".{origin}"))
}

/// Host-name syntax (RFC 1035 §2.3.1, plus `_` for service labels): labels of
/// 1–63 letters, digits, `-` or `_`, not starting or ending with `-`; 253
/// characters at most.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 253 {
        return Err(NameError::TooLong(name.to_owned()));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(NameError::BadLabel {
                name: name.to_owned(),
                label: label.to_owned(),
            });
        }
    }
    Ok(())
}

/// s2spec only ever talks to loopback addresses.
pub fn check_loopback(ip: IpAddr) -> Result<(), NotLoopback> {
    if ip.is_loopback() {
        Ok(())
    } else {
        Err(NotLoopback(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("_xmpp-server._tcp.fabrikam.test").is_ok());
        assert!(check_name("a..b").is_err());
        assert!(check_name("-a.test").is_err());
        assert!(check_name("a b.test").is_err());
        assert!(check_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn records_outside_the_zone_are_rejected() {
        let z = Zone::new("fabrikam.test").with_address("other.test", "127.0.0.1".parse().unwrap());
        assert!(z.validate().is_err());
        let z = Zone::xmpp_peer("Fabrikam.Test.", "127.0.0.1".parse().unwrap(), 5269);
        assert_eq!(z.origin, "fabrikam.test");
        assert!(z.validate().is_ok());
    }

    #[test]
    fn non_loopback_and_cname_conflicts_are_rejected() {
        let z = Zone::a_only("fabrikam.test", "10.0.0.1".parse().unwrap());
        assert!(z.validate().is_err());
        let z = Zone::a_only("fabrikam.test", "127.0.0.1".parse().unwrap())
            .with_cname("fabrikam.test", "x.test");
        assert!(z.validate().is_err());
    }
}
