//! Mutation score: the full suite (matrix and scenarios) is run against the
//! reference target once per fault switch; every switch must be caught by at
//! least one failing case. The catching cases are listed (`--nocapture`).

use std::path::Path;
use std::sync::Arc;

use s2spec::refproxy::Fault;
use s2spec::report::Verdict;
use s2spec::run::{Harness, Options};
use s2spec::scenario::load_all;

/// Switches whose deviation the texts rate below MUST, so a case catches them
/// as non-strict (SPEC §4.6): refusing a serverAuth-only certificate is a
/// policy choice (SPEC §5, non-strict under lync); falling back to the A
/// record after a "." SRV target breaks RFC 6120 §3.2.1's SHOULD NOT.
const NON_STRICT_LEVEL: [Fault; 2] = [Fault::RefuseServerAuthOnly, Fault::IgnoreSrvDot];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_switch_is_caught() {
    let cases = load_all(Path::new("scenarios/matrix.toml")).expect("scenarios load");
    let mut missed = Vec::new();
    for &fault in Fault::ALL {
        let options = Options {
            faults: [fault].into_iter().collect(),
            ..Options::default()
        };
        let harness = Arc::new(
            Harness::start_reference(&cases, options)
                .await
                .expect("harness"),
        );
        let results = harness.run(cases.clone(), |_| {}).await;
        if let Ok(h) = Arc::try_unwrap(harness) {
            h.shutdown().await;
        }
        let caught: Vec<&str> = results
            .iter()
            .filter(|r| {
                r.verdict == Verdict::Fail
                    || (NON_STRICT_LEVEL.contains(&fault) && r.verdict == Verdict::NonStrict)
            })
            .map(|r| r.id.as_str())
            .collect();
        let errors = results
            .iter()
            .filter(|r| r.verdict == Verdict::Error)
            .count();
        println!(
            "{fault:<40} caught by {:>3} case(s){}, e.g. {}",
            caught.len(),
            if errors > 0 {
                format!(" ({errors} errors)")
            } else {
                String::new()
            },
            caught
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        );
        if caught.is_empty() {
            missed.push(fault);
        }
    }
    println!(
        "mutation score: {}/{}",
        Fault::ALL.len() - missed.len(),
        Fault::ALL.len()
    );
    assert!(
        missed.is_empty(),
        "fault switches no case catches: {missed:?}"
    );
}
