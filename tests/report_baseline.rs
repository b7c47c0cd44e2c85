//! The baseline section of every rendering: known deviations apart, new and
//! fixed entries listed, JUnit skipping known failures; hostile text from a
//! baseline file escaped.

use quick_xml::Reader;
use quick_xml::events::Event;
use s2spec::report::{
    BaselineOutcome, CaseResult, FixedEntry, GateCase, KnownCase, Report, RunInfo, Verdict,
    html_string, junit_string, markdown_string, read_json, write_json,
};

fn case(id: &str, verdict: Verdict) -> CaseResult {
    CaseResult {
        id: id.into(),
        family: "plain".into(),
        description: format!("checks {id}"),
        verdict,
        expected: None,
        observed: None,
        messages: vec![format!("{verdict}: about {id}")],
        deviations: Vec::new(),
        duration_ms: 3,
        waited: Vec::new(),
        transcript: Vec::new(),
    }
}

const HOSTILE: &str = "</td><script>alert(1)</script> | `x`";

fn sample(strict: bool) -> Report {
    let mut r = Report::new(
        RunInfo {
            s2spec_version: "0.1.0".into(),
            target: "reference".into(),
            faults: vec![],
            policy: "lync".into(),
            started: String::new(),
            finished: String::new(),
            duration_ms: 1,
            transcripts: None,
            selection: None,
            interrupted: false,
        },
        vec![
            case("matrix/in/t-RO1/p-ON1/valid/srv", Verdict::Fail),
            case("matrix/in/t-RO1/p-ON1/valid/nxdomain", Verdict::Fail),
            case("matrix/in/t-RO1/p-OO1/valid/srv", Verdict::Pass),
        ],
    );
    r.baseline = Some(BaselineOutcome {
        file: "base<line>.toml".into(),
        strict,
        known: vec![KnownCase {
            id: "matrix/in/t-RO1/p-ON1/valid/srv".into(),
            verdict: Verdict::Fail,
            entry: "matrix/in/t-RO1/*/valid/srv".into(),
            line: 2,
            reason: HOSTILE.into(),
            message_was: None,
        }],
        new: vec![GateCase {
            id: "matrix/in/t-RO1/p-ON1/valid/nxdomain".into(),
            verdict: Verdict::Fail,
            baseline_verdict: None,
            line: None,
            message: "fail: about it".into(),
            gating: true,
        }],
        changed: vec![],
        fixed: vec![FixedEntry {
            entry: "matrix/in/t-RO1/p-OO1/valid/srv".into(),
            line: 9,
            verdict: Verdict::NonStrict,
            reason: "was flaky".into(),
            cases: 1,
        }],
    });
    r
}

fn well_formed(xml: &str) {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}", reader.buffer_position()),
        }
    }
}

#[test]
fn every_rendering_lists_the_baseline_apart() {
    let r = sample(false);
    let md = markdown_string(&r);
    assert!(md.contains("## Baseline"));
    assert!(
        md.contains("**gate failed**. 1 known deviation(s), 1 new or worse, 0 changed, 1 fixed.")
    );
    assert!(md.contains("### Fixed (remove from the baseline)"));
    assert!(!md.contains("<script>"), "{md}");

    let html = html_string(&r);
    well_formed(html.trim_start_matches("<!DOCTYPE html>\n"));
    assert!(html.contains("<section id=\"baseline\">"));
    assert!(html.contains("<li><a href=\"#baseline\">Baseline</a></li>"));
    assert!(!html.contains("<script>alert"), "escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    let junit = junit_string(&r);
    well_formed(&junit);
    assert_eq!(junit.matches("type=\"known-deviation\"").count(), 1);
    assert_eq!(
        junit.matches("<failure").count(),
        1,
        "the new failure stays one"
    );
    assert!(junit.contains("name=\"baseline\""));
    assert!(
        !junit.contains("type=\"fixed-entry\""),
        "fixed fails only when strict"
    );
    let strict = junit_string(&sample(true));
    assert_eq!(strict.matches("type=\"fixed-entry\"").count(), 1);
}

#[test]
fn the_outcome_round_trips_through_report_json() {
    let r = sample(true);
    let path = std::env::temp_dir().join(format!(
        "s2spec-report-baseline-{}/report.json",
        std::process::id()
    ));
    write_json(&r, &path).unwrap();
    let back = read_json(&path).unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    assert_eq!(back, r);
    let b = back.baseline.unwrap();
    assert!(!b.holds() && !b.passes());
    assert!(b.text().contains("gate: FAILED (new or worse cases)"));
}
