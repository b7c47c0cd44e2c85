//! `s2spec import-lync` / `export-lync`: Get-CsXmppAllowedPartner output in
//! both forms (Format-List, Export-Csv), the two ways PowerShell loses
//! data, every other diagnostic with its position, and round trips.

use std::path::{Path, PathBuf};

use s2spec::lync::{export, import};
use s2spec::partner::{self, Local, Negotiation, PartnerSet, PartnerType, Setting, Severity};

mod child;
use child::run;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/lync")
        .join(name)
}

fn import_fixture(name: &str) -> import::Imported {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    import::import_str(&text, name, Local::default())
}

/// `(line, column, code)` of every diagnostic.
fn codes(i: &import::Imported) -> Vec<(usize, usize, String)> {
    i.diagnostics
        .iter()
        .map(|d| (d.position.line, d.position.column, d.code.clone()))
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lync-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn format_list_keeps_every_parameter() {
    let i = import_fixture("format-list.txt");
    assert_eq!(i.form, Some(import::Form::FormatList));
    assert!(i.diagnostics.is_empty(), "{:?}", i.diagnostics);
    let set = &i.loaded.set;
    assert_eq!(set.partners.len(), 3);
    let f = &set.partners[0];
    assert_eq!(f.domain, "fabrikam.test");
    assert_eq!(
        f.additional_domains,
        ["corp.fabrikam.test", "it.fabrikam.test"]
    );
    // A wrapped Format-List value is joined again.
    assert_eq!(
        f.description.as_deref(),
        Some("Fabrikam XMPP federation, managed by the Fabrikam messaging team (ticket FAB-1042)")
    );
    assert_eq!(f.partner_type, PartnerType::Federated);
    assert_eq!(
        f.negotiation,
        Negotiation::new(Setting::Required, Setting::Optional, true)
    );
    assert_eq!(f.proxy_fqdn.as_deref(), Some("xmpp.fabrikam.test"));
    assert_eq!(f.connection_limit, Some(10));
    assert!(f.keep_alive);
    let c = &set.partners[1];
    assert_eq!(
        (c.description.as_deref(), c.proxy_fqdn.as_deref()),
        (None, None)
    );
    assert!(c.additional_domains.is_empty() && !c.keep_alive);
    assert_eq!(c.partner_type, PartnerType::PublicVerified);
    let l = &set.partners[2];
    assert_eq!(l.connection_limit, None);
    assert_eq!(l.partner_type, PartnerType::PublicUnverified);
    // Positions point into the Lync file.
    assert_eq!(i.loaded.spans.partners[0].field("tls").line, 12);
    assert_eq!(i.loaded.spans.partners[1].field("domain").line, 25);
}

#[test]
fn csv_gives_the_same_set_as_format_list() {
    let csv = import_fixture("export.csv");
    assert_eq!(csv.form, Some(import::Form::Csv));
    assert!(csv.diagnostics.is_empty(), "{:?}", csv.diagnostics);
    assert_eq!(csv.loaded.set, import_fixture("format-list.txt").loaded.set);
    // Semicolons (Export-Csv -UseCulture), no #TYPE line, LF line ends.
    let text = std::fs::read_to_string(fixture("export.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.replace("\",\"", "\";\""))
        .collect::<Vec<_>>()
        .join("\n");
    let semi = import::import_str(&text, "semi.csv", Local::default());
    assert!(semi.diagnostics.is_empty(), "{:?}", semi.diagnostics);
    assert_eq!(semi.loaded.set, csv.loaded.set);
}

#[test]
fn a_list_cut_by_format_enumeration_limit_is_refused() {
    let i = import_fixture("format-list-truncated.txt");
    assert_eq!(codes(&i), [(3, 30, "L5".to_string())]);
    let d = &i.diagnostics[0];
    assert_eq!(d.severity, Severity::Error);
    assert!(
        d.message.contains("$FormatEnumerationLimit"),
        "{}",
        d.message
    );
    assert!(d.message.contains("first 4 domain(s)"), "{}", d.message);
    assert!(
        d.message.contains("-join ','"),
        "says how to export: {}",
        d.message
    );
    assert!(i.loaded.set.partners.is_empty(), "never imported");
    // The Unicode ellipsis of PowerShell 7 too.
    let text = std::fs::read_to_string(fixture("format-list-truncated.txt"))
        .unwrap()
        .replace("...}", "…}");
    let i = import::import_str(&text, "t.txt", Local::default());
    assert_eq!(codes(&i), [(3, 30, "L5".to_string())]);
}

#[test]
fn a_dotnet_type_name_is_never_a_domain() {
    let i = import_fixture("export-typename.csv");
    assert_eq!(
        codes(&i),
        [(3, 17, "L6".to_string()), (4, 16, "L6".to_string())]
    );
    for d in &i.diagnostics {
        assert!(d.message.contains(".NET type name"), "{}", d.message);
        assert!(
            d.message.contains("Export-Csv partners.csv"),
            "{}",
            d.message
        );
        assert_eq!(d.field.as_deref(), Some("AdditionalDomains"));
    }
    assert!(i.loaded.set.partners.is_empty());
}

#[test]
fn every_other_problem_has_its_code_and_position() {
    let i = import_fixture("format-list-invalid.txt");
    let want: Vec<(usize, usize, String)> = [
        (4, 30, "L3"),
        (6, 30, "L3"),
        (7, 30, "L3"),
        (17, 30, "E1"),
        (18, 30, "E2"),
        (20, 30, "L2"),
        (23, 1, "L4"),
    ]
    .iter()
    .map(|(l, c, k)| (*l, *c, k.to_string()))
    .collect();
    assert_eq!(codes(&i), want);
    // Validation names the PowerShell parameter.
    let e1 = &i.diagnostics[3];
    assert_eq!(e1.field.as_deref(), Some("SaslNegotiation"));
    assert_eq!(e1.partner.as_deref(), Some("nosasl.test"));
    assert_eq!(i.diagnostics[5].severity, Severity::Warning);

    let table = import_fixture("format-table.txt");
    assert_eq!(codes(&table), [(2, 1, "L1".to_string())]);
    assert!(table.diagnostics[0].message.contains("Format-Table"));
    let junk = import::import_str("hello world\n", "junk.txt", Local::default());
    assert_eq!(codes(&junk), [(1, 1, "L1".to_string())]);
    let missing = import::import_str(
        "Identity : a.test\nPartnerType : Federated\n",
        "m.txt",
        Local::default(),
    );
    let missing: Vec<String> = missing
        .diagnostics
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(
        missing,
        [
            "TlsNegotiation is missing",
            "SaslNegotiation is missing",
            "SupportDialbackNegotiation is missing"
        ]
    );
    let ragged = import::import_str(
        "\"Identity\",\"TlsNegotiation\"\n\"a.test\"\n\"b.test\",\"Required\",\"x\"\n\"c.test\n",
        "r.csv",
        Local::default(),
    );
    assert_eq!(
        codes(&ragged),
        [
            (2, 1, "L1".to_string()),
            (3, 1, "L1".to_string()),
            // The open quote, and the short row it leaves.
            (4, 1, "L1".to_string()),
            (4, 1, "L1".to_string())
        ]
    );
    assert!(
        ragged.diagnostics[2].message.contains("never closed")
            || ragged.diagnostics[3].message.contains("never closed")
    );
    let differ = import::import_str(
        "Identity : a.test\nDomain : b.test\nPartnerType : Federated\nTlsNegotiation : Required\nSaslNegotiation : Required\nSupportDialbackNegotiation : False\n",
        "d.txt",
        Local::default(),
    );
    assert_eq!(codes(&differ), [(1, 12, "L3".to_string())]);
}

fn valid_set() -> PartnerSet {
    let loaded = partner::load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/partners/valid.toml"),
    )
    .unwrap();
    PartnerSet {
        local: Local::default(),
        partners: loaded.set.partners,
    }
}

/// A test-side reading of `New-CsXmppAllowedPartner` commands, independent
/// of the import code: `-Name value` pairs, PowerShell literal strings.
fn parse_commands(text: &str) -> PartnerSet {
    let mut set = PartnerSet::default();
    for line in text
        .lines()
        .filter(|l| l.starts_with("New-CsXmppAllowedPartner "))
    {
        let mut args = std::collections::BTreeMap::new();
        let mut rest = &line["New-CsXmppAllowedPartner ".len()..];
        while let Some(r) = rest.strip_prefix('-') {
            let (name, after) = r.split_once(' ').unwrap();
            let (value, next) = if let Some(q) = after.strip_prefix("@{Add=") {
                let end = q.find('}').unwrap();
                (q[..end].to_string(), &q[end + 1..])
            } else if let Some(body) = after.strip_prefix('\'') {
                // A literal string: '' is a quote.
                let mut v = String::new();
                let mut chars = body.char_indices().peekable();
                let mut end = after.len();
                while let Some((i, c)) = chars.next() {
                    if c == '\'' {
                        if chars.peek().map(|(_, c)| *c) == Some('\'') {
                            chars.next();
                            v.push('\'');
                            continue;
                        }
                        end = i + 2;
                        break;
                    }
                    v.push(c);
                }
                (v, &after[end..])
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                (after[..end].to_string(), &after[end..])
            };
            args.insert(name.to_string(), value);
            rest = next.trim_start();
        }
        let setting = |v: &str| match v {
            "Required" => Setting::Required,
            "Optional" => Setting::Optional,
            _ => Setting::NotSupported,
        };
        set.partners.push(partner::Partner {
            domain: args["Identity"].clone(),
            description: args.get("Description").cloned(),
            additional_domains: args
                .get("AdditionalDomains")
                .map(|v| {
                    v.split(',')
                        .map(|d| d.trim_matches('\'').to_string())
                        .collect()
                })
                .unwrap_or_default(),
            partner_type: match args["PartnerType"].as_str() {
                "Federated" => PartnerType::Federated,
                "PublicVerified" => PartnerType::PublicVerified,
                _ => PartnerType::PublicUnverified,
            },
            negotiation: Negotiation::new(
                setting(&args["TlsNegotiation"]),
                setting(&args["SaslNegotiation"]),
                args["SupportDialbackNegotiation"] == "$true",
            ),
            proxy_fqdn: args.get("ProxyFqdn").cloned(),
            connection_limit: args.get("ConnectionLimit").map(|v| v.parse().unwrap()),
            keep_alive: args["EnableKeepAlive"] == "$true",
        });
    }
    set
}

#[test]
fn round_trips() {
    let set = valid_set();
    // Format-List and CSV back into the same set.
    for (name, text) in [
        ("fl.txt", export::format_list(&set)),
        ("x.csv", export::csv(&set)),
    ] {
        let i = import::import_str(&text, name, Local::default());
        assert!(!i.has_errors(), "{name}: {:?}", i.diagnostics);
        assert_eq!(i.loaded.set, set, "{name}");
        // And through the partner-set file the import writes.
        let toml = import::partner_toml(&i.loaded.set, name);
        let loaded = partner::load_str(&toml, "imported.toml").unwrap();
        assert_eq!(loaded.set, set, "{name}: {toml}");
    }
    // The commands recreate the same set.
    let commands = export::new_commands(&set, "valid.toml");
    assert_eq!(parse_commands(&commands), set, "{commands}");
    // A hostile description stays one literal.
    let mut odd = set.clone();
    odd.partners[0].description = Some("it's $(Remove-Item C:\\) `n done".into());
    assert_eq!(parse_commands(&export::new_commands(&odd, "x")), odd);
}

#[test]
fn the_commands_through_the_binary() {
    let dir = temp_dir("cli");
    let out = run(&["import-lync", fixture("format-list.txt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let toml = dir.join("partners.toml");
    let out = run(&[
        "import-lync",
        fixture("export.csv").to_str().unwrap(),
        "--out",
        toml.to_str().unwrap(),
        "--local-domain",
        "Target.test",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["validate", toml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "the import validates");
    let loaded = partner::load_file(&toml).unwrap();
    assert_eq!(loaded.set.local.domains, ["target.test"]);
    let out = run(&["export-lync", toml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("New-CsXmppAllowedPartner -Identity").count(),
        3
    );
    assert_eq!(parse_commands(&stdout).partners, loaded.set.partners);

    // Lossy input: exit 1, FILE:LINE:COL, nothing written.
    let lossy = dir.join("lossy.toml");
    let out = run(&[
        "import-lync",
        fixture("export-typename.csv").to_str().unwrap(),
        "--out",
        lossy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("export-typename.csv:3:17: L6:"), "{err}");
    assert!(!lossy.exists());

    // Windows PowerShell 5.1 redirects as UTF-16LE with a BOM.
    let utf16 = dir.join("utf16.txt");
    let text = std::fs::read_to_string(fixture("format-list.txt")).unwrap();
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    std::fs::write(&utf16, bytes).unwrap();
    let out = run(&["import-lync", utf16.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["import-lync", dir.join("missing.txt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[
        "export-lync",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/partners/invalid.toml")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "validation errors are not exported"
    );
}
