//! External targets that misbehave on purpose (issue 16, item 5): silence,
//! a stall after the header, a garbage flood, endless nesting, a reset on
//! accept, one byte a second, invalid UTF-8, entity declarations and
//! plaintext after `<proceed/>`. Against each, every selected case comes
//! back within its deadline, none passes where the target had to succeed,
//! none is a harness error, memory stays bounded and nothing is left
//! listening once the harness has shut down.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use s2spec::report::{CaseResult, Verdict};

/// The listener count is process-wide: the two tests here take turns, so
/// one's sockets never look like the other's leftovers.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
use s2spec::run::{Harness, Options};
use s2spec::scenario::{Case, expand, load_matrix};
use s2spec::target::External;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CASE_DEADLINE: Duration = Duration::from_secs(8);
/// Scheduling on a loaded machine (2 cores, parallel builds) on top.
const SLACK: Duration = Duration::from_secs(4);

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    from='target.test' id='hostile' version='1.0'>";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hostile {
    NeverAnswers,
    StallsAfterHeader,
    FloodsGarbage,
    FloodsWhitespace,
    NestsWithoutEnd,
    ResetsOnAccept,
    DripsOneByteASecond,
    SendsInvalidUtf8,
    DeclaresEntities,
    PlaintextAfterProceed,
}

const ALL: [Hostile; 10] = [
    Hostile::NeverAnswers,
    Hostile::StallsAfterHeader,
    Hostile::FloodsGarbage,
    Hostile::FloodsWhitespace,
    Hostile::NestsWithoutEnd,
    Hostile::ResetsOnAccept,
    Hostile::DripsOneByteASecond,
    Hostile::SendsInvalidUtf8,
    Hostile::DeclaresEntities,
    Hostile::PlaintextAfterProceed,
];

/// Reads what the peer sends until `needle` shows up (or the peer goes).
async fn read_until(tcp: &mut TcpStream, needle: &str) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if seen.len() > 1 << 20 {
            return false;
        }
    }
    true
}

/// Writes `chunk` until the peer stops reading or closes; counts the bytes.
async fn flood(tcp: &mut TcpStream, chunk: &[u8], sent: &AtomicU64) {
    let until = Instant::now() + CASE_DEADLINE * 2;
    while Instant::now() < until {
        match tokio::time::timeout(Duration::from_secs(1), tcp.write_all(chunk)).await {
            Ok(Ok(())) => {
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            Ok(Err(_)) => return,
            // Nobody reads any more: the peer gave up on us, as it should.
            Err(_) => return,
        }
    }
}

async fn behave(kind: Hostile, mut tcp: TcpStream, sent: Arc<AtomicU64>) {
    let hold = || tokio::time::sleep(CASE_DEADLINE * 2);
    match kind {
        Hostile::NeverAnswers => hold().await,
        Hostile::StallsAfterHeader => {
            read_until(&mut tcp, ">").await;
            let _ = tcp.write_all(HEADER).await;
            hold().await;
        }
        Hostile::FloodsGarbage => {
            let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
            flood(&mut tcp, &garbage, &sent).await;
        }
        Hostile::FloodsWhitespace => {
            let _ = tcp.write_all(HEADER).await;
            flood(&mut tcp, &[b' '; 64 * 1024], &sent).await;
        }
        Hostile::NestsWithoutEnd => {
            let _ = tcp.write_all(HEADER).await;
            flood(&mut tcp, &b"<a>".repeat(16 * 1024), &sent).await;
        }
        Hostile::ResetsOnAccept => {
            // SO_LINGER 0: the close is an RST, not a FIN.
            let _ = tcp.set_zero_linger();
            drop(tcp);
        }
        Hostile::DripsOneByteASecond => {
            for b in HEADER {
                if tcp.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Hostile::SendsInvalidUtf8 => {
            let _ = tcp.write_all(HEADER).await;
            let _ = tcp
                .write_all(b"<stream:features><mechanisms>\xff\xfe\xc0\x80</mechanisms>")
                .await;
            hold().await;
        }
        Hostile::DeclaresEntities => {
            // A billion laughs in the prolog, then one in use.
            let mut doc = b"<?xml version='1.0'?><!DOCTYPE stream:stream [\
                <!ENTITY a 'aaaaaaaaaaaaaaaa'>"
                .to_vec();
            for (n, prev) in ["b", "c", "d", "e", "f", "g", "h"]
                .iter()
                .zip(["a", "b", "c", "d", "e", "f", "g"])
            {
                let refs = format!("&{prev};").repeat(16);
                doc.extend_from_slice(format!("<!ENTITY {n} '{refs}'>").as_bytes());
            }
            doc.extend_from_slice(b"]>");
            doc.extend_from_slice(&HEADER[b"<?xml version='1.0'?>".len()..]);
            doc.extend_from_slice(b"<stream:features><x>&h;</x></stream:features>");
            let _ = tcp.write_all(&doc).await;
            hold().await;
        }
        Hostile::PlaintextAfterProceed => {
            read_until(&mut tcp, ">").await;
            let _ = tcp.write_all(HEADER).await;
            let _ = tcp
                .write_all(
                    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
                      <required/></starttls></stream:features>",
                )
                .await;
            if read_until(&mut tcp, "starttls").await {
                let _ = tcp
                    .write_all(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                    .await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
            hold().await;
        }
    }
}

/// The hostile target: a listener whose every connection misbehaves as
/// `kind` says; aborting the task closes the listener and the connections.
async fn hostile_target(
    kind: Hostile,
    sent: Arc<AtomicU64>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            conns.spawn(behave(kind, tcp, sent.clone()));
        }
    });
    (addr, task)
}

/// Inbound cases of one target row with every peer, plus the outbound and
/// stranger cases an external target must still account for.
fn cases() -> Vec<Case> {
    let spec = load_matrix(Path::new("scenarios/matrix.toml")).unwrap();
    let cases: Vec<Case> = expand(&spec)
        .unwrap()
        .into_iter()
        .filter(|c| {
            (c.id.starts_with("matrix/in/t-RO1/") && c.id.ends_with("/valid/srv"))
                || c.id.starts_with("matrix/out/t-OO1/p-OO1/")
                || c.id.starts_with("stranger/")
        })
        .collect();
    assert!(cases.len() >= 20, "{}", cases.len());
    cases
}

struct Outcome {
    kind: Hostile,
    results: Vec<CaseResult>,
    took: Duration,
    dns: SocketAddr,
}

async fn run_against(kind: Hostile, cases: Vec<Case>, sent: Arc<AtomicU64>) -> Outcome {
    let (addr, target) = hostile_target(kind, sent).await;
    let options = Options {
        step: Duration::from_millis(700),
        delivery_wait: Duration::from_millis(700),
        case_deadline: CASE_DEADLINE,
        ..Options::default()
    };
    let external = External {
        addr,
        domain: "target.test".into(),
    };
    let pki = Arc::new(s2spec::pki::Pki::new().unwrap());
    let harness = Arc::new(
        Harness::start_external(external, options, pki, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap(),
    );
    let dns = harness.dns_addr();
    let started = Instant::now();
    let results = harness.run(cases, |_| {}).await;
    let took = started.elapsed();
    match Arc::try_unwrap(harness) {
        Ok(h) => h.shutdown().await,
        Err(_) => panic!("{kind:?}: a case task still holds the harness"),
    }
    target.abort();
    Outcome {
        kind,
        results,
        took,
        dns,
    }
}

/// Inodes of this process's sockets.
fn own_socket_inodes() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")
                        .and_then(|r| r.strip_suffix(']'))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// This process's listening TCP sockets (state 0A in /proc/net/tcp{,6}).
fn own_listeners() -> usize {
    let ours = own_socket_inodes();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| t.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(3) == Some(&"0A") && f.get(9).is_some_and(|i| ours.contains(*i))
        })
        .count()
}

/// Peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_target_gets_every_case_judged_within_its_deadline() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let cases = cases();
    let selected: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
    let listeners_before = own_listeners();
    let rss_before = peak_rss_kib();
    let sent = Arc::new(AtomicU64::new(0));
    let runs = ALL.map(|kind| tokio::spawn(run_against(kind, cases.clone(), sent.clone())));
    let mut outcomes = Vec::new();
    for run in runs {
        outcomes.push(run.await.expect("a hostile target run panicked"));
    }
    for Outcome {
        kind,
        results,
        took,
        ..
    } in &outcomes
    {
        let ids: Vec<String> = results.iter().map(|r| r.id.clone()).collect();
        assert_eq!(
            ids, selected,
            "{kind:?}: every case reported once, in order"
        );
        assert!(
            *took < CASE_DEADLINE + SLACK,
            "{kind:?}: the run took {took:?}"
        );
        for r in results {
            assert!(
                Duration::from_millis(r.duration_ms) < CASE_DEADLINE + SLACK,
                "{kind:?} {}: {} ms",
                r.id,
                r.duration_ms
            );
            assert_ne!(
                r.verdict,
                Verdict::Error,
                "{kind:?} {}: {:?}",
                r.id,
                r.messages
            );
            let must_succeed = r.expected.as_ref().is_some_and(|e| !e.outcome.is_refused());
            if must_succeed {
                assert_ne!(
                    r.verdict,
                    Verdict::Pass,
                    "{kind:?} {}: {:?}",
                    r.id,
                    r.messages
                );
            }
            // Silence is no refusal (SPEC §4.3): nothing passes against it.
            if *kind == Hostile::NeverAnswers && r.id.starts_with("matrix/in/") {
                assert_eq!(r.verdict, Verdict::Fail, "{}: {:?}", r.id, r.messages);
            }
        }
    }
    // The floods wrote megabytes: none of it may have been kept.
    let grown_mib = peak_rss_kib().saturating_sub(rss_before) / 1024;
    assert!(grown_mib < 256, "peak memory grew by {grown_mib} MiB");
    assert!(
        sent.load(Ordering::Relaxed) > 0,
        "the floods sent something"
    );
    // Let aborted tasks drop their sockets, then count what still listens.
    let settle = Instant::now();
    while own_listeners() > listeners_before && settle.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(own_listeners(), listeners_before, "sockets left listening");
    for o in &outcomes {
        assert!(
            TcpStream::connect(o.dns).await.is_err(),
            "{:?}: the mock DNS still accepts on {}",
            o.kind,
            o.dns
        );
    }
}

/// Absurd options through the library (the CLI refuses them): a deadline of
/// `Duration::MAX` and unlimited jobs must neither overflow `Instant +
/// Duration` in the reference proxy nor exceed tokio's semaphore limit.
#[tokio::test]
async fn absurd_options_saturate_instead_of_panicking() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.id.starts_with("matrix/in/"))
        .take(4)
        .collect();
    let options = Options {
        case_deadline: Duration::MAX,
        jobs: usize::MAX,
        ..Options::default()
    };
    let harness = Arc::new(Harness::start_reference(&cases, options).await.unwrap());
    let results = harness.run(cases.clone(), |_| {}).await;
    if let Ok(h) = Arc::try_unwrap(harness) {
        h.shutdown().await;
    }
    assert_eq!(results.len(), cases.len());
    for r in &results {
        assert_eq!(r.verdict, Verdict::Pass, "{}: {:?}", r.id, r.messages);
    }
}
