//! `s2spec matrix --format json` reproduces SPEC §4's table exactly: checked
//! against the hand-transcribed fixture, through the real binary.

use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
struct Table {
    row: Vec<SpecRow>,
}

#[derive(Deserialize)]
struct SpecRow {
    tls: String,
    sasl: String,
    dialback: bool,
    methods: Vec<String>,
    valid: bool,
    codes: Vec<String>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct CliRow {
    tls: String,
    sasl: String,
    dialback: bool,
    methods: Vec<String>,
    valid: bool,
    codes: Vec<String>,
}

fn kebab(title: &str) -> String {
    title.to_lowercase().replace(' ', "-")
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_s2spec"))
        .args(args)
        .output()
        .expect("binary runs")
}

#[test]
fn json_matrix_equals_the_spec_table() {
    let out = run(&["matrix", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<CliRow> = serde_json::from_slice(&out.stdout).expect("JSON array");
    let text = std::fs::read_to_string("fixtures/matrix/spec-table.toml").unwrap();
    let spec: Table = toml::from_str(&text).unwrap();
    assert_eq!(rows.len(), 18);
    for (i, (ours, want)) in rows.iter().zip(&spec.row).enumerate() {
        let expected = CliRow {
            tls: want.tls.clone(),
            sasl: want.sasl.clone(),
            dialback: want.dialback,
            methods: want.methods.iter().map(|m| kebab(m)).collect(),
            valid: want.valid,
            codes: want.codes.clone(),
        };
        assert_eq!(ours, &expected, "row {}", i + 1);
    }
}

#[test]
fn markdown_matrix_has_a_header_and_18_rows() {
    let out = run(&["matrix"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20, "{text}");
    assert!(lines[0].starts_with("| # | TLS | SASL | Dialback |"));
    assert_eq!(
        lines[7],
        "| 6 | not-supported | required | false | — | no | E1, E2 |"
    );
}

#[test]
fn unknown_format_is_a_usage_error() {
    let out = run(&["matrix", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("csv"));
}
