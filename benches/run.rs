//! `cargo bench`: the main job's wall time against the reference target,
//! measured against the floor — the cheapest S2S case (STARTTLS, mutual TLS
//! 1.3, SASL EXTERNAL, one message, close) played as many times as the suite
//! has cases, 64 in flight like the suite, in this process right before and
//! after it (issue 13). Prints `full run ÷ (cases × floor)`, the matrix's
//! ratio per TLS handshake, the slowest cases and the peak RSS.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use s2spec::dns::{MockDns, Zone};
use s2spec::partner::load_str;
use s2spec::pki::{CertVariant, KeyType, Pki};
use s2spec::refproxy::{Config, Faults, RefProxy, Timeouts};
use s2spec::report::{CaseResult, Verdict};
use s2spec::run::{Harness, Options};
use s2spec::scenario::load_all;
use s2spec::stream::{EntryKind, Transcript, XmppStream};
use s2spec::tls::{self, Transport};
use s2spec::xml::{Element, Event, Limits, NS_SERVER, StreamHeader};
use s2spec::{sasl, starttls};
use tokio::sync::Semaphore;

const RUNS: usize = 2;
/// Distinct floor domains (each a partner with its own certificate).
const FLOOR_DOMAINS: usize = 64;
const IN_FLIGHT: usize = 64;
const TARGET: &str = "target.test";
const STEP: Duration = Duration::from_secs(10);

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. a filter) is ignored.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let cases = load_all(Path::new("scenarios/matrix.toml")).expect("cases");
        let floor = Floor::start().await;
        for run in 1..=RUNS {
            let before = floor.per_case(cases.len()).await;
            let harness = Arc::new(
                Harness::start_reference(&cases, Options::default())
                    .await
                    .expect("harness"),
            );
            let started = Instant::now();
            let results = harness.run(cases.clone(), |_| {}).await;
            let wall = started.elapsed();
            if let Ok(h) = Arc::try_unwrap(harness) {
                h.shutdown().await;
            }
            let after = floor.per_case(cases.len()).await;
            let floor_case = (before + after) / 2;
            let ok = results
                .iter()
                .filter(|r| matches!(r.verdict, Verdict::Pass | Verdict::NotApplicable))
                .count();
            println!(
                "run {run}: {} cases in {:.2} s, {ok} pass or not applicable",
                results.len(),
                wall.as_secs_f64()
            );
            println!(
                "  floor case (STARTTLS, mutual TLS 1.3, SASL EXTERNAL, one message, close; \
                 {IN_FLIGHT} in flight): {:.3} ms before, {:.3} ms after the suite",
                before.as_secs_f64() * 1e3,
                after.as_secs_f64() * 1e3
            );
            println!(
                "  full run ÷ (cases × floor) = {:.1}",
                wall.as_secs_f64() / (results.len() as f64 * floor_case.as_secs_f64())
            );
            let matrix: Vec<&CaseResult> = results
                .iter()
                .filter(|r| r.id.starts_with("matrix/"))
                .collect();
            let handshakes: usize = matrix.iter().map(|r| tls_handshakes(r)).sum();
            // The matrix's share of the wall time, by its share of the cases'
            // summed durations (the cases run interleaved).
            let total: u64 = results.iter().map(|r| r.duration_ms).sum();
            let share: u64 = matrix.iter().map(|r| r.duration_ms).sum();
            let matrix_wall = wall.as_secs_f64() * share as f64 / total.max(1) as f64;
            println!(
                "  matrix: {} cases, {handshakes} TLS handshakes, ≈{matrix_wall:.2} s of the run: \
                 {:.1} floors per TLS handshake",
                matrix.len(),
                matrix_wall / (handshakes.max(1) as f64 * floor_case.as_secs_f64())
            );
            let mut slow: Vec<&CaseResult> = results.iter().collect();
            slow.sort_by_key(|r| std::cmp::Reverse(r.duration_ms));
            let over = slow.iter().filter(|r| r.duration_ms > 1500).count();
            println!("  cases over 1.5 s: {over}; slowest:");
            for r in slow.iter().take(5) {
                println!("    {:>5} ms  {}", r.duration_ms, r.id);
            }
            let waited: Vec<&CaseResult> =
                results.iter().filter(|r| !r.waited.is_empty()).collect();
            println!("  cases that concluded by waiting: {}", waited.len());
            for r in waited {
                for w in &r.waited {
                    println!("    {} step {}: {} ms ({})", r.id, w.step, w.ms, w.why);
                }
            }
        }
        println!("peak memory (VmHWM): {}", peak_memory());
        floor.proxy.shutdown().await;
        floor.dns.shutdown().await;
    });
}

/// TLS handshakes the harness saw in a case (its transcript notes each).
fn tls_handshakes(r: &CaseResult) -> usize {
    r.transcript
        .iter()
        .filter(|e| e.kind == EntryKind::Note && e.text.starts_with("TLS handshake complete"))
        .count()
}

/// A reference target of its own for the floor case, so the suite's partner
/// set and DNS are not touched.
struct Floor {
    pki: Arc<Pki>,
    dns: MockDns,
    proxy: RefProxy,
}

impl Floor {
    async fn start() -> Floor {
        let pki = Arc::new(Pki::new().expect("pki"));
        let dns = MockDns::start("127.0.0.1:0".parse().unwrap(), [Zone::new("test")])
            .await
            .expect("mock DNS");
        let mut text = format!("[local]\ndomains = [\"{TARGET}\"]\nusers = [\"alice\"]\n\n");
        for n in 0..FLOOR_DOMAINS {
            text.push_str(&format!(
                "[[partner]]\ndomain = \"{}\"\ntype = \"federated\"\ntls = \"required\"\n\
                 sasl = \"required\"\ndialback = false\n\n",
                domain(n)
            ));
        }
        let partners = load_str(&text, "<floor partners>").expect("floor partners");
        let trust = tls::root_store(std::slice::from_ref(pki.root_der())).expect("roots");
        let mut certs = HashMap::new();
        certs.insert(
            TARGET.to_string(),
            pki.leaf(TARGET, CertVariant::Valid, KeyType::Ecdsa)
                .expect("leaf")
                .expect("some"),
        );
        let proxy = RefProxy::start(Config {
            partners,
            listen: "127.0.0.1:0".parse().unwrap(),
            dns: dns.addr(),
            trust,
            certs,
            faults: Faults::none(),
            timeouts: Timeouts {
                negotiation: STEP,
                idle: Duration::from_secs(60),
                step: STEP,
                connect: Duration::from_secs(2),
                keepalive: Duration::from_secs(60),
            },
            limits: Limits::DEFAULT,
            max_connections: 4096,
            secret: None,
        })
        .await
        .expect("floor proxy");
        Floor { pki, dns, proxy }
    }

    /// Wall time of `n` floor cases, `IN_FLIGHT` at once, per case.
    async fn per_case(&self, n: usize) -> Duration {
        let gate = Arc::new(Semaphore::new(IN_FLIGHT));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let (gate, pki, addr) = (gate.clone(), self.pki.clone(), self.proxy.addr());
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                floor_case(&pki, addr, &domain(i % FLOOR_DOMAINS), i).await;
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("floor case");
        }
        started.elapsed() / n.max(1) as u32
    }
}

fn domain(n: usize) -> String {
    format!("floor-{n}.s2s.test")
}

/// STARTTLS, mutual TLS 1.3, SASL EXTERNAL, one message, close.
async fn floor_case(pki: &Pki, addr: std::net::SocketAddr, from: &str, i: usize) {
    let leaf = pki
        .leaf(from, CertVariant::Valid, KeyType::Ecdsa)
        .expect("leaf")
        .expect("some");
    let roots = tls::root_store(std::slice::from_ref(pki.root_der())).expect("roots");
    let mut s = XmppStream::connect(addr, Limits::DEFAULT, Transcript::new(), 1)
        .await
        .expect("connect");
    let header = StreamHeader::server().with_from(from).with_to(TARGET);
    s.send_header(&header).await.expect("header");
    features(&mut s).await;
    s.send(&starttls::starttls()).await.expect("starttls");
    element(&mut s).await; // <proceed/>
    let (config, _) =
        tls::client_config(&roots, Some(&leaf), Transport::StartTls).expect("client config");
    s.starttls_client(config, tls::server_name(TARGET).expect("name"))
        .await
        .expect("TLS");
    s.send_header(&header).await.expect("header");
    features(&mut s).await;
    s.send(&sasl::auth_external(None)).await.expect("auth");
    let answer = element(&mut s).await;
    assert_eq!(answer.name, "success", "SASL EXTERNAL: {answer:?}");
    s.restart().expect("restart");
    s.send_header(&header).await.expect("header");
    features(&mut s).await;
    let message = Element::new(NS_SERVER, "message")
        .with_attr("from", format!("tester@{from}"))
        .with_attr("to", format!("alice@{TARGET}"))
        .with_attr("id", format!("floor-{i}"))
        .with_child(Element::new(NS_SERVER, "body").with_text("floor"));
    s.send(&message).await.expect("message");
    let _ = s.close().await;
}

async fn element(s: &mut XmppStream) -> Element {
    loop {
        match s.next(STEP).await.expect("read") {
            Event::Element(e) => return e,
            Event::Header(_) | Event::Whitespace => continue,
            other => panic!("expected an element, got {other:?}"),
        }
    }
}

/// The target's header and features.
async fn features(s: &mut XmppStream) {
    let e = element(s).await;
    assert_eq!(e.name, "features", "{e:?}");
}

fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
