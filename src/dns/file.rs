//! Zone files (TOML) for `s2spec dns` and for scenario fixtures.
//!
//! ```toml
//! [[zone]]
//! origin = "fabrikam.test"      # zone apex; every record name must be at or below it
//! ttl = 60                      # optional, seconds, default 60
//!
//! [[zone.srv]]
//! service = "xmpp-server"       # or "xmpps-server" (XEP-0368 direct TLS)
//! name = "fabrikam.test"        # optional, default = origin; record is _SERVICE._tcp.NAME
//! priority = 10
//! weight = 5
//! port = 5269
//! target = "xmpp.fabrikam.test" # "." = service explicitly unavailable (RFC 2782)
//!
//! [[zone.a]]
//! name = "xmpp.fabrikam.test"
//! address = "127.0.0.1"         # loopback only
//!
//! [[zone.aaaa]]
//! name = "xmpp.fabrikam.test"
//! address = "::1"               # loopback only
//!
//! [[zone.cname]]
//! name = "alias.fabrikam.test"
//! target = "xmpp.fabrikam.test" # the owner may have no other records
//! ```
//!
//! Names may carry a trailing dot and are case-insensitive. Unknown keys,
//! wrong types, invalid names, non-loopback or wrong-family addresses,
//! records outside their zone and duplicate origins are errors reported as
//! `FILE:LINE: message`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::source::line_of;

use super::zone::{
    DEFAULT_TTL, Record, Service, Zone, check_loopback, check_name, in_zone, normalize,
};

/// A zone file that could not be read or is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneFileError {
    pub path: String,
    /// 1-based line, when the problem has a position.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ZoneFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path, line, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for ZoneFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    zone: Vec<Spanned<FileZone>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileZone {
    origin: Spanned<String>,
    ttl: Option<u32>,
    #[serde(default)]
    srv: Vec<FileSrv>,
    #[serde(default)]
    a: Vec<FileAddr>,
    #[serde(default)]
    aaaa: Vec<FileAddr>,
    #[serde(default)]
    cname: Vec<FileCname>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSrv {
    service: Spanned<String>,
    name: Option<Spanned<String>>,
    priority: u16,
    weight: u16,
    port: u16,
    target: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAddr {
    name: Spanned<String>,
    address: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCname {
    name: Spanned<String>,
    target: Spanned<String>,
}

/// Reads and parses a zone file.
pub fn load_zone_file(path: &Path) -> Result<Vec<Zone>, ZoneFileError> {
    let shown = path.display().to_string();
    let text = crate::source::read_text(path).map_err(|e| ZoneFileError {
        path: shown.clone(),
        line: e.line(),
        message: match &e {
            crate::source::ReadError::Io { source, .. } => format!("cannot read: {source}"),
            crate::source::ReadError::Utf8 { column, .. } => {
                format!("invalid UTF-8 (byte {column} of the line)")
            }
        },
    })?;
    parse_zone_file(&text, &shown)
}

/// Parses zone-file text; `path` is only used in error messages.
pub fn parse_zone_file(text: &str, path: &str) -> Result<Vec<Zone>, ZoneFileError> {
    let at = |span: Option<Range<usize>>, message: String| ZoneFileError {
        path: path.to_owned(),
        line: span.map(|s| line_of(text, s.start)),
        message,
    };
    let doc: FileDoc = toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;
    if doc.zone.is_empty() {
        return Err(at(Some(0..0), "no [[zone]] tables".into()));
    }
    let mut zones: Vec<Zone> = Vec::new();
    for spanned in doc.zone {
        let zone_span = spanned.span();
        let fz = spanned.into_inner();
        let origin = name_at(&fz.origin).map_err(|(s, m)| at(Some(s), m))?;
        if zones.iter().any(|z| z.origin == origin) {
            return Err(at(
                Some(fz.origin.span()),
                format!("zone {origin} defined twice"),
            ));
        }
        let mut zone = Zone::new(&origin);
        zone.ttl = fz.ttl.unwrap_or(DEFAULT_TTL);
        let owned = |name: &Spanned<String>| -> Result<String, ZoneFileError> {
            let n = name_at(name).map_err(|(s, m)| at(Some(s), m))?;
            if !in_zone(&n, &origin) {
                return Err(at(
                    Some(name.span()),
                    format!("{n} is outside the zone {origin}"),
                ));
            }
            Ok(n)
        };
        for srv in &fz.srv {
            let service = Service::from_label(srv.service.get_ref()).ok_or_else(|| {
                at(
                    Some(srv.service.span()),
                    format!(
                        "unknown service {:?} (expected \"xmpp-server\" or \"xmpps-server\")",
                        srv.service.get_ref()
                    ),
                )
            })?;
            let domain = match &srv.name {
                Some(n) => owned(n)?,
                None => origin.clone(),
            };
            let target = if srv.target.get_ref().trim() == "." {
                ".".to_owned()
            } else {
                name_at(&srv.target).map_err(|(s, m)| at(Some(s), m))?
            };
            zone.records.push(Record::srv(
                service,
                &domain,
                srv.priority,
                srv.weight,
                srv.port,
                &target,
            ));
        }
        for a in &fz.a {
            let name = owned(&a.name)?;
            let ip: Ipv4Addr = parse_ip(&a.address, "IPv4").map_err(|(s, m)| at(Some(s), m))?;
            zone.records.push(Record::address(&name, IpAddr::V4(ip)));
        }
        for a in &fz.aaaa {
            let name = owned(&a.name)?;
            let ip: Ipv6Addr = parse_ip(&a.address, "IPv6").map_err(|(s, m)| at(Some(s), m))?;
            zone.records.push(Record::address(&name, IpAddr::V6(ip)));
        }
        for c in &fz.cname {
            let name = owned(&c.name)?;
            let target = name_at(&c.target).map_err(|(s, m)| at(Some(s), m))?;
            zone.records.push(Record::cname(&name, &target));
        }
        // Whole-zone rules (CNAME exclusivity); positions point at the zone.
        zone.validate()
            .map_err(|e| at(Some(zone_span.clone()), e.problem.to_string()))?;
        zones.push(zone);
    }
    Ok(zones)
}

/// A checked, normalised name, or the span and message of the problem.
fn name_at(name: &Spanned<String>) -> Result<String, (Range<usize>, String)> {
    let n = normalize(name.get_ref());
    check_name(&n).map_err(|m| (name.span(), m.to_string()))?;
    Ok(n)
}

fn parse_ip<T: std::str::FromStr + Into<IpAddr> + Copy>(
    address: &Spanned<String>,
    family: &str,
) -> Result<T, (Range<usize>, String)> {
    let text = address.get_ref().trim();
    let ip: T = text
        .parse()
        .map_err(|_| (address.span(), format!("invalid {family} address {text:?}")))?;
    check_loopback(ip.into()).map_err(|m| (address.span(), m.to_string()))?;
    Ok(ip)
}
