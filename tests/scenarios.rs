//! Scripted scenarios can fail: every scenario file runs against the
//! reference proxy with one fault switch, and exactly the scenarios whose
//! requirement the fault breaks must fail (they all pass in
//! tests/conformance.rs). Also the loader: a good file, and bad ones whose
//! errors name the file and line.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use s2spec::refproxy::Fault;
use s2spec::report::{CaseResult, Verdict};
use s2spec::run::{Harness, Options};
use s2spec::scenario::script::{Action, Level, parse_script, script_domain};
use s2spec::scenario::{Case, load_script_cases};

fn scripts() -> Vec<Case> {
    load_script_cases(Path::new("scenarios")).unwrap()
}

async fn run_with(fault: Fault) -> Vec<CaseResult> {
    let cases = scripts();
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

/// Exactly `expected` fail under `fault`, each with a message citing its
/// step; nothing else fails and nothing errors.
async fn fails_exactly(fault: Fault, expected: &[&str]) {
    let results = run_with(fault).await;
    let errors: Vec<_> = results
        .iter()
        .filter(|r| r.verdict == Verdict::Error)
        .map(|r| (&r.id, &r.messages))
        .collect();
    assert!(errors.is_empty(), "{fault}: harness errors {errors:#?}");
    let failed: BTreeSet<&str> = results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .map(|r| r.id.as_str())
        .collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(failed, want, "{fault}: failing scenarios");
    for r in results.iter().filter(|r| r.verdict == Verdict::Fail) {
        assert!(
            r.messages.iter().any(|m| (m.starts_with("MUST (")
                || m.starts_with("MUST NOT (")
                || m.starts_with("FAIL (configuration"))
                && m.contains("not met: expected")),
            "{}: {:?}",
            r.id,
            r.messages
        );
    }
}

#[tokio::test]
async fn pipelined_starttls_is_caught() {
    fails_exactly(
        Fault::ProcessPipelinedStarttls,
        &["rfc6120/5.4.3.3/starttls-pipelining"],
    )
    .await;
}

#[tokio::test]
async fn missing_from_check_is_caught() {
    fails_exactly(Fault::NoFromCheck, &["rfc6120/4.9.3.9/invalid-from"]).await;
}

#[tokio::test]
async fn routing_before_auth_is_caught() {
    // Every scenario that sends a stanza on an unauthenticated stream the
    // target keeps open notices (after an `invalid` dialback result the
    // target closes the stream, XEP-0220 §2.2.1, so nothing more arrives).
    fails_exactly(
        Fault::RouteBeforeAuth,
        &[
            "rfc6120/4.9.3.12/stanza-before-auth",
            "xep0178/3/external-authzid-other-domain",
        ],
    )
    .await;
}

#[tokio::test]
async fn ignored_partner_type_is_caught() {
    fails_exactly(
        Fault::IgnorePartnerType,
        &[
            "spec/7/public-unverified-subscription",
            "spec/7/public-verified-subscription",
        ],
    )
    .await;
}

#[tokio::test]
async fn skipped_dialback_verification_is_caught() {
    fails_exactly(
        Fault::SkipDialbackVerify,
        &[
            "xep0220/2.1.4/spoofed-domain",
            "xep0220/2.4/authoritative-dead-port",
            "xep0220/2.4/authoritative-nxdomain",
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_domains_accepted_is_caught() {
    fails_exactly(
        Fault::AcceptUnknownDomain,
        &["spec/2/dialback-non-partner", "spec/2/unlisted-subdomain"],
    )
    .await;
}

#[tokio::test]
async fn external_before_tls_is_caught() {
    fails_exactly(
        Fault::OfferExternalBeforeTls,
        &["xep0178/3/external-before-tls"],
    )
    .await;
}

#[tokio::test]
async fn cleartext_dialback_with_tls_required_is_caught() {
    fails_exactly(
        Fault::IgnoreRequiredTlsInbound,
        &["spec/4.1/cleartext-dialback-tls-required"],
    )
    .await;
}

#[tokio::test]
async fn echoed_stream_version_is_caught() {
    fails_exactly(Fault::EchoStreamVersion, &["rfc6120/4.7.5/higher-version"]).await;
}

#[test]
fn every_scenario_file_loads_with_unique_ids_and_domains() {
    let cases = scripts();
    assert!(cases.len() >= 30, "only {} scenarios", cases.len());
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases.len());
    let domains: BTreeSet<String> = cases.iter().map(|c| script_domain(&c.id)).collect();
    assert_eq!(domains.len(), cases.len());
    assert!(cases.iter().all(|c| c.family == "script"));
}

const GOOD: &str = r#"
id = "rfc6120/4.9.3.12/example"
title = "An example"
refs = ["RFC 6120 §4.9.3.12"]
level = "SHOULD"
tags = ["example"]

[partner]
type = "public-verified"
tls = "required"
sasl = "optional"
dialback = false
additional-domains = ["sub.{peer}"]
connection-limit = 3

[peer]
tls = "required"
cert = "wildcard"
dns = "a-only"
verify = "silent"
authzid = "own-domain"

[[step]]
connect = true

[[step]]
send = "<db:result from='{peer}' to='{target}'>{dialback-key}</db:result>"

[[step]]
expect = ["<db:result type='valid' id='{capture:x}'/>", "<stream:error/>"]
exact = true
timeout = 2.5

[[step]]
expect-stanza = "<presence type='{absent}'/>"
absent = ["status"]

[[step]]
send-raw = "<presence>{padding}</presence>"
pad-to = 100
"#;

#[test]
fn a_good_file_loads_with_every_part() {
    let s = parse_script(GOOD, "good.toml").unwrap();
    assert_eq!(s.id, "rfc6120/4.9.3.12/example");
    assert_eq!(s.level, Level::Should);
    assert_eq!(s.domain(), "example.4-9-3-12.rfc6120.scn.s2s.test");
    let p = s.partner.as_ref().unwrap();
    assert_eq!(p.connection_limit, Some(3));
    assert_eq!(s.steps.len(), 5);
    assert_eq!(s.steps[0].line, 23);
    assert_eq!(s.steps[2].line, 29);
    assert!(
        matches!(&s.steps[2].action, Action::Expect { patterns, exact: true } if patterns.len() == 2)
    );
    assert_eq!(
        s.steps[2].source,
        r#"expect = ["<db:result type='valid' id='{capture:x}'/>", "<stream:error/>"]; exact = true; timeout = 2.5"#
    );
    let entry = s.partner_entry("target.test", None).unwrap();
    assert!(entry.contains("additional-domains = [\"sub.example.4-9-3-12.rfc6120.scn.s2s.test\"]"));
    assert!(entry.contains("type = \"public-verified\""));
}

/// `bad` (GOOD with one line replaced) fails with `file:line` and `needle`.
fn fails_at(bad: &str, line: usize, needle: &str) {
    let err = parse_script(bad, "bad.toml").unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("bad.toml:{line}:")),
        "wanted line {line}: {err}"
    );
    assert!(err.contains(needle), "wanted `{needle}` in: {err}");
}

#[test]
fn bad_files_name_the_file_and_line() {
    // An unknown key in a step (serde, via the TOML span).
    fails_at(
        &GOOD.replace("timeout = 2.5", "timeout = 2.5\nwibble = 1"),
        33,
        "unknown field `wibble`",
    );
    // An unknown step action.
    fails_at(
        &GOOD.replace("connect = true", "conect = true"),
        24,
        "unknown field `conect`",
    );
    // Two actions in one step.
    fails_at(
        &GOOD.replace("connect = true", "connect = true\nclose = true"),
        23,
        "one action per step",
    );
    // A modifier that does not fit the action.
    fails_at(
        &GOOD.replace("pad-to = 100", "pad-to = 100\nexact = true"),
        38,
        "`exact` does not apply to `send-raw`",
    );
    // An unknown placeholder.
    fails_at(
        &GOOD.replace("{dialback-key}", "{dialback-kee}"),
        26,
        "unknown placeholder `{dialback-kee}`",
    );
    // A pattern placeholder in a send.
    fails_at(
        &GOOD.replace("{dialback-key}", "{any}"),
        26,
        "`{any}` cannot be used in `send`",
    );
    // XML that does not parse.
    fails_at(
        &GOOD.replace("<stream:error/>", "<stream:error>"),
        29,
        "XML does not parse",
    );
    // A wrong enum value.
    fails_at(
        &GOOD.replace("level = \"SHOULD\"", "level = \"MUST NOT\""),
        5,
        "MUST NOT",
    );
    // A bad id points at its own line (GOOD starts with a blank line).
    fails_at(
        &GOOD.replace("rfc6120/4.9.3.12/example", "Example"),
        2,
        "SPEC §4.5",
    );
    fails_at(
        &GOOD.replace("[partner]", "[nonsense]"),
        8,
        "unknown field `nonsense`",
    );
}

/// An unmet step does not end the scenario: the steps after it run while
/// the stream allows, each unmet one is its own deviation at its own level,
/// a step whose stream is gone is skipped (a note, not a pass), and a new
/// connection carries on.
#[tokio::test]
async fn a_scenario_runs_to_the_end_with_one_deviation_per_unmet_step() {
    let text = r#"
id = "rfc6120/11.1/run-to-the-end"
title = "t"
refs = ["RFC 6120 §11.1"]
level = "MUST"

[partner]
type = "federated"
tls = "optional"
sasl = "optional"
dialback = true

[[step]]
connect = true

[[step]]
expect-feature = "bidi"
keyword = "SHOULD"
ref = "XEP-0288 §2"

[[step]]
send-raw = "<!-- no comments -->"

[[step]]
expect-stream-error = "bad-format"

[[step]]
expect-close = true

[[step]]
connect = true

[[step]]
expect-feature = "dialback"
"#;
    let script = parse_script(text, "run-to-the-end.toml").unwrap();
    let cases = vec![s2spec::scenario::script_case(script)];
    let harness = Arc::new(
        Harness::start_reference(&cases, Options::default())
            .await
            .unwrap(),
    );
    let results = harness.run(cases, |_| {}).await;
    if let Ok(h) = Arc::try_unwrap(harness) {
        h.shutdown().await;
    }
    let r = &results[0];
    assert_eq!(r.verdict, Verdict::Fail, "{:#?}", r.messages);
    let levels: Vec<String> = r
        .deviations
        .iter()
        .map(|d| d.severity.to_string())
        .collect();
    assert_eq!(levels, ["non-strict", "fail"], "{:#?}", r.messages);
    assert!(
        r.messages[0].starts_with("SHOULD (protocol, XEP-0288 §2): step 2 at run-to-the-end.toml:")
    );
    assert!(r.messages[1].starts_with("MUST (protocol, RFC 6120 §11.1): step 4"));
    assert!(
        r.messages[1].contains("restricted-xml"),
        "{}",
        r.messages[1]
    );
    assert!(
        r.messages[2].starts_with("step 5 skipped: the target ended the stream"),
        "{:#?}",
        r.messages
    );
    let facts = &r.observed.as_ref().unwrap().facts;
    assert!(
        facts
            .iter()
            .any(|f| f.starts_with("step 7: the dialback feature offered")),
        "{facts:#?}"
    );
}

async fn run_one(text: &str) -> s2spec::report::CaseResult {
    let script = parse_script(text, "barrier.toml").unwrap();
    let cases = vec![s2spec::scenario::script_case(script)];
    let harness = Arc::new(
        Harness::start_reference(&cases, Options::default())
            .await
            .unwrap(),
    );
    let mut results = harness.run(cases, |_| {}).await;
    if let Ok(h) = Arc::try_unwrap(harness) {
        h.shutdown().await;
    }
    results.remove(0)
}

/// `expect-no-delivery` settles by a barrier on an open stream (no wait),
/// sees a delivery it must not see, and waits — saying so in `waited` —
/// only where no stream can carry a barrier.
#[tokio::test]
async fn absence_is_settled_by_a_barrier_and_only_waits_without_one() {
    let head = r#"
id = "rfc6120/10.1/barrier"
title = "t"
refs = ["RFC 6120 §10.1"]
level = "MUST"

[partner]
type = "federated"
tls = "optional"
sasl = "optional"
dialback = true
"#;
    // A message that is delivered (the echo user answers it): the barrier
    // must not hide it.
    let delivered = format!(
        "{head}
[[step]]
authenticate = true

[[step]]
send = \"<message from='tester@{{peer}}' to='alice@{{target}}' id='m1' type='chat'><body>hi</body></message>\"

[[step]]
expect-no-delivery = \"m1\"
timeout = 20
"
    );
    let r = run_one(&delivered).await;
    assert_eq!(r.verdict, Verdict::Fail, "{:#?}", r.messages);
    assert!(r.waited.is_empty(), "{:?}", r.waited);
    // A message to nobody (refused with an error reply): the barrier
    // settles it at once, far below the 20 s bound.
    let started = std::time::Instant::now();
    let r =
        run_one(&delivered.replace("alice@{target}' id='m1'", "nobody@{target}' id='m1'")).await;
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.messages);
    assert!(r.waited.is_empty(), "{:?}", r.waited);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let facts = &r.observed.as_ref().unwrap().facts;
    assert!(
        facts
            .iter()
            .any(|f| f.contains("barrier 'barrier-1' came back first")),
        "{facts:#?}"
    );
    // No connection: nothing can carry a barrier, so the step waits.
    let lone = format!("{head}\n[[step]]\nexpect-no-delivery = \"m1\"\ntimeout = 0.3\n");
    let r = run_one(&lone).await;
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.messages);
    assert_eq!(r.waited.len(), 1, "{:?}", r.waited);
    assert_eq!(r.waited[0].step, 1);
    assert!(r.waited[0].ms >= 300, "{:?}", r.waited);
    assert!(r.waited[0].why.contains("no connection"), "{:?}", r.waited);
}
