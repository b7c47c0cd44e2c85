//! Every certificate variant of SPEC §5: its defining property as decoded by
//! x509-parser, and the verdict of the recording verifier + identity matcher.

use std::sync::{Arc, LazyLock};

use rustls::RootCertStore;
use s2spec::pki::{self, CaPems, CertVariant, KeyType, Leaf, Pki};
use s2spec::tls::{self, ChainStatus, IdKind, Role, Verification};
use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

const DOMAIN: &str = "fabrikam.test";
const SUB_DOMAIN: &str = "xmpp.fabrikam.test";

static PKI: LazyLock<Pki> = LazyLock::new(|| Pki::new().expect("mint CA"));
static TRUST: LazyLock<Arc<RootCertStore>> =
    LazyLock::new(|| tls::root_store(&[PKI.root_der().clone()]).expect("root store"));

fn leaf(domain: &str, variant: CertVariant) -> Arc<Leaf> {
    PKI.leaf(domain, variant, KeyType::Ecdsa)
        .expect("mint")
        .expect("a certificate")
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).expect("parse").1
}

/// SAN entries as (kind, OID or "", DER tag of the string, value).
fn sans(cert: &X509Certificate<'_>) -> Vec<(&'static str, String, u8, String)> {
    let Some(san) = cert.subject_alternative_name().expect("SAN parses") else {
        return vec![];
    };
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(n) => ("dns", String::new(), 0x16, (*n).to_owned()),
            GeneralName::OtherName(oid, value) => {
                // [0] EXPLICIT { <string type> }: 0xa0 len tag len bytes (short lengths here)
                assert_eq!(value[0], 0xa0, "otherName value is [0] EXPLICIT");
                let tag = value[2];
                let text = String::from_utf8(value[4..].to_vec()).expect("utf8");
                assert_eq!(value[3] as usize, text.len());
                ("other", oid.to_id_string(), tag, text)
            }
            other => panic!("unexpected SAN entry {other:?}"),
        })
        .collect()
}

fn cn(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .expect("CN")
        .as_str()
        .expect("CN text")
        .to_owned()
}

fn is_ca(cert: &X509Certificate<'_>) -> Option<(bool, Option<u32>)> {
    cert.basic_constraints()
        .expect("basicConstraints parses")
        .map(|bc| (bc.value.ca, bc.value.path_len_constraint))
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn verify(leaf: &Leaf, domain: &str, role: Role) -> Verification {
    tls::verify_chain(&TRUST, &leaf.chain_der, domain, role).expect("verifier runs")
}

/// Common leaf properties: CN = domain, CA:FALSE, serverAuth + clientAuth.
fn assert_leaf_basics(cert: &X509Certificate<'_>, domain: &str) {
    assert_eq!(cn(cert), domain);
    assert_eq!(is_ca(cert), Some((false, None)));
    let eku = cert
        .extended_key_usage()
        .expect("EKU parses")
        .expect("EKU present");
    assert!(eku.value.server_auth && eku.value.client_auth);
}

fn assert_issued_by_intermediate(leaf: &Leaf) {
    let cert = parse(&leaf.chain_der[0]);
    let int = parse(PKI.intermediate_der());
    assert_eq!(leaf.chain_der.len(), 2);
    assert_eq!(&leaf.chain_der[1], PKI.intermediate_der());
    assert_eq!(cert.issuer(), int.subject());
    cert.verify_signature(Some(int.public_key()))
        .expect("signed by the intermediate");
}

#[test]
fn root_and_intermediate_are_cas() {
    let root = parse(PKI.root_der());
    let int = parse(PKI.intermediate_der());
    assert_eq!(is_ca(&root), Some((true, Some(1))));
    assert_eq!(is_ca(&int), Some((true, Some(0))));
    assert_eq!(root.issuer(), root.subject());
    assert_eq!(int.issuer(), root.subject());
    int.verify_signature(Some(root.public_key()))
        .expect("intermediate signed by root");
    assert!(root.validity().is_valid() && int.validity().is_valid());
    // Validity set explicitly, not rcgen's 1975–4096 default.
    assert!(root.validity().not_before.timestamp() > now() - 3 * 86400);
    assert!(root.validity().not_after.timestamp() < now() + 11 * 365 * 86400);
}

#[test]
fn valid() {
    let leaf = leaf(DOMAIN, CertVariant::Valid);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_issued_by_intermediate(&leaf);
    assert!(cert.validity().is_valid());
    assert!(cert.validity().not_after.timestamp() < now() + 400 * 86400);
    assert_eq!(
        sans(&cert),
        vec![
            ("dns", String::new(), 0x16, DOMAIN.to_owned()),
            (
                "other",
                "1.3.6.1.5.5.7.8.7".to_owned(),
                0x16,
                format!("_xmpp-server.{DOMAIN}")
            ),
        ]
    );
    for role in [Role::Server, Role::Client] {
        let v = verify(&leaf, DOMAIN, role);
        assert_eq!(v.chain, ChainStatus::Valid);
        assert!(v.presented);
        let check = tls::check_peer(&v, DOMAIN);
        assert!(check.ok(), "{}", check.summary);
        let matched = check.identity.matched.expect("match");
        assert_eq!(
            (matched.kind, matched.value.as_str()),
            (IdKind::DnsId, DOMAIN)
        );
    }
    // Presented identities include the SRV-ID and the CN.
    let report = tls::check_identity(&leaf.chain_der[0], DOMAIN);
    let kinds: Vec<IdKind> = report.presented.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [IdKind::DnsId, IdKind::SrvId, IdKind::CommonName]);
    // Another domain does not match.
    assert!(!tls::check_identity(&leaf.chain_der[0], "contoso.test").is_match());
}

#[test]
fn xmpp_addr_only() {
    let leaf = leaf(DOMAIN, CertVariant::XmppAddrOnly);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_issued_by_intermediate(&leaf);
    // UTF8String (tag 12) under id-on-xmppAddr.
    assert_eq!(
        sans(&cert),
        vec![(
            "other",
            "1.3.6.1.5.5.7.8.5".to_owned(),
            0x0c,
            DOMAIN.to_owned()
        )]
    );
    let v = verify(&leaf, DOMAIN, Role::Client);
    assert_eq!(
        v.chain,
        ChainStatus::Valid,
        "webpki's name miss is not a chain error"
    );
    let check = tls::check_peer(&v, DOMAIN);
    assert!(check.ok(), "{}", check.summary);
    assert_eq!(check.identity.matched.unwrap().kind, IdKind::XmppAddr);
    // Server role too: webpki says NotValidForName (no dNSName), we say chain valid.
    assert_eq!(
        verify(&leaf, DOMAIN, Role::Server).chain,
        ChainStatus::Valid
    );
}

#[test]
fn srv_id_only() {
    let leaf = leaf(DOMAIN, CertVariant::SrvIdOnly);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_issued_by_intermediate(&leaf);
    // IA5String (tag 22) under id-on-dnsSRV, as RFC 4985 requires.
    assert_eq!(
        sans(&cert),
        vec![(
            "other",
            "1.3.6.1.5.5.7.8.7".to_owned(),
            0x16,
            format!("_xmpp-server.{DOMAIN}")
        )]
    );
    // Exactly one SAN extension, not critical (the subject is not empty).
    let san_exts: Vec<_> = cert
        .extensions()
        .iter()
        .filter(|e| {
            matches!(
                e.parsed_extension(),
                ParsedExtension::SubjectAlternativeName(_)
            )
        })
        .collect();
    assert_eq!(san_exts.len(), 1);
    assert!(!san_exts[0].critical);
    let v = verify(&leaf, DOMAIN, Role::Server);
    assert_eq!(v.chain, ChainStatus::Valid);
    let check = tls::check_peer(&v, DOMAIN);
    assert!(check.ok(), "{}", check.summary);
    assert_eq!(check.identity.matched.unwrap().kind, IdKind::SrvId);
}

#[test]
fn wildcard() {
    // Three labels: *.fabrikam.test, which matches xmpp.fabrikam.test.
    assert_eq!(pki::wildcard_name(SUB_DOMAIN), "*.fabrikam.test");
    let sub = leaf(SUB_DOMAIN, CertVariant::Wildcard);
    let cert = parse(&sub.chain_der[0]);
    assert_leaf_basics(&cert, SUB_DOMAIN);
    assert_issued_by_intermediate(&sub);
    assert_eq!(
        sans(&cert),
        vec![("dns", String::new(), 0x16, "*.fabrikam.test".to_owned())]
    );
    let v = verify(&sub, SUB_DOMAIN, Role::Server);
    assert_eq!(v.chain, ChainStatus::Valid);
    let check = tls::check_peer(&v, SUB_DOMAIN);
    assert!(check.ok(), "{}", check.summary);
    let matched = check.identity.matched.unwrap();
    assert_eq!(
        (matched.kind, matched.value.as_str()),
        (IdKind::DnsId, "*.fabrikam.test")
    );
    assert!(CertVariant::Wildcard.passes_for(SUB_DOMAIN));
    // One label only: not a.xmpp.fabrikam.test.
    assert!(!tls::check_identity(&sub.chain_der[0], "a.xmpp.fabrikam.test").is_match());

    // Two labels: *.fabrikam.test again, which must NOT match fabrikam.test.
    let bare = leaf(DOMAIN, CertVariant::Wildcard);
    let v = verify(&bare, DOMAIN, Role::Server);
    assert_eq!(v.chain, ChainStatus::Valid);
    let check = tls::check_peer(&v, DOMAIN);
    assert!(!check.name_ok);
    assert!(
        check.identity.reason.contains("sub-domains only"),
        "{}",
        check.identity.reason
    );
    assert!(!CertVariant::Wildcard.passes_for(DOMAIN));
}

/// A leaf whose only DNS-ID names another domain, with `cn` as its CN: the
/// chain is valid, no identity matches.
fn assert_san_names_another_domain(variant: CertVariant, cn: &str) -> tls::PeerCheck {
    let leaf = leaf(DOMAIN, variant);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, cn);
    assert_issued_by_intermediate(&leaf);
    assert_eq!(
        sans(&cert),
        vec![("dns", String::new(), 0x16, "wrong-name.invalid".to_owned())]
    );
    let v = verify(&leaf, DOMAIN, Role::Server);
    assert_eq!(v.chain, ChainStatus::Valid);
    let check = tls::check_peer(&v, DOMAIN);
    assert!(check.chain_ok && !check.name_ok);
    assert!(check.identity.matched.is_none());
    check
}

#[test]
fn wrong_name() {
    // Wrong in every identity: SAN and CN name another domain.
    assert_san_names_another_domain(CertVariant::WrongName, "wrong-name.invalid");
}

#[test]
fn san_mismatch_cn_match() {
    let check = assert_san_names_another_domain(CertVariant::SanMismatchCnMatch, DOMAIN);
    // The CN says fabrikam.test, but a SAN is present, so CN is ignored.
    assert!(
        check.identity.reason.contains("CN is ignored"),
        "{}",
        check.identity.reason
    );
}

#[test]
fn expired() {
    let leaf = leaf(DOMAIN, CertVariant::Expired);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_issued_by_intermediate(&leaf);
    assert!(cert.validity().not_after.timestamp() < now());
    assert_eq!(sans(&cert).len(), 2, "same names as valid");
    for role in [Role::Server, Role::Client] {
        let v = verify(&leaf, DOMAIN, role);
        assert_eq!(v.chain, ChainStatus::Expired);
        let check = tls::check_peer(&v, DOMAIN);
        assert!(!check.ok() && check.name_ok);
        assert!(check.summary.contains("expired"), "{}", check.summary);
    }
}

#[test]
fn not_yet_valid() {
    let leaf = leaf(DOMAIN, CertVariant::NotYetValid);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_issued_by_intermediate(&leaf);
    assert!(cert.validity().not_before.timestamp() > now());
    let v = verify(&leaf, DOMAIN, Role::Client);
    assert_eq!(v.chain, ChainStatus::NotYetValid);
    assert!(!tls::check_peer(&v, DOMAIN).ok());
}

#[test]
fn self_signed() {
    let leaf = leaf(DOMAIN, CertVariant::SelfSigned);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_eq!(leaf.chain_der.len(), 1, "no chain");
    assert_eq!(cert.issuer(), cert.subject());
    cert.verify_signature(None).expect("signed by its own key");
    assert!(cert.validity().is_valid());
    for role in [Role::Server, Role::Client] {
        let v = verify(&leaf, DOMAIN, role);
        assert_eq!(v.chain, ChainStatus::UnknownIssuer);
        let check = tls::check_peer(&v, DOMAIN);
        assert!(!check.chain_ok && check.name_ok);
    }
}

#[test]
fn untrusted_ca() {
    let leaf = leaf(DOMAIN, CertVariant::UntrustedCa);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_eq!(leaf.chain_der.len(), 2);
    let other = parse(&leaf.chain_der[1]);
    assert_eq!(is_ca(&other), Some((true, Some(1))));
    assert_eq!(other.issuer(), other.subject());
    assert_ne!(other.subject(), parse(PKI.root_der()).subject());
    assert_ne!(other.subject(), parse(PKI.intermediate_der()).subject());
    assert_eq!(cert.issuer(), other.subject());
    cert.verify_signature(Some(other.public_key()))
        .expect("signed by the untrusted CA");
    for role in [Role::Server, Role::Client] {
        assert_eq!(
            verify(&leaf, DOMAIN, role).chain,
            ChainStatus::UnknownIssuer
        );
    }
    // The untrusted CA is one per Pki.
    let again = PKI
        .leaf("contoso.test", CertVariant::UntrustedCa, KeyType::Ecdsa)
        .unwrap()
        .unwrap();
    assert_eq!(again.chain_der[1], leaf.chain_der[1]);
}

#[test]
fn cn_only() {
    let leaf = leaf(DOMAIN, CertVariant::CnOnly);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_issued_by_intermediate(&leaf);
    assert!(
        cert.subject_alternative_name().unwrap().is_none(),
        "no SAN at all"
    );
    let v = verify(&leaf, DOMAIN, Role::Client);
    assert_eq!(v.chain, ChainStatus::Valid);
    let check = tls::check_peer(&v, DOMAIN);
    assert!(check.chain_ok && !check.name_ok);
    assert_eq!(check.identity.presented.len(), 1);
    assert_eq!(check.identity.presented[0].kind, IdKind::CommonName);
    assert!(
        check.identity.reason.contains("CN"),
        "{}",
        check.identity.reason
    );
    assert!(check.identity.reason.contains("never accepted"));
}

#[test]
fn no_client_cert() {
    assert!(
        PKI.leaf(DOMAIN, CertVariant::NoClientCert, KeyType::Ecdsa)
            .unwrap()
            .is_none()
    );
    let v = tls::verify_chain(&TRUST, &[], DOMAIN, Role::Client).unwrap();
    assert_eq!(v, Verification::absent());
    assert!(!v.presented);
    let check = tls::check_peer(&v, DOMAIN);
    assert!(!check.chain_ok && !check.name_ok);
    assert!(check.summary.contains("no certificate"));
}

#[test]
fn server_auth_only() {
    let leaf = leaf(DOMAIN, CertVariant::ServerAuthOnly);
    let cert = parse(&leaf.chain_der[0]);
    assert_eq!(cn(&cert), DOMAIN);
    assert_issued_by_intermediate(&leaf);
    let eku = cert.extended_key_usage().unwrap().expect("EKU present");
    assert!(eku.value.server_auth && !eku.value.client_auth);
    assert_eq!(sans(&cert).len(), 2, "same names as valid");
    // As a server certificate it is fine; webpki's client verifier requires
    // the clientAuth purpose, so as a client certificate the chain is
    // refused for its purpose (the recording verifier still completes the
    // handshake and leaves the decision to the XMPP layer).
    let v = verify(&leaf, DOMAIN, Role::Server);
    assert_eq!(v.chain, ChainStatus::Valid);
    let v = verify(&leaf, DOMAIN, Role::Client);
    assert!(
        matches!(&v.chain, ChainStatus::Other(why) if why.contains("Purpose")),
        "{:?}",
        v.chain
    );
}

#[test]
fn xmpp_addr_and_dns() {
    let leaf = leaf(DOMAIN, CertVariant::XmppAddrAndDns);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert_issued_by_intermediate(&leaf);
    assert_eq!(
        sans(&cert),
        vec![
            ("dns", String::new(), 0x16, DOMAIN.to_owned()),
            (
                "other",
                "1.3.6.1.5.5.7.8.5".to_owned(),
                0x0c,
                DOMAIN.to_owned()
            ),
        ]
    );
    let check = tls::check_peer(&verify(&leaf, DOMAIN, Role::Client), DOMAIN);
    assert!(check.ok(), "{}", check.summary);
}

#[test]
fn missing_intermediate() {
    let leaf = leaf(DOMAIN, CertVariant::MissingIntermediate);
    assert_eq!(leaf.chain_der.len(), 1, "the leaf alone");
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    let int = parse(PKI.intermediate_der());
    assert_eq!(cert.issuer(), int.subject());
    for role in [Role::Server, Role::Client] {
        assert_eq!(
            verify(&leaf, DOMAIN, role).chain,
            ChainStatus::UnknownIssuer
        );
    }
}

#[test]
fn expired_intermediate() {
    let leaf = leaf(DOMAIN, CertVariant::ExpiredIntermediate);
    assert_eq!(leaf.chain_der.len(), 2);
    let cert = parse(&leaf.chain_der[0]);
    assert_leaf_basics(&cert, DOMAIN);
    assert!(cert.validity().is_valid(), "the leaf itself is current");
    let int = parse(&leaf.chain_der[1]);
    assert_eq!(is_ca(&int), Some((true, Some(0))));
    assert!(int.validity().not_after.timestamp() < now());
    assert_ne!(&leaf.chain_der[1], PKI.intermediate_der());
    cert.verify_signature(Some(int.public_key())).unwrap();
    int.verify_signature(Some(parse(PKI.root_der()).public_key()))
        .unwrap();
    for role in [Role::Server, Role::Client] {
        assert_eq!(verify(&leaf, DOMAIN, role).chain, ChainStatus::Expired);
    }
}

#[test]
fn verdicts_match_passes_for() {
    for domain in [DOMAIN, SUB_DOMAIN] {
        for variant in CertVariant::ALL {
            // server-auth-only passes as what its purpose says it is.
            let role = if variant == CertVariant::ServerAuthOnly {
                Role::Server
            } else {
                Role::Client
            };
            let v = match PKI.leaf(domain, variant, KeyType::Ecdsa).unwrap() {
                Some(leaf) => verify(&leaf, domain, role),
                None => Verification::absent(),
            };
            let check = tls::check_peer(&v, domain);
            assert_eq!(
                check.ok(),
                variant.passes_for(domain),
                "{domain} {variant}: {}",
                check.summary
            );
        }
    }
}

#[test]
fn rsa_leaf() {
    let leaf = PKI
        .leaf(DOMAIN, CertVariant::Valid, KeyType::Rsa)
        .unwrap()
        .unwrap();
    let cert = parse(&leaf.chain_der[0]);
    assert_eq!(
        cert.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.1"
    );
    match cert.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048),
        other => panic!("not RSA: {other:?}"),
    }
    assert!(leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(matches!(
        leaf.key_der,
        rustls_pki_types::PrivateKeyDer::Pkcs8(_)
    ));
    assert_issued_by_intermediate(&leaf);
    let v = verify(&leaf, DOMAIN, Role::Server);
    assert!(tls::check_peer(&v, DOMAIN).ok());
    // Self-signed RSA: the RSA key signs its own certificate.
    let own = PKI
        .leaf(DOMAIN, CertVariant::SelfSigned, KeyType::Rsa)
        .unwrap()
        .unwrap();
    parse(&own.chain_der[0]).verify_signature(None).unwrap();
}

#[test]
fn cache_returns_the_same_certificate() {
    let a = PKI
        .leaf("cache.test", CertVariant::Valid, KeyType::Ecdsa)
        .unwrap()
        .unwrap();
    let b = PKI
        .leaf("CACHE.test", CertVariant::Valid, KeyType::Ecdsa)
        .unwrap()
        .unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let c = PKI
        .leaf("cache.test", CertVariant::Expired, KeyType::Ecdsa)
        .unwrap()
        .unwrap();
    assert_ne!(a.chain_der[0], c.chain_der[0]);
    // Concurrent first requests still agree on one certificate.
    let leaves: Vec<Arc<Leaf>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    PKI.leaf("race.test", CertVariant::Valid, KeyType::Ecdsa)
                        .unwrap()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(leaves.iter().all(|l| Arc::ptr_eq(l, &leaves[0])));
}

#[test]
fn variant_names_round_trip() {
    let names: Vec<&str> = CertVariant::ALL.iter().map(|v| v.as_str()).collect();
    assert_eq!(
        names,
        [
            "valid",
            "xmpp-addr-only",
            "srv-id-only",
            "wildcard",
            "wrong-name",
            "expired",
            "not-yet-valid",
            "self-signed",
            "untrusted-ca",
            "cn-only",
            "no-client-cert",
            "server-auth-only",
            "san-mismatch-cn-match",
            "xmpp-addr-and-dns",
            "missing-intermediate",
            "expired-intermediate"
        ]
    );
    for v in CertVariant::ALL {
        assert_eq!(v.as_str().parse::<CertVariant>(), Ok(v));
        assert_eq!(v.to_string(), v.as_str());
    }
    assert!(
        "bogus"
            .parse::<CertVariant>()
            .unwrap_err()
            .to_string()
            .contains("cn-only")
    );
}

#[test]
fn bad_domains_are_refused() {
    for bad in [
        "", "a..b", "-a.test", "a_b.test", "a.test.", "1.2.3.4", "é.test",
    ] {
        assert!(pki::check_domain(bad).is_err(), "{bad:?}");
        assert!(PKI.leaf(bad, CertVariant::Valid, KeyType::Ecdsa).is_err());
    }
    assert!(pki::check_domain("localhost").is_ok());
}

#[test]
fn ca_round_trips_through_pem() {
    let pems = PKI.to_pems();
    let again = Pki::from_pems(&pems).expect("load");
    assert_eq!(again.root_der(), PKI.root_der());
    assert_eq!(again.intermediate_der(), PKI.intermediate_der());
    let leaf = again
        .leaf(DOMAIN, CertVariant::Valid, KeyType::Ecdsa)
        .unwrap()
        .unwrap();
    assert_eq!(
        verify(&leaf, DOMAIN, Role::Server).chain,
        ChainStatus::Valid
    );

    // A key that does not belong to its certificate is named.
    let other = Pki::new().unwrap().to_pems();
    let mixed = CaPems {
        root_key: other.root_key.clone(),
        ..pems.clone()
    };
    let err = Pki::from_pems(&mixed).unwrap_err().to_string();
    assert!(err.starts_with("ca.key"), "{err}");
    // An intermediate from another root is named.
    let foreign = CaPems {
        intermediate_cert: other.intermediate_cert,
        intermediate_key: other.intermediate_key,
        ..pems.clone()
    };
    let err = Pki::from_pems(&foreign).unwrap_err().to_string();
    assert!(err.starts_with("intermediate.pem"), "{err}");
    // Garbage is an error, not a panic.
    let garbage = CaPems {
        root_cert: "nonsense".into(),
        ..pems
    };
    assert!(
        Pki::from_pems(&garbage)
            .unwrap_err()
            .to_string()
            .starts_with("ca.pem")
    );
}

#[test]
fn leaf_from_pem_round_trips() {
    let leaf = leaf(DOMAIN, CertVariant::Valid);
    let loaded = Leaf::from_pem(&leaf.chain_pem, &leaf.key_pem).unwrap();
    assert_eq!(loaded.chain_der, leaf.chain_der);
    assert_eq!(loaded.key_der, leaf.key_der);
    assert_eq!(loaded.cert_pem, leaf.cert_pem);
    assert!(Leaf::from_pem("", &leaf.key_pem).is_err());
}
