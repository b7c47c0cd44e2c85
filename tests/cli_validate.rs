//! `s2spec validate`, run as a process on the fixtures.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/partners")
        .join(name)
        .display()
        .to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s2spec"))
        .args(args)
        .output()
        .expect("the s2spec binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn valid_file_exits_0_and_prints_its_warnings() {
    let file = fixture("valid.toml");
    let out = run(&["validate", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "{file}:24:1: W1: SASL requires TLS; TLS optional may make negotiation fail \
             (tls = optional, sasl = required) (partner contoso.test, field tls)"
        )
    );
    assert!(lines[1].starts_with(&format!("{file}:33:1: W2: Dialback will not operate")));
    assert_eq!(stderr(&out).trim(), "0 errors, 2 warnings");
}

#[test]
fn invalid_file_exits_1_and_prints_every_error() {
    let file = fixture("invalid.toml");
    let out = run(&["validate", &file]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let codes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{file}:")))
        .filter_map(|l| l.split(": ").nth(1))
        .collect();
    assert_eq!(codes, ["E1", "E2", "E2", "E3", "E3", "E3", "E3", "E3"]);
    assert!(text.contains(&format!(
        "{file}:12:1: E1: SASL requires TLS: sasl = required while tls = not-supported \
         (partner nosecurity.test, field sasl)"
    )));
    assert_eq!(stderr(&out).trim(), "8 errors, 0 warnings");
}

#[test]
fn all_rows_file_exits_1_with_nine_errors_and_five_warnings() {
    let out = run(&["validate", &fixture("all-rows.toml")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).lines().count(), 14);
    assert_eq!(stderr(&out).trim(), "9 errors, 5 warnings");
}

#[test]
fn parse_errors_exit_2_and_are_all_printed() {
    let file = fixture("parse-errors.toml");
    let out = run(&["validate", &file]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    assert!(lines.iter().all(|l| l.starts_with(&format!("{file}:"))));
    assert!(
        lines.contains(
            &format!(
                "{file}:14:1: P2: unknown key `keepalive` in partner one.test; did you mean \
         `keep-alive`? (partner one.test, field keepalive)"
            )
            .as_str()
        )
    );
    assert!(lines.contains(&format!(
        "{file}:20:20: P6: `connection-limit` = 0 is out of range; expected 1 to 4294967295 \
         (partner two.test, field connection-limit)"
    )
    .as_str()));
    assert_eq!(stderr(&out).trim(), "9 errors, 0 warnings");
}

#[test]
fn syntax_error_exits_2_with_p1() {
    let file = fixture("syntax-error.toml");
    let out = run(&["validate", &file]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with(&format!("{file}:2:22: P1: ")), "{text}");
}

#[test]
fn missing_file_exits_2_naming_the_path() {
    let file = fixture("no-such-file.toml");
    let out = run(&["validate", &file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains(&format!("cannot read {file}")), "{err}");
}

#[test]
fn json_format_for_valid_invalid_and_unparsable_files() {
    let file = fixture("valid.toml");
    let out = run(&["validate", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).is_empty(), "no summary line in JSON mode");
    let report = json(&out);
    assert_eq!(report["file"], file.as_str());
    assert_eq!(report["valid"], true);
    let diags = report["diagnostics"].as_array().expect("array");
    assert_eq!(diags.len(), 2);
    assert_eq!(diags[0]["code"], "W1");
    assert_eq!(diags[0]["severity"], "warning");
    assert_eq!(diags[0]["position"]["line"], 24);
    assert_eq!(diags[0]["position"]["column"], 1);
    assert_eq!(diags[0]["partner"], "contoso.test");
    assert_eq!(diags[0]["field"], "tls");
    assert!(
        stdout(&out).contains("\n  \"valid\": true"),
        "pretty-printed"
    );

    let out = run(&["validate", "--format", "json", &fixture("invalid.toml")]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["valid"], false);
    assert_eq!(report["diagnostics"].as_array().map(Vec::len), Some(8));
    assert_eq!(report["diagnostics"][0]["severity"], "error");

    let out = run(&["validate", "--format=json", &fixture("parse-errors.toml")]);
    assert_eq!(out.status.code(), Some(2));
    let report = json(&out);
    assert_eq!(report["valid"], false);
    assert_eq!(report["diagnostics"][0]["code"], "P2");
    assert_eq!(report["diagnostics"][0]["partner"], serde_json::Value::Null);
}

#[test]
fn help_documents_codes_and_exit_status() {
    let out = run(&["validate", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for needle in [
        "<FILE>",
        "--format",
        "text",
        "json",
        "Exit status",
        "P5",
        "E3",
        "W2",
    ] {
        assert!(text.contains(needle), "help lacks {needle}:\n{text}");
    }
}

#[test]
fn bad_usage_exits_2() {
    let out = run(&["validate", &fixture("valid.toml"), "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["validate"]);
    assert_eq!(out.status.code(), Some(2));
}
