//! The partner probe, proved against what actually happens: each probed
//! server (the reference proxy in several configurations, Prosody and
//! ejabberd in three each) is probed, then the reference proxy is
//! configured with each of the 11 valid partner configurations and
//! federates with that same server instance in both directions; every
//! certain prediction must match the method (or refusal) observed, and an
//! uncertain one must list it. A server that is not installed is SKIPPED
//! with the reason.

mod common;
use common::{leftovers, one_at_a_time};
use s2spec::stanza::ping;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use s2spec::dialback::Secret;
use s2spec::dns::{MockDns, Zone};
use s2spec::oracle::{Outcome, Policy};
use s2spec::partner::{self, Negotiation};
use s2spec::peer::{PeerEnv, PeerProfile, initiate};
use s2spec::pki::{CertVariant, KeyType, Pki};
use s2spec::probe::infer::{Inference, TrialResult, infer};
use s2spec::probe::observe::{Observed, Setup, observe};
use s2spec::probe::render::{ProbeReport, text};
use s2spec::refproxy::{Config, Faults, ProxyEvent, RefProxy, Timeouts};
use s2spec::stream::Transcript;
use s2spec::target::managed::{ManagedServer, Setup as ManagedSetup};
use s2spec::target::profile::{DnsHookup, Profile, express};
use s2spec::xml::{Element, Limits, NS_SERVER};

const OURS: &str = "ours.probe.test";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn n(code: &str) -> Negotiation {
    Negotiation::from_code(code).unwrap()
}

/// A port nobody listens on now (the probe and then each proxy bind it in
/// turn, and our domain's SRV record points at it).
fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn partner_set(local: &str, partners: &[String], c: Negotiation) -> partner::Loaded {
    let mut text = format!("[local]\ndomains = [\"{local}\"]\nusers = [\"alice\"]\n");
    for p in partners {
        text.push_str(&format!(
            "\n[[partner]]\ndomain = \"{p}\"\ntype = \"federated\"\ntls = \"{}\"\nsasl = \"{}\"\n\
             dialback = {}\n",
            c.tls.as_str(),
            c.sasl.as_str(),
            c.dialback
        ));
    }
    partner::load_str(&text, "probe-test.toml").unwrap()
}

/// The domain our proxy plays while federating under configuration `c`.
/// A fresh name per configuration: a server that waits before retrying a
/// domain it failed to reach (ejabberd's s2s retry delay) would otherwise
/// carry one configuration's refusal into the next.
fn round_domain(c: Negotiation) -> String {
    format!("c-{}-ours.probe.test", c.code().to_ascii_lowercase())
}

/// Every domain we play: the probe's and one per configuration.
fn our_domains() -> Vec<String> {
    std::iter::once(OURS.to_string())
        .chain(
            Negotiation::all()
                .filter(|c| partner::negotiation_is_valid(*c))
                .map(round_domain),
        )
        .collect()
}

async fn reference_proxy(
    pki: &Pki,
    dns: SocketAddr,
    local: &str,
    partners: &[String],
    c: Negotiation,
    listen: SocketAddr,
    secret: Option<Secret>,
) -> RefProxy {
    let leaf = pki
        .leaf(local, CertVariant::Valid, KeyType::Ecdsa)
        .unwrap()
        .unwrap();
    let config = Config {
        partners: partner_set(local, partners, c),
        listen,
        dns,
        trust: s2spec::tls::root_store(std::slice::from_ref(pki.root_der())).unwrap(),
        certs: HashMap::from([(local.to_string(), leaf)]),
        faults: Faults::default(),
        timeouts: Timeouts {
            step: Duration::from_secs(5),
            ..Timeouts::default()
        },
        limits: Limits::default(),
        max_connections: 64,
        secret,
    };
    RefProxy::start(config).await.unwrap()
}

/// What happened in each direction between our proxy (configured `c`) and
/// the server: the method that authenticated, or a refusal.
#[derive(Debug)]
struct Federated {
    inbound: Outcome,
    outbound: Outcome,
    /// How the inbound connection was triggered.
    trigger: String,
}

/// Our proxy as `OURS` with partner `domain` configured `c`, at `listen`:
/// a message from a local user makes it connect out; a ping from `OURS` on
/// a stream of a simulated `OURS` (sharing the proxy's dialback secret, so
/// the proxy vouches for its keys) makes the server connect back.
async fn federate(
    pki: &Arc<Pki>,
    dns: SocketAddr,
    domain: &str,
    server: SocketAddr,
    listen: SocketAddr,
    c: Negotiation,
    trigger_profile: Option<Negotiation>,
) -> Federated {
    let secret = Secret::random().expect("random secret");
    let ours = round_domain(c);
    let proxy = reference_proxy(
        pki,
        dns,
        &ours,
        &[domain.to_string()],
        c,
        listen,
        Some(secret.clone()),
    )
    .await;
    let mut events = proxy.subscribe();
    let wait = Duration::from_secs(12);
    let until = tokio::time::Instant::now() + wait;
    proxy.send_from_local(
        Element::new(NS_SERVER, "message")
            .with_attr("from", format!("alice@{ours}"))
            .with_attr("to", format!("nobody@{domain}"))
            .with_attr("id", "probe-test-out")
            .with_child(Element::new(NS_SERVER, "body").with_text("probe test")),
    );
    let mut outbound = None;
    let mut inbound = None;
    let mut trigger = "none".to_string();
    let mut triggered = None;
    let mut inbound_until = until;
    while outbound.is_none() || inbound.is_none() {
        // The inbound trigger, once the outbound attempt has settled (its
        // dialback verification may already bring the server in).
        if outbound.is_some() && triggered.is_none() && inbound.is_none() {
            let (i, text, sent) =
                trigger_inbound(pki, &secret, &ours, trigger_profile, server, domain).await;
            triggered = Some(i);
            trigger = text;
            // The answer to a ping takes one connection back; without a
            // ping only a connection already under way can still arrive.
            inbound_until = tokio::time::Instant::now()
                + if sent {
                    Duration::from_secs(5)
                } else {
                    Duration::from_secs(1)
                };
        }
        let deadline = if outbound.is_some() {
            inbound_until
        } else {
            until
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(ProxyEvent::OutboundAuthenticated { remote, method })) if remote == domain => {
                outbound.get_or_insert(Outcome::Authenticated(method));
            }
            Ok(Ok(ProxyEvent::OutboundFailed { remote, .. })) if remote == domain => {
                outbound.get_or_insert(Outcome::Refused);
            }
            Ok(Ok(ProxyEvent::Bounced { .. })) => {
                outbound.get_or_insert(Outcome::Refused);
            }
            Ok(Ok(ProxyEvent::InboundAuthenticated { remote, method })) if remote == domain => {
                inbound.get_or_insert(Outcome::Authenticated(method));
            }
            // A refusal of the server's stream after the ping is the answer.
            Ok(Ok(ProxyEvent::InboundRefused {
                remote: Some(remote),
                ..
            })) if remote == domain && triggered.is_some() => {
                inbound.get_or_insert(Outcome::Refused);
            }
            Ok(Ok(_)) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            // Time is up (or the proxy is gone): what did not happen is a refusal.
            _ if outbound.is_none() => {
                outbound = Some(Outcome::Refused);
            }
            _ => break,
        }
    }
    if let Some(Some(mut i)) = triggered {
        i.close().await;
    }
    proxy.shutdown().await;
    // The server notices our closed streams before the next configuration.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Federated {
        inbound: inbound.unwrap_or(Outcome::Refused),
        outbound: outbound.unwrap_or(Outcome::Refused),
        trigger,
    }
}

/// A simulated `OURS` (sharing the proxy's dialback secret, so the proxy
/// vouches for its keys) authenticates to the server and pings it; the
/// answer makes the server connect to our proxy. Returns the stream, a
/// description and whether the ping was sent.
async fn trigger_inbound(
    pki: &Arc<Pki>,
    secret: &Secret,
    ours: &str,
    profile: Option<Negotiation>,
    server: SocketAddr,
    domain: &str,
) -> (Option<s2spec::peer::Initiated>, String, bool) {
    let Some(p) = profile else {
        return (None, "none: no trial stream was accepted".into(), false);
    };
    let env = PeerEnv::new(pki.clone(), Transcript::new())
        .unwrap()
        .with_secret(secret.clone());
    let profile = PeerProfile::new(ours, p, CertVariant::Valid);
    let mut i = initiate(&env, &profile, server, domain).await;
    match i.report.method {
        Some(m) => {
            let sent = i
                .send_stanza(&ping(ours, domain, "probe-test-in"))
                .await
                .is_ok();
            (Some(i), format!("ping over {m} ({})", p.code()), sent)
        }
        None => (
            Some(i),
            format!("no ping: our {} stream was not accepted", p.code()),
            false,
        ),
    }
}

/// The best of our trial profiles the server accepted, to carry the ping.
fn best_trigger(o: &Observed) -> Option<Negotiation> {
    o.as_receiving.iter().find_map(|t| match t.result {
        TrialResult::Authenticated(_) => Negotiation::from_code(&t.ours),
        _ => None,
    })
}

/// Probes the server, federates with it under every configuration, and
/// returns the mismatches (empty when every prediction held).
async fn probe_then_federate(
    name: &str,
    pki: &Arc<Pki>,
    dns: &MockDns,
    domain: &str,
    server: SocketAddr,
    listen: SocketAddr,
) -> (Inference, Vec<String>) {
    let setup = Setup {
        domain: domain.to_string(),
        connect: server,
        ours: OURS.to_string(),
        listen,
        pki: pki.clone(),
        step: Duration::from_secs(5),
        connect_back: Duration::from_secs(8),
    };
    let observed = observe(&setup).await.unwrap();
    let (recv, init) = observed.evidence();
    let inference = infer(&recv, &init);
    let report = ProbeReport {
        domain: domain.to_string(),
        connect: server.to_string(),
        ours: OURS.to_string(),
        listen: listen.to_string(),
        observed: observed.clone(),
        inference: inference.clone(),
    };
    eprintln!("=== probe of {name}\n{}", text(&report));
    let trigger = best_trigger(&observed);
    let mut bad = Vec::new();
    let mut authenticated = 0;
    for c in &inference.configurations {
        let got = federate(pki, dns.addr(), domain, server, listen, c.config, trigger).await;
        eprintln!(
            "{name} {}: predicted in {} / out {}; observed in {} / out {} (trigger: {})",
            c.config.code(),
            c.inbound.label(),
            c.outbound.label(),
            got.inbound,
            got.outbound,
            got.trigger
        );
        for (dir, p, o) in [
            ("inbound", &c.inbound, got.inbound),
            ("outbound", &c.outbound, got.outbound),
        ] {
            if matches!(o, Outcome::Authenticated(_)) {
                authenticated += 1;
            }
            let ok = match p.outcome {
                Some(want) => want == o,
                None => p.possible.contains(&o),
            };
            if !ok {
                bad.push(format!(
                    "{name} {} {dir}: predicted {} ({}), observed {o}",
                    c.config.code(),
                    p.label(),
                    p.why
                ));
            }
        }
    }
    // Not vacuous: some configuration federated with the server.
    assert!(authenticated > 0, "{name}: nothing federated at all");
    (inference, bad)
}

struct Services {
    pki: Arc<Pki>,
    dns: MockDns,
    listen: SocketAddr,
}

/// PKI, a mock DNS (`hookup` says where it must listen) and our domain's
/// records pointing at a free port.
async fn services(hookup: DnsHookup) -> Services {
    let pki = Arc::new(Pki::new().unwrap());
    let dns = match hookup {
        DnsHookup::Forward => MockDns::start(SocketAddr::new(LOCALHOST, 0), [])
            .await
            .unwrap(),
        // resolv.conf takes no port: port 53 of a loopback address of its own.
        DnsHookup::ResolvConf => {
            let mut started = None;
            for i in 0..64u8 {
                let ip = IpAddr::V4(Ipv4Addr::new(
                    127,
                    91,
                    (std::process::id() % 250) as u8,
                    i + 1,
                ));
                if let Ok(d) = MockDns::start(SocketAddr::new(ip, 53), []).await {
                    started = Some(d);
                    break;
                }
            }
            started.expect("a loopback address with port 53 free")
        }
    };
    let listen = SocketAddr::new(LOCALHOST, free_port());
    for d in our_domains() {
        dns.upsert_zone(Zone::xmpp_peer(&d, LOCALHOST, listen.port()))
            .unwrap();
    }
    Services { pki, dns, listen }
}

/// One reference proxy configured `code` for our domain, probed and
/// federated with; the mismatches.
async fn probe_reference(code: &'static str) -> Vec<String> {
    let domain = format!("ref-{}.probe.test", code.to_ascii_lowercase());
    let s = services(DnsHookup::Forward).await;
    let server = reference_proxy(
        &s.pki,
        s.dns.addr(),
        &domain,
        &our_domains(),
        n(code),
        SocketAddr::new(LOCALHOST, 0),
        None,
    )
    .await;
    s.dns
        .upsert_zone(Zone::xmpp_peer(&domain, LOCALHOST, server.addr().port()))
        .unwrap();
    let name = format!("reference proxy {code}");
    let (inference, mut bad) =
        probe_then_federate(&name, &s.pki, &s.dns, &domain, server.addr(), s.listen).await;
    // The reference proxy behaves exactly like its row, so the probe pins
    // down its methods and TLS setting and every prediction is certain.
    if !inference
        .receiving
        .candidates
        .iter()
        .all(|c| partner::methods(*c) == partner::methods(n(code)) && c.tls == n(code).tls)
    {
        bad.push(format!("{name}: {}", inference.receiving.summary));
    }
    if !inference
        .configurations
        .iter()
        .all(|c| c.inbound.outcome.is_some() && c.outbound.outcome.is_some())
    {
        bad.push(format!("{name}: a prediction is uncertain"));
    }
    server.shutdown().await;
    s.dns.shutdown().await;
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_predicts_the_reference_proxy() {
    // Each configuration has its own domains, DNS and ports: they run side
    // by side (the time is mostly waiting for refusals).
    let mut runs = tokio::task::JoinSet::new();
    for code in ["RO1", "RR0", "ON1", "NN1", "OO1"] {
        runs.spawn(probe_reference(code));
    }
    let mut bad = Vec::new();
    while let Some(r) = runs.join_next().await {
        bad.extend(r.unwrap());
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

// ---------------------------------------------------------------------------
// Real servers.

fn profile(name: &str) -> Profile {
    Profile::named(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets"),
        name,
    )
    .unwrap()
}

/// The three configuration groups of the issue: TLS required with SASL,
/// TLS optional with dialback, no TLS with dialback. Each lists the rows
/// that spell it, best first: ejabberd cannot switch SASL EXTERNAL off, so
/// "TLS optional with dialback" is OO1 there.
const REAL_GROUPS: [&[&str]; 3] = [&["RR0"], &["ON1", "OO1"], &["NN1"]];

async fn probe_real_server(server_name: &str) {
    let profile = profile(server_name);
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED probe_{server_name}: {why}");
        return;
    }
    let _alone = one_at_a_time(server_name).lock().await;
    let domain = format!("{server_name}.probe.test");
    let mut bad = Vec::new();
    for spellings in REAL_GROUPS {
        let mut why_not = Vec::new();
        let Some((code, group)) = spellings.iter().find_map(|code| {
            match express(&profile.capabilities, n(code), Policy::Lync) {
                Ok(g) => Some((*code, g)),
                Err(why) => {
                    why_not.push(why.to_string());
                    None
                }
            }
        }) else {
            eprintln!("SKIPPED probe_{server_name} {spellings:?}: {why_not:?}");
            continue;
        };
        let s = services(profile.dns).await;
        let cert = s
            .pki
            .leaf(&domain, CertVariant::Valid, KeyType::Ecdsa)
            .unwrap()
            .unwrap();
        let partners = our_domains();
        let setup = ManagedSetup {
            domain: &domain,
            dns: s.dns.addr(),
            chain_pem: &cert.chain_pem,
            key_pem: &cert.key_pem,
            ca_pem: s.pki.root_pem(),
            keep_logs: None,
            partners: &partners,
        };
        let server = ManagedServer::start(&profile, group, &setup).await.unwrap();
        s.dns
            .upsert_zone(Zone::xmpp_peer(&domain, LOCALHOST, server.addr().port()))
            .unwrap();
        let name = format!("{server_name} {code} ({group})");
        let (_, mismatches) =
            probe_then_federate(&name, &s.pki, &s.dns, &domain, server.addr(), s.listen).await;
        bad.extend(mismatches);
        server.shutdown().await;
        s.dns.shutdown().await;
    }
    assert!(
        leftovers(server_name).is_empty(),
        "{:?}",
        leftovers(server_name)
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_predicts_prosody() {
    probe_real_server("prosody").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_predicts_ejabberd() {
    probe_real_server("ejabberd").await;
}
