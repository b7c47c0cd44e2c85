//! `junit.xml`: the run as JUnit XML, for CI systems that display test results.
//!
//! One `<testsuite>` per group of case ids (see [`group_of`]), one
//! `<testcase>` per case. `fail` and `error` carry a body with everything
//! needed to judge the case without opening `report.json`; `non-strict`
//! counts as passed but says why on `system-out`; `not-applicable` is
//! skipped with its reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::json::write_atomic;
use super::{CaseResult, Report, Verdict};
use crate::stream::{Dir, Entry, EntryKind};

/// Transcript lines kept at the end of a failure body: enough to see the
/// last exchanges, not so many that a CI page becomes unreadable.
pub const TRANSCRIPT_TAIL: usize = 40;

/// Writes [`junit_string`] to `path` atomically, creating its directory.
pub fn write_junit(report: &Report, path: &Path) -> io::Result<()> {
    write_atomic(path, junit_string(report).as_bytes())
}

/// The run as a JUnit XML document.
pub fn junit_string(report: &Report) -> String {
    match junit_report(report).to_string() {
        Ok(s) => s,
        // Serialising into memory only fails on a quick-xml bug; still hand
        // CI a valid document that shows the problem instead of panicking.
        Err(e) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites name=\"s2spec\" tests=\"1\" failures=\"0\" errors=\"1\">\
             <testsuite name=\"s2spec\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\
             <testcase name=\"junit\"><error message=\"cannot serialise JUnit report\">{}</error>\
             </testcase></testsuite></testsuites>\n",
            xml_escape(&e.to_string())
        ),
    }
}

/// The run as a `quick_junit` report, for callers that want to adjust it.
pub fn junit_report(report: &Report) -> quick_junit::Report {
    let mut groups: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for case in &report.cases {
        groups.entry(group_of(&case.id)).or_default().push(case);
    }

    let mut out = quick_junit::Report::new("s2spec");
    out.set_time(Duration::from_millis(report.run.duration_ms));
    for (group, cases) in groups {
        let mut suite = TestSuite::new(xml_safe(group));
        suite.add_properties(run_properties(report));
        suite.set_time(Duration::from_millis(
            cases.iter().map(|c| c.duration_ms).sum(),
        ));
        suite.add_test_cases(
            cases
                .into_iter()
                .map(|c| known_deviation(report, c, test_case(report, c, group))),
        );
        out.add_test_suite(suite);
    }
    if let Some(suite) = baseline_suite(report) {
        out.add_test_suite(suite);
    }
    if report.run.interrupted {
        // CI shows an error, not a shorter green run.
        let mut suite = TestSuite::new("s2spec");
        suite.add_properties(run_properties(report));
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(super::INTERRUPTED_NOTE);
        status.set_type("interrupted");
        suite.add_test_case(TestCase::new("interrupted", status));
        out.add_test_suite(suite);
    }
    out
}

/// A failing case the baseline covers with its verdict is skipped as a
/// known deviation (the gate holds, so CI must not show it red); its
/// failure body moves to `system-out`. Everything else is left as it is.
fn known_deviation(report: &Report, case: &CaseResult, mut tc: TestCase) -> TestCase {
    let Some(known) = report
        .baseline
        .as_ref()
        .and_then(|b| b.known_case(&case.id))
    else {
        return tc;
    };
    if !matches!(case.verdict, Verdict::Fail | Verdict::Error) {
        return tc;
    }
    let mut s = TestCaseStatus::skipped();
    let reason = if known.reason.is_empty() {
        "no reason given"
    } else {
        known.reason.as_str()
    };
    s.set_message(xml_safe(&format!(
        "known deviation ({} line {}): {reason}",
        report.baseline.as_ref().map_or("", |b| b.file.as_str()),
        known.line
    )));
    s.set_type("known-deviation");
    tc.status = s;
    tc.set_system_out(xml_safe(&failure_body(report, case)));
    tc
}

/// The suite `baseline`: one test case per fixed entry, failing under
/// `--baseline-strict` (the entry should be removed), passing otherwise.
fn baseline_suite(report: &Report) -> Option<TestSuite> {
    let b = report.baseline.as_ref()?;
    if b.fixed.is_empty() {
        return None;
    }
    let mut suite = TestSuite::new("baseline");
    suite.add_properties(run_properties(report));
    for f in &b.fixed {
        let text = format!(
            "fixed: all {} case(s) of {} line {} ({}) pass; remove the entry",
            f.cases, b.file, f.line, f.verdict
        );
        let status = if b.strict {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(xml_safe(&text));
            s.set_type("fixed-entry");
            s
        } else {
            TestCaseStatus::success()
        };
        let mut tc = TestCase::new(xml_safe(&format!("fixed: {}", f.entry)), status);
        tc.set_classname("baseline");
        tc.set_system_out(xml_safe(&text));
        suite.add_test_case(tc);
    }
    Some(suite)
}

/// The suite a case id belongs to: its first two path segments
/// (`matrix/in`, `rfc6120/5.4.3.3`), but never the whole id, so the
/// validation cases `config/<code>` share the suite `config`.
pub fn group_of(id: &str) -> &str {
    let segments = id.split('/').count();
    let keep = segments.saturating_sub(1).clamp(1, 2);
    match id.match_indices('/').nth(keep - 1) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

fn run_properties(report: &Report) -> Vec<Property> {
    let run = &report.run;
    let mut props = vec![
        Property::new("target", &run.target),
        Property::new("policy", &run.policy),
        Property::new("s2spec-version", &run.s2spec_version),
    ];
    if !run.faults.is_empty() {
        props.push(Property::new("faults", run.faults.join(",")));
    }
    if let Some(b) = &report.baseline {
        props.push(Property::new("baseline", &b.file));
    }
    if let Some(mode) = run.transcripts {
        props.push(Property::new("transcripts", mode.as_str()));
    }
    if run.interrupted {
        props.push(Property::new("interrupted", "true"));
    }
    props
}

fn test_case(report: &Report, case: &CaseResult, group: &str) -> TestCase {
    let status = match case.verdict {
        Verdict::Pass | Verdict::NonStrict => TestCaseStatus::success(),
        Verdict::NotApplicable => {
            let mut s = TestCaseStatus::skipped();
            let message = first_line(case, "not applicable");
            s.set_message(xml_safe(message));
            s.set_type("not-applicable");
            // The full reason only when the message attribute does not hold it all.
            let all = case.messages.join("\n");
            if all != message {
                s.set_description(xml_safe(&all));
            }
            s
        }
        Verdict::Fail | Verdict::Error => {
            let kind = if case.verdict == Verdict::Fail {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(xml_safe(first_line(case, case.verdict.as_str())));
            s.set_type(case.verdict.as_str());
            s.set_description(xml_safe(&failure_body(report, case)));
            s
        }
    };
    let mut tc = TestCase::new(xml_safe(&case.id), status);
    tc.set_classname(xml_safe(group));
    tc.set_time(Duration::from_millis(case.duration_ms));
    if case.verdict == Verdict::NonStrict {
        let mut text = String::from("non-strict: passes, with SHOULD-level deviations\n");
        for m in &case.messages {
            let _ = writeln!(text, "- {m}");
        }
        tc.set_system_out(xml_safe(&text));
    }
    tc
}

/// The first line of the first message, or `fallback` when there is none.
fn first_line<'a>(case: &'a CaseResult, fallback: &'a str) -> &'a str {
    case.messages
        .first()
        .and_then(|m| m.lines().next())
        .filter(|l| !l.trim().is_empty())
        .unwrap_or(fallback)
}

/// Everything a reader of a CI page needs to understand a failure.
fn failure_body(report: &Report, case: &CaseResult) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "{}: {}", case.verdict, case.description);
    if !case.messages.is_empty() {
        b.push_str("\nmessages:\n");
        for m in &case.messages {
            let _ = writeln!(b, "- {}", m.replace('\n', "\n  "));
        }
    }
    if let Some(e) = &case.expected {
        let _ = writeln!(b, "\nexpected: {} ({})", e.outcome, tls_word(e.tls));
    }
    if let Some(o) = &case.observed {
        let _ = writeln!(b, "observed: {} ({})", o.outcome, tls_word(o.tls));
        for f in &o.facts {
            let _ = writeln!(b, "  - {f}");
        }
    }
    if let Some(e) = &case.expected {
        if !e.rationale.is_empty() {
            let _ = writeln!(b, "\nrationale: {}", e.rationale);
        }
        if !e.refs.is_empty() {
            let _ = writeln!(b, "refs: {}", e.refs.join("; "));
        }
        if let Some(src) = &e.source {
            let _ = writeln!(b, "another outcome deviates from: {}", src.label());
        }
        for a in &e.alternatives {
            let _ = writeln!(b, "alternative: {a}");
        }
    }
    let t = &case.transcript;
    if t.is_empty() {
        let _ = writeln!(b, "\n{}", report.no_transcript_note(case));
    } else {
        let start = t.len().saturating_sub(TRANSCRIPT_TAIL);
        if start > 0 {
            let _ = writeln!(
                b,
                "\ntranscript (last {} of {} lines):",
                t.len() - start,
                t.len()
            );
        } else {
            let _ = writeln!(b, "\ntranscript ({} lines):", t.len());
        }
        for e in &t[start..] {
            let _ = writeln!(b, "{}", transcript_line(e));
        }
    }
    b
}

fn tls_word(tls: bool) -> &'static str {
    if tls { "TLS" } else { "no TLS" }
}

/// One transcript entry on one line: time, stream, direction, layer, text.
pub fn transcript_line(e: &Entry) -> String {
    let dir = match e.dir {
        Dir::Sent => "sent",
        Dir::Received => "recv",
    };
    let layer = if e.tls { "tls" } else { "tcp" };
    let kind = match e.kind {
        EntryKind::Xml => "",
        EntryKind::Raw => "raw: ",
        EntryKind::Whitespace => "whitespace: ",
        EntryKind::Note => "note: ",
    };
    // Raw bytes may hold line breaks; keep one entry per line.
    let text = e.text.replace('\r', "\\r").replace('\n', "\\n");
    format!(
        "{:>9.3}s #{} {dir} {layer} {kind}{text}",
        e.at.as_secs_f64(),
        e.stream
    )
}

/// `s` without the characters XML 1.0 forbids that `quick_junit::XmlString`
/// keeps (it strips control characters, not U+FFFE/U+FFFF); transcripts hold
/// whatever a peer sent, and one stray character must not make the whole
/// document unreadable to CI.
fn xml_safe(s: &str) -> String {
    s.replace(['\u{fffe}', '\u{ffff}'], "\u{fffd}")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
