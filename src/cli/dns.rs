//! `s2spec dns`: serve TOML zone files on a loopback address until Ctrl-C
//! (or SIGTERM), logging each query. Useful for pointing a real XMPP server
//! (Prosody, ejabberd) at the same zones the harness uses.
//!
//! Prints `listening on ADDR` on stdout once both UDP and TCP are bound, so a
//! script can use `--listen 127.0.0.1:0` and read the port. Logs go to stderr
//! (`RUST_LOG` overrides the default filter).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::service;
use crate::dns::{MockDns, ServerError, Zone, ZoneFileError, load_zone_file};
use crate::run::execute::SignalError;

/// Default log filter: our query lines, hickory's own per-request lines off.
const DEFAULT_FILTER: &str = "info,hickory_server=warn,hickory_proto=warn,s2spec::dns::query=debug";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Zone file(s) to serve (TOML; see `fixtures/dns/example-zone.toml`).
    #[arg(long = "zone", value_name = "FILE", required = true, num_args = 1..)]
    zones: Vec<PathBuf>,
    /// Loopback address to listen on, UDP and TCP (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5353")]
    listen: SocketAddr,
}

pub fn run(args: Args) -> u8 {
    service::init_logging(DEFAULT_FILTER);
    match serve(args) {
        Ok(()) => super::exit::OK,
        Err(message) => {
            eprintln!("s2spec dns: {message}");
            super::exit::TROUBLE
        }
    }
}

/// Why `dns` could not serve (exit 2).
#[derive(Debug, thiserror::Error)]
enum DnsCommandError {
    #[error(transparent)]
    Service(#[from] service::ServiceError),
    #[error(transparent)]
    ZoneFile(#[from] ZoneFileError),
    #[error("{}: zone {origin} is already defined in {}", path.display(), first.display())]
    Duplicate {
        path: PathBuf,
        origin: String,
        first: PathBuf,
    },
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Signal(#[from] SignalError),
}

fn serve(args: Args) -> Result<(), DnsCommandError> {
    service::require_loopback(args.listen, "refusing to listen on")?;
    let zones = load_all(&args.zones)?;
    let runtime = service::runtime()?;
    runtime.block_on(async {
        let origins: Vec<String> = zones.iter().map(|z| z.origin.clone()).collect();
        let dns = MockDns::start(args.listen, zones).await?;
        // stdout, flushed: a parent process waits for this line.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {} (udp, tcp)", dns.addr());
        let _ = writeln!(out, "zones: {}", origins.join(", "));
        let _ = out.flush();
        drop(out);
        tracing::info!(addr = %dns.addr(), "serving until Ctrl-C");
        service::wait_for_stop().await?;
        tracing::info!("stopping");
        dns.shutdown().await;
        Ok::<_, DnsCommandError>(())
    })
}

/// Loads every file; an origin defined in two files is an error.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Zone>, DnsCommandError> {
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut zones = Vec::new();
    for path in paths {
        for zone in load_zone_file(path)? {
            if let Some(first) = seen.get(&zone.origin) {
                return Err(DnsCommandError::Duplicate {
                    path: path.clone(),
                    origin: zone.origin,
                    first: first.clone(),
                });
            }
            seen.insert(zone.origin.clone(), path.clone());
            zones.push(zone);
        }
    }
    Ok(zones)
}
