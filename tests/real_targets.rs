//! A representative slice of the suite against the real servers s2spec can
//! manage (fixtures/targets/*.toml). A server that is not installed is
//! skipped with the reason printed (install: scripts/install-targets.sh).
//! Every server instance must be gone when the run returns.

mod common;
use common::{leftovers, one_at_a_time};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use s2spec::oracle::{Pairing, expect, methods};
use s2spec::partner::{Negotiation, negotiation_is_valid};
use s2spec::report::{CaseResult, Verdict};
use s2spec::requirement::{Severity, SourceKind};
use s2spec::run::Options;
use s2spec::run::managed::{ManagedOptions, run_managed};
use s2spec::scenario::{Case, CaseKind, expand, load_matrix};
use s2spec::target::profile::{Decision, Group, Profile, decide, express, needs_local_users};

fn profile(name: &str) -> Profile {
    Profile::named(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets"),
        name,
    )
    .unwrap()
}

/// The timing every real-target test uses.
fn options() -> Options {
    Options {
        delivery_wait: Duration::from_secs(3),
        case_deadline: Duration::from_secs(20),
        ..Options::default()
    }
}

fn cases(ids: &[String]) -> Vec<Case> {
    let spec = load_matrix(Path::new("scenarios/matrix.toml")).unwrap();
    let all = expand(&spec).unwrap();
    let picked: Vec<Case> = all.into_iter().filter(|c| ids.contains(&c.id)).collect();
    assert_eq!(picked.len(), ids.len(), "every slice id is a case");
    picked
}

/// Inbound: valid certificates, SRV, every global configuration group
/// Prosody has (ejabberd: those it can express), against peers that succeed and peers that must be refused;
/// outbound (ping trigger): one group, three peers.
fn slice() -> Vec<String> {
    let mut ids = Vec::new();
    for t in ["OO1", "RO1", "RR0", "NN1", "RN1", "ON1", "OO0"] {
        for p in ["OO1", "RR0", "NN1"] {
            ids.push(format!("matrix/in/t-{t}/p-{p}/valid/srv"));
        }
    }
    for p in ["OO1", "RR0", "ON1"] {
        ids.push(format!("matrix/out/t-OO1/p-{p}/valid/srv"));
    }
    ids.push("matrix/in/t-OO1/p-NN1/valid/a-only".into());
    ids.push("matrix/in/t-OO1/p-NN1/valid/proxy-fqdn".into());
    ids
}

/// Runs the slice against `server`; every case must pass or be one of the
/// server's documented deviations / limits (`tolerated`).
async fn passes_a_representative_slice(server: &str, tolerated: impl Fn(&CaseResult) -> bool) {
    let profile = profile(server);
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED {server}_passes_a_representative_slice: {why}");
        return;
    }
    let _alone = one_at_a_time(server).lock().await;
    let ids = slice();
    let options = options();
    let started = Instant::now();
    let results = run_managed(
        &profile,
        cases(&ids),
        options,
        ManagedOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    eprintln!(
        "{server}: {} cases in {:?}",
        results.len(),
        started.elapsed()
    );
    assert!(leftovers(server).is_empty(), "{:?}", leftovers(server));
    assert_eq!(results.len(), ids.len());
    let bad: Vec<String> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass && !tolerated(r))
        .map(|r| format!("{} {}: {:?}\n{}", r.verdict, r.id, r.messages, tail(r)))
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The end of a case's transcript, for failure messages.
fn tail(r: &CaseResult) -> String {
    let start = r.transcript.len().saturating_sub(14);
    r.transcript[start..]
        .iter()
        .map(|e| {
            let text: String = e.text.chars().take(160).collect();
            format!(
                "    {:>6.2}s s{} {:?} {text}",
                e.at.as_secs_f64(),
                e.stream,
                e.dir
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A partner proxy FQDN cannot be configured in either server.
fn proxy_fqdn_not_applicable(r: &CaseResult) -> bool {
    r.verdict == Verdict::NotApplicable
        && r.id.ends_with("/proxy-fqdn")
        && r.messages[0].contains("proxy FQDN")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_passes_a_representative_slice() {
    passes_a_representative_slice("prosody", |r| {
        // Prosody advertises dialback on clear-text streams even where TLS
        // is required (a SHOULD-level deviation, reports/prosody/FINDINGS.md).
        // RFC 6120 §5.3.1: "SHOULD NOT advertise support for any stream
        // feature except STARTTLS" while TLS is mandatory-to-negotiate.
        (r.verdict == Verdict::NonStrict
            && r.deviations
                .iter()
                .filter(|d| d.severity != Severity::Info)
                .all(|d| {
                    d.requirement.reference == "RFC 6120 §5.3.1"
                        && d.text.starts_with("dialback feature offered before TLS")
                }))
            || proxy_fqdn_not_applicable(r)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_passes_a_representative_slice() {
    passes_a_representative_slice("ejabberd", |r| {
        // ejabberd offers EXTERNAL on every TLS stream: rows with TLS but
        // without SASL cannot be configured (fixtures/targets/ejabberd.toml).
        let no_sasl_off = ["/t-RN1/", "/t-ON1/"].iter().any(|t| r.id.contains(t))
            && r.verdict == Verdict::NotApplicable
            && r.messages[0].contains("sasl = off");
        // ejabberd sends an empty <mechanisms/> on clear-text streams where
        // TLS is optional or off (reports/ejabberd/FINDINGS.md).
        // Only RFC 6120's descriptive schema requires a <mechanism/> child:
        // advisory, non-strict.
        let empty_mechanisms = r.verdict == Verdict::NonStrict
            && r.deviations
                .iter()
                .filter(|d| d.severity != Severity::Info)
                .all(|d| {
                    d.text
                        .starts_with("an empty <mechanisms/> offered before TLS")
                });
        no_sasl_off || empty_mechanisms || proxy_fqdn_not_applicable(r)
    })
    .await;
}

#[tokio::test]
async fn a_missing_server_says_how_to_install_it() {
    let mut profile = profile("prosody");
    profile.program = "s2spec-no-such-server".into();
    let err = run_managed(
        &profile,
        Vec::new(),
        Options::default(),
        ManagedOptions::default(),
        |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("is not installed"), "{err}");
    assert!(err.contains("scripts/install-targets.sh prosody"), "{err}");
}

/// The valid target rows (SPEC §4), as codes.
fn valid_rows() -> Vec<String> {
    Negotiation::all()
        .filter(|n| negotiation_is_valid(*n))
        .map(Negotiation::code)
        .collect()
}

/// Sensitivity (the harness must notice when a server is not configured as
/// it believes): the profile is doctored so that the group the harness
/// believes has dialback off is rendered with dialback on. Every case whose
/// expected outcome, by the oracle alone, differs between the two
/// configurations must now fail, and no other case may start failing.
async fn lying_about_dialback_fails_exactly_the_affected_cases(server: &str) {
    let truthful = profile(server);
    if let Some(why) = truthful.unavailable() {
        eprintln!("SKIPPED {server} sensitivity check: {why}");
        return;
    }
    let _alone = one_at_a_time(server).lock().await;
    let mut lying = truthful.clone();
    let on = lying.capabilities.dialback.values["on"].clone();
    lying.capabilities.dialback.values.insert("off".into(), on);

    // Declared: TLS required, EXTERNAL only (RR0), against every valid peer
    // row in both directions; controls: a row whose dialback is really on.
    let mut ids = Vec::new();
    for p in valid_rows() {
        for dir in ["in", "out"] {
            ids.push(format!("matrix/{dir}/t-RR0/p-{p}/valid/srv"));
        }
    }
    for p in ["RN1", "NN1"] {
        ids.push(format!("matrix/in/t-OO1/p-{p}/valid/srv"));
    }
    let cases = cases(&ids);
    let policy = Options::default().policy;

    // What the oracle predicts: the lie changes the outcome of these cases.
    let mut affected = BTreeSet::new();
    for case in &cases {
        let CaseKind::Pairing(p) = &case.kind else {
            unreachable!()
        };
        let Ok(declared) = express(&truthful.capabilities, p.target, policy) else {
            continue;
        };
        let really = Group {
            dialback: true,
            ..declared
        };
        let row = Negotiation::all()
            .find(|n| negotiation_is_valid(*n) && methods(*n).to_vec() == really.methods())
            .expect("the real configuration is a valid row");
        let actual = Pairing { target: row, ..*p };
        if expect(p, policy).outcome != expect(&actual, policy).outcome {
            affected.insert(case.id.clone());
        }
    }
    assert!(
        !affected.is_empty() && affected.len() < cases.len(),
        "the lie must matter for some cases and not all: {affected:?}"
    );

    let run = |profile: Profile, cases: Vec<Case>| async move {
        let options = options();
        run_managed(&profile, cases, options, ManagedOptions::default(), |_| {})
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect::<BTreeMap<_, _>>()
    };
    let honest = run(truthful.clone(), cases.clone()).await;
    let lied = run(lying, cases).await;
    assert!(leftovers(server).is_empty(), "{:?}", leftovers(server));

    let newly_failing: BTreeSet<String> = lied
        .values()
        .filter(|r| r.verdict == Verdict::Fail && honest[&r.id].verdict != Verdict::Fail)
        .map(|r| r.id.clone())
        .collect();
    let detail = |ids: &BTreeSet<String>| {
        ids.iter()
            .map(|id| format!("{id}: {} / {:?}", lied[id].verdict, lied[id].messages))
            .collect::<Vec<_>>()
    };
    // The lie also shows where the outcome stays the same: the server offers
    // the dialback feature on streams where the believed configuration admits
    // no dialback (SPEC §4.1, a configuration rule). Such a case counts as
    // caught only when that is all that fails in it.
    let caught_by_features = |id: &String| {
        lied[id]
            .deviations
            .iter()
            .filter(|d| d.severity == Severity::Fail)
            .all(|d| {
                d.requirement.source == SourceKind::Configuration
                    && d.text.starts_with("dialback feature offered")
                    && d.text.contains("where the configuration does not admit it")
            })
    };
    let spurious: BTreeSet<String> = newly_failing
        .difference(&affected)
        .filter(|id| !caught_by_features(id))
        .cloned()
        .collect();
    let missed: BTreeSet<String> = affected.difference(&newly_failing).cloned().collect();
    assert!(
        missed.is_empty() && spurious.is_empty(),
        "\nmissed: {:#?}\nspurious: {:#?}",
        detail(&missed),
        detail(&spurious),
    );
    eprintln!(
        "{server}: the lie failed all {} cases whose outcome it changes, and {} more by the \
         dialback feature it offers, of {}: {affected:?}",
        affected.len(),
        newly_failing.len() - affected.len(),
        lied.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_lied_to_fails_exactly_the_affected_cases() {
    lying_about_dialback_fails_exactly_the_affected_cases("prosody").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_lied_to_fails_exactly_the_affected_cases() {
    lying_about_dialback_fails_exactly_the_affected_cases("ejabberd").await;
}

/// Every scripted scenario, as cases.
fn all_scenarios() -> Vec<Case> {
    s2spec::scenario::load_all(Path::new("scenarios/matrix.toml"))
        .unwrap()
        .into_iter()
        .filter(|c| matches!(c.kind, CaseKind::Script(_)))
        .collect()
}

/// A not-applicable reason that blames a missing local user (the old rule's
/// wording, or the local users' login failing).
fn for_want_of_a_user(reason: &str) -> bool {
    [
        "user of the target",
        "echo user",
        "no user",
        "no local user",
        "could not log in",
        "lists no `[accounts]`",
    ]
    .iter()
    .any(|w| reason.contains(w))
}

/// Issue 11 item 4: with the profiles' `[accounts]`, no scenario is
/// not-applicable for want of a local user on either server (pure: the
/// profiles and the scenario files decide; no server needed).
#[test]
fn no_scenario_is_not_applicable_for_want_of_a_local_user() {
    let scenarios = all_scenarios();
    let needing: Vec<&Case> = scenarios
        .iter()
        .filter(|c| matches!(&c.kind, CaseKind::Script(s) if needs_local_users(s)))
        .collect();
    // The 18 of the issue, and the three partner-type ones.
    assert!(needing.len() >= 18, "{}", needing.len());
    for server in ["prosody", "ejabberd"] {
        let profile = profile(server);
        let accounts = profile.accounts.as_ref().expect("[accounts]");
        assert!(accounts.users.iter().any(|u| u == "alice"), "{server}");
        for case in &scenarios {
            if let Decision::NotApplicable(r) =
                decide(&profile.capabilities, case, Options::default().policy)
            {
                assert!(!for_want_of_a_user(&r), "{server} {}: {r}", case.id);
            }
        }
        // The scenarios the issue names run on both servers.
        for id in [
            "rfc6120/4.9.3.12/stanza-before-auth",
            "rfc6120/4.9.3.9/invalid-from",
            "xep0178/3/external-authzid-other-domain",
            "xep0178/3/external-no-authzid",
        ] {
            let case = scenarios.iter().find(|c| c.id == id).expect(id);
            let d = decide(&profile.capabilities, case, Options::default().policy);
            assert!(matches!(d, Decision::Run(_)), "{server} {id}: {d:?}");
        }
    }
}

/// Every scenario that addresses a local user, against `server`: its users
/// are registered and logged in over c2s, delivery is observed at alice's
/// client, and every scenario is graded (no harness error, and
/// not-applicable only for a reason other than users).
async fn local_users_observe_delivery(server: &str) {
    let profile = profile(server);
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED {server}_local_users_observe_delivery: {why}");
        return;
    }
    let _alone = one_at_a_time(server).lock().await;
    let cases: Vec<Case> = all_scenarios()
        .into_iter()
        .filter(|c| matches!(&c.kind, CaseKind::Script(s) if needs_local_users(s)))
        .collect();
    let started = Instant::now();
    let results = run_managed(
        &profile,
        cases.clone(),
        options(),
        ManagedOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    eprintln!(
        "{server}: {} local-user scenarios in {:?}",
        results.len(),
        started.elapsed()
    );
    assert!(leftovers(server).is_empty(), "{:?}", leftovers(server));
    assert_eq!(results.len(), cases.len());
    for r in &results {
        assert_ne!(
            r.verdict,
            Verdict::Error,
            "{} {:?}\n{}",
            r.id,
            r.messages,
            tail(r)
        );
        if r.verdict == Verdict::NotApplicable {
            assert!(
                !for_want_of_a_user(&r.messages[0]),
                "{}: {:?}",
                r.id,
                r.messages
            );
        }
    }
    let by_id: BTreeMap<&str, &CaseResult> = results.iter().map(|r| (r.id.as_str(), r)).collect();
    // A message over S2S reached alice's own client.
    let delivered = by_id["xep0178/3/external-no-authzid"];
    assert_eq!(
        delivered.verdict,
        Verdict::Pass,
        "{:?}\n{}",
        delivered.messages,
        tail(delivered)
    );
    let facts = &delivered.observed.as_ref().expect("observed").facts;
    let last = facts.last().expect("a fact per step");
    assert!(
        last.contains("delivered to alice@target.test/") && last.contains("id='external-1'"),
        "{last}"
    );
    for id in [
        "rfc6120/4.9.3.12/stanza-before-auth",
        "rfc6120/4.9.3.9/invalid-from",
        "xep0178/3/external-authzid-other-domain",
    ] {
        let r = by_id[id];
        assert!(
            matches!(
                r.verdict,
                Verdict::Pass | Verdict::Fail | Verdict::NonStrict
            ),
            "{id} is not graded: {} {:?}",
            r.verdict,
            r.messages
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_local_users_observe_delivery() {
    local_users_observe_delivery("prosody").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_local_users_observe_delivery() {
    local_users_observe_delivery("ejabberd").await;
}

/// Direct TLS (XEP-0368) toward `server` on the profile's `s2s_tls` port:
/// the handshake, the stream after it without `<starttls/>`, and SASL
/// EXTERNAL with a ping answered, as after STARTTLS. Without that port the
/// scenarios are not-applicable (as against the reference target).
async fn direct_tls_is_exercised(server: &str) {
    let profile = profile(server);
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED {server}_direct_tls_is_exercised: {why}");
        return;
    }
    assert!(
        profile.ports.iter().any(|p| p == "s2s_tls"),
        "{server}: {:?}",
        profile.ports
    );
    let _alone = one_at_a_time(server).lock().await;
    let cases: Vec<Case> = all_scenarios()
        .into_iter()
        .filter(|c| c.id.starts_with("xep0368/"))
        .collect();
    assert_eq!(cases.len(), 2, "the two direct-TLS scenarios");
    let results = run_managed(
        &profile,
        cases,
        options(),
        ManagedOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert!(leftovers(server).is_empty(), "{:?}", leftovers(server));
    for r in &results {
        assert_eq!(
            r.verdict,
            Verdict::Pass,
            "{} {:?}\n{}",
            r.id,
            r.messages,
            tail(r)
        );
        assert!(
            r.transcript
                .iter()
                .any(|e| e.text.contains("with direct TLS")),
            "{}: no direct-TLS connection\n{}",
            r.id,
            tail(r)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_direct_tls_is_exercised() {
    direct_tls_is_exercised("prosody").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_direct_tls_is_exercised() {
    direct_tls_is_exercised("ejabberd").await;
}
