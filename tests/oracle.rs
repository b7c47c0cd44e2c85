//! The oracle against SPEC §4's table (an independent fixture) and the outcome
//! rule of §4.3/§4.4 on hand-picked pairings.

use s2spec::oracle::{
    CertVariant, Direction, DnsVariant, Method, Outcome, Pairing, Policy, expect, methods,
};
use s2spec::partner::{Negotiation, Setting};
use s2spec::requirement::{Keyword, Severity, SourceKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct Table {
    row: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    row: usize,
    tls: Setting,
    sasl: Setting,
    dialback: bool,
    methods: Vec<String>,
    valid: bool,
    codes: Vec<String>,
}

fn spec_table() -> Vec<Row> {
    let text = std::fs::read_to_string("fixtures/matrix/spec-table.toml").expect("fixture");
    toml::from_str::<Table>(&text).expect("fixture parses").row
}

fn n(code: &str) -> Negotiation {
    Negotiation::from_code(code).expect("valid code")
}

#[test]
fn methods_reproduce_all_18_rows_of_the_spec_table() {
    let rows = spec_table();
    assert_eq!(rows.len(), 18);
    for (row, ours) in rows.iter().zip(Negotiation::all()) {
        let negotiation = Negotiation::new(row.tls, row.sasl, row.dialback);
        assert_eq!(
            negotiation, ours,
            "Negotiation::all() follows the table order"
        );
        let titles: Vec<&str> = methods(negotiation).iter().map(Method::title).collect();
        assert_eq!(titles, row.methods, "row {}", row.row);
    }
}

#[test]
fn eleven_rows_are_valid_and_the_invalid_ones_carry_an_error_code() {
    let rows = spec_table();
    assert_eq!(rows.iter().filter(|r| r.valid).count(), 11);
    for row in &rows {
        let has_error = row.codes.iter().any(|c| c.starts_with('E'));
        assert_eq!(row.valid, !has_error, "row {}", row.row);
        // E2 is exactly "no method at all".
        let negotiation = Negotiation::new(row.tls, row.sasl, row.dialback);
        assert_eq!(
            methods(negotiation).is_empty(),
            row.codes.iter().any(|c| c == "E2"),
            "row {}",
            row.row
        );
    }
}

#[test]
fn plain_pairings_follow_the_best_shared_method_in_both_directions() {
    let cases = [
        ("OO1", "OO1", Outcome::Authenticated(Method::SaslOverTls)),
        ("ON1", "OO1", Outcome::Authenticated(Method::TlsDialback)),
        ("NN1", "OO1", Outcome::Authenticated(Method::TcpDialback)),
        ("RN1", "NN1", Outcome::Refused),
        ("RR1", "ON1", Outcome::Refused),
        ("OR0", "ON1", Outcome::Refused),
        ("RO1", "NR1", Outcome::Refused),
        ("NR1", "NN1", Outcome::Authenticated(Method::TcpDialback)),
        ("OO1", "NR0", Outcome::Refused),
        ("RO0", "RO1", Outcome::Authenticated(Method::SaslOverTls)),
    ];
    for (target, peer, outcome) in cases {
        for direction in [Direction::Inbound, Direction::Outbound] {
            let e = expect(&Pairing::plain(n(target), n(peer), direction), Policy::Lync);
            assert_eq!(
                e.outcome, outcome,
                "t-{target} p-{peer} {direction}: {}",
                e.rationale
            );
            assert!(!e.rationale.is_empty());
            assert!(e.refs.iter().any(|r| r == "SPEC §4.3"));
        }
    }
}

#[test]
fn tls_clash_is_explained_and_cites_mandatory_to_negotiate() {
    let e = expect(
        &Pairing::plain(n("RN1"), n("NN1"), Direction::Inbound),
        Policy::Lync,
    );
    assert_eq!(e.outcome, Outcome::Refused);
    assert!(!e.tls);
    assert!(
        e.rationale.contains("target requires TLS"),
        "{}",
        e.rationale
    );
    assert!(e.refs.iter().any(|r| r == "RFC 6120 §5.3.1"));
}

fn with_cert(target: &str, cert: CertVariant, direction: Direction, policy: Policy) -> Outcome {
    let pairing = Pairing {
        cert,
        ..Pairing::plain(n(target), n("OO1"), direction)
    };
    expect(&pairing, policy).outcome
}

#[test]
fn a_bad_initiating_certificate_falls_back_to_dialback_under_lync_and_refuses_under_strict() {
    use Outcome::*;
    for cert in [
        CertVariant::Expired,
        CertVariant::CnOnly,
        CertVariant::NoClientCert,
    ] {
        let inbound = |t, p| with_cert(t, cert, Direction::Inbound, p);
        assert_eq!(
            inbound("RO1", Policy::Lync),
            Authenticated(Method::TlsDialback)
        );
        assert_eq!(inbound("RO1", Policy::Strict), Refused);
        // Only SASL admitted: nothing to fall back to.
        assert_eq!(inbound("RR1", Policy::Lync), Refused);
        // SASL not admitted: the certificate does not matter for TLS Dialback.
        assert_eq!(
            inbound("RN1", Policy::Strict),
            Authenticated(Method::TlsDialback)
        );
    }
    for cert in [
        CertVariant::Valid,
        CertVariant::XmppAddrOnly,
        CertVariant::SrvIdOnly,
        CertVariant::Wildcard,
    ] {
        assert_eq!(
            with_cert("RO1", cert, Direction::Inbound, Policy::Strict),
            Authenticated(Method::SaslOverTls),
            "{cert}"
        );
    }
}

/// SPEC §4.4 (revised): under `lync` the receiving server's certificate is
/// no precondition for any method (SASL EXTERNAL authenticates the
/// initiating side); every shared method and a refusal pass. Strict refuses.
#[test]
fn a_bad_receiving_certificate_does_not_stop_the_initiating_side_under_lync() {
    use Outcome::*;
    let pairing = |t, c| Pairing {
        cert: c,
        ..Pairing::plain(n(t), n("OO1"), Direction::Outbound)
    };
    let out = |t, c, p| with_cert(t, c, Direction::Outbound, p);
    assert_eq!(
        out("OO1", CertVariant::SelfSigned, Policy::Lync),
        Authenticated(Method::SaslOverTls)
    );
    let e = expect(&pairing("OO1", CertVariant::SelfSigned), Policy::Lync);
    for allowed in [
        Authenticated(Method::SaslOverTls),
        Authenticated(Method::TlsDialback),
        Authenticated(Method::TcpDialback),
        Refused,
    ] {
        assert_eq!(e.deviation_of(allowed), None, "{allowed:?}");
    }
    assert_eq!(out("OO1", CertVariant::SelfSigned, Policy::Strict), Refused);
    let strict = expect(&pairing("OO1", CertVariant::SelfSigned), Policy::Strict);
    assert_eq!(
        strict
            .deviation_of(Authenticated(Method::SaslOverTls))
            .map(|r| r.source),
        Some(SourceKind::Policy)
    );
    // Strict refuses an unreliable receiving certificate even without SASL.
    assert_eq!(out("ON1", CertVariant::WrongName, Policy::Strict), Refused);
    assert_eq!(
        out("ON1", CertVariant::WrongName, Policy::Lync),
        Authenticated(Method::TlsDialback)
    );
    // A peer that requests no client certificate just cannot offer EXTERNAL.
    for policy in [Policy::Lync, Policy::Strict] {
        assert_eq!(
            out("RO1", CertVariant::NoClientCert, policy),
            Authenticated(Method::TlsDialback)
        );
        assert_eq!(out("RR0", CertVariant::NoClientCert, policy), Refused);
    }
}

/// SPEC §4.6: the rule an unexpected outcome breaks depends on the outcome.
#[test]
fn each_unexpected_outcome_names_the_rule_it_breaks() {
    use Outcome::*;
    let inbound = |t, c| Pairing {
        cert: c,
        ..Pairing::plain(n(t), n("OO1"), Direction::Inbound)
    };
    // Accepting an expired certificate breaks RFC 6120 §13.7.2 (MUST);
    // refusing instead of falling back to dialback is allowed.
    let e = expect(&inbound("RO1", CertVariant::Expired), Policy::Lync);
    let r = e.deviation_of(Authenticated(Method::SaslOverTls)).unwrap();
    assert_eq!(r.severity(Policy::Lync), Severity::Fail);
    assert_eq!(r.reference, "RFC 6120 §13.7.2");
    assert_eq!(e.deviation_of(Refused), None);
    // A CN-only identity: RFC 6125 allows it as a last resort, RFC 9525
    // forbids it: advisory, never a failure.
    let e = expect(&inbound("RO1", CertVariant::CnOnly), Policy::Lync);
    let r = e.deviation_of(Authenticated(Method::SaslOverTls)).unwrap();
    assert_eq!(r.severity(Policy::Strict), Severity::NonStrict);
    // XmppAddr support is only encouraged: refusing it is reported as info.
    let e = expect(&inbound("OO1", CertVariant::XmppAddrOnly), Policy::Lync);
    assert_eq!(e.outcome, Authenticated(Method::SaslOverTls));
    for other in [Authenticated(Method::TlsDialback), Refused] {
        let r = e.deviation_of(other).unwrap();
        assert_eq!(r.severity(Policy::Strict), Severity::Info, "{other:?}");
    }
    // SRV-ID support is REQUIRED: refusing it fails, citing RFC 6120.
    let e = expect(&inbound("OO1", CertVariant::SrvIdOnly), Policy::Lync);
    let r = e.deviation_of(Authenticated(Method::TlsDialback)).unwrap();
    assert_eq!(r.keyword, Some(Keyword::Required));
    // A plain mismatch breaks the matrix: a configuration rule.
    let e = expect(&inbound("OO1", CertVariant::Valid), Policy::Lync);
    let r = e.deviation_of(Refused).unwrap();
    assert_eq!(r.source, SourceKind::Configuration);
    assert_eq!(r.severity(Policy::Lync), Severity::Fail);
    // Dialback accepted although the authoritative server is unreachable.
    let e = expect(
        &Pairing {
            dns: DnsVariant::Nxdomain,
            ..Pairing::plain(n("NN1"), n("NN1"), Direction::Inbound)
        },
        Policy::Lync,
    );
    assert_eq!(e.outcome, Refused);
    let r = e.deviation_of(Authenticated(Method::TcpDialback)).unwrap();
    assert_eq!(r.source, SourceKind::Protocol);
    assert_eq!(r.severity(Policy::Lync), Severity::Fail);
}

#[test]
fn dns_variants_decide_dialback_reachability() {
    for direction in [Direction::Inbound, Direction::Outbound] {
        for dns in DnsVariant::ALL.iter().copied() {
            let pairing = Pairing {
                dns,
                ..Pairing::plain(n("NN1"), n("NN1"), direction)
            };
            let e = expect(&pairing, Policy::Lync);
            let want = if dns.reachable() {
                Outcome::Authenticated(Method::TcpDialback)
            } else {
                Outcome::Refused
            };
            assert_eq!(e.outcome, want, "{direction} {dns}: {}", e.rationale);
            if !dns.reachable() {
                assert!(e.refs.iter().any(|r| r == "RFC 6120 §3.2"), "{:?}", e.refs);
            }
        }
    }
    // Inbound, SASL EXTERNAL needs no DNS at all.
    let pairing = Pairing {
        dns: DnsVariant::Nxdomain,
        ..Pairing::plain(n("OO1"), n("OO1"), Direction::Inbound)
    };
    assert_eq!(
        expect(&pairing, Policy::Lync).outcome,
        Outcome::Authenticated(Method::SaslOverTls)
    );
}

#[test]
fn every_pairing_has_a_rationale_and_the_outcome_is_shared_or_refused() {
    for target in Negotiation::all() {
        for peer in Negotiation::all() {
            for direction in [Direction::Inbound, Direction::Outbound] {
                for policy in [Policy::Lync, Policy::Strict] {
                    let e = expect(&Pairing::plain(target, peer, direction), policy);
                    assert!(e.rationale.ends_with('.'), "{}", e.rationale);
                    assert_eq!(e.policy, policy);
                    match e.outcome {
                        Outcome::Authenticated(m) => {
                            assert!(methods(target).contains(m) && methods(peer).contains(m));
                            assert_eq!(m.uses_tls(), e.tls, "{target:?} {peer:?}");
                        }
                        Outcome::Refused => {
                            assert!(methods(target).intersection(methods(peer)).is_empty())
                        }
                    }
                }
            }
        }
    }
}

/// A serverAuth-only initiating certificate (SPEC §5): SASL EXTERNAL is
/// expected but whether it succeeds is not judged; refusing is a policy
/// deviation (non-strict under lync) only where dialback was shared.
#[test]
fn server_auth_only_is_a_policy_question() {
    let p = |target: &str, direction| Pairing {
        cert: CertVariant::ServerAuthOnly,
        ..Pairing::plain(n(target), n("OO1"), direction)
    };
    let e = expect(&p("OO1", Direction::Inbound), Policy::Lync);
    assert_eq!(e.outcome, Outcome::Authenticated(Method::SaslOverTls));
    assert_eq!(
        e.deviation_of(Outcome::Authenticated(Method::TlsDialback)),
        None
    );
    let refusal = e.deviation_of(Outcome::Refused).expect("a deviation");
    assert_eq!(refusal.source, SourceKind::Policy);
    assert_eq!(refusal.severity(Policy::Lync), Severity::NonStrict);
    // Only SASL shared: its failure is reported, so the refusal passes.
    let only_sasl = expect(&p("RR1", Direction::Inbound), Policy::Lync);
    assert_eq!(only_sasl.deviation_of(Outcome::Refused), None);
    // Outbound (the peer verifies dialback with it as client certificate).
    let out = expect(&p("ON1", Direction::Outbound), Policy::Lync);
    assert_eq!(out.outcome, Outcome::Authenticated(Method::TlsDialback));
    assert_eq!(
        out.deviation_of(Outcome::Refused).map(|r| r.source),
        Some(SourceKind::Policy)
    );
    assert_eq!(
        expect(&p("OO1", Direction::Inbound), Policy::Strict).deviation_of(Outcome::Refused),
        None
    );
}

/// The new DNS variants: srv-dot refuses, reaching the peer anyway is RFC
/// 6120 §3.2.1's SHOULD NOT; xmpps-to-starttls-port and aaaa-only reach it;
/// an unreachable authoritative server rules out dialback inbound.
#[test]
fn new_dns_variants() {
    let p = |dns, direction| Pairing {
        dns,
        ..Pairing::plain(n("OO1"), n("NN1"), direction)
    };
    let dot = expect(&p(DnsVariant::SrvDot, Direction::Outbound), Policy::Lync);
    assert_eq!(dot.outcome, Outcome::Refused);
    let fallback = dot
        .deviation_of(Outcome::Authenticated(Method::TcpDialback))
        .expect("a deviation");
    assert_eq!(fallback.keyword, Some(Keyword::ShouldNot));
    assert!(fallback.reference.contains("RFC 6120 §3.2.1"));
    for dns in [DnsVariant::XmppsToStarttlsPort, DnsVariant::AaaaOnly] {
        for d in [Direction::Inbound, Direction::Outbound] {
            assert_eq!(
                expect(&p(dns, d), Policy::Lync).outcome,
                Outcome::Authenticated(Method::TcpDialback)
            );
        }
    }
    let unreachable = expect(
        &p(DnsVariant::AuthoritativeUnreachable, Direction::Inbound),
        Policy::Lync,
    );
    assert_eq!(unreachable.outcome, Outcome::Refused);
    assert!(unreachable.refs.iter().any(|r| r == "XEP-0220 §2.5"));
    assert!(!DnsVariant::AuthoritativeUnreachable.applies_to(Direction::Outbound));
}

/// `xmpps-to-starttls-port`: not going on to `_xmpp-server` after a failed
/// direct-TLS record rests on RFC 6120 §3.2.1 step 7, which has no keyword:
/// advisory (non-strict even under `strict`). Inbound SASL EXTERNAL needs no
/// DNS, so a refusal there stays the matrix rule's failure.
#[test]
fn not_going_on_after_a_failed_direct_tls_record_is_advisory() {
    let pairing = |direction, target: &str, peer: &str| Pairing {
        target: Negotiation::from_code(target).unwrap(),
        peer: Negotiation::from_code(peer).unwrap(),
        direction,
        cert: CertVariant::Valid,
        dns: DnsVariant::XmppsToStarttlsPort,
    };
    for p in [
        pairing(Direction::Outbound, "OO1", "OO1"),
        pairing(Direction::Inbound, "NN1", "NN1"),
    ] {
        for policy in [Policy::Lync, Policy::Strict] {
            let e = expect(&p, policy);
            assert_ne!(e.outcome, Outcome::Refused);
            let rule = e.deviation_of(Outcome::Refused).expect("a deviation");
            assert_eq!(rule.keyword, None, "{rule:?}");
            assert_eq!(rule.severity(policy), Severity::NonStrict);
        }
    }
    let sasl = expect(&pairing(Direction::Inbound, "RR0", "RR0"), Policy::Lync);
    let rule = sasl.deviation_of(Outcome::Refused).expect("a deviation");
    assert_eq!(rule.source, SourceKind::Configuration);
}
