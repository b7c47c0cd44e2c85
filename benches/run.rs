//! `cargo bench`: the main job's speed against the reference target, and the
//! cost of a bare TLS handshake pair measured the same way, so the harness's
//! overhead can be read as a ratio. Figures go into the README.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use s2spec::pki::{CertVariant, KeyType, Pki};
use s2spec::report::Verdict;
use s2spec::run::{Harness, Options};
use s2spec::scenario::load_all;
use s2spec::tls::{self, Transport};
use tokio::net::{TcpListener, TcpStream};

const RUNS: usize = 3;
const HANDSHAKES: usize = 300;

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. a filter) is ignored.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let cases = load_all(Path::new("scenarios/matrix.toml")).expect("cases");
        let mut walls = Vec::new();
        for run in 1..=RUNS {
            let harness = Arc::new(
                Harness::start_reference(&cases, Options::default())
                    .await
                    .expect("harness"),
            );
            let started = Instant::now();
            let results = harness.run(cases.clone(), |_| {}).await;
            let wall = started.elapsed();
            let passed = results
                .iter()
                .filter(|r| r.verdict == Verdict::Pass)
                .count();
            println!(
                "run {run}: {} cases in {:.2} s ({:.0} cases/s), {passed} passed or not applicable",
                results.len(),
                wall.as_secs_f64(),
                results.len() as f64 / wall.as_secs_f64()
            );
            walls.push(wall);
            if let Ok(h) = Arc::try_unwrap(harness) {
                h.shutdown().await;
            }
        }
        let best = walls.iter().min().copied().unwrap_or_default();
        // The matrix alone: scripted scenarios include deliberate waits
        // ("nothing is delivered within 3 s"), the matrix has none.
        let matrix: Vec<_> = cases
            .iter()
            .filter(|c| c.id.starts_with("matrix/") || c.id.starts_with("config/"))
            .cloned()
            .collect();
        let harness = Arc::new(
            Harness::start_reference(&cases, Options::default())
                .await
                .expect("harness"),
        );
        let started = Instant::now();
        let n = harness.run(matrix, |_| {}).await.len();
        let matrix_wall = started.elapsed();
        if let Ok(h) = Arc::try_unwrap(harness) {
            h.shutdown().await;
        }
        println!(
            "matrix alone: {n} cases in {:.2} s ({:.0} cases/s)",
            matrix_wall.as_secs_f64(),
            n as f64 / matrix_wall.as_secs_f64()
        );
        let per_case = best / cases.len() as u32;
        let handshake = handshake_pair_cost().await;
        println!(
            "full run (best of {RUNS}): {:.2} s, {:.0} cases/s",
            best.as_secs_f64(),
            cases.len() as f64 / best.as_secs_f64()
        );
        println!("peak memory (VmHWM): {}", peak_memory());
        println!(
            "bare TLS handshake pair over loopback (mean of {HANDSHAKES}, sequential): {:.2} ms",
            handshake.as_secs_f64() * 1e3
        );
        println!(
            "wall time per case with the default 64 in flight: {:.2} ms = {:.2} handshake pairs",
            per_case.as_secs_f64() * 1e3,
            per_case.as_secs_f64() / handshake.as_secs_f64()
        );
    });
}

/// Mean duration of one TCP connect + TLS handshake (client and server, both
/// in this process, configs built per connection as the harness does).
async fn handshake_pair_cost() -> Duration {
    let pki = Pki::new().expect("pki");
    let roots = tls::root_store(std::slice::from_ref(pki.root_der())).expect("roots");
    let server_cert = pki
        .leaf("target.test", CertVariant::Valid, KeyType::Ecdsa)
        .expect("leaf")
        .expect("some");
    let client_cert = pki
        .leaf("peer.s2s.test", CertVariant::Valid, KeyType::Ecdsa)
        .expect("leaf")
        .expect("some");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_roots = roots.clone();
    let server = tokio::spawn(async move {
        for _ in 0..HANDSHAKES {
            let (tcp, _) = listener.accept().await.expect("accept");
            let (config, _) = tls::server_config(&server_roots, &server_cert, Transport::StartTls)
                .expect("config");
            let stream = tokio_rustls::TlsAcceptor::from(config)
                .accept(tcp)
                .await
                .expect("accept tls");
            drop(stream);
        }
    });
    let started = Instant::now();
    for _ in 0..HANDSHAKES {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (config, _) =
            tls::client_config(&roots, Some(&client_cert), Transport::StartTls).expect("config");
        let name = tls::server_name("target.test").expect("name");
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .expect("tls");
        drop(stream);
    }
    let took = started.elapsed();
    let _ = server.await;
    took / HANDSHAKES as u32
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
