//! Report renderings on a hand-built report holding every verdict:
//! `report.json` round trip and schema check, JUnit structure, summary table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use s2spec::report::{
    CaseResult, Expected, Observed, Report, RunInfo, SCHEMA, Verdict, group_of, junit_string,
    read_json, summary_table, summary_table_with, write_json, write_junit,
};
use s2spec::stream::{Dir, Entry, EntryKind};

const RATIONALE: &str = "both sides require TLS and SASL; the peer's certificate is valid";

fn run_info() -> RunInfo {
    RunInfo {
        s2spec_version: "0.1.0".into(),
        target: "reference".into(),
        faults: vec!["no-sasl".into()],
        policy: "strict".into(),
        started: "2026-01-02T03:04:05Z".into(),
        finished: "2026-01-02T03:04:17Z".into(),
        duration_ms: 12_345,
        transcripts: None,
        selection: None,
        interrupted: false,
    }
}

fn transcript(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry {
            at: Duration::from_millis(i as u64 * 3),
            stream: (i % 2) as u32,
            dir: if i % 2 == 0 { Dir::Sent } else { Dir::Received },
            tls: i > 2,
            kind: if i == 1 {
                EntryKind::Note
            } else {
                EntryKind::Xml
            },
            text: format!("<line n='{i}'/>"),
        })
        .collect()
}

fn case(id: &str, family: &str, verdict: Verdict, messages: &[&str]) -> CaseResult {
    CaseResult {
        id: id.into(),
        family: family.into(),
        description: format!("case {id}"),
        verdict,
        expected: Some(Expected {
            outcome: "SASL over TLS".parse().unwrap(),
            tls: true,
            rationale: RATIONALE.into(),
            refs: vec!["RFC 6120 §6.4".into(), "XEP-0178 §3".into()],
            source: None,
            alternatives: Vec::new(),
        }),
        observed: Some(Observed {
            outcome: "TCP Dialback".parse().unwrap(),
            tls: false,
            facts: vec!["no <starttls/> offered".into()],
            initiating: None,
        }),
        messages: messages.iter().map(|m| m.to_string()).collect(),
        deviations: Vec::new(),
        duration_ms: 1500,
        waited: Vec::new(),
        transcript: Vec::new(),
    }
}

/// Nine cases in four suites: `matrix/in` (pass, non-strict, fail with a long
/// transcript), `matrix/out` (not-applicable, error, fail), `config` (pass,
/// fail), `rfc6120/5.4.3.3` (pass).
fn sample() -> Report {
    let mut failing = case(
        "matrix/in/t-RO1/p-ON1/valid/srv",
        "plain",
        Verdict::Fail,
        &[
            "expected SASL over TLS, observed TCP Dialback\nsecond line of detail",
            "RFC 6120 §5.3.1: STARTTLS must be offered",
        ],
    );
    failing.transcript = transcript(50);
    let mut error = case(
        "matrix/out/t-RR1/p-RR1/expired/srv",
        "certificates",
        Verdict::Error,
        &["mock DNS server did not start: address in use"],
    );
    error.transcript = transcript(3);
    let mut na = case(
        "matrix/out/t-NN0/p-NN1/valid/a-only",
        "dns",
        Verdict::NotApplicable,
        &["the target cannot express this configuration", "(no knob)"],
    );
    na.expected = None;
    na.observed = None;
    let cases = vec![
        case(
            "matrix/in/t-RR1/p-RR1/valid/srv",
            "plain",
            Verdict::Pass,
            &[],
        ),
        case(
            "matrix/in/t-OO1/p-OO1/valid/srv",
            "plain",
            Verdict::NonStrict,
            &["RFC 6120 §4.3.2: stream id SHOULD be unpredictable"],
        ),
        failing,
        na,
        error,
        case(
            "matrix/out/t-ON1/p-ON1/wrong-name/srv",
            "certificates",
            Verdict::Fail,
            &["accepted a certificate for the wrong name"],
        ),
        case("config/NN0", "config", Verdict::Pass, &[]),
        case(
            "config/NR0",
            "config",
            Verdict::Fail,
            &["target accepted an invalid configuration"],
        ),
        case(
            "rfc6120/5.4.3.3/starttls-pipelining",
            "scenario",
            Verdict::Pass,
            &[],
        ),
    ];
    Report::new(run_info(), cases)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("s2spec-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_round_trip_creates_directory() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("nested/run/report.json");
    let report = sample();
    write_json(&report, &path).expect("write");
    let back = read_json(&path).expect("read");
    assert_eq!(back, report);
    // Only the report is left behind: the temporary file was renamed.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    // Overwriting an existing report works too.
    write_json(&report, &path).expect("overwrite");
    assert_eq!(read_json(&path).expect("read again"), report);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_uses_documented_spellings() {
    let dir = temp_dir("spellings");
    let path = dir.join("report.json");
    write_json(&sample(), &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], SCHEMA);
    assert_eq!(v["summary"]["total"], 9);
    assert_eq!(v["summary"]["non_strict"], 1);
    let verdicts: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    for expected in ["pass", "non-strict", "not-applicable", "fail", "error"] {
        assert!(verdicts.contains(&expected), "{expected} in {verdicts:?}");
    }
    let entry = &v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| !c["transcript"].as_array().unwrap().is_empty())
        .unwrap()["transcript"][1];
    assert_eq!(entry["dir"], "received");
    assert_eq!(entry["kind"], "note");
    assert_eq!(entry["at"]["secs"], 0);
    assert_eq!(entry["at"]["nanos"], 3_000_000);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_wrong_schema_rejected_naming_file() {
    let dir = temp_dir("schema");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("future.json");
    let mut v = serde_json::to_value(sample()).unwrap();
    v["schema"] = "s2spec-report/9".into();
    std::fs::write(&path, v.to_string()).unwrap();
    let err = read_json(&path).unwrap_err().to_string();
    assert!(err.contains("future.json"), "{err}");
    assert!(err.contains("s2spec-report/9"), "{err}");
    assert!(err.contains(SCHEMA), "{err}");

    let other = dir.join("other.json");
    std::fs::write(&other, r#"{"name": "something else"}"#).unwrap();
    let err = read_json(&other).unwrap_err().to_string();
    assert!(
        err.contains("other.json") && err.contains("not an s2spec report"),
        "{err}"
    );

    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let err = read_json(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.json") && err.contains("not valid JSON"),
        "{err}"
    );

    // Right schema, wrong structure: still an error, not a panic.
    let broken = dir.join("broken.json");
    std::fs::write(&broken, format!(r#"{{"schema": "{SCHEMA}", "cases": 3}}"#)).unwrap();
    let err = read_json(&broken).unwrap_err().to_string();
    assert!(
        err.contains("broken.json") && err.contains("malformed"),
        "{err}"
    );

    // Additive changes keep the schema: unknown fields are ignored.
    let newer = dir.join("newer.json");
    let mut v = serde_json::to_value(sample()).unwrap();
    v["run"]["host"] = "ci-7".into();
    v["cases"][0]["retries"] = 2.into();
    std::fs::write(&newer, v.to_string()).unwrap();
    assert_eq!(read_json(&newer).expect("additive field"), sample());

    let err = read_json(&dir.join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- JUnit

#[derive(Debug, Default)]
struct Suite {
    attrs: BTreeMap<String, String>,
    properties: BTreeMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Debug, Default)]
struct Case {
    attrs: BTreeMap<String, String>,
    /// `failure`, `error` or `skipped`, with its attributes and text.
    outcome: Option<(String, BTreeMap<String, String>, String)>,
    system_out: Option<String>,
}

#[derive(Debug, Default)]
struct Junit {
    root: BTreeMap<String, String>,
    suites: Vec<Suite>,
}

fn attrs(e: &BytesStart) -> BTreeMap<String, String> {
    e.attributes()
        .map(|a| {
            let a = a.expect("attribute");
            (
                a.key.as_ref().to_string(),
                a.normalized_value(XmlVersion::Implicit1_0)
                    .expect("attribute value")
                    .into_owned(),
            )
        })
        .collect()
}

/// Walks the document with quick-xml: fails on anything not well-formed.
fn parse_junit(xml: &str) -> Junit {
    let mut reader = Reader::from_str(xml);
    let mut out = Junit::default();
    let mut stack: Vec<String> = Vec::new();
    loop {
        let event = reader.read_event().expect("well-formed XML");
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.name().as_ref().to_string();
            match name.as_str() {
                "testsuites" => out.root = attrs(&e),
                "testsuite" => out.suites.push(Suite {
                    attrs: attrs(&e),
                    ..Suite::default()
                }),
                "property" => {
                    let a = attrs(&e);
                    out.suites
                        .last_mut()
                        .unwrap()
                        .properties
                        .insert(a["name"].clone(), a["value"].clone());
                }
                "testcase" => out.suites.last_mut().unwrap().cases.push(Case {
                    attrs: attrs(&e),
                    ..Case::default()
                }),
                "failure" | "error" | "skipped" => {
                    let case = out.suites.last_mut().unwrap().cases.last_mut().unwrap();
                    case.outcome = Some((name.clone(), attrs(&e), String::new()));
                }
                _ => {}
            }
            if !empty {
                stack.push(name);
            }
            continue;
        }
        match event {
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                append_text(&mut out, &stack, &t.xml10_content());
            }
            Event::CData(t) => {
                append_text(&mut out, &stack, &t.xml10_content());
            }
            Event::GeneralRef(r) => {
                // quick-xml reports entity references apart from the text.
                let text = quick_xml::escape::unescape(&format!("&{};", r.as_ref()))
                    .expect("known entity")
                    .into_owned();
                append_text(&mut out, &stack, &text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    out
}

fn append_text(out: &mut Junit, stack: &[String], text: &str) {
    let Some(suite) = out.suites.last_mut() else {
        return;
    };
    let Some(case) = suite.cases.last_mut() else {
        return;
    };
    match stack.last().map(String::as_str) {
        Some("failure" | "error" | "skipped") if stack.iter().any(|s| s == "testcase") => {
            if let Some(o) = case.outcome.as_mut() {
                o.2.push_str(text);
            }
        }
        Some("system-out") if stack.iter().any(|s| s == "testcase") => {
            case.system_out
                .get_or_insert_with(String::new)
                .push_str(text);
        }
        _ => {}
    }
}

fn find<'a>(j: &'a Junit, id: &str) -> &'a Case {
    j.suites
        .iter()
        .flat_map(|s| &s.cases)
        .find(|c| c.attrs["name"] == id)
        .unwrap_or_else(|| panic!("no testcase {id}"))
}

#[test]
fn junit_counts_and_suites() {
    let j = parse_junit(&junit_string(&sample()));
    assert_eq!(j.root["tests"], "9");
    assert_eq!(j.root["failures"], "3");
    assert_eq!(j.root["errors"], "1");
    assert_eq!(j.root.get("skipped").map(String::as_str), Some("1"));

    let names: Vec<&str> = j.suites.iter().map(|s| s.attrs["name"].as_str()).collect();
    assert_eq!(
        names,
        ["config", "matrix/in", "matrix/out", "rfc6120/5.4.3.3"]
    );
    let counts = |name: &str| {
        let s = j.suites.iter().find(|s| s.attrs["name"] == name).unwrap();
        let get = |k: &str| s.attrs.get(k).cloned().unwrap_or_else(|| "0".into());
        (
            s.cases.len(),
            get("tests"),
            get("failures"),
            get("errors"),
            get("skipped"),
        )
    };
    assert_eq!(
        counts("config"),
        (2, "2".into(), "1".into(), "0".into(), "0".into())
    );
    assert_eq!(
        counts("matrix/in"),
        (3, "3".into(), "1".into(), "0".into(), "0".into())
    );
    assert_eq!(
        counts("matrix/out"),
        (3, "3".into(), "1".into(), "1".into(), "1".into())
    );
    assert_eq!(
        counts("rfc6120/5.4.3.3"),
        (1, "1".into(), "0".into(), "0".into(), "0".into())
    );

    for s in &j.suites {
        assert_eq!(s.properties["target"], "reference");
        assert_eq!(s.properties["policy"], "strict");
        assert_eq!(s.properties["s2spec-version"], "0.1.0");
        assert_eq!(s.properties["faults"], "no-sasl");
        for c in &s.cases {
            assert_eq!(c.attrs["classname"], s.attrs["name"]);
            assert_eq!(c.attrs["time"].parse::<f64>().unwrap(), 1.5);
        }
    }
}

#[test]
fn junit_failure_body_has_rationale_refs_and_transcript_tail() {
    let j = parse_junit(&junit_string(&sample()));
    let c = find(&j, "matrix/in/t-RO1/p-ON1/valid/srv");
    let (kind, attrs, body) = c.outcome.as_ref().expect("failure element");
    assert_eq!(kind, "failure");
    // Only the first line of the first message goes into the attribute.
    assert_eq!(
        attrs["message"],
        "expected SASL over TLS, observed TCP Dialback"
    );
    assert_eq!(attrs["type"], "fail");
    for needle in [
        "second line of detail",
        "RFC 6120 §5.3.1: STARTTLS must be offered",
        "expected: SASL over TLS (TLS)",
        "observed: TCP Dialback (no TLS)",
        "no <starttls/> offered",
        RATIONALE,
        "RFC 6120 §6.4; XEP-0178 §3",
        "last 40 of 50 lines",
        "<line n='10'/>",
        "<line n='49'/>",
    ] {
        assert!(body.contains(needle), "{needle:?} missing from\n{body}");
    }
    // The tail only: the first ten lines are cut.
    assert!(!body.contains("<line n='9'/>"), "{body}");
    assert_eq!(body.matches("<line n=").count(), 40);

    let e = find(&j, "matrix/out/t-RR1/p-RR1/expired/srv");
    let (kind, attrs, body) = e.outcome.as_ref().expect("error element");
    assert_eq!(kind, "error");
    assert_eq!(
        attrs["message"],
        "mock DNS server did not start: address in use"
    );
    assert!(
        body.contains(RATIONALE) && body.contains("transcript (3 lines)"),
        "{body}"
    );
    assert!(body.contains("note: <line n='1'/>"), "{body}");
}

#[test]
fn junit_skipped_and_non_strict() {
    let j = parse_junit(&junit_string(&sample()));
    let na = find(&j, "matrix/out/t-NN0/p-NN1/valid/a-only");
    let (kind, attrs, body) = na.outcome.as_ref().expect("skipped element");
    assert_eq!(kind, "skipped");
    assert_eq!(
        attrs["message"],
        "the target cannot express this configuration"
    );
    assert!(body.contains("(no knob)"), "{body}");

    let ns = find(&j, "matrix/in/t-OO1/p-OO1/valid/srv");
    assert!(ns.outcome.is_none(), "non-strict passes: {ns:?}");
    let out = ns.system_out.as_deref().expect("system-out");
    assert!(out.contains("non-strict"), "{out}");
    assert!(out.contains("stream id SHOULD be unpredictable"), "{out}");

    let pass = find(&j, "config/NN0");
    assert!(pass.outcome.is_none() && pass.system_out.is_none());
}

#[test]
fn junit_survives_hostile_text_and_empty_report() {
    let mut r = sample();
    r.cases[0].messages = vec!["a]]>b <x> & \u{1b}[31mred\u{0} \"q\" 'a'".into()];
    r.cases[0].verdict = Verdict::Fail;
    r.cases[0].transcript = vec![Entry {
        at: Duration::ZERO,
        stream: 0,
        dir: Dir::Received,
        tls: false,
        kind: EntryKind::Raw,
        text: "<?xml?>\r\n<!-- ]]> -->\u{7}\u{ffff}".into(),
    }];
    let xml = junit_string(&r);
    assert!(
        !xml.contains(['\u{0}', '\u{1b}', '\u{7}', '\u{ffff}']),
        "{xml}"
    );
    let j = parse_junit(&xml);
    let c = find(&j, &r.cases[0].id);
    let (_, attrs, body) = c.outcome.as_ref().unwrap();
    assert!(attrs["message"].contains("a]]>b <x> &"), "{attrs:?}");
    assert!(body.contains("raw: <?xml?>\\r\\n<!-- ]]> -->"), "{body}");

    let empty = Report::new(run_info(), Vec::new());
    let j = parse_junit(&junit_string(&empty));
    assert_eq!(j.root["tests"], "0");
    assert!(j.suites.is_empty());
}

#[test]
fn junit_file_written() {
    let dir = temp_dir("junit");
    let path = dir.join("out/junit.xml");
    write_junit(&sample(), &path).expect("write");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(parse_junit(&text).root["tests"], "9");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn groups() {
    assert_eq!(group_of("matrix/in/t-RO1/p-ON1/valid/srv"), "matrix/in");
    assert_eq!(group_of("matrix/out/t-RO1/p-ON1/valid/srv"), "matrix/out");
    assert_eq!(group_of("config/NR0"), "config");
    assert_eq!(
        group_of("rfc6120/5.4.3.3/starttls-pipelining"),
        "rfc6120/5.4.3.3"
    );
    assert_eq!(group_of("lonely"), "lonely");
    assert_eq!(group_of(""), "");
}

// ---------------------------------------------------------------- table

#[test]
fn table_counts_per_family_and_total() {
    let t = summary_table(&sample());
    let row = |name: &str| -> Vec<String> {
        t.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{t}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    // pass, non-strict, not-applicable, fail, error, total
    assert_eq!(
        row("family")[1..],
        [
            "pass",
            "non-strict",
            "not-applicable",
            "fail",
            "error",
            "total"
        ]
    );
    assert_eq!(row("plain")[1..], ["1", "1", "0", "1", "0", "3"]);
    assert_eq!(row("certificates")[1..], ["0", "0", "0", "1", "1", "2"]);
    assert_eq!(row("dns")[1..], ["0", "0", "1", "0", "0", "1"]);
    assert_eq!(row("config")[1..], ["1", "0", "0", "1", "0", "2"]);
    assert_eq!(row("scenario")[1..], ["1", "0", "0", "0", "0", "1"]);
    assert_eq!(row("total")[1..], ["3", "1", "1", "3", "1", "9"]);

    // Known families first, in the matrix's order.
    let order: Vec<usize> = ["plain", "certificates", "dns", "config", "scenario"]
        .iter()
        .map(|f| t.find(&format!("\n{f} ")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{t}");

    assert!(
        t.contains("target reference, policy strict, 9 cases in 12.3 s"),
        "{t}"
    );
    assert!(t.contains("faults: no-sasl"), "{t}");
    assert!(t.contains("failing (4):"), "{t}");
    assert!(t.contains("  fail   config/NR0\n"), "{t}");
    assert!(
        t.contains("  error  matrix/out/t-RR1/p-RR1/expired/srv\n"),
        "{t}"
    );
    assert!(
        t.contains("expected SASL over TLS, observed TCP Dialback\n"),
        "{t}"
    );
    assert!(!t.contains("second line of detail"), "{t}");
    assert!(!t.contains("and 0 more") && !t.contains('\u{1b}'), "{t}");
    for line in t.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
}

#[test]
fn table_truncates_failing_list() {
    let t = summary_table_with(&sample(), 2);
    assert!(t.contains("failing (4):"), "{t}");
    assert!(t.contains("  … and 2 more"), "{t}");
    // Listed in id order: config/NR0 and the matrix/in failure.
    assert!(
        t.contains("config/NR0") && t.contains("matrix/in/t-RO1/p-ON1/valid/srv"),
        "{t}"
    );
    assert!(!t.contains("matrix/out/t-ON1/p-ON1/wrong-name/srv"), "{t}");

    // Long messages are cut to the terminal width.
    let mut r = sample();
    for c in &mut r.cases {
        c.messages = vec!["x".repeat(200)];
        c.family = "a-family-name-much-longer-than-the-column".into();
    }
    let t = summary_table(&r);
    for line in t.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
    assert!(t.contains("x…\n"), "{t}");

    // A message quoting peer data cannot drive the terminal.
    let mut r = sample();
    r.cases[1].messages = vec!["peer said \u{1b}[2Jboo".into()];
    let t = summary_table(&r);
    assert!(
        !t.contains('\u{1b}') && t.contains("peer said ?[2Jboo"),
        "{t}"
    );

    // No failures: no list at all.
    let mut r = sample();
    r.cases
        .retain(|c| !matches!(c.verdict, Verdict::Fail | Verdict::Error));
    let t = summary_table(&r);
    assert!(!t.contains("failing"), "{t}");
}

/// SIGINT/SIGTERM write a partial report: each rendering must say so, and
/// reports written before the field existed still read as complete.
#[test]
fn an_interrupted_run_says_so_in_every_rendering() {
    let complete = sample();
    let mut partial = complete.clone();
    partial.run.interrupted = true;
    let json = serde_json::to_value(&partial).expect("json");
    assert_eq!(json["run"]["interrupted"], serde_json::json!(true));
    let mut old = serde_json::to_value(&complete).expect("json");
    old["run"].as_object_mut().unwrap().remove("interrupted");
    let back: Report = serde_json::from_value(old).expect("a report without the field");
    assert!(!back.run.interrupted);

    for (name, text) in [
        ("table", summary_table(&partial)),
        ("markdown", s2spec::report::markdown_string(&partial)),
        ("html", s2spec::report::html_string(&partial)),
    ] {
        assert!(text.contains("INTERRUPTED"), "{name}: {text}");
    }
    assert!(!summary_table(&complete).contains("INTERRUPTED"));
    let junit = junit_string(&partial);
    assert!(
        junit.contains(r#"name="interrupted" value="true""#),
        "{junit}"
    );
    assert!(junit.contains(r#"<testcase name="interrupted""#), "{junit}");
    assert!(junit.contains(r#"type="interrupted""#), "{junit}");
    assert!(!junit_string(&complete).contains("interrupted"));
}
