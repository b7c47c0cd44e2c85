//! The matrix file expands to exactly the cases the conformance-engine issue
//! lists, with unique, well-formed ids and peer domains.

use std::collections::HashSet;
use std::path::Path;

use s2spec::oracle::{CertVariant, Direction, DnsVariant};
use s2spec::partner::{Negotiation, dns_name_problem};
use s2spec::scenario::{CaseKind, expand, load_matrix, parse_matrix, peer_domain};

fn cases() -> Vec<s2spec::scenario::Case> {
    let spec = load_matrix(Path::new("scenarios/matrix.toml")).expect("matrix loads");
    expand(&spec).unwrap()
}

fn count(family: &str) -> usize {
    cases().iter().filter(|c| c.family == family).count()
}

#[test]
fn family_sizes_match_the_issue() {
    // The certificate and DNS families each repeat 6 targets x 2 directions
    // of the plain family (their `valid`/`srv` member); those belong to `plain`.
    assert_eq!(count("plain"), 11 * 18 * 2);
    assert_eq!(count("certificates"), 6 * (CertVariant::ALL.len() - 1) * 2);
    // `authoritative-unreachable` is inbound only (the target's own
    // authoritative server is not the question outbound).
    assert_eq!(count("dns"), 6 * (DnsVariant::ALL.len() - 1) * 2 - 6);
    assert_eq!(count("config"), 7);
    assert_eq!(count("stranger"), 4);
    assert_eq!(cases().len(), 396 + 180 + 102 + 4 + 7);
    assert!(cases().iter().all(
        |c| !(c.id.starts_with("matrix/out/") && c.id.ends_with("/authoritative-unreachable"))
    ));
}

#[test]
fn ids_and_domains_are_unique_and_well_formed() {
    let all = cases();
    let ids: HashSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), all.len());
    let mut domains = HashSet::new();
    for c in &all {
        if let CaseKind::Pairing(p) = &c.kind {
            let d = peer_domain(p);
            assert_eq!(dns_name_problem(&d), None, "{d}");
            assert!(d.split('.').count() >= 3, "{d}");
            assert!(domains.insert(d.clone()), "duplicate {d}");
        }
    }
    assert!(ids.contains("matrix/in/t-RO1/p-ON1/valid/srv"));
    assert!(ids.contains("matrix/out/t-RN1/p-OO1/expired/srv"));
    assert!(ids.contains("matrix/in/t-RN1/p-ON1/valid/nxdomain"));
    assert!(ids.contains("matrix/out/t-NN1/p-NN1/valid/proxy-fqdn"));
}

#[test]
fn config_cases_are_the_seven_invalid_rows() {
    let got: Vec<String> = cases()
        .into_iter()
        .filter_map(|c| match c.kind {
            CaseKind::Config(n) => Some(n.code()),
            CaseKind::Pairing(_) | CaseKind::Stranger { .. } | CaseKind::Script(_) => None,
        })
        .collect();
    assert_eq!(got, ["NR1", "NR0", "NO1", "NO0", "RN0", "ON0", "NN0"]);
}

#[test]
fn dns_family_uses_a_dialback_only_peer_that_fits_the_target() {
    for c in cases().into_iter().filter(|c| c.family == "dns") {
        let CaseKind::Pairing(p) = c.kind else {
            panic!()
        };
        let want = if p.target.tls == s2spec::partner::Setting::Required {
            "ON1"
        } else {
            "NN1"
        };
        assert_eq!(p.peer, Negotiation::from_code(want).unwrap(), "{}", c.id);
        assert!(matches!(
            p.direction,
            Direction::Inbound | Direction::Outbound
        ));
    }
}

#[test]
fn bad_matrix_files_name_the_line() {
    let err = parse_matrix("[[family]]\nname = \"x\"\nbogus = 1\n", "m.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("m.toml:"), "{err}");
    assert!(err.contains("bogus"), "{err}");
    let bad_code = "[[family]]\nname = \"x\"\ndescription = \"d\"\ntargets = [\"XX1\"]\n\
                    peers = \"all\"\ncerts = [\"valid\"]\ndns = [\"srv\"]\ndirections = [\"in\"]\n";
    let err = parse_matrix(bad_code, "m.toml").unwrap_err().to_string();
    assert!(err.contains("XX1"), "{err}");
    let bad_variant = bad_code
        .replace("XX1", "RO1")
        .replace("\"valid\"", "\"shiny\"");
    let err = parse_matrix(&bad_variant, "m.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("shiny"), "{err}");
}

/// Each error names the line of the value at fault, also at column 1 (where
/// the loader once said N-1) and for names only the expansion can check.
#[test]
fn matrix_errors_name_the_exact_line() {
    let err = parse_matrix("[[family]]\nname = \"x\"\nbogus = 1\n", "m.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("m.toml:3:"), "{err}");
    let bad_code = "[[family]]\nname = \"x\"\ndescription = \"d\"\ntargets = [\"XX1\"]\n\
                    peers = \"all\"\ncerts = [\"valid\"]\ndns = [\"srv\"]\ndirections = [\"in\"]\n";
    let err = parse_matrix(bad_code, "m.toml").unwrap_err().to_string();
    assert!(err.starts_with("m.toml:4:"), "{err}");
    let bad_variant = bad_code
        .replace("XX1", "RO1")
        .replace("\"valid\"", "\"shiny\"");
    let err = parse_matrix(&bad_variant, "m.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("m.toml:6:"), "{err}");
}

#[test]
fn a_matrix_file_with_invalid_utf8_names_the_line() {
    let dir = std::env::temp_dir().join(format!("s2spec-matrix-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("matrix.toml");
    std::fs::write(&path, b"[[family]]\nname = \"x\xc3\"\n").unwrap();
    let err = s2spec::scenario::load_matrix(&path)
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("matrix.toml:2: invalid UTF-8"), "{err}");
}
