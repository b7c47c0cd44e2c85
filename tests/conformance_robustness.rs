//! A target that stalls, or answers garbage, yields failed cases within the
//! deadline, and the run goes on (SPEC §4.3: a refusal must be observable,
//! silence is not conformance).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use s2spec::report::{CaseResult, Verdict};
use s2spec::run::{Harness, Options};
use s2spec::scenario::{expand, load_matrix};
use s2spec::target::External;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Accepts connections and hands each to `serve`; stops with the returned handle.
async fn fake_target<F, Fut>(serve: F) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            conns.spawn(serve(tcp));
        }
    });
    (addr, task)
}

async fn run_against(addr: std::net::SocketAddr) -> (Vec<CaseResult>, Duration) {
    let spec = load_matrix(Path::new("scenarios/matrix.toml")).unwrap();
    let cases: Vec<_> = expand(&spec)
        .unwrap()
        .into_iter()
        .filter(|c| c.id.starts_with("matrix/in/t-OO1/") && c.id.ends_with("/valid/srv"))
        .collect();
    assert_eq!(cases.len(), 18);
    let options = Options {
        step: Duration::from_millis(500),
        delivery_wait: Duration::from_millis(500),
        case_deadline: Duration::from_secs(10),
        ..Options::default()
    };
    let target = External {
        addr,
        domain: "target.test".into(),
    };
    let pki = Arc::new(s2spec::pki::Pki::new().unwrap());
    let dns = "127.0.0.1:0".parse().unwrap();
    let harness = Arc::new(
        Harness::start_external(target, options, pki, dns)
            .await
            .unwrap(),
    );
    let started = Instant::now();
    let results = harness.run(cases, |_| {}).await;
    let took = started.elapsed();
    if let Ok(h) = Arc::try_unwrap(harness) {
        h.shutdown().await;
    }
    (results, took)
}

fn assert_failed_in_time(results: &[CaseResult], took: Duration) {
    assert_eq!(results.len(), 18, "every case produced a result");
    assert!(took < Duration::from_secs(10), "the run took {took:?}");
    // OO1 against a conformant target succeeds with every peer that admits a
    // method; against this one those cases fail (not error), the rest pass.
    let success_expected =
        |r: &CaseResult| r.expected.as_ref().is_some_and(|e| !e.outcome.is_refused());
    let failed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .count();
    assert!(failed >= 10, "{failed} failed");
    for r in results {
        assert_ne!(r.verdict, Verdict::Error, "{}: {:?}", r.id, r.messages);
        if success_expected(r) {
            assert_eq!(r.verdict, Verdict::Fail, "{}", r.id);
            assert!(
                r.messages
                    .iter()
                    .any(|m| m.contains("but observed refused")),
                "{:?}",
                r.messages
            );
        }
    }
}

#[tokio::test]
async fn a_target_that_never_answers_fails_within_the_deadline() {
    let (addr, task) = fake_target(|tcp| async move {
        // Hold the connection open, say nothing.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(tcp);
    })
    .await;
    let (results, took) = run_against(addr).await;
    task.abort();
    assert_failed_in_time(&results, took);
    assert!(results.iter().any(|r| {
        r.observed
            .as_ref()
            .is_some_and(|o| o.facts.iter().any(|f| f.contains("Timeout")))
    }));
    // SPEC §4.3: silence is no refusal, so not even the cases that expect a
    // refusal pass against a target that never answers.
    for r in &results {
        if r.id.starts_with("matrix/in/") {
            assert_eq!(r.verdict, Verdict::Fail, "{}: {:?}", r.id, r.messages);
        }
    }
}

#[tokio::test]
async fn a_target_that_answers_garbage_fails_within_the_deadline() {
    let (addr, task) = fake_target(|mut tcp| async move {
        let _ = tcp
            .write_all(b"\x16\x03\x01garbage<<<>>>&&&\x00\xff not xml at all")
            .await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let (results, took) = run_against(addr).await;
    task.abort();
    assert_failed_in_time(&results, took);
}
