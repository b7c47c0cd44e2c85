//! The engine notices a misbehaving target: for each reference-proxy fault
//! switch that concerns negotiation, the relevant part of the matrix is run
//! against the faulty proxy and specific cases must fail with a message
//! naming the deviation (the same cases pass in tests/conformance.rs).

use std::path::Path;
use std::sync::Arc;

use s2spec::refproxy::Fault;
use s2spec::report::{CaseResult, Verdict};
use s2spec::run::{Harness, Options};
use s2spec::scenario::{Case, expand, load_matrix};

fn cases(prefixes: &[&str]) -> Vec<Case> {
    let spec = load_matrix(Path::new("scenarios/matrix.toml")).unwrap();
    expand(&spec)
        .unwrap()
        .into_iter()
        .filter(|c| prefixes.iter().any(|p| c.id.starts_with(p)))
        .collect()
}

/// Runs the cases under `prefixes` against a proxy with `fault`.
async fn run_with(fault: Fault, prefixes: &[&str]) -> Vec<CaseResult> {
    let cases = cases(prefixes);
    assert!(!cases.is_empty(), "no case under {prefixes:?}");
    let options = Options {
        faults: [fault].into_iter().collect(),
        ..Options::default()
    };
    let harness = Arc::new(Harness::start_reference(&cases, options).await.unwrap());
    let results = harness.run(cases, |_| {}).await;
    if let Ok(h) = Arc::try_unwrap(harness) {
        h.shutdown().await;
    }
    results
}

fn failing(results: &[CaseResult]) -> Vec<&CaseResult> {
    results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .collect()
}

/// `id` failed, and one of its messages contains `needle`.
fn assert_fails(results: &[CaseResult], id: &str, needle: &str) {
    let r = results
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} was not run"));
    assert_eq!(r.verdict, Verdict::Fail, "{id}: {:?}", r.messages);
    assert!(
        r.messages.iter().any(|m| m.contains(needle)),
        "{id}: no message mentions `{needle}`: {:#?}",
        r.messages
    );
}

/// Every failing case satisfies `who`: the deviation hits exactly the cases
/// it should, not unrelated ones.
fn assert_only(results: &[CaseResult], who: impl Fn(&str) -> bool) {
    for r in failing(results) {
        assert!(who(&r.id), "unexpected failure {}: {:?}", r.id, r.messages);
    }
    assert!(
        results.iter().all(|r| r.verdict != Verdict::Error),
        "harness errors"
    );
}

#[tokio::test]
async fn accept_dialback_when_disabled() {
    let results = run_with(
        Fault::AcceptDialbackWhenDisabled,
        &["matrix/in/t-OR0/", "matrix/in/t-OO1/"],
    )
    .await;
    assert_fails(
        &results,
        "matrix/in/t-OR0/p-NN1/valid/srv",
        "observed TCP Dialback",
    );
    assert_fails(
        &results,
        "matrix/in/t-OR0/p-NN1/valid/srv",
        "does not admit",
    );
    assert_fails(
        &results,
        "matrix/in/t-OR0/p-ON1/valid/srv",
        "observed TLS Dialback",
    );
    // A target that admits dialback anyway is not affected.
    assert_only(&results, |id| id.contains("/t-OR0/"));
}

#[tokio::test]
async fn offer_external_before_tls() {
    let results = run_with(
        Fault::OfferExternalBeforeTls,
        &["matrix/in/t-OO1/p-N", "matrix/in/t-NN1/"],
    )
    .await;
    assert_fails(
        &results,
        "matrix/in/t-OO1/p-NN1/valid/srv",
        "offered before TLS",
    );
    // No SASL, nothing to offer: a target with SASL off is unaffected.
    assert_only(&results, |id| id.contains("/t-OO1/"));
}

#[tokio::test]
async fn skip_dialback_verify() {
    let results = run_with(
        Fault::SkipDialbackVerify,
        &["matrix/in/t-OO1/p-NN1/", "matrix/out/t-OO1/p-NN1/"],
    )
    .await;
    assert_fails(
        &results,
        "matrix/in/t-OO1/p-NN1/valid/nxdomain",
        "expected refused but observed TCP Dialback",
    );
    assert_fails(
        &results,
        "matrix/in/t-OO1/p-NN1/valid/srv-to-dead-port",
        "observed TCP Dialback",
    );
    assert_fails(
        &results,
        "matrix/in/t-OO1/p-NN1/valid/authoritative-unreachable",
        "observed TCP Dialback",
    );
    // Every variant whose authoritative server cannot be reached.
    assert_only(&results, |id| {
        id.starts_with("matrix/in/")
            && [
                "/nxdomain",
                "/srv-to-dead-port",
                "/srv-dot",
                "/authoritative-unreachable",
            ]
            .iter()
            .any(|v| id.ends_with(v))
    });
}

#[tokio::test]
async fn plaintext_outbound_when_tls_required() {
    let results = run_with(
        Fault::PlaintextOutboundWhenTlsRequired,
        &["matrix/out/t-RO1/", "matrix/out/t-OO1/"],
    )
    .await;
    assert_fails(
        &results,
        "matrix/out/t-RO1/p-NN1/valid/srv",
        "expected refused but observed TCP Dialback",
    );
    assert_fails(
        &results,
        "matrix/out/t-RO1/p-NN1/valid/srv",
        "does not admit",
    );
    assert_only(&results, |id| id.starts_with("matrix/out/t-RO1/p-N"));
}

#[tokio::test]
async fn accept_invalid_cert() {
    let results = run_with(
        Fault::AcceptInvalidCert,
        &["matrix/in/t-RR1/p-OO1/", "matrix/in/t-RN1/p-OO1/"],
    )
    .await;
    for variant in ["wrong-name", "expired", "self-signed", "untrusted-ca"] {
        assert_fails(
            &results,
            &format!("matrix/in/t-RR1/p-OO1/{variant}/srv"),
            "observed SASL over TLS",
        );
    }
    // A CN-only identity is what RFC 6125 §6.4.4 allows as a last resort and
    // RFC 9525 §2 forbids: advisory, non-strict, never a failure.
    let cn = results
        .iter()
        .find(|r| r.id == "matrix/in/t-RR1/p-OO1/cn-only/srv")
        .expect("cn-only was run");
    assert_eq!(cn.verdict, Verdict::NonStrict, "{:?}", cn.messages);
    assert!(cn.messages.iter().any(|m| m.contains("RFC 9525")));
    assert_only(&results, |id| id.contains("/t-RR1/"));
}

#[tokio::test]
async fn ignore_required_tls_inbound() {
    let results = run_with(
        Fault::IgnoreRequiredTlsInbound,
        &["matrix/in/t-RN1/", "matrix/in/t-ON1/"],
    )
    .await;
    assert_fails(
        &results,
        "matrix/in/t-RN1/p-NN1/valid/srv",
        "expected refused but observed TCP Dialback",
    );
    assert_only(&results, |id| id.contains("/t-RN1/p-N"));
}

#[tokio::test]
async fn accept_unknown_domain() {
    let results = run_with(
        Fault::AcceptUnknownDomain,
        &["matrix/in/t-none/", "matrix/in/t-OO1/p-OO1/"],
    )
    .await;
    assert_fails(
        &results,
        "matrix/in/t-none/p-OO1/valid/srv",
        "accepted a stranger",
    );
    assert_fails(
        &results,
        "matrix/in/t-none/p-NN1/valid/srv",
        "accepted a stranger",
    );
    assert_only(&results, |id| id.contains("/t-none/"));
}

#[tokio::test]
async fn tls_required_not_advertised() {
    let results = run_with(
        Fault::TlsRequiredNotAdvertised,
        &["matrix/in/t-RN1/p-ON1/", "matrix/in/t-ON1/p-ON1/"],
    )
    .await;
    assert_fails(
        &results,
        "matrix/in/t-RN1/p-ON1/valid/srv",
        "without <required/>",
    );
    assert_only(&results, |id| id.contains("/t-RN1/"));
}

/// `id` was judged non-strict (a SHOULD-level or policy deviation), and one
/// of its messages contains `needle`.
fn assert_non_strict(results: &[CaseResult], id: &str, needle: &str) {
    let r = results
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} was not run"));
    assert_eq!(r.verdict, Verdict::NonStrict, "{id}: {:?}", r.messages);
    assert!(
        r.messages.iter().any(|m| m.contains(needle)),
        "{id}: no message mentions `{needle}`: {:#?}",
        r.messages
    );
}

/// Refusing a serverAuth-only certificate at the TLS layer is a policy
/// deviation (SPEC §5): non-strict under lync, seen inbound (the peer's
/// client certificate) and outbound (the peer's certificate when it verifies
/// dialback against the target), and nowhere else.
#[tokio::test]
async fn refuse_server_auth_only() {
    let results = run_with(
        Fault::RefuseServerAuthOnly,
        &["matrix/in/t-OO1/p-OO1/", "matrix/out/t-ON1/p-OO1/"],
    )
    .await;
    assert_non_strict(
        &results,
        "matrix/in/t-OO1/p-OO1/server-auth-only/srv",
        "SPEC §5 (server-auth-only)",
    );
    assert_non_strict(
        &results,
        "matrix/out/t-ON1/p-OO1/server-auth-only/srv",
        "observed refused",
    );
    assert_only(&results, |_| false);
    for r in &results {
        if r.verdict != Verdict::Pass {
            assert!(r.id.contains("/server-auth-only/"), "{}", r.id);
        }
    }
}

/// Falling back to the A record after a "." SRV target breaks RFC 6120
/// §3.2.1's SHOULD NOT: non-strict, only in the srv-dot cases.
#[tokio::test]
async fn ignore_srv_dot() {
    let results = run_with(
        Fault::IgnoreSrvDot,
        &["matrix/out/t-OO1/p-NN1/", "matrix/in/t-OO1/p-NN1/"],
    )
    .await;
    for id in [
        "matrix/out/t-OO1/p-NN1/valid/srv-dot",
        "matrix/in/t-OO1/p-NN1/valid/srv-dot",
    ] {
        assert_non_strict(&results, id, "RFC 6120 §3.2.1");
    }
    assert_only(&results, |_| false);
    for r in &results {
        if r.verdict != Verdict::Pass {
            assert!(r.id.ends_with("/srv-dot"), "{}", r.id);
        }
    }
}

/// A target that ignores AAAA records cannot reach an IPv6-only peer, in
/// either direction (inbound: its authoritative server).
#[tokio::test]
async fn ipv4_only() {
    let results = run_with(
        Fault::Ipv4Only,
        &["matrix/out/t-OO1/p-NN1/", "matrix/in/t-OO1/p-NN1/"],
    )
    .await;
    for id in [
        "matrix/out/t-OO1/p-NN1/valid/aaaa-only",
        "matrix/in/t-OO1/p-NN1/valid/aaaa-only",
    ] {
        assert_fails(&results, id, "expected TCP Dialback but observed refused");
    }
    assert_only(&results, |id| id.ends_with("/aaaa-only"));
}
