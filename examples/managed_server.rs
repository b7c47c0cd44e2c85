//! Runs one managed real server (fixtures/targets/NAME.toml) in the
//! configuration group of one `<T><S><D>` row until Ctrl-C or SIGTERM, with
//! a mock DNS that resolves it and one partner domain: a live server to try
//! `s2spec probe` on (README, "Probing a partner").
//!
//!     cargo run --example managed_server -- prosody ON1 --certs /tmp/pki \
//!         --domain prosody.test --partner ours.test --partner-port 5270
//!
//! Prints the server's and the DNS server's addresses; the server's
//! certificate is DIR/DOMAIN.valid.crt (minted from DIR's CA when missing).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;
use s2spec::dns::{MockDns, Zone};
use s2spec::oracle::Policy;
use s2spec::partner::Negotiation;
use s2spec::pki::{CertVariant, KeyType, Leaf, Pki};
use s2spec::target::managed::{ManagedServer, Setup};
use s2spec::target::profile::{DnsHookup, Profile, express};

#[derive(Debug, Parser)]
struct Args {
    /// Profile name in fixtures/targets (prosody, ejabberd).
    name: String,
    /// The configuration row the server's global switches should express.
    code: String,
    /// Certificate directory written by `s2spec certs`.
    #[arg(long)]
    certs: PathBuf,
    /// The domain the server serves.
    #[arg(long)]
    domain: String,
    /// The partner domain it may federate with (our probing domain).
    #[arg(long)]
    partner: String,
    /// Port on 127.0.0.1 where the partner listens (the probe's --listen).
    #[arg(long)]
    partner_port: u16,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let profile = Profile::named(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets"),
        &args.name,
    )
    .map_err(|e| e.to_string())?;
    if let Some(why) = profile.unavailable() {
        return Err(why);
    }
    let code = Negotiation::from_code(&args.code)
        .ok_or_else(|| format!("{}: not a <T><S><D> code such as ON1", args.code))?;
    let group = express(&profile.capabilities, code, Policy::Lync).map_err(|e| e.to_string())?;
    let pki = Pki::load_dir(&args.certs)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: no CA (run `s2spec certs`)", args.certs.display()))?;
    let crt = args.certs.join(format!("{}.valid.crt", args.domain));
    let key = args.certs.join(format!("{}.valid.key", args.domain));
    let leaf = if crt.exists() {
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        Leaf::from_pem(&read(&crt)?, &read(&key)?).map_err(|e| e.to_string())?
    } else {
        let l = pki
            .leaf(&args.domain, CertVariant::Valid, KeyType::Ecdsa)
            .map_err(|e| e.to_string())?
            .ok_or("no certificate")?;
        Leaf::from_pem(&l.chain_pem, &l.key_pem).map_err(|e| e.to_string())?
    };
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let dns = match profile.dns {
        DnsHookup::Forward => MockDns::start(SocketAddr::new(localhost, 0), [])
            .await
            .map_err(|e| e.to_string())?,
        // resolv.conf takes no port: port 53 of a loopback address of its own.
        DnsHookup::ResolvConf => MockDns::start(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 53, 0, 1)), 53),
            [],
        )
        .await
        .map_err(|e| e.to_string())?,
    };
    dns.upsert_zone(Zone::xmpp_peer(&args.partner, localhost, args.partner_port))
        .map_err(|e| e.to_string())?;
    let partners = [args.partner.clone()];
    let setup = Setup {
        domain: &args.domain,
        dns: dns.addr(),
        chain_pem: &leaf.chain_pem,
        key_pem: &leaf.key_pem,
        ca_pem: pki.root_pem(),
        keep_logs: None,
        partners: &partners,
    };
    let server = ManagedServer::start(&profile, group, &setup)
        .await
        .map_err(|e| e.to_string())?;
    dns.upsert_zone(Zone::xmpp_peer(
        &args.domain,
        localhost,
        server.addr().port(),
    ))
    .map_err(|e| e.to_string())?;
    println!(
        "{} ({group}) serving {} at {}; DNS at {}",
        args.name,
        args.domain,
        server.addr(),
        dns.addr()
    );
    wait_for_stop().await;
    server.shutdown().await;
    dns.shutdown().await;
    Ok(())
}

async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
