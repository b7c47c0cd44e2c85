//! What the long-running commands (`dns`, `serve`) share: logging to stderr,
//! the runtime, the loopback-only rule and a clean stop on Ctrl-C or SIGTERM.

use std::io::IsTerminal;
use std::net::SocketAddr;

use crate::run::execute::SignalError;

/// Logs to stderr with `default_filter` unless `RUST_LOG` says otherwise.
pub fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Another subscriber already installed (tests) is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

pub fn runtime() -> Result<tokio::runtime::Runtime, ServiceError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime)
}

/// Why a command could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// `flag` is the option (or phrase) that named the address.
    #[error("{flag} {addr}: s2spec only uses loopback addresses (127.0.0.0/8, ::1)")]
    NotLoopback {
        flag: &'static str,
        addr: SocketAddr,
    },
    #[error(transparent)]
    Signal(#[from] SignalError),
}

/// s2spec only ever listens on or talks to loopback addresses.
pub fn require_loopback(addr: SocketAddr, flag: &'static str) -> Result<(), ServiceError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ServiceError::NotLoopback { flag, addr })
    }
}

pub async fn wait_for_stop() -> Result<(), SignalError> {
    let watch = |signal| move |source| SignalError { signal, source };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(watch("SIGTERM"))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(watch("Ctrl-C")),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map_err(watch("Ctrl-C"))
    }
}
