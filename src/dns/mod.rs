//! Mock DNS for federation tests: plain-data zones ([`zone`]), a mock
//! authoritative server on hickory-server ([`server`]), an RFC 6120 §3.2 /
//! XEP-0368 resolver pointed at it ([`resolve`]) and a TOML zone-file format
//! ([`file`]).
//!
//! As in hickory-dns, the zone catalogue is separate from the transport: the
//! harness edits zones (plain data) and the server swaps in a new catalogue.
//!
//! Each query is logged at `debug` on the tracing target `s2spec::dns::query`
//! (name, type, response code, answer count, transport); `s2spec dns` turns
//! that target on by default.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use s2spec::dns::{MockDns, XmppResolver, Zone};
//! let dns = MockDns::start("127.0.0.1:0".parse()?, []).await?;
//! dns.upsert_zone(Zone::xmpp_peer("fabrikam.test", "127.0.0.1".parse()?, 15269))?;
//! let resolver = XmppResolver::new(dns.addr())?;
//! let candidates = resolver.resolve_s2s("fabrikam.test").await?;
//! assert_eq!(candidates[0].port, 15269);
//! # Ok(()) }
//! ```

pub mod file;
pub mod resolve;
pub mod server;
pub mod zone;

pub use file::{ZoneFileError, load_zone_file, parse_zone_file};
pub use resolve::{
    Candidate, ResolveError, ResolverOptions, SrvOrder, SrvRecord, Transport, XmppResolver,
    order_srv,
};
pub use server::{MockDns, Query, ServerError};
pub use zone::{
    DEFAULT_S2S_PORT, NameError, NotLoopback, Record, Service, Zone, ZoneError, ZoneProblem,
};
