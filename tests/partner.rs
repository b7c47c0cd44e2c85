//! Loading and validating partner-set files (SPEC §2.1, §3, §4).

use std::path::PathBuf;

use s2spec::partner::{
    Diagnostic, LoadError, Loaded, Negotiation, PartnerType, Position, Setting, Severity,
    dns_name_problem, load_file, load_str, validate,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/partners")
        .join(name)
}

fn load(text: &str) -> Loaded {
    match load_str(text, "test.toml") {
        Ok(loaded) => loaded,
        Err(diags) => panic!("unexpected parse errors: {diags:#?}"),
    }
}

fn parse_errors(text: &str) -> Vec<Diagnostic> {
    match load_str(text, "test.toml") {
        Ok(loaded) => panic!("expected parse errors, got {:#?}", loaded.set),
        Err(diags) => diags,
    }
}

fn check(text: &str) -> Vec<Diagnostic> {
    validate(&load(text))
}

/// `(code, line, column)` of each diagnostic, in order.
fn where_(diags: &[Diagnostic]) -> Vec<(&str, usize, usize)> {
    diags
        .iter()
        .map(|d| (d.code.as_str(), d.position.line, d.position.column))
        .collect()
}

fn codes(diags: &[Diagnostic]) -> Vec<&str> {
    diags.iter().map(|d| d.code.as_str()).collect()
}

/// A complete partner with the given settings, kebab spelling, 6 lines.
fn partner(domain: &str, tls: &str, sasl: &str, dialback: bool) -> String {
    format!(
        "[[partner]]\ndomain = \"{domain}\"\ntype = \"federated\"\n\
         tls = \"{tls}\"\nsasl = \"{sasl}\"\ndialback = {dialback}\n"
    )
}

// ---- the 18 rows of the negotiation matrix -------------------------------

/// Expected diagnostics of SPEC §4's rows, in table order (the notes column;
/// rows 5 and 11 are "E1 in the UI").
const ROW_CODES: [&[&str]; 18] = [
    &["W2"],
    &[],
    &["W1"],
    &["W1"],
    &["E1"],
    &["E1", "E2"],
    &[],
    &[],
    &["W1"],
    &["W1"],
    &["E1"],
    &["E1", "E2"],
    &[],
    &["E2"],
    &[],
    &["E2"],
    &[],
    &["E2"],
];

/// The field each code points at.
fn field_of(code: &str) -> &'static str {
    match code {
        "E1" => "sasl",
        "W1" => "tls",
        _ => "dialback",
    }
}

#[test]
fn all_rows_fixture_gives_exact_codes_fields_and_lines() {
    let path = fixture("all-rows.toml");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let lines: Vec<&str> = text.lines().collect();
    let loaded = load_file(&path).expect("all-rows.toml loads");
    assert_eq!(loaded.set.partners.len(), 18);
    let diags = validate(&loaded);
    for (row, expected) in ROW_CODES.iter().enumerate() {
        let domain = format!("row{:02}.test", row + 1);
        let mine: Vec<&Diagnostic> = diags
            .iter()
            .filter(|d| d.partner.as_deref() == Some(domain.as_str()))
            .collect();
        let got: Vec<&str> = mine.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(&got, expected, "row {}", row + 1);
        for d in mine {
            let field = field_of(&d.code);
            assert_eq!(d.field.as_deref(), Some(field), "{d}");
            // Each partner takes 8 lines from line 9: comment, header, domain,
            // type, tls (+4), sasl (+5), dialback (+6).
            let offset = match field {
                "tls" => 4,
                "sasl" => 5,
                _ => 6,
            };
            let line = 9 + 8 * row + offset;
            assert_eq!(d.position, Position { line, column: 1 }, "{d}");
            let text_line = lines.get(line - 1).copied().unwrap_or("");
            assert!(
                text_line.starts_with(&format!("{field} =")),
                "{d}: {text_line}"
            );
            assert_eq!(d.file, path.display().to_string());
        }
    }
    let errors = diags.iter().filter(|d| d.severity == Severity::Error);
    assert_eq!(errors.count(), 9);
    assert_eq!(diags.len(), 14);
}

#[test]
fn all_rows_fixture_follows_the_table_order() {
    let loaded = load_file(&fixture("all-rows.toml")).expect("loads");
    let got: Vec<Negotiation> = loaded.set.partners.iter().map(|p| p.negotiation).collect();
    let want: Vec<Negotiation> = Negotiation::all().collect();
    assert_eq!(got, want);
}

#[test]
fn each_row_alone_gives_its_codes_and_eleven_rows_are_valid() {
    let mut valid = 0;
    for (row, n) in Negotiation::all().enumerate() {
        let text = partner("solo.test", n.tls.as_str(), n.sasl.as_str(), n.dialback);
        let diags = check(&text);
        assert_eq!(
            codes(&diags),
            ROW_CODES[row],
            "row {} ({})",
            row + 1,
            n.code()
        );
        for d in &diags {
            let line = match field_of(&d.code) {
                "tls" => 4,
                "sasl" => 5,
                _ => 6,
            };
            assert_eq!(d.position.line, line, "{d}");
            assert_eq!(d.partner.as_deref(), Some("solo.test"));
        }
        if diags.iter().all(|d| d.severity == Severity::Warning) {
            valid += 1;
        }
    }
    assert_eq!(valid, 11, "SPEC §4: 11 of the 18 rows are valid");
}

#[test]
fn invalid_rows_are_the_seven_config_cases() {
    let invalid: Vec<String> = Negotiation::all()
        .filter(|n| {
            let text = partner("x.test", n.tls.as_str(), n.sasl.as_str(), n.dialback);
            check(&text).iter().any(|d| d.severity == Severity::Error)
        })
        .map(|n| n.code())
        .collect();
    assert_eq!(
        invalid,
        ["NR1", "NR0", "NO1", "NO0", "RN0", "ON0", "NN0"],
        "SPEC §4.5 config cases"
    );
}

// ---- loading a good file ------------------------------------------------

#[test]
fn valid_fixture_loads_every_field() {
    let loaded = load_file(&fixture("valid.toml")).expect("valid.toml loads");
    let set = &loaded.set;
    assert_eq!(set.local.domains, ["target.test", "chat.target.test"]);
    assert_eq!(set.local.users, ["alice", "bob", "carol"]);
    assert_eq!(set.partners.len(), 4);

    let fabrikam = &set.partners[0];
    assert_eq!(fabrikam.domain, "fabrikam.test", "domains are lower-cased");
    assert_eq!(fabrikam.description.as_deref(), Some("Fabrikam XMPP"));
    assert_eq!(
        fabrikam.additional_domains,
        ["corp.fabrikam.test", "it.fabrikam.test"]
    );
    assert_eq!(fabrikam.partner_type, PartnerType::Federated);
    assert_eq!(
        fabrikam.negotiation,
        Negotiation::new(Setting::Required, Setting::Optional, true)
    );
    assert_eq!(fabrikam.proxy_fqdn.as_deref(), Some("xmpp.fabrikam.test"));
    assert_eq!(fabrikam.connection_limit, Some(10));
    assert!(fabrikam.keep_alive);

    let contoso = &set.partners[1];
    assert_eq!(contoso.partner_type, PartnerType::PublicVerified);
    assert_eq!(contoso.negotiation.code(), "OR1");
    assert!(!contoso.keep_alive, "keep-alive defaults to false");
    assert_eq!(
        contoso.description.as_deref(),
        Some("Contoso, PowerShell spellings")
    );
    assert!(contoso.additional_domains.is_empty());
    assert_eq!(contoso.proxy_fqdn, None);
    assert_eq!(contoso.connection_limit, None);

    assert_eq!(set.partners[2].partner_type, PartnerType::PublicUnverified);
    assert_eq!(set.partners[2].negotiation.code(), "RR1");
    let legacy = &set.partners[3];
    assert_eq!(legacy.partner_type, PartnerType::PublicUnverified);
    assert_eq!(legacy.negotiation.code(), "NN1");
    assert_eq!(legacy.connection_limit, Some(16), "0x10 is sixteen");

    assert!(set.partner_for("IT.Fabrikam.test").is_some());
    assert!(set.partner_for("sub.corp.fabrikam.test").is_none());
}

#[test]
fn valid_fixture_has_only_its_two_warnings() {
    let loaded = load_file(&fixture("valid.toml")).expect("loads");
    let diags = validate(&loaded);
    assert_eq!(where_(&diags), [("W1", 24, 1), ("W2", 33, 1)]);
    assert_eq!(diags[0].partner.as_deref(), Some("contoso.test"));
    assert_eq!(diags[1].partner.as_deref(), Some("public.example.test"));
    assert!(diags.iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn spans_locate_partners_fields_and_list_items() {
    let loaded = load_file(&fixture("valid.toml")).expect("loads");
    let spans = &loaded.spans;
    assert_eq!(spans.partners.len(), 4);
    let fab = &spans.partners[0];
    assert_eq!(fab.table, Position { line: 8, column: 1 });
    assert_eq!(fab.field("domain"), Position { line: 9, column: 1 });
    assert_eq!(
        fab.field("keep-alive"),
        Position {
            line: 18,
            column: 1
        }
    );
    assert_eq!(
        fab.item("additional-domains", 0),
        Position {
            line: 11,
            column: 23
        }
    );
    assert_eq!(
        fab.item("additional-domains", 1),
        Position {
            line: 11,
            column: 45
        }
    );
    // An absent optional field falls back to the partner's header.
    assert_eq!(
        spans.partners[1].field("proxy-fqdn"),
        Position {
            line: 20,
            column: 1
        }
    );
    assert_eq!(spans.local.table, Position { line: 4, column: 1 });
    assert_eq!(
        spans.local.item("domains", 1),
        Position {
            line: 5,
            column: 27
        }
    );
}

#[test]
fn local_table_is_optional_and_empty_file_is_an_empty_set() {
    let loaded = load(&partner("a.test", "required", "optional", true));
    assert!(loaded.set.local.domains.is_empty());
    assert!(loaded.set.local.users.is_empty());
    let empty = load("");
    assert!(empty.set.partners.is_empty());
    assert!(validate(&empty).is_empty());
    let only_local = load("[local]\n");
    assert!(only_local.set.local.domains.is_empty());
}

#[test]
fn inline_partner_tables_work_and_columns_count_characters() {
    let text = "partner = [\n  { description = \"Ünïcödé\", domain = \"x.test\", type = \"federated\", \
                tls = \"bogus\", sasl = \"optional\", dialback = true },\n]\n";
    let diags = parse_errors(text);
    assert_eq!(where_(&diags), [("P4", 2, 75)]);
    let line = text.lines().nth(1).unwrap_or("");
    let column = line
        .find("\"bogus\"")
        .map(|b| line[..b].chars().count() + 1);
    assert_eq!(column, Some(75));
    assert_eq!(line.find("\"bogus\""), Some(78), "the byte offset differs");

    let good = text.replace("bogus", "Required");
    let loaded = load(&good);
    assert_eq!(loaded.set.partners[0].negotiation.code(), "RO1");
    assert_eq!(
        loaded.spans.partners[0].table,
        Position { line: 2, column: 3 }
    );
}

// ---- enum spellings ------------------------------------------------------

#[test]
fn setting_spellings_kebab_and_powershell_any_case() {
    let cases = [
        ("required", Setting::Required),
        ("Required", Setting::Required),
        ("REQUIRED", Setting::Required),
        ("optional", Setting::Optional),
        ("Optional", Setting::Optional),
        ("not-supported", Setting::NotSupported),
        ("NotSupported", Setting::NotSupported),
        ("NOTSUPPORTED", Setting::NotSupported),
        ("notsupported", Setting::NotSupported),
        ("Not-Supported", Setting::NotSupported),
        ("NOT-SUPPORTED", Setting::NotSupported),
    ];
    for (spelling, want) in cases {
        // sasl = not-supported keeps every tls value free of E1.
        let text = partner("a.test", spelling, "not-supported", true);
        assert_eq!(
            load(&text).set.partners[0].negotiation.tls,
            want,
            "tls = {spelling}"
        );
        let text = partner("a.test", "required", spelling, true);
        assert_eq!(
            load(&text).set.partners[0].negotiation.sasl,
            want,
            "sasl = {spelling}"
        );
    }
}

#[test]
fn partner_type_spellings_kebab_and_powershell_any_case() {
    let cases = [
        ("federated", PartnerType::Federated),
        ("Federated", PartnerType::Federated),
        ("public-verified", PartnerType::PublicVerified),
        ("PublicVerified", PartnerType::PublicVerified),
        ("publicverified", PartnerType::PublicVerified),
        ("Public-Verified", PartnerType::PublicVerified),
        ("public-unverified", PartnerType::PublicUnverified),
        ("PublicUnverified", PartnerType::PublicUnverified),
        ("PUBLICUNVERIFIED", PartnerType::PublicUnverified),
    ];
    for (spelling, want) in cases {
        let text = partner("a.test", "required", "optional", true)
            .replace("\"federated\"", &format!("\"{spelling}\""));
        assert_eq!(
            load(&text).set.partners[0].partner_type,
            want,
            "type = {spelling}"
        );
    }
}

#[test]
fn near_miss_spellings_are_unknown_values() {
    for bad in [
        "not_supported",
        "Not Supported",
        "n-otsupported",
        "",
        "require",
        "yes",
    ] {
        let text = partner("a.test", bad, "optional", true);
        let diags = parse_errors(&text);
        assert_eq!(where_(&diags), [("P4", 4, 7)], "tls = {bad:?}");
        assert_eq!(diags[0].field.as_deref(), Some("tls"));
        assert_eq!(diags[0].partner.as_deref(), Some("a.test"));
        assert!(diags[0].message.contains("not-supported"), "{}", diags[0]);
    }
    let text = partner("a.test", "required", "optional", true).replace("federated", "partner");
    let diags = parse_errors(&text);
    assert_eq!(where_(&diags), [("P4", 3, 8)]);
    assert_eq!(diags[0].field.as_deref(), Some("type"));
}

// ---- domains (E3) ----------------------------------------------------------

#[test]
fn dns_name_rules() {
    let good = [
        "fabrikam.test",
        "a.b",
        "xn--bcher-kva.example",
        "a-b.c-d.test",
        "1.example.test",
        "UPPER.test",
    ];
    for name in good {
        assert_eq!(dns_name_problem(name), None, "{name}");
    }
    let long_label = format!("{}.test", "a".repeat(64));
    let long_name = format!("{}.test", vec!["a".repeat(60); 5].join("."));
    let bad = [
        "",
        "localhost",
        "fabrikam.test.",
        ".fabrikam.test",
        "fabrikam..test",
        "*.fabrikam.test",
        "-fab.test",
        "fab-.test",
        "under_score.test",
        "space here.test",
        "bücher.example",
        "10.0.0.1",
        long_label.as_str(),
        long_name.as_str(),
    ];
    for name in bad {
        assert!(
            dns_name_problem(name).is_some(),
            "{name:?} should be invalid"
        );
    }
    assert_eq!(dns_name_problem(&format!("{}.test", "a".repeat(63))), None);
}

#[test]
fn invalid_domains_are_e3_wherever_they_appear() {
    let text = "[local]\ndomains = [\"target.test\", \"bad_local\"]\n\n\
                [[partner]]\ndomain = \"*.wild.test\"\n\
                additional-domains = [\"ok.test\", \"trailing.test.\"]\n\
                type = \"federated\"\ntls = \"required\"\nsasl = \"optional\"\ndialback = true\n\
                proxy-fqdn = \"proxy..test\"\n";
    let diags = check(text);
    assert_eq!(
        where_(&diags),
        [("E3", 2, 27), ("E3", 5, 1), ("E3", 6, 34), ("E3", 11, 1)]
    );
    let fields: Vec<Option<&str>> = diags.iter().map(|d| d.field.as_deref()).collect();
    assert_eq!(
        fields,
        [
            Some("domains"),
            Some("domain"),
            Some("additional-domains"),
            Some("proxy-fqdn")
        ]
    );
    assert_eq!(diags[0].partner, None, "a local domain has no partner");
    assert_eq!(diags[1].partner.as_deref(), Some("*.wild.test"));
    assert!(diags[1].message.contains("wildcard"), "{}", diags[1]);
    assert!(diags.iter().all(|d| d.severity == Severity::Error));
}

#[test]
fn a_domain_claimed_twice_is_e3_at_the_later_occurrence() {
    let mut text = String::from("[local]\ndomains = [\"target.test\"]\n\n");
    text += &partner("Fabrikam.test", "required", "optional", true); // lines 4-9
    text += &partner("fabrikam.TEST", "required", "optional", true); // lines 10-15
    text += &partner("other.test", "required", "optional", true) // lines 16-21
        .replace(
            "type =",
            "additional-domains = [\"target.test\", \"other.test\", \"x.test\", \"x.test\"]\ntype =",
        );
    let diags = check(&text);
    assert_eq!(
        where_(&diags),
        [
            ("E3", 11, 1),
            ("E3", 18, 23),
            ("E3", 18, 38),
            ("E3", 18, 62)
        ]
    );
    assert!(diags[0].message.contains("two partners"), "{}", diags[0]);
    assert!(
        diags[0].message.contains("fabrikam.test (line 5)"),
        "{}",
        diags[0]
    );
    assert!(diags[1].message.contains("local domain"), "{}", diags[1]);
    assert!(diags[2].message.contains("listed twice"), "{}", diags[2]);
    assert!(diags[3].message.contains("listed twice"), "{}", diags[3]);
    assert!(diags.iter().all(|d| d.partner.is_some()));
}

#[test]
fn a_local_domain_after_a_partner_is_reported_on_the_local_side() {
    let mut text = partner("shared.test", "required", "optional", true);
    text += "\n[local]\ndomains = [\"shared.test\"]\n";
    let diags = check(&text);
    assert_eq!(where_(&diags), [("E3", 9, 12)]);
    assert_eq!(diags[0].field.as_deref(), Some("domains"));
    assert!(
        diags[0].message.contains("partner shared.test"),
        "{}",
        diags[0]
    );
}

#[test]
fn invalid_fixture_reports_every_error() {
    let loaded = load_file(&fixture("invalid.toml")).expect("invalid.toml parses");
    let diags = validate(&loaded);
    assert_eq!(
        where_(&diags),
        [
            ("E1", 12, 1),
            ("E2", 13, 1),
            ("E2", 21, 1),
            ("E3", 27, 23),
            ("E3", 27, 43),
            ("E3", 27, 62),
            ("E3", 32, 1),
            ("E3", 36, 1),
        ]
    );
}

// ---- parse diagnostics (P1-P6) ----------------------------------------------

#[test]
fn unknown_keys_everywhere_are_p2() {
    let text = "title = \"x\"\n[local]\ndomains = []\nadmins = [\"root\"]\n\n\
                [[partner]]\ndomain = \"a.test\"\ntype = \"federated\"\ntls = \"required\"\n\
                sasl = \"optional\"\ndialback = true\nkeep_alive = true\nport = 5269\n\
                [extra]\nx = 1\n";
    let diags = parse_errors(text);
    assert_eq!(
        where_(&diags),
        [
            ("P2", 1, 1),
            ("P2", 4, 1),
            ("P2", 12, 1),
            ("P2", 13, 1),
            ("P2", 14, 2)
        ]
    );
    let fields: Vec<&str> = diags.iter().filter_map(|d| d.field.as_deref()).collect();
    assert_eq!(fields, ["title", "admins", "keep_alive", "port", "extra"]);
    assert!(
        diags[2].message.contains("did you mean `keep-alive`"),
        "{}",
        diags[2]
    );
    assert_eq!(diags[2].partner.as_deref(), Some("a.test"));
    assert_eq!(diags[0].partner, None);
    assert!(
        diags[3].message.contains("proxy-fqdn"),
        "lists the known keys"
    );
}

#[test]
fn wrong_types_are_p3() {
    let text = "local = 3\n\n\
                [[partner]]\ndomain = 42\ntype = \"federated\"\ntls = true\nsasl = \"optional\"\n\
                dialback = \"yes\"\nadditional-domains = \"b.test\"\nkeep-alive = 1\n\
                connection-limit = \"10\"\ndescription = [\"x\"]\nproxy-fqdn = 1.5\n\n\
                [[partner]]\ndomain = \"c.test\"\nadditional-domains = [\"d.test\", 7]\n\
                type = \"federated\"\ntls = \"required\"\nsasl = \"optional\"\ndialback = true\n";
    let diags = parse_errors(text);
    let got: Vec<(&str, usize, Option<&str>)> = diags
        .iter()
        .map(|d| (d.code.as_str(), d.position.line, d.field.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("P3", 1, Some("local")),
            ("P3", 4, Some("domain")),
            ("P3", 6, Some("tls")),
            ("P3", 8, Some("dialback")),
            ("P3", 9, Some("additional-domains")),
            ("P3", 10, Some("keep-alive")),
            ("P3", 11, Some("connection-limit")),
            ("P3", 12, Some("description")),
            ("P3", 13, Some("proxy-fqdn")),
            ("P3", 17, Some("additional-domains")),
        ]
    );
    // Domain unreadable: no partner name, but the message says which one.
    assert_eq!(diags[1].partner, None);
    assert!(diags[1].message.ends_with("(partner #1)"), "{}", diags[1]);
    assert!(diags[2].message.ends_with("(partner #1)"), "{}", diags[2]);
    assert_eq!(diags[9].partner.as_deref(), Some("c.test"));
    assert_eq!(diags[9].position.column, 33, "points at the bad element");
    assert!(diags[3].message.contains("found string"), "{}", diags[3]);
}

#[test]
fn a_single_partner_table_is_p3() {
    let text = "[partner]\ndomain = \"a.test\"\n";
    let diags = parse_errors(text);
    assert_eq!(where_(&diags), [("P3", 1, 1)]);
    assert!(diags[0].message.contains("[[partner]]"), "{}", diags[0]);
}

#[test]
fn missing_required_fields_are_p5_at_the_partner_header() {
    let text = "[[partner]]\ndescription = \"nothing else\"\n\n[[partner]]\ndomain = \"b.test\"\n\
                type = \"federated\"\ntls = \"required\"\n";
    let diags = parse_errors(text);
    let got: Vec<(&str, usize, Option<&str>, Option<&str>)> = diags
        .iter()
        .map(|d| {
            let p = d.partner.as_deref();
            (d.code.as_str(), d.position.line, p, d.field.as_deref())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("P5", 1, None, Some("domain")),
            ("P5", 1, None, Some("type")),
            ("P5", 1, None, Some("tls")),
            ("P5", 1, None, Some("sasl")),
            ("P5", 1, None, Some("dialback")),
            ("P5", 4, Some("b.test"), Some("sasl")),
            ("P5", 4, Some("b.test"), Some("dialback")),
        ]
    );
    assert!(diags[0].message.contains("partner #1"), "{}", diags[0]);
}

#[test]
fn a_present_field_with_a_bad_value_is_not_also_missing() {
    let text = partner("a.test", "sometimes", "optional", true).replace("true", "\"on\"");
    let diags = parse_errors(&text);
    assert_eq!(codes(&diags), ["P4", "P3"]);
}

#[test]
fn connection_limit_range_is_p6() {
    for bad in ["0", "-1", "4294967296"] {
        let text = partner("a.test", "required", "optional", true)
            + &format!("connection-limit = {bad}\n");
        let diags = parse_errors(&text);
        assert_eq!(where_(&diags), [("P6", 7, 20)], "connection-limit = {bad}");
        assert_eq!(diags[0].field.as_deref(), Some("connection-limit"));
    }
    let text = partner("a.test", "required", "optional", true) + "connection-limit = 4294967295\n";
    assert_eq!(load(&text).set.partners[0].connection_limit, Some(u32::MAX));
}

#[test]
fn toml_syntax_errors_are_p1() {
    let diags = match load_file(&fixture("syntax-error.toml")) {
        Err(LoadError::Parse(diags)) => diags,
        other => panic!("expected a parse error, got {other:?}"),
    };
    assert_eq!(codes(&diags), ["P1"]);
    assert_eq!(diags[0].position.line, 2);
    let dup = parse_errors("[local]\nusers = []\nusers = []\n");
    assert_eq!(
        where_(&dup),
        [("P1", 3, 1)],
        "duplicate keys are syntax errors"
    );
}

#[test]
fn parse_errors_fixture_reports_every_problem_across_partners() {
    let diags = match load_file(&fixture("parse-errors.toml")) {
        Err(LoadError::Parse(diags)) => diags,
        other => panic!("expected parse errors, got {other:?}"),
    };
    assert_eq!(
        where_(&diags),
        [
            ("P2", 2, 1),
            ("P2", 6, 1),
            ("P4", 11, 7),
            ("P3", 13, 12),
            ("P2", 14, 1),
            ("P5", 16, 1),
            ("P5", 16, 1),
            ("P4", 18, 8),
            ("P6", 20, 20),
        ]
    );
    let partners: Vec<Option<&str>> = diags.iter().map(|d| d.partner.as_deref()).collect();
    assert_eq!(
        partners,
        [
            None,
            None,
            Some("one.test"),
            Some("one.test"),
            Some("one.test"),
            Some("two.test"),
            Some("two.test"),
            Some("two.test"),
            Some("two.test"),
        ]
    );
    assert!(diags.iter().all(|d| d.severity == Severity::Error));
}

#[test]
fn unreadable_and_non_utf8_files() {
    let missing = fixture("does-not-exist.toml");
    match load_file(&missing) {
        Err(e @ LoadError::Io { .. }) => {
            assert!(e.to_string().contains("does-not-exist.toml"), "{e}");
        }
        other => panic!("expected an io error, got {other:?}"),
    }
    let dir = std::env::temp_dir().join(format!("s2spec-partner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("latin1.toml");
    std::fs::write(&file, b"[local]\nusers = [\"j\xf6rg\"]\n").expect("write");
    let result = load_file(&file);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Err(LoadError::Parse(diags)) => assert_eq!(where_(&diags), [("P1", 2, 12)]),
        other => panic!("expected P1, got {other:?}"),
    }
}

// ---- output shape --------------------------------------------------------

#[test]
fn diagnostics_display_file_line_column_code_partner_field() {
    let text = partner("a.test", "not-supported", "optional", false);
    let lines: Vec<String> = check(&text).iter().map(|d| d.to_string()).collect();
    assert_eq!(
        lines,
        [
            "test.toml:5:1: E1: SASL requires TLS: sasl = optional while tls = not-supported \
             (partner a.test, field sasl)",
            "test.toml:6:1: E2: SASL or Dialback must be enabled: tls = not-supported, \
             sasl = optional, dialback = false admits no authentication method \
             (partner a.test, field dialback)",
        ]
    );
}

#[test]
fn validation_reports_every_partner_sorted_by_position() {
    let mut text = partner("a.test", "required", "not-supported", false);
    text += &partner("b.test", "optional", "optional", true);
    text += &partner("c_bad.test", "not-supported", "required", true);
    let diags = check(&text);
    assert_eq!(
        where_(&diags),
        [("E2", 6, 1), ("W1", 10, 1), ("E3", 14, 1), ("E1", 17, 1)]
    );
}

#[test]
fn a_byte_order_mark_does_not_shift_columns() {
    let diags = parse_errors("\u{feff}colour = 1\n");
    assert_eq!(where_(&diags), [("P2", 1, 1)]);
}

mod never_panics {
    use proptest::prelude::*;
    use s2spec::partner::{load_str, validate};

    fn run(text: &str) {
        if let Ok(loaded) = load_str(text, "fuzz.toml") {
            let _ = validate(&loaded);
        }
    }

    proptest! {
        #[test]
        fn on_arbitrary_text(text in "\\PC{0,200}") {
            run(&text);
        }

        /// Single-character edits of a valid file reach the deeper paths.
        #[test]
        fn on_edits_of_a_valid_file(at in 0usize..2000, c in any::<char>()) {
            let base = include_str!("../fixtures/partners/valid.toml");
            let mut chars: Vec<char> = base.chars().collect();
            let i = at % chars.len();
            chars[i] = c;
            run(&chars.into_iter().collect::<String>());
        }
    }
}
