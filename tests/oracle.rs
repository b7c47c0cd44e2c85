//! The oracle against SPEC §4's table (an independent fixture) and the outcome
//! rule of §4.3/§4.4 on hand-picked pairings.

use s2spec::oracle::{
    CertVariant, Direction, DnsVariant, Method, Outcome, Pairing, Policy, expect, methods,
};
use s2spec::partner::{Negotiation, Setting};
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

#[test]
fn a_bad_receiving_certificate_is_not_relied_on_outbound() {
    use Outcome::*;
    let out = |t, c, p| with_cert(t, c, Direction::Outbound, p);
    assert_eq!(
        out("OO1", CertVariant::SelfSigned, Policy::Lync),
        Authenticated(Method::TlsDialback)
    );
    assert_eq!(out("OO1", CertVariant::SelfSigned, Policy::Strict), Refused);
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
