//! `s2spec serve`: run the reference federation proxy standalone until
//! Ctrl-C, with a partner set, certificates from `s2spec certs` and a DNS
//! server such as `s2spec dns`. Each stream's negotiation is logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{exit, service};
use crate::partner::{self, Diagnostic, LoadError, Severity};
use crate::pki::{CertVariant, Leaf, Pki, PkiError};
use crate::refproxy::{Config, Fault, RefProxy, StartError, Timeouts};
use crate::run::execute::SignalError;
use crate::tls;
use crate::xml::Limits;

const DEFAULT_FILTER: &str = "info,s2spec::refproxy=debug";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The proxy's certificate for each local domain is DIR/DOMAIN.valid.crt \
with DIR/DOMAIN.valid.key (`s2spec certs --out DIR --domain DOMAIN --variant valid`); \
partners' certificates are trusted when they chain to DIR/ca.pem.

Exit status: 0 stopped cleanly, 1 the partner set has validation errors, 2 anything else \
(unreadable files, port in use, bad flags)."
)]
pub struct Args {
    /// Partner-set file (TOML); it must validate without errors.
    #[arg(long, value_name = "FILE")]
    partners: PathBuf,
    /// Loopback address for server-to-server connections (port 0 picks one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5269")]
    listen: SocketAddr,
    /// DNS server partners are resolved through (e.g. `s2spec dns`).
    #[arg(long, value_name = "ADDR")]
    dns: SocketAddr,
    /// Certificate directory written by `s2spec certs`.
    #[arg(long, value_name = "DIR")]
    certs: PathBuf,
    /// Deviate in one named way (repeatable), to check that a harness notices.
    #[arg(long = "fault", value_name = "NAME", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// Maximum simultaneous inbound connections, 1 to 1048576.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS))]
    max_connections: u64,
}

/// Far beyond the file descriptors a process gets; tokio's semaphore limit is higher still.
const MAX_CONNECTIONS: u64 = 1 << 20;

fn parse_fault(s: &str) -> Result<Fault, crate::UnknownSpelling> {
    s.parse()
}

pub fn run(args: Args) -> u8 {
    service::init_logging(DEFAULT_FILTER);
    match serve(args) {
        Ok(()) => exit::OK,
        Err(Refusal::Invalid(diagnostics)) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            eprintln!("s2spec serve: the partner set has validation errors; not starting");
            exit::FAILED
        }
        Err(Refusal::Trouble(message)) => {
            eprintln!("s2spec serve: {message}");
            exit::TROUBLE
        }
    }
}

enum Refusal {
    /// The partner set's validation errors (exit 1).
    Invalid(Vec<Diagnostic>),
    /// Anything else that stops the proxy from serving (exit 2).
    Trouble(ServeError),
}

/// Why `serve` could not start or keep serving.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Service(#[from] service::ServiceError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// The partner-set file does not parse, one diagnostic a line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Parse(Vec<Diagnostic>),
    #[error(transparent)]
    Load(LoadError),
    #[error("--certs {}: {source}", dir.display())]
    Certs {
        dir: PathBuf,
        #[source]
        source: PkiError,
    },
    #[error("--certs {}: no CA found (ca.pem, ca.key)", dir.display())]
    NoCa { dir: PathBuf },
    #[error("--certs {}: {source}", dir.display())]
    Trust {
        dir: PathBuf,
        #[source]
        source: tls::TlsError,
    },
    #[error("cannot read {}: {source}", path.display())]
    ReadCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Leaf {
        path: PathBuf,
        #[source]
        source: PkiError,
    },
    #[error(transparent)]
    Start(StartError),
}

impl From<ServeError> for Refusal {
    fn from(e: ServeError) -> Self {
        Refusal::Trouble(e)
    }
}

impl From<service::ServiceError> for Refusal {
    fn from(e: service::ServiceError) -> Self {
        Refusal::Trouble(e.into())
    }
}

impl From<SignalError> for Refusal {
    fn from(e: SignalError) -> Self {
        Refusal::Trouble(e.into())
    }
}

fn serve(args: Args) -> Result<(), Refusal> {
    service::require_loopback(args.listen, "--listen")?;
    service::require_loopback(args.dns, "--dns")?;
    let loaded = match partner::load_file(&args.partners) {
        Ok(loaded) => loaded,
        Err(LoadError::Parse(diagnostics)) => {
            return Err(ServeError::Parse(diagnostics).into());
        }
        Err(e) => return Err(ServeError::Load(e).into()),
    };
    let diagnostics = partner::validate(&loaded);
    for warning in diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
    {
        eprintln!("{warning}");
    }
    let errors: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(Refusal::Invalid(errors));
    }
    let (trust, certs) = load_certs(&args.certs, &loaded.set.local.domains)?;
    let config = Config {
        partners: loaded,
        listen: args.listen,
        dns: args.dns,
        trust,
        certs,
        faults: args.faults.iter().copied().collect(),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        secret: None,
    };
    let runtime = service::runtime()?;
    runtime.block_on(async {
        let proxy = RefProxy::start(config).await.map_err(|e| match e {
            StartError::Invalid(d) => Refusal::Invalid(d),
            other => ServeError::Start(other).into(),
        })?;
        println!("listening on {}", proxy.addr());
        for fault in &args.faults {
            tracing::warn!(%fault, "fault switch on: this proxy deliberately deviates");
        }
        service::wait_for_stop().await?;
        tracing::info!("stopping");
        proxy.shutdown().await;
        Ok::<_, Refusal>(())
    })
}

type Certs = (Arc<rustls::RootCertStore>, HashMap<String, Arc<Leaf>>);

/// The CA from `DIR/ca.pem` and `DOMAIN.valid.{crt,key}` per local domain.
fn load_certs(dir: &Path, domains: &[String]) -> Result<Certs, ServeError> {
    let pki = Pki::load_dir(dir)
        .map_err(|source| ServeError::Certs {
            dir: dir.to_path_buf(),
            source,
        })?
        .ok_or_else(|| ServeError::NoCa {
            dir: dir.to_path_buf(),
        })?;
    let trust = tls::root_store(&[pki.root_der().clone()]).map_err(|source| ServeError::Trust {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut certs = HashMap::new();
    for domain in domains {
        let valid = CertVariant::Valid;
        let crt = dir.join(format!("{domain}.{valid}.crt"));
        let key = dir.join(format!("{domain}.{valid}.key"));
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| ServeError::ReadCert {
                path: p.to_path_buf(),
                source,
            })
        };
        let leaf =
            Leaf::from_pem(&read(&crt)?, &read(&key)?).map_err(|source| ServeError::Leaf {
                path: crt.clone(),
                source,
            })?;
        certs.insert(domain.clone(), Arc::new(leaf));
    }
    Ok((trust, certs))
}
