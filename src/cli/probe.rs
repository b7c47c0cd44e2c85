//! `s2spec probe`: find out how a live XMPP server federates and which of
//! our 11 valid partner configurations will work with it (docs/probe.md).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{exit, print_stdout, service};
use crate::dns::XmppResolver;
use crate::pki::{CertVariant, KeyType, Leaf, Pki, PkiError};
use crate::probe::infer::infer;
use crate::probe::observe::{ProbeError, Setup, observe};
use crate::probe::render::{ProbeReport, json, text};

const DEFAULT_FILTER: &str = "warn";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The probe plays OURDOMAIN (certificate DIR/OURDOMAIN.valid.crt and .key \
from `s2spec certs`, or minted from DIR's CA when missing). The probed server must trust \
DIR/ca.pem for SASL EXTERNAL, and resolve OURDOMAIN to --listen for dialback and for its \
connections back; --dns checks the latter.

Exit status: 0 probe done (whatever the server did), 2 trouble (unreachable server, bad \
certificate directory, address in use, bad flags)."
)]
pub struct Args {
    /// The domain of the server to probe.
    #[arg(value_name = "DOMAIN")]
    domain: String,
    /// Where that server listens for server-to-server streams (loopback).
    #[arg(long, value_name = "HOST:PORT")]
    connect: SocketAddr,
    /// The domain we play (the administrator's proxy).
    #[arg(long = "from", value_name = "OURDOMAIN")]
    ours: String,
    /// Where we listen as OURDOMAIN (loopback; OURDOMAIN's records point here).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Certificate directory written by `s2spec certs`.
    #[arg(long, value_name = "DIR")]
    certs: PathBuf,
    /// DNS server to check OURDOMAIN's records against --listen.
    #[arg(long, value_name = "ADDR")]
    dns: Option<SocketAddr>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Seconds the server is given to connect back after each ping.
    #[arg(long, default_value_t = 8)]
    connect_back: u64,
}

pub fn run(args: Args) -> u8 {
    service::init_logging(DEFAULT_FILTER);
    match probe(&args) {
        Ok(out) => {
            print_stdout(&out);
            exit::OK
        }
        Err(message) => {
            eprintln!("s2spec probe: {message}");
            exit::TROUBLE
        }
    }
}

/// Why `probe` could not do its job (exit 2); each names the flag at fault.
#[derive(Debug, thiserror::Error)]
enum ProbeCommandError {
    #[error(transparent)]
    Service(#[from] service::ServiceError),
    #[error("--listen {listen}: needs a fixed port: {ours}'s DNS records must point at it")]
    FixedPort { listen: SocketAddr, ours: String },
    #[error("{flag}: {source}")]
    Domain {
        flag: &'static str,
        #[source]
        source: PkiError,
    },
    #[error("--certs {}: {source}", dir.display())]
    Certs {
        dir: PathBuf,
        #[source]
        source: PkiError,
    },
    #[error(
        "--certs {}: no CA found (ca.pem, ca.key, intermediate.pem, intermediate.key; \
         make one with `s2spec certs --out {} --domain {ours}`)",
        dir.display(),
        dir.display()
    )]
    NoCa { dir: PathBuf, ours: String },
    #[error("--certs: {}: {source}", path.display())]
    ReadCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--certs: {}: {source}", path.display())]
    Leaf {
        path: PathBuf,
        #[source]
        source: PkiError,
    },
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

fn probe(args: &Args) -> Result<String, ProbeCommandError> {
    service::require_loopback(args.connect, "--connect")?;
    service::require_loopback(args.listen, "--listen")?;
    if args.listen.port() == 0 {
        return Err(ProbeCommandError::FixedPort {
            listen: args.listen,
            ours: args.ours.clone(),
        });
    }
    if let Some(dns) = args.dns {
        service::require_loopback(dns, "--dns")?;
    }
    let domain = |flag| move |source| ProbeCommandError::Domain { flag, source };
    crate::pki::check_domain(&args.domain).map_err(domain("DOMAIN"))?;
    crate::pki::check_domain(&args.ours).map_err(domain("--from"))?;
    let pki = load_pki(&args.certs, &args.ours)?;
    let setup = Setup {
        domain: args.domain.to_ascii_lowercase(),
        connect: args.connect,
        ours: args.ours.to_ascii_lowercase(),
        listen: args.listen,
        pki: Arc::new(pki),
        step: Duration::from_secs(5),
        connect_back: Duration::from_secs(args.connect_back),
    };
    let runtime = service::runtime()?;
    let report = runtime.block_on(async {
        let mut observed = observe(&setup).await?;
        if let Some(dns) = args.dns
            && let Some(note) = check_records(dns, &setup.ours, setup.listen).await
        {
            observed.notes.push(note);
        }
        let (recv, init) = observed.evidence();
        let inference = infer(&recv, &init);
        Ok::<_, ProbeCommandError>(ProbeReport {
            domain: setup.domain.clone(),
            connect: setup.connect.to_string(),
            ours: setup.ours.clone(),
            listen: setup.listen.to_string(),
            observed,
            inference,
        })
    })?;
    Ok(match args.format {
        Format::Text => text(&report),
        Format::Json => json(&report) + "\n",
    })
}

/// The CA of `dir`, with our certificate from `dir` when it is there.
fn load_pki(dir: &Path, ours: &str) -> Result<Pki, ProbeCommandError> {
    let pki = Pki::load_dir(dir)
        .map_err(|source| ProbeCommandError::Certs {
            dir: dir.to_path_buf(),
            source,
        })?
        .ok_or_else(|| ProbeCommandError::NoCa {
            dir: dir.to_path_buf(),
            ours: ours.to_owned(),
        })?;
    let crt = dir.join(format!("{ours}.valid.crt"));
    let key = dir.join(format!("{ours}.valid.key"));
    if crt.exists() {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| ProbeCommandError::ReadCert {
                path: p.to_path_buf(),
                source,
            })
        };
        let bad_leaf = |source| ProbeCommandError::Leaf {
            path: crt.clone(),
            source,
        };
        let leaf = Leaf::from_pem(&read(&crt)?, &read(&key)?).map_err(bad_leaf)?;
        pki.adopt_leaf(ours, CertVariant::Valid, KeyType::Ecdsa, leaf)
            .map_err(bad_leaf)?;
    }
    Ok(pki)
}

/// A note when OURDOMAIN does not resolve to --listen through `dns`.
async fn check_records(dns: SocketAddr, ours: &str, listen: SocketAddr) -> Option<String> {
    let resolver = match XmppResolver::new(dns) {
        Ok(r) => r,
        Err(e) => return Some(format!("--dns {dns}: cannot query: {e}")),
    };
    match resolver.resolve_s2s(ours).await {
        Ok(candidates) => {
            if candidates
                .iter()
                .any(|c| c.socket_addrs().any(|a| a == listen))
            {
                None
            } else {
                Some(format!(
                    "--dns {dns}: {ours} does not resolve to --listen {listen}; the server's \
                     dialback verification and connections back go elsewhere"
                ))
            }
        }
        Err(e) => Some(format!(
            "--dns {dns}: {ours} does not resolve ({e}); the server cannot reach --listen"
        )),
    }
}
